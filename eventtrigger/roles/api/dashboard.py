"""`GET /dashboard`: one self-contained HTML page (no build step, no external assets).

The page needs no key to load; it asks for one, keeps it in the browser's localStorage,
and polls `/api/v1/stats` with it every few seconds.
"""

from __future__ import annotations

DASHBOARD_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>eventtrigger dashboard</title>
<link rel="icon" href="data:,">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f5f6f8; color: #1d2330; }
  header { background: #1d2330; color: #fff; padding: 12px 20px; display: flex; gap: 16px;
           align-items: center; }
  header h1 { font-size: 18px; margin: 0; flex: 1; }
  main { padding: 20px; display: grid; gap: 16px; }
  .tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 12px; }
  .tile { background: #fff; border-radius: 8px; padding: 12px 14px; box-shadow: 0 1px 2px #0002; }
  .tile .label { color: #667; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
  .tile .value { font-size: 26px; font-weight: 600; margin-top: 4px; }
  section { background: #fff; border-radius: 8px; padding: 12px 14px; box-shadow: 0 1px 2px #0002; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #eee; font-size: 13px; }
  td.err { color: #a11; }
  #status { font-size: 12px; }
  .bad { color: #ffb4b4; }
  form { display: flex; gap: 8px; }
</style>
</head>
<body>
<header>
  <h1>eventtrigger</h1>
  <span id="status">not connected</span>
  <form id="keyform"><input id="key" type="password" placeholder="API key" autocomplete="off">
  <button type="submit">Use key</button></form>
</header>
<main>
  <div class="tiles" id="tiles"></div>
  <section><h2>Latency over the last 5 minutes (seconds)</h2>
    <table><thead><tr><th></th><th>p50</th><th>p95</th><th>p99</th></tr></thead>
    <tbody id="latency"></tbody></table></section>
  <section><h2>Triggers</h2><table><thead><tr><th>type</th><th>status</th><th>count</th></tr>
    </thead><tbody id="triggers"></tbody></table></section>
  <section><h2>Latest failures</h2><table><thead><tr><th>fired</th><th>event</th>
    <th>trigger</th><th>attempts</th><th>code</th><th>error</th></tr></thead>
    <tbody id="failures"></tbody></table></section>
</main>
<script>
"use strict";
const REFRESH_MS = 3000;
const $ = (id) => document.getElementById(id);
function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "-" : String(text);
  if (cls) td.className = cls;
  return td;
}
function row(cells) {
  const tr = document.createElement("tr");
  cells.forEach((c) => tr.appendChild(c));
  return tr;
}
function fill(id, rows) { $(id).replaceChildren(...rows); }
function tile(label, value, key) {
  const div = document.createElement("div");
  div.className = "tile";
  div.dataset.metric = key;
  const l = document.createElement("div"); l.className = "label"; l.textContent = label;
  const v = document.createElement("div"); v.className = "value"; v.textContent = String(value);
  div.append(l, v);
  return div;
}
function render(s) {
  fill("tiles", [
    tile("Pending jobs", s.jobs.pending, "jobs.pending"),
    tile("Active events", s.events.active, "events.active"),
    tile("Archived events", s.events.archived, "events.archived"),
    tile("Succeeded (active window)", s.outcomes.success, "outcomes.success"),
    tile("Failed (active window)", s.outcomes.failure, "outcomes.failure"),
    tile("Retrying", s.outcomes.retrying, "outcomes.retrying"),
    tile("Triggers", s.triggers.total, "triggers.total"),
  ]);
  const q = (o) => ["0.5", "0.95", "0.99"].map((k) => cell(o[k] === null ? "-" : o[k]));
  fill("latency", [
    row([cell("fire lateness"), ...q(s.fire_lateness_seconds)]),
    row([cell("delivery latency"), ...q(s.delivery_latency_seconds)]),
  ]);
  const trig = [];
  for (const [type, statuses] of Object.entries(s.triggers.by_type)) {
    for (const [status, n] of Object.entries(statuses)) {
      trig.push(row([cell(type), cell(status), cell(n)]));
    }
  }
  fill("triggers", trig);
  fill("failures", s.latest_failures.map((f) => row([cell(f.fired_at), cell(f.id),
    cell(f.trigger_id), cell(f.attempts), cell(f.last_status_code), cell(f.last_error, "err")])));
  $("status").textContent = "as of " + (s.as_of || "-");
  $("status").className = "";
}
async function refresh() {
  const key = localStorage.getItem("eventtrigger.key");
  if (!key) { $("status").textContent = "enter an API key"; return; }
  try {
    const r = await fetch("/api/v1/stats", {headers: {"Authorization": "Bearer " + key}});
    if (!r.ok) {
      $("status").textContent = r.status === 401 ? "the key was refused" : "error " + r.status;
      $("status").className = "bad";
      return;
    }
    render(await r.json());
  } catch (e) {
    $("status").textContent = "unreachable"; $("status").className = "bad";
  }
}
$("keyform").addEventListener("submit", (ev) => {
  ev.preventDefault();
  localStorage.setItem("eventtrigger.key", $("key").value.trim());
  $("key").value = "";
  refresh();
});
refresh();
setInterval(refresh, REFRESH_MS);
</script>
</body>
</html>
"""
