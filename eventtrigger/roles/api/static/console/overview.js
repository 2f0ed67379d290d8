// Overview: the /api/v1/stats figures as tiles, firings and timings over the last hour
// or 48 h as charts (/api/v1/stats/series), and the latest failures with trigger names.

import uPlot from "./vendor/uplot/uPlot.esm.js";
import { get, triggerNames, qs } from "./api.js";
import { el, when, seconds, ms, badge } from "./util.js";

const STATS_EVERY_MS = 3000;
const SERIES_EVERY_MS = { "1h": 10000, "48h": 60000 };

function tile(label, value, key, hint) {
  return el("div", { class: "tile", "data-metric": key, title: hint },
    el("div", { class: "label" }, label), el("div", { class: "value" }, String(value)));
}

function tiles(s) {
  const q = (o) => (!o || o["0.5"] === null ? "no data" : `${seconds(o["0.5"])} / ${seconds(o["0.99"])}`);
  return [
    tile("Pending jobs", s.jobs.pending, "jobs.pending", "overdue occurrences + unfinished events"),
    tile("Retrying", s.outcomes.retrying, "outcomes.retrying", "events waiting for another attempt"),
    tile("Succeeded", s.outcomes.success, "outcomes.success", "in the active window"),
    tile("Failed", s.outcomes.failure, "outcomes.failure", "in the active window"),
    tile("Active events", s.events.active, "events.active"),
    tile("Archived events", s.events.archived, "events.archived"),
    tile("Triggers", s.triggers.total, "triggers.total"),
    tile("Fire lateness p50 / p99", q(s.fire_lateness_seconds),
      "fire_lateness", "scheduled time to publish, last 5 minutes"),
    tile("Delivery latency p50 / p99", q(s.delivery_latency_seconds),
      "delivery_latency", "scheduled time to the endpoint's answer, last 5 minutes"),
  ];
}

function failureRows(failures, names) {
  if (!failures.length) {
    return [el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No failures in the active window."))];
  }
  return failures.map((f) => {
    const name = f.trigger_id ? names.get(f.trigger_id) : null;
    return el("tr", { "data-event": f.id },
      el("td", {}, when(f.fired_at)),
      el("td", {}, f.trigger_id
        ? el("a", { href: `#/triggers/${f.trigger_id}` }, name || (name === null ? "(deleted trigger)" : f.trigger_id))
        : el("span", { class: "muted" }, "test run")),
      el("td", {}, el("a", { href: `#/events/${f.id}`, class: "mono" }, f.id)),
      el("td", {}, String(f.attempts)),
      el("td", {}, f.last_status_code === null ? "-" : String(f.last_status_code)),
      el("td", { class: "err" }, f.last_error || "-"));
  });
}

const axisColor = "#667";
function axes(yLabel, yValues) {
  const grid = { stroke: "#e6e8ee", width: 1 };
  return [
    { stroke: axisColor, grid, ticks: grid },
    { stroke: axisColor, grid, ticks: grid, label: yLabel, size: 60, values: yValues },
  ];
}

const KINDS = ["firings", "lateness", "latency"];
const TITLES = {
  lateness: "Fire lateness (scheduled time to firing; scheduled triggers)",
  latency: "Delivery latency (scheduled time to the endpoint's final answer)",
};

function chartOptions(width, kind, bucket) {
  // The last bucket starts now-ish: leave it room so its bar is not cut in half.
  const x = { time: true, range: (u, min, max) => [min, max + bucket] };
  if (kind === "firings") {
    const bars = uPlot.paths.bars({ size: [0.7, 24] });
    return {
      width, height: 200,
      scales: { x, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: axes("per minute"),
      series: [
        { label: "time" },
        { label: "success", stroke: "#2f8f4e", fill: "#2f8f4e66", paths: bars, points: { show: false } },
        { label: "failure", stroke: "#c0392b", fill: "#c0392b99", paths: bars, points: { show: false } },
        { label: "pending + retrying", stroke: "#d4a017", width: 2, points: { show: false } },
      ],
    };
  }
  // Linear, one quantity per chart: p50 and p99 of one measure share a scale well, while
  // lateness (ms) next to delivery latency (often 100x more) would flatten one of them.
  const color = kind === "lateness" ? "#2b6cb0" : "#8e44ad";
  const fmt = (u, vals) => vals.map((v) => (v === null ? "" : ms(v)));
  return {
    width, height: 170,
    scales: { x, y: { range: (u, min, max) => [0, max > 0 ? max * 1.15 : 1] } },
    axes: axes("", fmt),
    series: [
      { label: "time" },
      { label: "p50", stroke: color, width: 2, value: (u, v) => ms(v) },
      { label: "p99", stroke: color, dash: [6, 4], width: 2, value: (u, v) => ms(v) },
    ],
  };
}

function columns(series, kind) {
  const per = series.bucket_seconds / 60;
  const x = series.points.map((p) => new Date(p.start).getTime() / 1000);
  if (kind === "firings") {
    const f = (k) => series.points.map((p) => p.counts[k] / per);
    return [x, f("success"), f("failure"),
      series.points.map((p) => (p.counts.pending + p.counts.retrying) / per)];
  }
  const key = kind === "lateness" ? "fire_lateness_ms" : "delivery_latency_ms";
  return [x, series.points.map((p) => p[key].p50), series.points.map((p) => p[key].p99)];
}

/** A chart card kept in step with /stats/series; `triggerId` narrows it to one trigger. */
export function seriesCharts(container, { triggerId = null, range = "1h", onRange } = {}) {
  let current = range;
  let plots = [];
  let timer = null;
  let stopped = false;
  const picker = el("div", { class: "range", role: "group", "aria-label": "Time range" });
  const holders = Object.fromEntries(KINDS.map((k) => [k, el("div", { class: "chart", "data-chart": k })]));
  const note = el("p", { class: "muted small" });
  for (const r of ["1h", "48h"]) {
    picker.append(el("button", {
      type: "button", "data-range": r, class: r === current ? "on" : "",
      onclick: () => { current = r; onRange?.(r); picker.querySelectorAll("button").forEach((b) => b.classList.toggle("on", b.dataset.range === r)); load(true); },
    }, r === "1h" ? "Last hour" : "Last 48 h"));
  }
  container.append(
    el("div", { class: "card-head" }, el("h2", {}, "Firings"), picker),
    holders.firings,
    el("h2", {}, TITLES.lateness), holders.lateness,
    el("h2", {}, TITLES.latency), holders.latency, note);

  async function load(rebuild = false) {
    clearTimeout(timer);
    if (stopped) return;
    try {
      const data = await get(`/stats/series${qs({ range: current, trigger_id: triggerId })}`);
      if (stopped) return;
      const width = Math.max(320, container.clientWidth - 8);
      if (rebuild || !plots.length) {
        plots.forEach((p) => p.destroy());
        plots = KINDS.map((kind) => {
          holders[kind].replaceChildren();
          return new uPlot(chartOptions(width, kind, data.bucket_seconds), columns(data, kind), holders[kind]);
        });
      } else {
        KINDS.forEach((kind, i) => plots[i].setData(columns(data, kind)));
      }
      // What the charts show, for tests and for anyone reading the DOM.
      holders.firings.dataset.total = String(data.points.reduce((n, p) => n + Object.values(p.counts).reduce((a, b) => a + b, 0), 0));
      const bucket = data.bucket_seconds >= 60 ? `${data.bucket_seconds / 60}-minute` : `${data.bucket_seconds}-second`;
      note.textContent = `Per ${bucket} bucket; p50 solid, p99 dashed (from log-scale histograms, within 19%). Times in ${Intl.DateTimeFormat().resolvedOptions().timeZone}.`;
    } catch (err) {
      note.textContent = `Charts unavailable: ${err.message}`;
    }
    timer = setTimeout(load, SERIES_EVERY_MS[current]);
  }
  function resize() {
    const width = Math.max(320, container.clientWidth - 8);
    plots.forEach((p) => p.setSize({ width, height: p.height }));
  }
  window.addEventListener("resize", resize);
  load(true);
  return () => {
    stopped = true;
    clearTimeout(timer);
    window.removeEventListener("resize", resize);
    plots.forEach((p) => p.destroy());
  };
}

export async function render(page, params, ctx) {
  const tileBox = el("div", { class: "tiles", id: "tiles" });
  const charts = el("section", { class: "card", id: "charts" });
  const failures = el("tbody", { id: "failures" });
  page.append(
    tileBox,
    charts,
    el("section", { class: "card" },
      el("div", { class: "card-head" }, el("h2", {}, "Latest failures"),
        el("a", { href: "#/events?status=failure" }, "All failures")),
      el("table", {},
        el("thead", {}, el("tr", {}, ...["Fired", "Trigger", "Event", "Attempts", "Code", "Error"].map((h) => el("th", {}, h)))),
        failures)));
  const stopCharts = seriesCharts(charts, { range: params.query.get("range") || "1h" });

  let timer = null;
  let stopped = false;
  async function refresh() {
    try {
      const s = await get("/stats");
      if (stopped) return;
      tileBox.replaceChildren(...tiles(s));
      const names = await triggerNames(s.latest_failures.map((f) => f.trigger_id));
      if (stopped) return;
      failures.replaceChildren(...failureRows(s.latest_failures, names));
      ctx.status(`as of ${s.as_of ? new Date(s.as_of).toLocaleTimeString() : "-"}`);
    } catch (err) {
      if (err.status !== 401) ctx.status(`error: ${err.message}`, true);
    }
    if (!stopped) timer = setTimeout(refresh, STATS_EVERY_MS);
  }
  await refresh();
  return () => { stopped = true; clearTimeout(timer); stopCharts(); };
}

export { badge };
