// The console's shell: the API key form, the hash router (#/overview, #/triggers, ...)
// and the shared toast and confirmation dialog. Each page is a module whose `render`
// draws into <main id="view"> and returns a function that stops its timers.

import { getKey, setKey, onCall, loadFeatures } from "./api.js";
import { $, el } from "./util.js";
import * as overview from "./overview.js";
import * as triggers from "./triggers.js";
import * as events from "./events.js";

const routes = [
  [/^#\/overview$/, overview.render, "overview"],
  [/^#\/triggers$/, triggers.renderList, "triggers"],
  [/^#\/triggers\/new$/, triggers.renderForm, "triggers"],
  [/^#\/triggers\/([0-9A-Za-z]+)\/edit$/, triggers.renderForm, "triggers"],
  [/^#\/triggers\/([0-9A-Za-z]+)$/, triggers.renderDetail, "triggers"],
  [/^#\/events$/, events.renderList, "events"],
  [/^#\/events\/([0-9A-Za-z]+)$/, events.renderDetail, "events"],
  [/^#\/aggregate$/, events.renderAggregate, "aggregate"],
];

let stop = null;

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
  route();
});
$("#forget").addEventListener("click", () => {
  setKey(null);
  $("#forget").hidden = true;
  route();
});
$("#forget").hidden = !getKey();
window.addEventListener("hashchange", route);
loadFeatures().finally(route);
