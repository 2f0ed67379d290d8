// Events: the list with every filter the API has (view, trigger, status, source, test
// runs, time range), paged by the API's cursor; one event's detail (payload, request and
// attempts when the API gives them, replay); and the per-trigger 48 h aggregate.

import { get, post, qs, triggerNames, hasFeature, markMissing, MISSING_REASON, ApiError } from "./api.js";
import { el, when, badge, json, ms, between, fromLocalInput, toLocalInput, browserZone } from "./util.js";

const PAGE_SIZE = 50;
const FILTERS = ["view", "trigger_id", "status", "source", "is_test_run", "since", "until"];

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

export async function renderList(page, params, ctx) {
  const q = params.query;
  const form = el("form", { class: "card filters", id: "event-filters" },
    select("view", "View", [["active", "Active"], ["archived", "Archived"]], q.get("view") || "active"),
    el("label", { class: "field inline" }, el("span", { class: "label" }, "Trigger id"),
      el("input", { name: "trigger_id", id: "filter-trigger_id", value: q.get("trigger_id") || "", size: 28, class: "mono" })),
    select("status", "Status", [["", "Any"], ["pending", "pending"], ["retrying", "retrying"], ["success", "success"], ["failure", "failure"]], q.get("status")),
    select("source", "Source", [["", "Any"], ["api", "api"], ["scheduled", "scheduled"], ["manual-test", "manual-test"], ...(hasFeature("replay") ? [["replay", "replay"]] : [])], q.get("source")),
    select("is_test_run", "Test runs", [["", "Included"], ["false", "Excluded"], ["true", "Only"]], q.get("is_test_run")),
    el("label", { class: "field inline" }, el("span", { class: "label" }, `Since (${browserZone()})`),
      el("input", { type: "datetime-local", step: 1, name: "since", id: "filter-since", value: toLocalInput(q.get("since")) })),
    el("label", { class: "field inline" }, el("span", { class: "label" }, "Until"),
      el("input", { type: "datetime-local", step: 1, name: "until", id: "filter-until", value: toLocalInput(q.get("until")) })),
    el("div", { class: "form-actions" }, el("button", { type: "submit", class: "primary" }, "Apply"),
      el("a", { class: "button", href: "#/events" }, "Reset")));
  const body = el("tbody", { id: "event-rows" });
  const prev = el("button", { type: "button", id: "prev", disabled: true }, "Newer");
  const next = el("button", { type: "button", id: "next", disabled: true }, "Older");
  const info = el("span", { class: "muted", id: "page-info" });
  const error = el("p", { class: "error", hidden: true });
  page.append(el("div", { class: "toolbar" }, el("h1", {}, "Events")), form, error,
    el("section", { class: "card" },
      el("table", { class: "list" },
        el("thead", {}, el("tr", {}, ...["Fired", "Trigger", "Type", "Source", "Status", "Attempts", "Code", "Latency", ""].map((h) => el("th", {}, h)))),
        body),
      el("div", { class: "pager" }, info, prev, next)));

  const filters = Object.fromEntries(FILTERS.map((k) => [k, q.get(k) || ""]));
  // The API pages forwards only; the cursors seen so far let "Newer" step back.
  const cursors = [null];
  let at = 0;

  async function load() {
    error.hidden = true;
    let answer;
    try {
      answer = await get(`/events${qs({ ...filters, limit: PAGE_SIZE, cursor: cursors[at] })}`);
    } catch (err) {
      error.textContent = err instanceof ApiError && err.errors.length
        ? err.errors.map((e) => `${e.field}: ${e.message}`).join("; ") : err.message;
      error.hidden = false;
      body.replaceChildren();
      return;
    }
    cursors[at + 1] = answer.next_cursor;
    const names = await triggerNames(answer.items.map((e) => e.trigger_id));
    body.replaceChildren(...(answer.items.length ? answer.items.map((e) => el("tr", { "data-event": e.id, "data-status": e.status },
      el("td", {}, when(e.fired_at)), el("td", {}, triggerCell(e, names)), el("td", {}, e.trigger_type),
      el("td", {}, e.source, e.is_test_run ? el("span", { class: "tag" }, "test") : null), el("td", {}, badge(e.status)),
      el("td", {}, String(e.attempts)), el("td", {}, e.last_status_code ?? "-"),
      el("td", {}, ms(between(e.scheduled_at, e.delivered_at))),
      el("td", {}, el("a", { href: `#/events/${e.id}` }, "Details")))) : [el("tr", {}, el("td", { colspan: 9, class: "muted" }, "No events match."))]));
    prev.disabled = at === 0;
    next.disabled = !answer.next_cursor;
    info.textContent = `Page ${at + 1} · ${answer.items.length} events`;
  }
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    const params = {};
    for (const k of FILTERS) {
      let v = String(data.get(k) || "").trim();
      if ((k === "since" || k === "until") && v) v = fromLocalInput(v);
      if (v && !(k === "view" && v === "active")) params[k] = v;
    }
    ctx.navigate(`#/events${qs(params)}`);
  });
  prev.addEventListener("click", () => { at = Math.max(0, at - 1); load(); });
  next.addEventListener("click", () => { at += 1; load(); });
  await load();
}

function attemptsTable(items) {
  if (!items.length) return el("p", { class: "muted" }, "No attempts yet.");
  return el("table", { class: "list", id: "attempts" },
    el("thead", {}, el("tr", {}, ...["#", "Started", "Duration", "Code", "Error", "Response", "Next attempt"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...items.map((a) => el("tr", {},
      el("td", {}, String(a.attempt)), el("td", {}, when(a.started_at)), el("td", {}, ms(a.duration_ms)),
      el("td", {}, a.status_code ?? "-"), el("td", { class: "err" }, a.error || "-"),
      el("td", {}, a.response_body ? el("pre", { class: "json small" }, a.response_body) : "-"),
      el("td", {}, when(a.next_attempt_at))))));
}

export async function renderDetail(page, params, ctx) {
  const head = el("div", { class: "toolbar" });
  const props = el("section", { class: "card", id: "event-detail" });
  const attempts = el("section", { class: "card", id: "event-attempts" });
  page.append(head, props, attempts);
  let timer = null;
  let stopped = false;

  async function load() {
    const e = await get(`/events/${params.id}`);
    if (stopped) return;
    const names = await triggerNames([e.trigger_id]);
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
          load();
        }
      },
    }, "Replay");
    head.replaceChildren(el("h1", {}, "Event ", el("code", {}, e.id), " ", badge(e.status)),
      el("div", { class: "actions" },
        hasFeature("replay") ? null : el("span", { class: "muted small", id: "replay-note" }, "Replay is not offered by this server yet"),
        replay));
    const rows = [
      ["Trigger", triggerCell(e, names)],
      ["Type", e.trigger_type], ["Source", e.source], ["Test run", e.is_test_run ? "yes" : "no"],
      ["Note", e.note || "-"],
      ["Scheduled", when(e.scheduled_at)], ["Fired", when(e.fired_at)],
      // Lateness means something for scheduled firings only; others fire when asked.
      ["Fire lateness", e.source === "scheduled" ? ms(between(e.scheduled_at, e.fired_at)) : "-"],
      ["Delivered", when(e.delivered_at)],
      ["Delivery latency", ms(between(e.scheduled_at, e.delivered_at))],
      ["Attempts", String(e.attempts)], ["Last status code", e.last_status_code ?? "-"],
      ["Last error", e.last_error || "-"], ["Retention", e.retention],
    ];
    if (e.replay_of) rows.push(["Replay of", el("a", { href: `#/events/${e.replay_of}` }, e.replay_of)]);
    props.replaceChildren(
      el("dl", { class: "props" }, ...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
      el("h2", {}, "Payload"), el("div", { id: "payload" }, json(e.payload)),
      ...(e.request !== undefined ? [el("h2", {}, "Request"), json(e.request)] : []));
    attempts.replaceChildren(el("h2", {}, "Attempts"));
    if (hasFeature("attempts")) {
      try {
        attempts.append(attemptsTable((await get(`/events/${e.id}/attempts`)).items));
      } catch (err) {
        if (err.status === 405) markMissing("attempts");
        attempts.append(el("p", { class: "muted" }, `Attempts unavailable: ${err.message}`));
      }
    } else {
      attempts.append(el("p", { class: "muted", id: "attempts-missing" },
        `${e.attempts} attempt(s); the last answered ${e.last_status_code ?? "nothing"}. `, MISSING_REASON.attempts));
    }
    // Follow an event until it settles, so "test run -> success" is seen without reloading.
    if (!stopped && (e.status === "pending" || e.status === "retrying")) timer = setTimeout(() => load().catch(() => {}), 1000);
  }
  await load();
  return () => { stopped = true; clearTimeout(timer); };
}

export async function renderAggregate(page, params, ctx) {
  const body = el("tbody", { id: "aggregate-rows" });
  const more = el("button", { type: "button", id: "more", hidden: true }, "Load more");
  page.append(el("div", { class: "toolbar" }, el("h1", {}, "Per trigger, last 48 h"),
    el("span", { class: "muted" }, "active and archived events, deleted triggers included")),
    el("section", { class: "card" }, el("table", { class: "list" },
      el("thead", {}, el("tr", {}, ...["Trigger", "Type", "Success", "Failure", "Pending", "Retrying", "Total", "Failure rate", "Last fired", ""].map((h) => el("th", {}, h)))),
      body), el("div", { class: "pager" }, more)));
  let cursor = null;
  async function load() {
    const answer = await get(`/events${qs({ aggregate: "trigger", limit: PAGE_SIZE, cursor })}`);
    cursor = answer.next_cursor;
    const names = await triggerNames(answer.items.map((i) => i.trigger_id));
    body.append(...answer.items.map((i) => {
      const c = i.counts;
      const done = c.success + c.failure;
      return el("tr", { "data-trigger": i.trigger_id },
        el("td", {}, triggerCell(i, names)), el("td", {}, i.trigger_type),
        el("td", {}, String(c.success)), el("td", { class: c.failure ? "err" : "" }, String(c.failure)),
        el("td", {}, String(c.pending)), el("td", {}, String(c.retrying)), el("td", {}, String(c.total)),
        el("td", {}, done ? `${((100 * c.failure) / done).toFixed(1)} %` : "-"),
        el("td", {}, when(i.last_fired_at)),
        el("td", {}, el("a", { href: `#/events${qs({ trigger_id: i.trigger_id })}` }, "Events")));
    }));
    if (!body.children.length) body.append(el("tr", {}, el("td", { colspan: 10, class: "muted" }, "No events in the last 48 h.")));
    more.hidden = !cursor;
  }
  more.addEventListener("click", load);
  await load();
}
