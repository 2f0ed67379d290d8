// Overview: the /api/v1/stats figures as tiles, firings, failure rate and timings over a
// chosen window as charts (/api/v1/stats/series), tiles for that window, and the latest
// failures with trigger names.

import uPlot from "./vendor/uplot/uPlot.esm.js";
import { get, triggerNames, qs, seriesSupport } from "./api.js";
import { el, when, seconds, ms, badge, num, percent, PRESETS, windowWords, fromLocalInput, toLocalInput, browserZone } from "./util.js";

const STATS_EVERY_MS = 3000;
// How often a preset's charts refresh: about a bucket's worth, never faster than 10 s.
const SERIES_EVERY_MS = { "15m": 10000, "1h": 10000, "6h": 30000, "24h": 60000, "48h": 60000 };

function tile(label, value, key, hint, window) {
  return el("div", { class: "tile", "data-metric": key, title: hint },
    el("div", { class: "label" }, label, window ? el("span", { class: "window" }, ` · ${window}`) : null),
    el("div", { class: "value" }, typeof value === "number" ? num(value) : String(value)));
}

function tiles(s) {
  const q = (o) => (!o || o["0.5"] === null ? "no data" : `${seconds(o["0.5"])} / ${seconds(o["0.99"])}`);
  return [
    tile("Pending jobs", s.jobs.pending, "jobs.pending", "overdue occurrences + unfinished events", "now"),
    tile("Retrying", s.outcomes.retrying, "outcomes.retrying", "events waiting for another attempt", "now"),
    tile("Succeeded", s.outcomes.success, "outcomes.success", "events fired in the active retention window", "active window"),
    tile("Failed", s.outcomes.failure, "outcomes.failure", "events fired in the active retention window", "active window"),
    tile("Active events", s.events.active, "events.active"),
    tile("Archived events", s.events.archived, "events.archived"),
    tile("Triggers", s.triggers.total, "triggers.total"),
    tile("Fire lateness p50 / p99", q(s.fire_lateness_seconds),
      "fire_lateness", "scheduled time to publish", "last 5 min"),
    tile("Delivery latency p50 / p99", q(s.delivery_latency_seconds),
      "delivery_latency", "scheduled time to the endpoint's answer", "last 5 min"),
  ];
}

/** Tiles for the charts' window, summed from the same series the charts draw. */
function windowTiles(data, words) {
  const sum = (k) => data.points.reduce((n, p) => n + p.counts[k], 0);
  const success = sum("success");
  const failure = sum("failure");
  const open = sum("pending") + sum("retrying");
  return [
    tile("Fired", success + failure + open, "window.fired", "events fired in the charts' window", words),
    tile("Succeeded", success, "window.success", "of the events fired in the window", words),
    tile("Failed", failure, "window.failure", "of the events fired in the window (final failures)", words),
    tile("Failure rate", percent(failure, success + failure), "window.failure_rate", "failed / (succeeded + failed)", words),
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
      el("td", {}, num(f.attempts)),
      el("td", {}, f.last_status_code === null ? "-" : String(f.last_status_code)),
      el("td", { class: "err" }, f.last_error || "-"));
  });
}

const axisColor = "#667";
const grid = { stroke: "#e6e8ee", width: 1 };
function axes(yLabel, yValues) {
  return [
    { stroke: axisColor, grid, ticks: grid },
    { stroke: axisColor, grid, ticks: grid, label: yLabel, size: 60, values: yValues },
  ];
}

const KINDS = ["firings", "lateness", "latency"];
const TITLES = {
  firings: "Firings and failure rate",
  lateness: "Fire lateness (scheduled time to firing; scheduled triggers)",
  latency: "Delivery latency (scheduled time to the endpoint's final answer)",
};
const RATE_COLOR = "#7a1d14";

function chartOptions(width, kind, bucket) {
  // The last bucket starts now-ish: leave it room so its bar is not cut in half.
  const x = { time: true, range: (u, min, max) => [min, max + bucket] };
  if (kind === "firings") {
    const bars = uPlot.paths.bars({ size: [0.7, 24] });
    // The failure rate has its own axis on the right, scaled to its own largest value
    // (at least 1 %), so a 1 % rate is a line near the top, not a sliver of a bar.
    return {
      width, height: 220,
      scales: {
        x,
        y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] },
        rate: { range: (u, min, max) => [0, Math.min(100, Math.max(1, (max || 0) * 1.25))] },
      },
      axes: [
        ...axes("per minute"),
        { scale: "rate", side: 1, stroke: RATE_COLOR, grid: { show: false }, ticks: grid, size: 56,
          values: (u, vals) => vals.map((v) => (v === null ? "" : `${+v.toFixed(2)} %`)) },
      ],
      series: [
        { label: "time" },
        { label: "success", stroke: "#2f8f4e", fill: "#2f8f4e66", paths: bars, points: { show: false }, value: (u, v) => (v === null ? "-" : num(+v.toFixed(1))) },
        { label: "failure", stroke: "#c0392b", fill: "#c0392b99", paths: bars, points: { show: false }, value: (u, v) => (v === null ? "-" : num(+v.toFixed(1))) },
        { label: "pending + retrying", stroke: "#d4a017", width: 2, points: { show: false } },
        { label: "failure rate", scale: "rate", stroke: RATE_COLOR, width: 2, dash: [4, 3], spanGaps: true,
          points: { show: true, size: 4 }, value: (u, v) => (v === null ? "-" : `${v.toFixed(2)} %`) },
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
    const rate = series.points.map((p) => {
      const done = p.counts.success + p.counts.failure;
      return done ? (100 * p.counts.failure) / done : null;
    });
    return [x, f("success"), f("failure"),
      series.points.map((p) => (p.counts.pending + p.counts.retrying) / per), rate];
  }
  const key = kind === "lateness" ? "fire_lateness_ms" : "delivery_latency_ms";
  return [x, series.points.map((p) => p[key].p50), series.points.map((p) => p[key].p99)];
}

function bucketWords(secondsPerBucket) {
  if (secondsPerBucket % 3600 === 0) return `${secondsPerBucket / 3600}-hour`;
  if (secondsPerBucket % 60 === 0) return `${secondsPerBucket / 60}-minute`;
  return `${secondsPerBucket}-second`;
}

/**
 * A chart card kept in step with /stats/series. `range` is a preset name or
 * {from, to} (RFC 3339) for a custom window; `triggerId` narrows it to one trigger;
 * `onRange(range)` hears the operator's choice and `onData(series, words)` each answer.
 */
export function seriesCharts(container, { triggerId = null, range = "1h", onRange, onData } = {}) {
  const support = seriesSupport();
  let current = range;
  let plots = [];
  let timer = null;
  let stopped = false;
  const picker = el("div", { class: "range", role: "group", "aria-label": "Time range" });
  const holders = Object.fromEntries(KINDS.map((k) => [k, el("div", { class: "chart", "data-chart": k })]));
  const note = el("p", { class: "muted small" });
  const from = el("input", { type: "datetime-local", step: 1, id: "range-from", "aria-label": `From (${browserZone()})` });
  const to = el("input", { type: "datetime-local", step: 1, id: "range-to", "aria-label": `To (${browserZone()})` });
  const customError = el("span", { class: "error small", role: "alert" });
  const custom = el("form", { class: "custom-range", id: "custom-range", hidden: true },
    el("label", {}, "From ", from), el("label", {}, "to ", to),
    el("button", { type: "submit" }, "Show"), customError);
  const title = el("h2", {}, TITLES.firings);

  function mark() {
    picker.querySelectorAll("button").forEach((b) => {
      const on = typeof current === "string" ? b.dataset.range === current : b.dataset.range === "custom";
      b.classList.toggle("on", on);
      b.setAttribute("aria-pressed", String(on));
    });
  }
  function choose(r) {
    current = r;
    onRange?.(r);
    mark();
    load(true);
  }
  for (const [name, , words] of PRESETS) {
    const offered = support.ranges.includes(name);
    picker.append(el("button", {
      type: "button", "data-range": name, disabled: !offered,
      title: offered ? `The last ${words}` : `This server's charts do not offer ${words} yet`,
      onclick: () => { custom.hidden = true; choose(name); },
    }, words));
  }
  picker.append(el("button", {
    type: "button", "data-range": "custom", disabled: !support.custom,
    title: support.custom ? "Pick a window within the last 48 h" : "This server's charts do not take a custom window yet",
    onclick: () => {
      custom.hidden = !custom.hidden;
      if (!custom.hidden) {
        const now = Date.now();
        from.value = toLocalInput(typeof current === "object" ? current.from : new Date(now - 3600e3).toISOString());
        to.value = toLocalInput(typeof current === "object" ? current.to : new Date(now).toISOString());
        from.focus();
      }
    },
  }, "Custom"));
  custom.addEventListener("submit", (ev) => {
    ev.preventDefault();
    customError.textContent = "";
    const f = fromLocalInput(from.value);
    const t = fromLocalInput(to.value);
    if (!f || !t || t <= f) { customError.textContent = "Pick a start before the end."; return; }
    choose({ from: f, to: t });
  });
  mark();
  container.append(
    el("div", { class: "card-head" }, title, picker), custom,
    holders.firings,
    el("h2", {}, TITLES.lateness), holders.lateness,
    el("h2", {}, TITLES.latency), holders.latency, note);

  // The holders' own width: the card's padding is not the charts' to draw in.
  const chartWidth = () => Math.max(320, (holders.firings.clientWidth || container.clientWidth - 32) - 4);
  function query() {
    const base = { trigger_id: triggerId };
    return typeof current === "string" ? { ...base, range: current } : { ...base, from: current.from, to: current.to };
  }

  async function load(rebuild = false) {
    clearTimeout(timer);
    if (stopped) return;
    const asked = current;
    try {
      const data = await get(`/stats/series${qs(query())}`);
      if (stopped || asked !== current) return;
      const width = chartWidth();
      if (rebuild || !plots.length) {
        plots.forEach((p) => p.destroy());
        plots = KINDS.map((kind) => {
          holders[kind].replaceChildren();
          return new uPlot(chartOptions(width, kind, data.bucket_seconds), columns(data, kind), holders[kind]);
        });
      } else {
        KINDS.forEach((kind, i) => plots[i].setData(columns(data, kind)));
      }
      const words = typeof current === "string" ? windowWords(current) : windowWords(null, current.from, current.to);
      // What the charts show, for tests and for anyone reading the DOM.
      holders.firings.dataset.total = String(data.points.reduce((n, p) => n + Object.values(p.counts).reduce((a, b) => a + b, 0), 0));
      holders.firings.dataset.window = words;
      title.textContent = `${TITLES.firings}, ${words}`;
      note.textContent = `Per ${bucketWords(data.bucket_seconds)} bucket; bars per minute on the left axis, failure rate (failed / finished, dashed) on the right; p50 solid, p99 dashed (from log-scale histograms, within 19%). Times in ${browserZone()}.`;
      onData?.(data, words);
    } catch (err) {
      note.textContent = `Charts unavailable: ${err.message}`;
    }
    // A custom window is fixed: drawn once, not polled.
    if (typeof current === "string" && !stopped) timer = setTimeout(load, SERIES_EVERY_MS[current] || 60000);
  }
  function resize() {
    const width = chartWidth();
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

/** The overview's range from its URL: a preset (?range=6h) or a window (?from=&to=). */
function rangeOf(query) {
  if (query.get("from") && query.get("to")) return { from: query.get("from"), to: query.get("to") };
  const name = query.get("range") || "1h";
  return PRESETS.some(([n]) => n === name) ? name : "1h";
}

export async function render(page, params, ctx) {
  const tileBox = el("div", { class: "tiles", id: "tiles" });
  const windowBox = el("div", { class: "tiles", id: "window-tiles" });
  const charts = el("section", { class: "card", id: "charts" });
  const failures = el("tbody", { id: "failures" });
  page.append(
    tileBox,
    windowBox,
    charts,
    el("section", { class: "card" },
      el("div", { class: "card-head" }, el("h2", {}, "Latest failures"),
        el("a", { href: "#/events?status=failure" }, "All failures")),
      el("table", {},
        el("thead", {}, el("tr", {}, ...["Fired", "Trigger", "Event", "Attempts", "Code", "Error"].map((h) => el("th", {}, h)))),
        failures)));
  const stopCharts = seriesCharts(charts, {
    range: rangeOf(params.query),
    // The window goes in the address, so a reload or a shared link shows the same charts.
    onRange: (r) => history.replaceState(null, "", `#/overview${qs(typeof r === "string" ? { range: r } : r)}`),
    onData: (data, words) => windowBox.replaceChildren(...windowTiles(data, words)),
  });
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
