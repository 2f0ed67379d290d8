// The console is a client of the JSON API: every figure and action goes through
// /api/v1/... with the key the operator typed, kept in this tab's sessionStorage.

import { follow } from "./sse.js";

const KEY = "eventtrigger.key";

export function getKey() {
  return sessionStorage.getItem(KEY);
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

/** An answer that was not 2xx; `problem` is the problem+json body when there was one. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }

  /** Field errors as [{field, message}] (the API's `errors`). */
  get errors() {
    return Array.isArray(this.problem.errors) ? this.problem.errors : [];
  }
}

const listeners = new Set();

/** Called with (ok, status) after each call, so the header can say "key refused". */
export function onCall(listener) {
  listeners.add(listener);
}

export async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  const key = getKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let answer;
  try {
    answer = await fetch(`/api/v1${path}`, init);
  } catch (err) {
    listeners.forEach((l) => l(false, 0));
    throw new ApiError(0, { detail: "The server is unreachable." });
  }
  listeners.forEach((l) => l(answer.ok || answer.status !== 401, answer.status));
  const text = answer.status === 204 ? "" : await answer.text();
  let parsed = null;
  if (text) {
    try { parsed = JSON.parse(text); } catch { parsed = { detail: text.slice(0, 200) }; }
  }
  if (!answer.ok) throw new ApiError(answer.status, parsed);
  return parsed;
}

/** Follow /api/v1/events/stream (server-sent events) with the signed-in key; `params`
 *  are its filters. Returns the function that closes it (see sse.js). */
export function followEvents(params, handlers) {
  const headers = {};
  const key = getKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  return follow(`/api/v1/events/stream${qs(params)}`, headers, handlers);
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body);
export const patch = (path, body) => call("PATCH", path, body);
export const del = (path) => call("DELETE", path);

/** A query string from an object, leaving out empty values. */
export function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== "") q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

// Endpoints that arrive in later releases (replay, attempts, rotation). The console asks
// the OpenAPI document which exist, so it can show their buttons disabled with a reason
// instead of offering an action that would 404. A 404/405 from one marks it missing too.
const OPTIONAL = {
  replay: ["POST", "/api/v1/events/{}/replay"],
  bulkReplay: ["POST", "/api/v1/events/replay"],
  attempts: ["GET", "/api/v1/events/{}/attempts"],
  stream: ["GET", "/api/v1/events/stream"],
  rotateSecret: ["POST", "/api/v1/triggers/{}/rotate-secret"],
  rotateUrl: ["POST", "/api/v1/triggers/{}/rotate-webhook-url"],
};
let features = null;
// What /stats/series takes, from its parameters in the same document: the named ranges
// (older servers know 1h and 48h only) and whether from/to pick a custom window.
const series = { ranges: ["1h", "48h"], custom: false };

export async function loadFeatures() {
  if (features) return features;
  features = Object.fromEntries(Object.keys(OPTIONAL).map((k) => [k, false]));
  try {
    const doc = await (await fetch("/openapi.json")).json();
    const paths = {};
    for (const [path, ops] of Object.entries(doc.paths || {})) {
      paths[path.replace(/\{[^}]*\}/g, "{}")] = Object.keys(ops).map((m) => m.toUpperCase());
    }
    for (const [name, [method, path]] of Object.entries(OPTIONAL)) {
      features[name] = (paths[path] || []).includes(method);
    }
    const params = doc.paths?.["/api/v1/stats/series"]?.get?.parameters || [];
    const range = params.find((p) => p.name === "range");
    if (Array.isArray(range?.schema?.enum)) series.ranges = range.schema.enum;
    series.custom = params.some((p) => p.name === "from") && params.some((p) => p.name === "to");
  } catch {
    // Without the document, assume none of them: the buttons say why they are off.
  }
  return features;
}

export function hasFeature(name) {
  return Boolean(features && features[name]);
}

/** The chart ranges this server answers: {ranges: ["1h", ...], custom: bool}. */
export function seriesSupport() {
  return series;
}

export function markMissing(name) {
  if (features) features[name] = false;
}

export const MISSING_REASON = {
  replay: "Replay needs POST /api/v1/events/{id}/replay, which this server does not offer yet.",
  bulkReplay: "Bulk replay needs POST /api/v1/events/replay, which this server does not offer yet.",
  stream: "The live tail needs GET /api/v1/events/stream, which this server does not offer yet.",
  attempts: "Attempt history needs GET /api/v1/events/{id}/attempts, which this server does not offer yet.",
  rotateSecret: "Needs POST /api/v1/triggers/{id}/rotate-secret, which this server does not offer yet.",
  rotateUrl: "Needs POST /api/v1/triggers/{id}/rotate-webhook-url, which this server does not offer yet.",
};

// Trigger names for ids (events and failures carry only ids): looked up once per id,
// a few at a time, and remembered for the life of the tab.
const names = new Map();

export async function triggerNames(ids) {
  const wanted = [...new Set(ids.filter((id) => id && !names.has(id)))];
  const queue = wanted.slice();
  async function worker() {
    while (queue.length) {
      const id = queue.shift();
      try {
        names.set(id, (await get(`/triggers/${encodeURIComponent(id)}`)).name);
      } catch (err) {
        names.set(id, err.status === 404 ? null : undefined);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(6, queue.length) }, worker));
  return names;
}

export function rememberName(id, name) {
  names.set(id, name);
}
