// Server-sent events read from a fetch() body. EventSource cannot send the
// Authorization header the console signs every call with, so the stream is read as text
// and cut into events here: a pure parser (SseParser) under a small reconnecting reader
// (follow), which backs off after each drop and stops for good when told to.

/** The text/event-stream format, fed in arbitrary chunks; yields complete events. */
export class SseParser {
  constructor() {
    this.buffer = "";
    this.reset();
  }

  reset() {
    this.type = "";
    this.data = [];
    this.id = null;
  }

  /** Append `chunk`; returns the events it completed as [{type, id, data}]. */
  feed(chunk) {
    this.buffer += chunk;
    const done = [];
    // Lines end in \r\n, \n or \r; a \r at the very end may be half of a \r\n.
    const lines = this.buffer.split(/\r\n|\n|\r(?!$)/);
    this.buffer = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (this.data.length) {
          done.push({ type: this.type || "message", id: this.id, data: this.data.join("\n") });
        }
        this.reset();
        continue;
      }
      if (line.startsWith(":")) continue; // a comment: the server's keep-alive
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") this.type = value;
      else if (field === "data") this.data.push(value);
      else if (field === "id" && !value.includes("\0")) this.id = value;
    }
    return done;
  }
}

const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;

/**
 * Follow a stream at `url` with `headers`; `onEvent({type, id, data})` for each event and
 * `onState(state, detail)` with "connecting", "open", "retrying" (detail: seconds until
 * the next try) or "failed" (detail: the HTTP status, for answers a retry cannot fix).
 * Returns a function that closes the stream and cancels any pending retry.
 */
export function follow(url, headers, { onEvent, onState }) {
  let stopped = false;
  let controller = null;
  let timer = null;
  let delay = FIRST_DELAY_MS;

  async function connect() {
    if (stopped) return;
    controller = new AbortController();
    onState("connecting");
    try {
      const answer = await fetch(url, {
        headers: { ...headers, Accept: "text/event-stream" },
        signal: controller.signal,
        cache: "no-store",
      });
      // 4xx other than 429 means the key, the filters or the server's routes are wrong:
      // trying again would only repeat the same answer.
      if (answer.status >= 400 && answer.status < 500 && answer.status !== 429) {
        onState("failed", answer.status);
        return;
      }
      if (!answer.ok || !answer.body) throw new Error(`HTTP ${answer.status}`);
      onState("open");
      delay = FIRST_DELAY_MS;
      const parser = new SseParser();
      const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done || stopped) break;
        for (const event of parser.feed(value)) onEvent(event);
      }
    } catch {
      // A dropped connection or an abort; the retry below decides what happens next.
    }
    if (stopped) return;
    onState("retrying", Math.round(delay / 1000));
    timer = setTimeout(connect, delay);
    delay = Math.min(delay * 2, MAX_DELAY_MS);
  }

  connect();
  return () => {
    stopped = true;
    clearTimeout(timer);
    if (controller) controller.abort();
  };
}
