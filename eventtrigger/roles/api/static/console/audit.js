// Audit: who changed what through the API, newest first (GET /api/v1/audit, which needs
// the admin scope). Filters by target and by key, a time to start from, and paging by
// the API's cursor. Entries hold field names only, never values.

import { get, qs, ApiError } from "./api.js";
import { el, when, fromLocalInput, toLocalInput, browserZone } from "./util.js";

const PAGE_SIZE = 50;
const FILTERS = ["target_id", "key_id", "before"];

/** Where an entry's target lives in the console, when it has a page. */
function targetCell(entry) {
  const id = entry.target_id;
  if (!id) return el("span", { class: "muted" }, "-");
  if (entry.action.startsWith("trigger.") || entry.action === "events.bulk_replay") {
    return el("a", { href: `#/triggers/${id}`, class: "mono" }, id);
  }
  if (entry.action === "event.replay") return el("a", { href: `#/events/${id}`, class: "mono" }, id);
  return el("span", { class: "mono" }, id);
}

function input(name, label, value, attrs = {}) {
  return el("label", { class: "field inline" }, el("span", { class: "label" }, label),
    el("input", { name, id: `audit-${name}`, value: value || "", ...attrs }));
}

export async function renderList(page, params, ctx) {
  const q = params.query;
  const form = el("form", { class: "card filters", id: "audit-filters" },
    input("target_id", "Target id", q.get("target_id"), { size: 28, class: "mono" }),
    input("key_id", "Key id", q.get("key_id"), { size: 28, class: "mono" }),
    input("before", `Before (${browserZone()})`, toLocalInput(q.get("before")), { type: "datetime-local", step: 1 }),
    el("div", { class: "form-actions" }, el("button", { type: "submit", class: "primary" }, "Apply"),
      el("a", { class: "button", href: "#/audit" }, "Reset")));
  const body = el("tbody", { id: "audit-rows" });
  const prev = el("button", { type: "button", id: "prev", disabled: true }, "Newer");
  const next = el("button", { type: "button", id: "next", disabled: true }, "Older");
  const info = el("span", { class: "muted", id: "page-info" });
  const error = el("p", { class: "error", id: "audit-error", hidden: true });
  page.append(el("div", { class: "toolbar" }, el("h1", {}, "Audit")), form, error,
    el("section", { class: "card" },
      el("table", { class: "list" },
        el("thead", {}, el("tr", {}, ...["When", "Action", "Target", "Key", "Fields", "Request id"].map((h) => el("th", {}, h)))),
        body),
      el("div", { class: "pager" }, info, prev, next)));

  const filters = Object.fromEntries(FILTERS.map((k) => [k, q.get(k) || ""]));
  // The API pages backwards in time only; the positions seen so far let "Newer" step back.
  const positions = [filters.before || null];
  let at = 0;

  async function load() {
    error.hidden = true;
    let answer;
    try {
      answer = await get(`/audit${qs({ target_id: filters.target_id, key_id: filters.key_id, limit: PAGE_SIZE, before: positions[at] })}`);
    } catch (err) {
      error.textContent = err instanceof ApiError && err.errors.length
        ? err.errors.map((e) => `${e.field}: ${e.message}`).join("; ") : err.message;
      error.hidden = false;
      body.replaceChildren();
      return;
    }
    positions[at + 1] = answer.next_cursor;
    body.replaceChildren(...(answer.items.length ? answer.items.map((e) => el("tr", { "data-audit": e.id, "data-action": e.action },
      el("td", {}, when(e.at)),
      el("td", {}, el("code", {}, e.action)),
      el("td", {}, targetCell(e)),
      el("td", { title: e.key_id }, e.key_name),
      el("td", { class: "fields" }, e.fields.length ? e.fields.join(", ") : el("span", { class: "muted" }, "-")),
      el("td", { class: "mono small" }, e.request_id || "-"))) : [el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No audit entries match."))]));
    prev.disabled = at === 0;
    next.disabled = !answer.next_cursor;
    info.textContent = `Page ${at + 1} · ${answer.items.length} entries`;
  }
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    const chosen = {};
    for (const k of FILTERS) {
      let v = String(data.get(k) || "").trim();
      if (k === "before" && v) v = fromLocalInput(v);
      if (v) chosen[k] = v;
    }
    ctx.navigate(`#/audit${qs(chosen)}`);
  });
  prev.addEventListener("click", () => { at = Math.max(0, at - 1); load(); });
  next.addEventListener("click", () => { at += 1; load(); });
  await load();
}
