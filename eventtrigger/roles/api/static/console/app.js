// The console's shell: the API key form, the hash router (#/overview, #/triggers, ...)
// and the shared toast and confirmation dialog. Each page is a module whose `render`
// draws into <main id="view"> and returns a function that stops its timers.

import { getKey, setKey, onCall, loadFeatures, get } from "./api.js";
import { $, el } from "./util.js";
import * as overview from "./overview.js";
import * as triggers from "./triggers.js";
import * as events from "./events.js";
import * as audit from "./audit.js";

const routes = [
  [/^#\/overview$/, overview.render, "overview"],
  [/^#\/triggers$/, triggers.renderList, "triggers"],
  [/^#\/triggers\/new$/, triggers.renderForm, "triggers"],
  [/^#\/triggers\/([0-9A-Za-z]+)\/edit$/, triggers.renderForm, "triggers"],
  [/^#\/triggers\/([0-9A-Za-z]+)$/, triggers.renderDetail, "triggers"],
  [/^#\/events$/, events.renderList, "events"],
  [/^#\/events\/([0-9A-Za-z]+)$/, events.renderDetail, "events"],
  [/^#\/aggregate$/, events.renderAggregate, "aggregate"],
  [/^#\/audit$/, audit.renderList, "audit"],
];

// The Audit page's link, after the page's own (dashboard.py): the trail needs the admin
// scope, and a key without it sees the API's 403 there.
$("#nav").append(el("a", { href: "#/audit", "data-nav": "audit" }, "Audit"));

let stop = null;

// Who is signed in: the key's name from GET /api/v1/keys/self, beside the key form. The
// key's scopes decide which actions are shown: <body data-lacks-SCOPE> hides (CSS) the
// buttons that need SCOPE, so nobody is offered what the API would answer 403 to.
const who = el("span", { id: "who", class: "muted" });
$("#keyform").before(who);
const GATED = ["triggers:write", "events:write", "admin"];

function showScopes(scopes) {
  const all = scopes === null ? [] : scopes;
  for (const scope of GATED) {
    const lacks = scopes !== null && !all.includes("admin") && !all.includes(scope);
    document.body.toggleAttribute(`data-lacks-${scope.replace(":", "-")}`, lacks);
  }
}

async function whoami() {
  who.textContent = "";
  who.title = "";
  showScopes(null);
  if (!getKey()) return;
  try {
    const me = await get("/keys/self");
    who.textContent = `signed in as ${me.name}`;
    who.title = `${me.prefix}... ${me.scopes.join(", ")}`;
    showScopes(me.scopes);
  } catch (err) {
    // An older server without /keys/self: show every action, as before.
    if (err.status === 404) return;
    showScopes([]);
  }
}

function status(text, bad = false) {
  const s = $("#status");
  s.textContent = text;
  s.className = bad ? "bad" : "";
}

export function toast(text, bad = false) {
  const t = $("#toast");
  t.textContent = text;
  t.className = bad ? "bad" : "";
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

/** Ask before something that cannot be undone; resolves true on "ok". */
export function confirmAction(text, okLabel = "Delete") {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = okLabel;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

export const ctx = { toast, confirmAction, status, navigate: (hash) => { location.hash = hash; } };

async function route() {
  if (stop) { stop(); stop = null; }
  const [path, query = ""] = (location.hash || "#/overview").split("?");
  const view = $("#view");
  for (const [pattern, render, nav] of routes) {
    const m = path.match(pattern);
    if (!m) continue;
    document.querySelectorAll("#nav a").forEach((a) => {
      a.classList.toggle("current", a.dataset.nav === nav);
    });
    if (!getKey()) {
      view.replaceChildren(el("section", { class: "card", id: "need-key" },
        el("h2", {}, "Enter an API key"),
        el("p", {}, "The console calls the management API with one of the keys in ",
          el("code", {}, "EVENTTRIGGER_API_KEYS"), ". It stays in this tab only.")));
      status("enter an API key");
      return;
    }
    const page = el("div", { class: "page", "data-page": nav });
    view.replaceChildren(page);
    try {
      stop = (await render(page, { id: m[1], query: new URLSearchParams(query) }, ctx)) || null;
    } catch (err) {
      page.append(el("p", { class: "error" }, `Could not load this page: ${err.message}`));
    }
    return;
  }
  location.hash = "#/overview";
}

onCall((ok, code) => {
  if (code === 401) status("the key was refused", true);
  else if (code === 0) status("unreachable", true);
  else if (ok && $("#status").classList.contains("bad")) status("connected");
});

$("#keyform").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const key = $("#key").value.trim();
  $("#key").value = "";
  setKey(key);
  $("#forget").hidden = !key;
  status(key ? "connecting" : "enter an API key");
  whoami().finally(route);
});
$("#forget").addEventListener("click", () => {
  setKey(null);
  $("#forget").hidden = true;
  whoami().finally(route);
});
$("#forget").hidden = !getKey();
window.addEventListener("hashchange", route);
Promise.allSettled([loadFeatures(), whoami()]).finally(route);
