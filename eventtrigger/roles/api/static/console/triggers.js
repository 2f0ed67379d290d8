// Triggers: a paged, searchable list; a trigger's page (actions, webhook URL, recent
// events, its own charts); and the create/edit form, which shows the API's own
// validation messages next to the fields they name.

import { get, post, patch, del, qs, ApiError, rememberName, hasFeature, markMissing, MISSING_REASON } from "./api.js";
import { el, $, when, relative, badge, scheduleWords, cronWords, json, copy, browserZone, fromLocalInput, toLocalInput, ms, between, num, sortableHead } from "./util.js";
import { seriesCharts } from "./overview.js";

const PAGE_SIZE = 50;
const TYPES = { webhook: "Webhook", cron_scheduled: "Cron", interval_scheduled: "Interval", time_scheduled: "One-time" };

/** The status of each trigger's latest event, fetched a few at a time after the rows
 *  are drawn (one small indexed read each), so the list never waits for them. */
function fillLastOutcomes(rows) {
  const queue = rows.slice();
  async function worker() {
    while (queue.length) {
      const [id, cell] = queue.shift();
      try {
        const page = await get(`/events${qs({ trigger_id: id, limit: 1 })}`);
        const last = page.items[0];
        // Sorting by this column groups failures together, newest first within each.
        cell.dataset.sort = last ? `${last.status} ${last.fired_at}` : "";
        cell.replaceChildren(last
          ? el("a", { href: `#/events/${last.id}`, title: new Date(last.fired_at).toISOString() }, badge(last.status), " ", relative(last.fired_at))
          : el("span", { class: "muted" }, "none yet"));
      } catch {
        cell.dataset.sort = "";
        cell.replaceChildren(el("span", { class: "muted" }, "?"));
      }
    }
  }
  return Promise.all(Array.from({ length: Math.min(4, queue.length) }, worker));
}

async function toggle(trigger, ctx) {
  const status = trigger.status === "active" ? "paused" : "active";
  const updated = await patch(`/triggers/${trigger.id}`, { status });
  ctx.toast(`${updated.name}: ${status === "paused" ? "paused" : "resumed"}`);
  return updated;
}

async function testRun(trigger, ctx, payload) {
  const body = payload === undefined ? undefined : { payload };
  const answer = await post(`/triggers/${trigger.id}/test`, body);
  ctx.toast(`Test run started: event ${answer.event_id}`);
  return answer.event_id;
}

async function remove(trigger, ctx) {
  const ok = await ctx.confirmAction(
    `Delete "${trigger.name}"? Its pending firings are cancelled; its event logs stay until retention removes them.`);
  if (!ok) return false;
  await del(`/triggers/${trigger.id}`);
  ctx.toast(`Deleted ${trigger.name}`);
  return true;
}

/** Where a trigger delivers, short: host and path (the full URL is the cell's title). */
function endpointWords(url) {
  if (!url) return el("span", { class: "muted" }, "-");
  try {
    const u = new URL(url);
    const path = u.pathname === "/" ? "" : u.pathname;
    return el("span", { class: "mono" }, `${u.host}${path.length > 32 ? `${path.slice(0, 31)}…` : path}`);
  } catch {
    return el("span", { class: "mono" }, url);
  }
}

function actionError(ctx) {
  return (err) => ctx.toast(err instanceof ApiError ? `${err.message}${err.errors.length ? `: ${err.errors.map((e) => `${e.field} ${e.message}`).join("; ")}` : ""}` : String(err), true);
}

export async function renderList(page, params, ctx) {
  const q = params.query;
  const search = el("input", { type: "search", id: "trigger-search", placeholder: "Filter by name or id", value: q.get("q") || "" });
  const type = el("select", { id: "trigger-type", "aria-label": "Type" },
    el("option", { value: "" }, "All types"),
    ...Object.entries(TYPES).map(([v, label]) => el("option", { value: v, selected: q.get("type") === v }, label)));
  const status = el("select", { id: "trigger-status", "aria-label": "Status" },
    ...["", "active", "paused", "completed"].map((v) => el("option", { value: v, selected: (q.get("status") || "") === v }, v || "All statuses")));
  const body = el("tbody", { id: "trigger-rows" });
  const { thead, resort } = sortableHead(body, [
    ["Name", true], ["Endpoint", true], ["Type", true], ["Status", true], ["Schedule", true],
    ["Next fire", true], ["Last outcome", true], ["", false],
  ]);
  const more = el("button", { type: "button", id: "more", hidden: true }, "Load more");
  const count = el("span", { class: "muted", id: "trigger-count" });
  page.append(
    el("div", { class: "toolbar" },
      el("h1", {}, "Triggers"), search, type, status,
      el("a", { class: "button primary", href: "#/triggers/new", id: "new-trigger" }, "New trigger")),
    el("section", { class: "card" },
      el("table", { class: "list", id: "triggers" }, thead, body),
      el("div", { class: "pager" }, count,
        el("span", { class: "muted small" }, "Sorting orders the loaded triggers."), more)));

  let cursor = null;
  let loaded = [];
  const apply = () => {
    // The API filters by type and status; the name filter runs over the loaded pages
    // (the API has no name search), and says so.
    const needle = search.value.trim().toLowerCase();
    let shown = 0;
    for (const tr of body.children) {
      const hit = !needle || (tr.dataset.search || "").includes(needle);
      tr.hidden = !hit;
      if (hit && tr.dataset.trigger) shown += 1;
    }
    count.textContent = needle
      ? `${shown} of ${loaded.length} loaded triggers match${cursor ? " (load more to search further)" : ""}`
      : `${num(loaded.length)} trigger${loaded.length === 1 ? "" : "s"}${cursor ? " loaded" : ""}`;
  };

  function row(t) {
    const actions = el("td", { class: "actions" },
      el("button", { type: "button", "data-action": "toggle", onclick: () => toggle(t, ctx).then(() => reload()).catch(actionError(ctx)), disabled: t.status === "completed" }, t.status === "paused" ? "Resume" : "Pause"),
      el("button", { type: "button", "data-action": "test", title: t.type === "webhook" ? "Open the trigger to send a test payload" : "Fire once now, as a test", onclick: () => (t.type === "webhook" ? ctx.navigate(`#/triggers/${t.id}`) : testRun(t, ctx).catch(actionError(ctx))) }, "Test"),
      el("button", { type: "button", class: "danger", "data-action": "delete", onclick: () => remove(t, ctx).then((gone) => gone && reload()).catch(actionError(ctx)) }, "Delete"));
    const last = el("td", { class: "last" }, el("span", { class: "muted" }, "..."));
    const endpoint = t.config?.endpoint || "";
    const tr = el("tr", { "data-trigger": t.id, "data-row": "", "data-search": `${t.name} ${t.id} ${endpoint}`.toLowerCase() },
      el("td", {}, el("a", { href: `#/triggers/${t.id}`, class: "name" }, t.name)),
      el("td", { class: "endpoint", "data-sort": endpoint, title: `${t.config?.method || "POST"} ${endpoint}` }, endpointWords(endpoint)),
      el("td", {}, TYPES[t.type] || t.type),
      el("td", {}, badge(t.status)),
      el("td", {}, scheduleWords(t)),
      el("td", { "data-sort": t.next_fire_at || "" }, t.next_fire_at ? [when(t.next_fire_at), el("div", { class: "muted small" }, relative(t.next_fire_at))] : el("span", { class: "muted" }, "-")),
      last, actions);
    rememberName(t.id, t.name);
    return [tr, [t.id, last]];
  }

  async function loadPage(reset) {
    if (reset) { cursor = null; loaded = []; body.replaceChildren(); }
    const answer = await get(`/triggers${qs({ type: type.value, status: status.value, limit: PAGE_SIZE, cursor })}`);
    cursor = answer.next_cursor;
    loaded = loaded.concat(answer.items);
    const made = answer.items.map(row);
    body.append(...made.map(([tr]) => tr));
    if (!loaded.length) body.append(el("tr", {}, el("td", { colspan: 8, class: "muted" }, "No triggers yet. Create one with New trigger.")));
    more.hidden = !cursor;
    resort();
    apply();
    fillLastOutcomes(made.map(([, cell]) => cell)).then(resort);
  }
  function reload() {
    const next = new URLSearchParams({ ...(search.value ? { q: search.value } : {}), ...(type.value ? { type: type.value } : {}), ...(status.value ? { status: status.value } : {}) });
    history.replaceState(null, "", `#/triggers${next.toString() ? `?${next}` : ""}`);
    return loadPage(true).catch(actionError(ctx));
  }
  search.addEventListener("input", apply);
  type.addEventListener("change", reload);
  status.addEventListener("change", reload);
  more.addEventListener("click", () => loadPage(false).catch(actionError(ctx)));
  await loadPage(true);
}

function field(label, input, name, help) {
  return el("label", { class: "field", "data-field": name },
    el("span", { class: "label" }, label), input,
    help ? el("span", { class: "help" }, help) : null,
    el("span", { class: "field-error", role: "alert" }));
}

function parseJsonField(text, name, errors, fallback) {
  if (!text.trim()) return fallback;
  try { return JSON.parse(text); } catch (err) {
    errors.push({ field: name, message: `is not valid JSON (${err.message})` });
    return fallback;
  }
}

export async function renderForm(page, params, ctx) {
  const editing = params.id ? await get(`/triggers/${params.id}`) : null;
  const c = editing ? editing.config : {};
  const retry = c.retry || {};
  const inputs = {
    name: el("input", { name: "name", required: true, maxlength: 200, value: editing?.name || "" }),
    type: el("select", { name: "type", disabled: Boolean(editing) },
      ...Object.entries(TYPES).map(([v, label]) => el("option", { value: v, selected: (editing?.type || "cron_scheduled") === v }, label))),
    status: el("select", { name: "status" }, ...["active", "paused"].map((v) => el("option", { value: v, selected: (editing?.status || "active") === v }, v))),
    endpoint: el("input", { name: "endpoint", type: "url", placeholder: "https://example.com/hook", value: c.endpoint || "" }),
    method: el("select", { name: "method" }, ...["POST", "GET", "PUT", "PATCH", "DELETE"].map((m) => el("option", { value: m, selected: (c.method || "POST") === m }, m))),
    headers: el("textarea", { name: "headers", rows: 2, placeholder: '{"X-Tenant": "acme"}' }, c.headers ? JSON.stringify(c.headers) : ""),
    timeout: el("input", { name: "timeout", placeholder: "10s", value: c.timeout || "" }),
    max_attempts: el("input", { name: "max_attempts", type: "number", min: 1, max: 20, placeholder: "5", value: retry.max_attempts ?? "" }),
    initial_delay: el("input", { name: "initial_delay", placeholder: "2s", value: retry.initial_delay || "" }),
    max_delay: el("input", { name: "max_delay", placeholder: "5m", value: retry.max_delay || "" }),
    cron: el("input", { name: "cron", placeholder: "0 3 * * *", value: c.cron || "", class: "mono" }),
    timezone: el("input", { name: "timezone", list: "zones", value: c.timezone || (editing ? "UTC" : browserZone()) }),
    every: el("input", { name: "every", placeholder: "5m", value: c.every || "" }),
    run_at: el("input", { name: "run_at", type: "datetime-local", step: 1, value: toLocalInput(c.run_at) }),
    run_in: el("input", { name: "run_in", placeholder: "10m" }),
    start_at: el("input", { name: "start_at", type: "datetime-local", step: 1, value: toLocalInput(c.start_at) }),
    end_at: el("input", { name: "end_at", type: "datetime-local", step: 1, value: toLocalInput(c.end_at) }),
    payload: el("textarea", { name: "payload", rows: 4, class: "mono", placeholder: '{"job": "nightly-report"}' }, c.payload === undefined || c.payload === null ? "" : JSON.stringify(c.payload, null, 2)),
    schema: el("textarea", { name: "schema", rows: 5, class: "mono" }, JSON.stringify(c.schema || { type: "object" }, null, 2)),
  };
  const cronHint = el("span", { class: "help", id: "cron-words" });
  const updateHint = () => { cronHint.textContent = inputs.cron.value ? cronWords(inputs.cron.value, inputs.timezone.value) : "5 fields, or 6 with seconds first (*/10 * * * * * = every 10 s)"; };
  inputs.cron.addEventListener("input", updateHint);
  inputs.timezone.addEventListener("input", updateHint);
  updateHint();
  const zones = el("datalist", { id: "zones" }, ...(Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : ["UTC"]).map((z) => el("option", { value: z })));

  const groups = {
    webhook: el("fieldset", { "data-for": "webhook" }, el("legend", {}, "Webhook"),
      field("Payload JSON Schema", inputs.schema, "config.schema", "Calls whose body fails it get a 400 and fire nothing.")),
    cron_scheduled: el("fieldset", { "data-for": "cron_scheduled" }, el("legend", {}, "Cron schedule"),
      el("label", { class: "field", "data-field": "config.cron" }, el("span", { class: "label" }, "Cron expression"), inputs.cron, cronHint, el("span", { class: "field-error", role: "alert" })),
      field("Time zone", inputs.timezone, "config.timezone", "IANA name; defaults to UTC")),
    interval_scheduled: el("fieldset", { "data-for": "interval_scheduled" }, el("legend", {}, "Interval"),
      field("Every", inputs.every, "config.every", "e.g. 30s, 5m, 2h (at least 1s)")),
    time_scheduled: el("fieldset", { "data-for": "time_scheduled" }, el("legend", {}, "One time"),
      field(`Run at (${browserZone()})`, inputs.run_at, "config.run_at"),
      field("or run in", inputs.run_in, "config.run_in", "a duration from now, e.g. 10m")),
    window: el("fieldset", { "data-for": "cron_scheduled interval_scheduled" }, el("legend", {}, `Window (optional, ${browserZone()})`),
      field("Start at", inputs.start_at, "config.start_at"), field("End at", inputs.end_at, "config.end_at")),
    payload: el("fieldset", { "data-for": "cron_scheduled interval_scheduled time_scheduled" }, el("legend", {}, "Payload"),
      field("Payload (JSON)", inputs.payload, "config.payload", "Sent as the request body")),
  };
  const summary = el("div", { class: "form-errors", id: "form-errors", role: "alert", hidden: true });
  const submit = el("button", { type: "submit", class: "primary", id: "save" }, editing ? "Save changes" : "Create trigger");
  const form = el("form", { id: "trigger-form", class: "card form", novalidate: true },
    summary,
    el("fieldset", {}, el("legend", {}, "Trigger"),
      field("Name", inputs.name, "name"), field("Type", inputs.type, "type"), field("Status", inputs.status, "status")),
    ...Object.values(groups),
    el("fieldset", {}, el("legend", {}, "Delivery"),
      field("Endpoint URL", inputs.endpoint, "config.endpoint"), field("Method", inputs.method, "config.method"),
      field("Headers (JSON object)", inputs.headers, "config.headers"), field("Timeout", inputs.timeout, "config.timeout", "default 10s"),
      el("div", { class: "row" },
        field("Max attempts", inputs.max_attempts, "config.retry.max_attempts", "1-20, default 5"),
        field("Initial delay", inputs.initial_delay, "config.retry.initial_delay", "default 2s"),
        field("Max delay", inputs.max_delay, "config.retry.max_delay", "default 5m"))),
    el("div", { class: "form-actions" }, submit,
      el("a", { href: editing ? `#/triggers/${editing.id}` : "#/triggers", class: "button" }, "Cancel")),
    zones);
  page.append(el("h1", {}, editing ? `Edit ${editing.name}` : "New trigger"), form);

  const showGroups = () => {
    for (const fs of form.querySelectorAll("fieldset[data-for]")) {
      fs.hidden = !fs.dataset.for.split(" ").includes(inputs.type.value);
    }
  };
  inputs.type.addEventListener("change", showGroups);
  showGroups();

  function showErrors(errors, detail) {
    form.querySelectorAll(".field-error").forEach((e) => { e.textContent = ""; });
    form.querySelectorAll(".invalid").forEach((e) => e.classList.remove("invalid"));
    const unplaced = [];
    for (const { field: name, message } of errors) {
      // The most specific field label on the form that the API's field path starts with.
      let target = null;
      for (let path = name; path && !target; path = path.includes(".") ? path.slice(0, path.lastIndexOf(".")) : "") {
        target = form.querySelector(`[data-field="${CSS.escape(path)}"]:not([hidden])`);
        if (target && target.closest("fieldset[hidden]")) target = null;
      }
      if (target) {
        target.classList.add("invalid");
        const slot = target.querySelector(".field-error");
        slot.textContent = slot.textContent ? `${slot.textContent}; ${message}` : message;
      } else {
        unplaced.push(`${name}: ${message}`);
      }
    }
    summary.replaceChildren(el("strong", {}, detail || "The trigger was not saved."),
      ...(unplaced.length ? [el("ul", {}, ...unplaced.map((u) => el("li", {}, u)))] : []));
    summary.hidden = false;
    const first = form.querySelector(".invalid input, .invalid textarea, .invalid select");
    (first || summary).scrollIntoView({ block: "center" });
  }

  function build() {
    const errors = [];
    const type = inputs.type.value;
    // Start from the saved config when editing, so fields this form does not show
    // (for example misfire or jitter policies) are kept as they were.
    const config = editing ? structuredClone(editing.config) : {};
    const set = (k, v) => { if (v === null || v === undefined || v === "") delete config[k]; else config[k] = v; };
    set("endpoint", inputs.endpoint.value.trim());
    set("method", inputs.method.value);
    set("headers", parseJsonField(inputs.headers.value, "config.headers", errors, undefined));
    set("timeout", inputs.timeout.value.trim());
    const r = {};
    if (inputs.max_attempts.value) r.max_attempts = Number(inputs.max_attempts.value);
    if (inputs.initial_delay.value.trim()) r.initial_delay = inputs.initial_delay.value.trim();
    if (inputs.max_delay.value.trim()) r.max_delay = inputs.max_delay.value.trim();
    set("retry", Object.keys(r).length ? r : undefined);
    if (type === "webhook") set("schema", parseJsonField(inputs.schema.value, "config.schema", errors, undefined));
    if (type === "cron_scheduled") { set("cron", inputs.cron.value.trim()); set("timezone", inputs.timezone.value.trim()); }
    if (type === "interval_scheduled") set("every", inputs.every.value.trim());
    if (type === "time_scheduled") {
      set("run_in", inputs.run_in.value.trim());
      set("run_at", inputs.run_in.value.trim() ? "" : fromLocalInput(inputs.run_at.value));
    }
    if (type === "cron_scheduled" || type === "interval_scheduled") {
      set("start_at", fromLocalInput(inputs.start_at.value));
      set("end_at", fromLocalInput(inputs.end_at.value));
    }
    if (type !== "webhook") set("payload", parseJsonField(inputs.payload.value, "config.payload", errors, undefined));
    return { errors, body: { name: inputs.name.value, type, status: inputs.status.value, config } };
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const { errors, body } = build();
    if (errors.length) { showErrors(errors, "Fix the fields below."); return; }
    submit.disabled = true;
    try {
      const saved = editing
        ? await patch(`/triggers/${editing.id}`, { name: body.name, status: body.status, config: body.config })
        : await post("/triggers", body);
      ctx.toast(editing ? `Saved ${saved.name}` : `Created ${saved.name}`);
      ctx.navigate(`#/triggers/${saved.id}`);
    } catch (err) {
      if (err instanceof ApiError) showErrors(err.errors, err.message);
      else showErrors([], String(err));
    } finally {
      submit.disabled = false;
    }
  });
}

function definition(items) {
  return el("dl", { class: "props" }, ...items.flatMap(([k, v, attrs]) => [el("dt", {}, k), el("dd", attrs || {}, v)]));
}

function optionalButton(feature, label, onclick) {
  const available = hasFeature(feature);
  return el("button", {
    type: "button", "data-action": feature, disabled: !available,
    title: available ? null : MISSING_REASON[feature],
    onclick: available ? onclick : null,
  }, label);
}

export async function renderDetail(page, params, ctx) {
  let t = await get(`/triggers/${params.id}`);
  rememberName(t.id, t.name);
  const head = el("div", { class: "toolbar" });
  const props = el("section", { class: "card" });
  const testBox = el("div", { class: "test-box" });
  const recent = el("tbody", { id: "trigger-events" });
  const charts = el("section", { class: "card", id: "trigger-charts" });
  page.append(head, props,
    el("section", { class: "card" },
      el("div", { class: "card-head" }, el("h2", {}, "Recent events"),
        el("a", { href: `#/events?trigger_id=${t.id}` }, "All events of this trigger")),
      el("table", { class: "list" },
        el("thead", {}, el("tr", {}, ...["Fired", "Source", "Status", "Attempts", "Code", "Latency", ""].map((h) => el("th", {}, h)))),
        recent)),
    charts);
  const act = (fn) => () => fn().catch(actionError(ctx));

  function draw() {
    head.replaceChildren(
      el("h1", {}, t.name, " ", badge(t.status)),
      el("div", { class: "actions" },
        el("a", { class: "button", href: `#/triggers/${t.id}/edit`, id: "edit" }, "Edit"),
        t.status !== "completed" ? el("button", { type: "button", id: "toggle", onclick: act(async () => { t = await toggle(t, ctx); draw(); }) }, t.status === "paused" ? "Resume" : "Pause") : null,
        el("button", { type: "button", id: "test", onclick: act(async () => {
          let payload;
          if (t.type === "webhook" || testBox.querySelector("textarea")?.value.trim()) {
            const text = testBox.querySelector("textarea").value;
            try { payload = text.trim() ? JSON.parse(text) : undefined; } catch (err) { ctx.toast(`Test payload is not JSON: ${err.message}`, true); return; }
          }
          const id = await testRun(t, ctx, payload);
          testBox.querySelector(".test-result").replaceChildren("Started ", el("a", { href: `#/events/${id}`, id: "test-event" }, `event ${id}`));
          loadRecent();
        }) }, "Test run"),
        el("button", { type: "button", class: "danger", id: "delete", onclick: act(async () => { if (await remove(t, ctx)) ctx.navigate("#/triggers"); }) }, "Delete")));
    const secret = el("code", { class: "secret", id: "secret" }, "whsec_" + "•".repeat(12));
    const rows = [
      ["Id", el("code", {}, t.id)],
      ["Type", TYPES[t.type] || t.type],
      ["Schedule", scheduleWords(t), { id: "schedule" }],
    ];
    if ("next_fire_at" in t) rows.push(["Next fire", t.next_fire_at ? [when(t.next_fire_at), ` (${relative(t.next_fire_at)})`] : "none"]);
    if (t.paused_reason) rows.push(["Paused because", t.paused_reason]);
    if (t.webhook_url) {
      rows.push(["Webhook URL", [el("code", { id: "webhook-url" }, t.webhook_url), " ",
        el("button", { type: "button", id: "copy-url", onclick: async () => ctx.toast((await copy(t.webhook_url)) ? "Webhook URL copied" : "Copy failed", false) }, "Copy"), " ",
        optionalButton("rotateUrl", "Rotate URL", act(async () => {
          if (!(await ctx.confirmAction("Rotate the webhook URL? The current URL stops working at once.", "Rotate"))) return;
          try { t = await post(`/triggers/${t.id}/rotate-webhook-url`); draw(); ctx.toast("New webhook URL issued"); } catch (err) { if (err.status === 404 || err.status === 405) { markMissing("rotateUrl"); draw(); } throw err; }
        }))]]);
    }
    rows.push(["Signing secret", [secret, " ",
      el("button", { type: "button", onclick: () => { secret.textContent = t.signing_secret; } }, "Show"), " ",
      el("button", { type: "button", onclick: async () => ctx.toast((await copy(t.signing_secret)) ? "Secret copied" : "Copy failed") }, "Copy"), " ",
      optionalButton("rotateSecret", "Rotate secret", act(async () => {
        if (!(await ctx.confirmAction("Rotate the signing secret? Deliveries carry both signatures for 24 h.", "Rotate"))) return;
        try { const r = await post(`/triggers/${t.id}/rotate-secret`, {}); t.signing_secret = r.signing_secret; draw(); ctx.toast("New signing secret issued"); } catch (err) { if (err.status === 404 || err.status === 405) { markMissing("rotateSecret"); draw(); } throw err; }
      }))]]);
    rows.push(["Endpoint", `${t.config.method || "POST"} ${t.config.endpoint}`]);
    rows.push(["Created", when(t.created_at)], ["Updated", when(t.updated_at)]);
    testBox.replaceChildren(
      el("label", { class: "field" }, el("span", { class: "label" }, t.type === "webhook" ? "Test payload (JSON; checked against the schema)" : "Test payload (JSON; empty: the configured payload)"),
        el("textarea", { rows: 3, class: "mono", id: "test-payload" }, t.type === "webhook" ? "{}" : "")),
      el("p", { class: "test-result" }));
    props.replaceChildren(definition(rows), testBox,
      el("details", {}, el("summary", {}, "Configuration"), json(t.config)));
  }

  async function loadRecent() {
    const answer = await get(`/events${qs({ trigger_id: t.id, limit: 10 })}`);
    recent.replaceChildren(...(answer.items.length ? answer.items.map((e) => el("tr", { "data-event": e.id, "data-status": e.status },
      el("td", {}, when(e.fired_at)), el("td", {}, e.source), el("td", {}, badge(e.status)),
      el("td", {}, String(e.attempts)), el("td", {}, e.last_status_code ?? "-"),
      el("td", {}, ms(between(e.scheduled_at, e.delivered_at))),
      el("td", {}, el("a", { href: `#/events/${e.id}` }, "Details")))) : [el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No events in the active window."))]));
  }

  draw();
  await loadRecent();
  const stopCharts = seriesCharts(charts, { triggerId: t.id, range: "48h" });
  const timer = setInterval(() => { if (!document.hidden) loadRecent().catch(() => {}); }, 3000);
  return () => { clearInterval(timer); stopCharts(); };
}
