// Events: the list with every filter the API has (view, trigger, status, source, test
// runs, a time preset or a custom range), paged by the API's cursor, with a search by
// event id, bulk replay of what the filters match and a live tail; one event's detail
// (the request sent, each attempt's response, copy as curl, replay); and the per-trigger
// 48 h aggregate.

import { get, post, qs, triggerNames, hasFeature, markMissing, MISSING_REASON, ApiError, followEvents } from "./api.js";
import {
  el, when, badge, json, ms, between, fromLocalInput, toLocalInput, browserZone, num, percent,
  PRESETS, presetSeconds, windowWords, curlCommand, MASK, copy, sortableHead,
} from "./util.js";

const PAGE_SIZE = 50;
const FILTERS = ["view", "trigger_id", "status", "source", "is_test_run", "since", "until"];
// What POST /events/replay filters by; a list narrowed by anything else cannot be
// replayed as one call that matches it exactly.
const BULK_FILTERS = ["trigger_id", "status"];
const BULK_MAX = 1000; // the API's most per call
const COUNT_PAGE = 500; // the list's largest page
const LIVE_ROWS = 200; // rows kept on screen while tailing
const SHOWN_HEADERS = 40; // per header table; the API bounds them too
const SHOWN_BODY = 8192; // characters of a body drawn on the page

function select(name, label, options, value) {
  return el("label", { class: "field inline" }, el("span", { class: "label" }, label),
    el("select", { name, id: `filter-${name}` }, ...options.map(([v, text]) => el("option", { value: v, selected: (value || "") === v }, text))));
}

function triggerCell(e, names) {
  if (!e.trigger_id) return el("span", { class: "muted" }, "test run");
  const name = names.get(e.trigger_id);
  return el("a", { href: `#/triggers/${e.trigger_id}`, title: e.trigger_id },
    name || (name === null ? "(deleted trigger)" : e.trigger_id));
}

function eventRow(e, names) {
  return el("tr", { "data-event": e.id, "data-status": e.status, "data-row": "" },
    el("td", {}, when(e.fired_at)), el("td", {}, triggerCell(e, names)), el("td", {}, e.trigger_type),
    el("td", {}, e.source, e.is_test_run ? el("span", { class: "tag" }, "test") : null), el("td", {}, badge(e.status)),
    el("td", {}, num(e.attempts)), el("td", {}, e.last_status_code ?? "-"),
    el("td", {}, ms(between(e.scheduled_at, e.delivered_at))),
    el("td", {}, el("a", { href: `#/events/${e.id}` }, "Details")));
}

/** The list's filters as the API takes them; a preset becomes `since` = now - preset. */
function apiFilters(filters, now = Date.now()) {
  const out = { ...filters };
  delete out.range;
  const span = presetSeconds(filters.range);
  if (span) {
    out.since = new Date(now - span * 1000).toISOString();
    out.until = "";
  }
  return out;
}

/** Whether an event from the live stream belongs in a list with these API filters. */
function matches(e, f) {
  if (f.trigger_id && e.trigger_id !== f.trigger_id) return false;
  if (f.status && e.status !== f.status) return false;
  if (f.source && e.source !== f.source) return false;
  if (f.is_test_run && String(Boolean(e.is_test_run)) !== f.is_test_run) return false;
  if (f.since && new Date(e.fired_at) < new Date(f.since)) return false;
  if (f.until && new Date(e.fired_at) >= new Date(f.until)) return false;
  return f.view !== "archived";
}

function problemText(err) {
  return err instanceof ApiError && err.errors.length
    ? err.errors.map((e) => `${e.field}: ${e.message}`).join("; ") : err.message;
}

export async function renderList(page, params, ctx) {
  const q = params.query;
  const filters = Object.fromEntries([...FILTERS, "range"].map((k) => [k, q.get(k) || ""]));
  const range = el("input", { type: "hidden", name: "range", value: filters.range });
  const since = el("input", { type: "datetime-local", step: 1, name: "since", id: "filter-since", value: toLocalInput(filters.since) });
  const until = el("input", { type: "datetime-local", step: 1, name: "until", id: "filter-until", value: toLocalInput(filters.until) });
  const form = el("form", { class: "card filters", id: "event-filters" },
    select("view", "View", [["active", "Active"], ["archived", "Archived"]], filters.view || "active"),
    el("label", { class: "field inline" }, el("span", { class: "label" }, "Trigger id"),
      el("input", { name: "trigger_id", id: "filter-trigger_id", value: filters.trigger_id, size: 28, class: "mono" })),
    select("status", "Status", [["", "Any"], ["pending", "pending"], ["retrying", "retrying"], ["success", "success"], ["failure", "failure"]], filters.status),
    select("source", "Source", [["", "Any"], ["api", "api"], ["scheduled", "scheduled"], ["manual-test", "manual-test"], ...(hasFeature("replay") ? [["replay", "replay"]] : [])], filters.source),
    select("is_test_run", "Test runs", [["", "Included"], ["false", "Excluded"], ["true", "Only"]], filters.is_test_run),
    el("label", { class: "field inline" }, el("span", { class: "label" }, `Since (${browserZone()})`), since),
    el("label", { class: "field inline" }, el("span", { class: "label" }, "Until"), until),
    range,
    el("div", { class: "form-actions" }, el("button", { type: "submit", class: "primary" }, "Apply"),
      el("a", { class: "button", href: "#/events" }, "Reset")));
  // Presets fill the range and submit; typing a time of one's own makes it a custom range.
  const presets = el("div", { class: "range", role: "group", "aria-label": "Fired in the last", id: "event-range" },
    ...PRESETS.map(([name, , words]) => el("button", {
      type: "button", "data-range": name, class: filters.range === name ? "on" : "", "aria-pressed": String(filters.range === name),
      onclick: () => { range.value = name; since.value = ""; until.value = ""; form.requestSubmit(); },
    }, words)),
    el("button", {
      type: "button", "data-range": "custom", class: !filters.range && (filters.since || filters.until) ? "on" : "",
      title: "Pick Since and Until below", onclick: () => since.focus(),
    }, "Custom"));
  for (const input of [since, until]) input.addEventListener("input", () => { range.value = ""; });

  const searchBox = el("input", { type: "search", id: "event-id-search", placeholder: "Event id", "aria-label": "Find an event by id", class: "mono", size: 30 });
  const searchNote = el("p", { class: "error", id: "search-result", role: "alert", hidden: true });
  const search = el("form", { id: "event-search", class: "search", role: "search" }, searchBox,
    el("button", { type: "submit" }, "Find"));
  const live = el("button", {
    type: "button", id: "live", "aria-pressed": "false", disabled: !hasFeature("stream"),
    title: hasFeature("stream") ? "Show new events as they happen (one stream while this page is open)" : MISSING_REASON.stream,
  }, "Live");
  const liveState = el("span", { class: "muted small", id: "live-status", role: "status" });
  const bulk = el("button", { type: "button", id: "bulk-replay" }, "Replay matching...");
  const bulkNote = el("div", { class: "card", id: "bulk-result", role: "status", hidden: true });
  const body = el("tbody", { id: "event-rows" });
  const prev = el("button", { type: "button", id: "prev", disabled: true }, "Newer");
  const next = el("button", { type: "button", id: "next", disabled: true }, "Older");
  const info = el("span", { class: "muted", id: "page-info" });
  const error = el("p", { class: "error", hidden: true });
  const windowNote = el("span", { class: "muted", id: "event-window" });
  page.append(
    el("div", { class: "toolbar" }, el("h1", {}, "Events"), search, liveState, live, bulk),
    searchNote,
    el("div", { class: "toolbar" }, el("span", { class: "muted" }, "Fired in the"), presets, windowNote),
    form, error, bulkNote,
    el("section", { class: "card" },
      el("table", { class: "list" },
        el("thead", {}, el("tr", {}, ...["Fired", "Trigger", "Type", "Source", "Status", "Attempts", "Code", "Latency", ""].map((h) => el("th", {}, h)))),
        body),
      el("div", { class: "pager" }, info, prev, next)));

  windowNote.textContent = filters.range ? windowWords(filters.range)
    : filters.since || filters.until ? windowWords(null, filters.since, filters.until) : "";
  // The API pages forwards only; the cursors seen so far let "Newer" step back. A preset
  // is turned into times once per visit, so paging does not slide the window.
  let asked = apiFilters(filters);
  const cursors = [null];
  let at = 0;

  async function load() {
    error.hidden = true;
    let answer;
    try {
      answer = await get(`/events${qs({ ...asked, limit: PAGE_SIZE, cursor: cursors[at] })}`);
    } catch (err) {
      error.textContent = problemText(err);
      error.hidden = false;
      body.replaceChildren();
      return;
    }
    cursors[at + 1] = answer.next_cursor;
    const names = await triggerNames(answer.items.map((e) => e.trigger_id));
    body.replaceChildren(...(answer.items.length ? answer.items.map((e) => eventRow(e, names))
      : [el("tr", { class: "empty" }, el("td", { colspan: 9, class: "muted" }, "No events match."))]));
    prev.disabled = at === 0;
    next.disabled = !answer.next_cursor;
    info.textContent = `Page ${at + 1} · ${num(answer.items.length)} events`;
  }
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    const chosen = {};
    for (const k of [...FILTERS, "range"]) {
      let v = String(data.get(k) || "").trim();
      if ((k === "since" || k === "until") && v) v = fromLocalInput(v);
      if (v && !(k === "view" && v === "active")) chosen[k] = v;
    }
    if (chosen.range) { delete chosen.since; delete chosen.until; }
    if (liveOn()) chosen.live = "1";
    ctx.navigate(`#/events${qs(chosen)}`);
  });
  prev.addEventListener("click", () => { at = Math.max(0, at - 1); load(); });
  next.addEventListener("click", () => { at += 1; load(); });

  // ---- search by id -------------------------------------------------------------------
  search.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const id = searchBox.value.trim();
    searchNote.hidden = true;
    if (!id) return;
    try {
      await get(`/events/${encodeURIComponent(id)}`);
      ctx.navigate(`#/events/${encodeURIComponent(id)}`);
    } catch (err) {
      searchNote.textContent = err.status === 404
        ? `No event with id ${id}: ids are 26 letters and digits, and events older than the retention window are gone.`
        : `Could not look up ${id}: ${err.message}`;
      searchNote.hidden = false;
      searchBox.focus();
    }
  });

  // ---- bulk replay ----------------------------------------------------------------------
  const unsupported = ["source", "is_test_run"].filter((k) => filters[k]);
  bulk.disabled = !hasFeature("bulkReplay") || unsupported.length > 0;
  bulk.title = !hasFeature("bulkReplay") ? MISSING_REASON.bulkReplay
    : unsupported.length ? `Bulk replay filters by trigger, status and time only; clear ${unsupported.join(" and ")} to use it.`
      : "Replay every event these filters match (the count is shown first)";

  /** Every event the filters match, newest first, or null when there are over BULK_MAX. */
  async function matching() {
    const found = [];
    let cursor = null;
    do {
      const answer = await get(`/events${qs({ ...asked, limit: COUNT_PAGE, cursor })}`);
      found.push(...answer.items);
      cursor = answer.next_cursor;
      if (found.length > BULK_MAX) return null;
    } while (cursor);
    return found;
  }

  bulk.addEventListener("click", async () => {
    bulk.disabled = true;
    bulkNote.hidden = true;
    try {
      const events = await matching();
      if (events === null) {
        ctx.toast(`More than ${num(BULK_MAX)} events match; narrow the filters (a shorter time range) and try again.`, true);
        return;
      }
      if (!events.length) { ctx.toast("No events match these filters: nothing to replay.", true); return; }
      // The call names the same filters plus the exact span of the events counted, so
      // it replays those events and no event fired since.
      const oldest = events[events.length - 1].fired_at;
      const newest = new Date(new Date(events[0].fired_at).getTime() + 1).toISOString();
      const names = await triggerNames([asked.trigger_id]);
      const what = [
        asked.trigger_id ? `of ${names.get(asked.trigger_id) || asked.trigger_id}` : null,
        asked.status ? `with status ${asked.status}` : null,
      ].filter(Boolean).join(" ");
      const text = `Replay ${num(events.length)} event${events.length === 1 ? "" : "s"}${what ? ` ${what}` : ""}, fired ${windowWords(null, oldest, events[0].fired_at)}? Each is sent again as a new event with a new webhook-id.`;
      if (!(await ctx.confirmAction(text, `Replay ${num(events.length)}`))) return;
      const request = { since: oldest, until: newest, limit: Math.min(BULK_MAX, events.length) };
      for (const k of BULK_FILTERS) if (asked[k]) request[k] = asked[k];
      const started = new Date(Date.now() - 1000).toISOString();
      const answer = await post("/events/replay", request);
      const n = answer.event_ids.length;
      bulkNote.replaceChildren(
        el("strong", {}, `Replayed ${num(n)} of ${num(events.length)} event${events.length === 1 ? "" : "s"}.`), " ",
        n < events.length ? el("span", { class: "muted" }, "Events whose schedule failed were never sent and are skipped. ") : null,
        el("a", { href: `#/events${qs({ source: "replay", since: started })}`, id: "bulk-replays" }, "Show the replays"));
      bulkNote.dataset.count = String(n);
      bulkNote.hidden = false;
      ctx.toast(`Replayed ${num(n)} events`);
    } catch (err) {
      if (err.status === 404 || err.status === 405) markMissing("bulkReplay");
      ctx.toast(`Bulk replay failed: ${problemText(err)}`, true);
    } finally {
      bulk.disabled = false;
    }
  });

  // ---- live tail --------------------------------------------------------------------------
  let stopLive = null;
  const liveOn = () => stopLive !== null;

  async function arrived(event) {
    let e;
    try { e = JSON.parse(event.data); } catch { return; }
    if (!e || !e.id) return;
    const names = await triggerNames([e.trigger_id]);
    const existing = body.querySelector(`tr[data-event="${CSS.escape(e.id)}"]`);
    const row = eventRow(e, names);
    if (existing) {
      row.classList.add("changed");
      existing.replaceWith(row);
      return;
    }
    if (!matches(e, asked)) return;
    body.querySelector("tr.empty")?.remove();
    row.classList.add("fresh");
    body.prepend(row);
    while (body.children.length > LIVE_ROWS) body.lastElementChild.remove();
  }

  let opened = 0;
  function setLive(on) {
    if (stopLive) { stopLive(); stopLive = null; }
    live.setAttribute("aria-pressed", String(on));
    live.classList.toggle("on", on);
    live.textContent = on ? "Live: on" : "Live";
    const url = new URLSearchParams(q);
    if (on) url.set("live", "1"); else url.delete("live");
    history.replaceState(null, "", `#/events${url.toString() ? `?${url}` : ""}`);
    if (!on) { liveState.textContent = ""; return; }
    if (at !== 0) { at = 0; load(); }
    // A live list is open-ended: a preset's window keeps its start, and new events pass.
    stopLive = followEvents({ trigger_id: asked.trigger_id, status: asked.status, source: asked.source }, {
      onEvent: (event) => { if (event.type === "event" || event.type === "message") arrived(event); },
      onState: (state, detail) => {
        liveState.dataset.state = state;
        // A stream shows what changes while it is open: after a drop, the first page is
        // read again so nothing that changed in between is missing.
        if (state === "open" && opened++ > 0) load();
        liveState.textContent = {
          connecting: "connecting...",
          open: "live: new events appear at the top",
          retrying: `stream dropped; retrying in ${detail} s`,
          failed: `the stream was refused (HTTP ${detail})`,
        }[state];
        if (state === "failed") {
          if (detail === 404 || detail === 405) markMissing("stream");
          stopLive = null;
          live.setAttribute("aria-pressed", "false");
          live.classList.remove("on");
          live.textContent = "Live";
        }
      },
    });
  }
  live.addEventListener("click", () => setLive(!liveOn()));
  // Older pages are history: the tail belongs to the first page only.
  next.addEventListener("click", () => { if (liveOn()) setLive(false); });

  await load();
  if (q.get("live") === "1" && hasFeature("stream")) setLive(true);
  return () => { if (stopLive) stopLive(); stopLive = null; };
}

// ---- one event ------------------------------------------------------------------------

function headerTable(headers, id) {
  const entries = Object.entries(headers || {});
  if (!entries.length) return el("p", { class: "muted small" }, "No headers recorded.");
  const shown = entries.slice(0, SHOWN_HEADERS);
  return el("table", { class: "headers", id },
    el("tbody", {}, ...shown.map(([k, v]) => el("tr", { "data-header": k.toLowerCase() },
      el("th", { scope: "row", class: "mono" }, k),
      el("td", { class: v === MASK ? "mono muted" : "mono" }, String(v), v === MASK ? " (hidden)" : null))),
    entries.length > shown.length
      ? el("tr", {}, el("td", { colspan: 2, class: "muted small" }, `${entries.length - shown.length} more not shown`)) : null));
}

/** A body as text, pretty-printed when it is JSON, cut at SHOWN_BODY characters. */
function bodyBlock(text, id) {
  if (text === null || text === undefined || text === "") return el("p", { class: "muted small", id }, "Empty.");
  let shown = String(text);
  try { shown = JSON.stringify(JSON.parse(shown), null, 2); } catch { /* not JSON: as sent */ }
  const cut = shown.length > SHOWN_BODY;
  return el("div", {},
    el("pre", { class: "json", id }, cut ? shown.slice(0, SHOWN_BODY) : shown),
    cut ? el("p", { class: "muted small" }, `First ${num(SHOWN_BODY)} of ${num(shown.length)} characters.`) : null);
}

/** The request an attempt sent, from the attempt or else the event: {method, url,
 *  headers, body, bodyKnown}, or null when the server reports neither. */
function requestOf(attempt, e) {
  const r = attempt?.request || e.request;
  if (!r || !r.url) return null;
  // The body as sent may be on the attempt or, the same for every attempt, on the event
  // (null there: a method without a body). Older servers report neither: then the
  // payload as JSON is the best guess, and the page says so.
  const holder = [r, e.request].find((x) => x && "body" in x);
  const sent = holder ? holder.body : undefined;
  const payload = e.payload === null || e.payload === undefined ? undefined : JSON.stringify(e.payload);
  return {
    method: r.method || "POST", url: r.url, headers: r.headers || {},
    body: holder ? (sent === null || typeof sent === "string" ? sent : JSON.stringify(sent)) : payload,
    bodyKnown: Boolean(holder),
  };
}

function curlBlock(request, ctx, id) {
  const { text, masked } = curlCommand(request);
  return el("details", { class: "curl", id: `${id}-box` },
    el("summary", {}, "curl command"),
    el("pre", { class: "json", id }, text),
    masked.length
      ? el("p", { class: "muted small" }, `Hidden by the server, left as ${MASK}: ${masked.join(", ")}. Fill them in before running it.`) : null,
    request.bodyKnown ? null : el("p", { class: "muted small" }, "The body is the event's payload as JSON; the bytes sent may differ in spacing."),
    Object.keys(request.headers).some((k) => k.toLowerCase() === "webhook-signature") ? el("p", { class: "muted small" },
      "The signature covers the original webhook-timestamp: a receiver that checks freshness refuses it once its tolerance (often 5 minutes) has passed.") : null,
    el("button", { type: "button", "data-copy": id, onclick: async () => ctx.toast((await copy(text)) ? "curl command copied" : "Copy failed", false) }, "Copy"));
}

function requestBlock(request, ctx, prefix) {
  if (!request) {
    return el("p", { class: "muted", id: `${prefix}-missing` }, "This server does not report the request it sent.");
  }
  return el("div", { class: "request", id: prefix },
    el("p", {}, el("code", { class: "method" }, request.method), " ", el("code", { class: "url", id: `${prefix}-url` }, request.url)),
    el("h3", {}, "Headers"), headerTable(request.headers, `${prefix}-headers`),
    el("h3", {}, "Body"), bodyBlock(request.body, `${prefix}-body`),
    curlBlock(request, ctx, `${prefix}-curl`));
}

function attemptBlock(a, e, ctx, open) {
  const ok = a.status_code !== null && a.status_code !== undefined && a.status_code < 300 && !a.error;
  const request = a.request ? requestOf(a, e) : null;
  return el("details", { class: `attempt ${ok ? "ok" : "bad"}`, "data-attempt": a.attempt, "data-status-code": a.status_code ?? "", open },
    el("summary", {},
      el("strong", {}, `Attempt ${a.attempt}`), " ",
      el("span", { class: `badge ${ok ? "success" : "failure"}` }, a.status_code ?? "no answer"), " ",
      ms(a.duration_ms), " · ", when(a.started_at),
      a.error ? el("span", { class: "err" }, ` · ${a.error}`) : null,
      a.next_attempt_at ? el("span", { class: "muted" }, " · next attempt ", when(a.next_attempt_at)) : null),
    el("div", { class: "exchange" },
      el("section", {}, el("h3", {}, "Request"),
        request ? requestBlock(request, ctx, `attempt-${a.attempt}-request`) : el("p", { class: "muted small" }, "As above.")),
      el("section", { class: "response" }, el("h3", {}, "Response"),
        el("dl", { class: "props" },
          el("dt", {}, "Status"), el("dd", { class: "status-code" }, a.status_code ?? "no answer"),
          el("dt", {}, "Duration"), el("dd", {}, ms(a.duration_ms)),
          el("dt", {}, "Error"), el("dd", { class: a.error ? "err" : "" }, a.error || "-")),
        el("h3", {}, "Headers"),
        a.response_headers === undefined ? el("p", { class: "muted small" }, "This server does not report response headers.")
          : a.response_headers === null ? el("p", { class: "muted small" }, "No response.")
            : headerTable(a.response_headers, `attempt-${a.attempt}-response-headers`),
        el("h3", {}, "Body"), bodyBlock(a.response_body, `attempt-${a.attempt}-response-body`))));
}

export async function renderDetail(page, params, ctx) {
  const head = el("div", { class: "toolbar" });
  const props = el("section", { class: "card", id: "event-detail" });
  const sent = el("section", { class: "card", id: "event-request" });
  const attempts = el("section", { class: "card", id: "event-attempts" });
  // The attempts come before the request block: what the endpoint answered is what one
  // opens an event for; each attempt carries its own request too.
  page.append(head, props, attempts, sent);
  let timer = null;
  let stopped = false;
  let drawn = "";

  async function load() {
    const e = await get(`/events/${params.id}`);
    if (stopped) return;
    let items = null;
    let missing = null;
    if (hasFeature("attempts")) {
      try {
        items = (await get(`/events/${e.id}/attempts`)).items;
      } catch (err) {
        if (err.status === 405) markMissing("attempts");
        missing = `Attempts unavailable: ${err.message}`;
      }
    }
    if (stopped) return;
    // Redraw only on change, so open sections and selections survive the 1 s refresh.
    const signature = JSON.stringify([e.status, e.attempts, e.updated_at, items?.length, missing]);
    if (signature !== drawn) {
      drawn = signature;
      await draw(e, items, missing);
    }
    // Follow an event until it settles, so "test run -> success" is seen without reloading.
    if (!stopped && (e.status === "pending" || e.status === "retrying")) timer = setTimeout(() => load().catch(() => {}), 1000);
  }

  async function draw(e, items, missing) {
    const names = await triggerNames([e.trigger_id]);
    const last = items && items.length ? items[items.length - 1] : null;
    const request = requestOf(last, e);
    const replay = el("button", {
      type: "button", id: "replay", disabled: !hasFeature("replay"),
      title: hasFeature("replay") ? "Deliver this event's request again, as a new event" : MISSING_REASON.replay,
      onclick: async () => {
        try {
          const answer = await post(`/events/${e.id}/replay`);
          ctx.toast(`Replayed as event ${answer.event_id}`);
          ctx.navigate(`#/events/${answer.event_id}`);
        } catch (err) {
          if (err.status === 404 || err.status === 405) markMissing("replay");
          ctx.toast(`Replay failed: ${err.message}`, true);
          drawn = "";
          load();
        }
      },
    }, "Replay");
    const copyCurl = el("button", {
      type: "button", id: "copy-curl", disabled: !request,
      title: request ? "Copy a curl command that sends this request again" : "This server does not report the request it sent",
      onclick: async () => {
        const { text, masked } = curlCommand(request);
        const done = await copy(text);
        ctx.toast(!done ? "Copy failed" : masked.length ? `curl command copied; ${masked.join(", ")} left as ${MASK}` : "curl command copied");
      },
    }, "Copy as curl");
    head.replaceChildren(el("h1", {}, "Event ", el("code", {}, e.id), " ", badge(e.status)),
      el("div", { class: "actions" },
        hasFeature("replay") ? null : el("span", { class: "muted small", id: "replay-note" }, "Replay is not offered by this server yet"),
        copyCurl, replay));
    const rows = [
      ["Trigger", triggerCell(e, names)],
      ["Type", e.trigger_type], ["Source", e.source], ["Test run", e.is_test_run ? "yes" : "no"],
      ["Note", e.note || "-"],
      ["Scheduled", when(e.scheduled_at)], ["Fired", when(e.fired_at)],
      // Lateness means something for scheduled firings only; others fire when asked.
      ["Fire lateness", e.source === "scheduled" ? ms(between(e.scheduled_at, e.fired_at)) : "-"],
      ["Delivered", when(e.delivered_at)],
      ["Delivery latency", ms(between(e.scheduled_at, e.delivered_at))],
      ["Attempts", num(e.attempts)], ["Last status code", e.last_status_code ?? "-"],
      ["Last error", e.last_error || "-"], ["Retention", e.retention],
    ];
    if (e.replay_of) rows.push(["Replay of", el("a", { href: `#/events/${e.replay_of}` }, e.replay_of)]);
    props.replaceChildren(el("div", { class: "split" },
      el("dl", { class: "props" }, ...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
      el("div", {}, el("h2", {}, "Payload"), el("div", { id: "payload" }, json(e.payload)))));
    sent.replaceChildren(
      el("h2", {}, last ? `Request sent (attempt ${last.attempt})` : "Request"),
      requestBlock(request, ctx, "request"));
    attempts.replaceChildren(el("h2", {}, "Attempts"));
    if (items) {
      if (!items.length) attempts.append(el("p", { class: "muted" }, "No attempts yet."));
      // The last attempt is open: it is what decided the event's status.
      else attempts.append(el("div", { id: "attempts" }, ...items.map((a, i) => attemptBlock(a, e, ctx, i === items.length - 1))));
    } else if (missing) {
      attempts.append(el("p", { class: "muted" }, missing));
    } else {
      attempts.append(el("p", { class: "muted", id: "attempts-missing" },
        `${e.attempts} attempt(s); the last answered ${e.last_status_code ?? "nothing"}. `, MISSING_REASON.attempts));
    }
  }
  await load();
  return () => { stopped = true; clearTimeout(timer); };
}

// ---- per trigger, 48 h ----------------------------------------------------------------

export async function renderAggregate(page, params, ctx) {
  const body = el("tbody", { id: "aggregate-rows" });
  const more = el("button", { type: "button", id: "more", hidden: true }, "Load more");
  const { thead, resort } = sortableHead(body, [
    ["Trigger", true], ["Type", true], ["Success", true], ["Failure", true], ["Pending", true],
    ["Retrying", true], ["Total", true], ["Failure rate", true], ["Last fired", true], ["", false],
  ]);
  page.append(el("div", { class: "toolbar" }, el("h1", {}, "Per trigger, last 48 h"),
    el("span", { class: "muted" }, "active and archived events, deleted triggers included; sorting orders the loaded rows")),
    el("section", { class: "card" }, el("table", { class: "list", id: "aggregate" }, thead, body),
      el("div", { class: "pager" }, more)));
  let cursor = null;
  async function load() {
    const answer = await get(`/events${qs({ aggregate: "trigger", limit: PAGE_SIZE, cursor })}`);
    cursor = answer.next_cursor;
    const names = await triggerNames(answer.items.map((i) => i.trigger_id));
    body.querySelector("tr.empty")?.remove();
    body.append(...answer.items.map((i) => {
      const c = i.counts;
      const done = c.success + c.failure;
      const count = (n, attrs = {}) => el("td", { class: "num", "data-sort": n, ...attrs }, num(n));
      return el("tr", { "data-trigger": i.trigger_id, "data-row": "" },
        el("td", {}, triggerCell(i, names)), el("td", {}, i.trigger_type),
        count(c.success), count(c.failure, { class: c.failure ? "num err" : "num" }),
        count(c.pending), count(c.retrying), count(c.total),
        el("td", { class: "num", "data-sort": done ? c.failure / done : -1 }, percent(c.failure, done)),
        el("td", { "data-sort": i.last_fired_at || "" }, when(i.last_fired_at)),
        el("td", {}, el("a", { href: `#/events${qs({ trigger_id: i.trigger_id })}` }, "Events")));
    }));
    if (!body.children.length) body.append(el("tr", { class: "empty" }, el("td", { colspan: 10, class: "muted" }, "No events in the last 48 h.")));
    more.hidden = !cursor;
    resort();
  }
  more.addEventListener("click", load);
  await load();
}
