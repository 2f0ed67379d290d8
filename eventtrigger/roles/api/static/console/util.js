// DOM and formatting helpers shared by the console's pages. Nothing here writes HTML
// from strings: every value the API returns goes in through textContent.

/** Build an element: el("a", {href: "#/x", class: "btn"}, "text", childNode, ...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(node.dataset, value);
    } else if (value === true) {
      node.setAttribute(name, "");
    } else {
      node.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit",
});
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

export function browserZone() {
  return zone;
}

/** A <time> in the viewer's zone; hovering shows the UTC instant the API sent. */
export function when(iso) {
  if (!iso) return el("span", { class: "muted" }, "-");
  const d = new Date(iso);
  return el("time", { datetime: iso, title: d.toISOString().replace(".000Z", "Z") + " (UTC)" },
    dateTime.format(d));
}

/** "in 5 min" / "3 h ago", for a quick read next to an absolute time. */
export function relative(iso, now = Date.now()) {
  if (!iso) return "";
  const s = Math.round((new Date(iso).getTime() - now) / 1000);
  const a = Math.abs(s);
  const text = a < 60 ? `${a} s` : a < 3600 ? `${Math.round(a / 60)} min`
    : a < 172800 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86400)} d`;
  return s >= 0 ? `in ${text}` : `${text} ago`;
}

/** Milliseconds in ms or s (0.7 ms, 12 ms, 1.35 s, 4 min 3 s). */
export function ms(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "-";
  if (value < 1) return `${value.toFixed(2)} ms`;
  if (value < 1000) return `${value < 10 ? value.toFixed(1) : Math.round(value)} ms`;
  if (value < 60000) return `${(value / 1000).toFixed(value < 10000 ? 2 : 1)} s`;
  const m = Math.floor(value / 60000);
  return `${m} min ${Math.round((value % 60000) / 1000)} s`;
}

/** Seconds (as /api/v1/stats reports them) in ms or s. */
export function seconds(value) {
  return value === null || value === undefined ? "-" : ms(value * 1000);
}

/** Milliseconds between two RFC 3339 times, or null. */
export function between(fromIso, toIso) {
  if (!fromIso || !toIso) return null;
  return new Date(toIso).getTime() - new Date(fromIso).getTime();
}

export function badge(status) {
  return el("span", { class: `badge ${status || "none"}` }, status || "-");
}

export function json(value) {
  return el("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

/** The RFC 3339 form of a <input type="datetime-local"> value (read in the viewer's zone). */
export function fromLocalInput(value) {
  if (!value) return null;
  return new Date(value).toISOString();
}

/** The other way: an RFC 3339 time as a datetime-local value in the viewer's zone. */
export function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = ["", "January", "February", "March", "April", "May", "June", "July",
  "August", "September", "October", "November", "December"];

function listOf(field, names) {
  return field.split(",").map((part) => {
    const [a, b] = part.split("-");
    const name = (x) => (names ? names[Number(x) % names.length] || x : x);
    return b === undefined ? name(a) : `${name(a)} to ${name(b)}`;
  }).join(", ");
}

/** A cron expression in words, for the common shapes; the expression itself otherwise.
 *  Six fields put seconds first (as the API reads them). */
export function cronWords(expr, tz) {
  const parts = (expr || "").trim().split(/\s+/);
  if (parts.length !== 5 && parts.length !== 6) return expr || "";
  const [sec, min, hour, dom, mon, dow] = parts.length === 6 ? parts : ["0", ...parts];
  const zoneText = tz && tz !== "UTC" ? ` (${tz})` : tz ? " UTC" : "";
  const step = (f) => (/^\*\/\d+$/.test(f) ? Number(f.slice(2)) : null);
  const num = (f) => /^\d+$/.test(f);
  // Out-of-range fields are left to the API's message; no words for them.
  if ((num(sec) && Number(sec) > 59) || (num(min) && Number(min) > 59) || (num(hour) && Number(hour) > 23)) {
    return `cron ${expr}${zoneText}`;
  }
  const anyDay = dom === "*" && mon === "*" && dow === "*";
  let time;
  if (step(sec) && min === "*" && hour === "*") time = `every ${step(sec)} seconds`;
  else if (sec === "*" && min === "*" && hour === "*") time = "every second";
  else if (num(sec) && step(min) && hour === "*") time = `every ${step(min)} minutes`;
  else if (num(sec) && min === "*" && hour === "*") time = "every minute";
  else if (num(sec) && num(min) && hour === "*") time = `every hour at minute ${min}`;
  else if (num(sec) && num(min) && step(hour)) time = `every ${step(hour)} hours at minute ${min}`;
  else if (num(sec) && num(min) && /^[\d,]+$/.test(hour)) {
    const pad = (n) => String(n).padStart(2, "0");
    const s = Number(sec) ? `:${pad(sec)}` : "";
    time = "at " + hour.split(",").map((h) => `${pad(h)}:${pad(min)}${s}`).join(", ");
  } else return `cron ${expr}${zoneText}`;
  const days = [];
  if (dow !== "*" && dow !== "?") days.push(`on ${listOf(dow, DAYS)}`);
  if (dom !== "*" && dom !== "?") days.push(`on day ${dom} of the month`);
  if (mon !== "*") days.push(`in ${listOf(mon, MONTHS)}`);
  const text = `${time}${anyDay ? "" : " " + days.join(", ")}`;
  return text.charAt(0).toUpperCase() + text.slice(1) + (time.startsWith("every") ? "" : zoneText);
}

/** A trigger's schedule in words. */
export function scheduleWords(trigger) {
  const c = trigger.config || {};
  switch (trigger.type) {
    case "webhook": return "On each webhook call";
    case "cron_scheduled": return cronWords(c.cron, c.timezone || "UTC");
    case "interval_scheduled": return `Every ${c.every}`;
    case "time_scheduled":
      return c.run_at ? `Once, at ${new Date(c.run_at).toLocaleString()}` : "Once";
    default: return "";
  }
}

/** Copy text; the fallback covers browsers without the async clipboard (http pages). */
export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = el("textarea", { readonly: true, class: "offscreen" }, text);
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

const numbers = new Intl.NumberFormat();

/** A count with the viewer's thousands separators (12,345); "-" for none. */
export function num(value) {
  return value === null || value === undefined || Number.isNaN(value) ? "-" : numbers.format(value);
}

/** A percentage with one decimal (0.8 %), "-" without a denominator. */
export function percent(part, whole) {
  return whole ? `${((100 * part) / whole).toFixed(1)} %` : "-";
}

// ---- time ranges --------------------------------------------------------------------

/** The presets offered on the events list and the charts: [name, seconds, words]. */
export const PRESETS = [
  ["15m", 900, "15 min"],
  ["1h", 3600, "1 h"],
  ["6h", 21600, "6 h"],
  ["24h", 86400, "24 h"],
  ["48h", 172800, "48 h"],
];

export function presetSeconds(name) {
  const found = PRESETS.find(([n]) => n === name);
  return found ? found[1] : null;
}

/** "last 1 h" for a preset; "12 Mar 10:00 to 11:30" for a custom window. */
export function windowWords(range, from, to) {
  const found = PRESETS.find(([n]) => n === range);
  if (found) return `last ${found[2]}`;
  const short = new Intl.DateTimeFormat(undefined, { month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit" });
  if (from && to) return `${short.format(new Date(from))} to ${short.format(new Date(to))}`;
  if (from) return `since ${short.format(new Date(from))}`;
  if (to) return `until ${short.format(new Date(to))}`;
  return "all kept";
}

// ---- copy as curl -------------------------------------------------------------------

/** A word for a POSIX shell: single-quoted, each ' written as '\'' . */
export function shellQuote(text) {
  return `'${String(text).replace(/'/g, "'\\''")}'`;
}

export const MASK = "***";
// Headers curl writes itself from the URL and the body; repeating them could only clash.
const TRANSPORT = new Set(["host", "content-length", "connection", "transfer-encoding"]);

/** The curl command that repeats `request` ({method, url, headers, body}); `masked` lists
 *  the headers whose values the API hid (left as *** for the reader to fill in). */
export function curlCommand(request) {
  const parts = [`curl -X ${request.method || "POST"} ${shellQuote(request.url)}`];
  const masked = [];
  for (const [name, value] of Object.entries(request.headers || {})) {
    if (TRANSPORT.has(name.toLowerCase())) continue;
    if (value === MASK) masked.push(name);
    parts.push(`-H ${shellQuote(`${name}: ${value}`)}`);
  }
  if (request.body !== undefined && request.body !== null && request.body !== "") {
    parts.push(`--data-raw ${shellQuote(request.body)}`);
  }
  return { text: parts.join(" \\\n  "), masked };
}

// ---- sortable tables ------------------------------------------------------------------

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

function cellKey(row, index) {
  const cell = row.children[index];
  if (!cell) return "";
  return cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
}

function compare(a, b) {
  const x = Number(a);
  const y = Number(b);
  if (a !== "" && b !== "" && !Number.isNaN(x) && !Number.isNaN(y)) return x - y;
  return collator.compare(a, b);
}

/**
 * Column headers for a table whose loaded rows sort in the browser: `columns` is a list
 * of [label, sortable]; a click (or Enter/Space, the header is a button) sorts by that
 * column, again reverses it, and aria-sort says which way. Cells may carry data-sort
 * (a number or a string) when their text is not what they sort by. Rows without
 * data-row (messages such as "no events") stay put. Returns {thead, resort} where
 * resort() re-applies the current order after more rows arrive.
 */
export function sortableHead(tbody, columns) {
  let by = null;
  let dir = 1;
  const ths = columns.map(([label, sortable], index) => {
    if (!sortable) return el("th", {}, label);
    const th = el("th", { "aria-sort": "none", "data-column": label },
      el("button", { type: "button", class: "sort", title: `Sort by ${label.toLowerCase()}` }, label));
    th.querySelector("button").addEventListener("click", () => {
      dir = by === index ? -dir : 1;
      by = index;
      resort();
    });
    return th;
  });
  function resort() {
    ths.forEach((th, i) => {
      if (th.hasAttribute("aria-sort")) {
        th.setAttribute("aria-sort", i === by ? (dir > 0 ? "ascending" : "descending") : "none");
      }
    });
    if (by === null) return;
    const rows = [...tbody.children].filter((tr) => tr.dataset.row !== undefined);
    // Empty cells (no next fire, no outcome yet) go last whichever way the column runs.
    rows.sort((a, b) => {
      const x = cellKey(a, by);
      const y = cellKey(b, by);
      if (x === "" || y === "") return (x === "") - (y === "");
      return dir * compare(x, y);
    });
    tbody.append(...rows);
  }
  return { thead: el("thead", {}, el("tr", {}, ...ths)), resort };
}
