// Receive eventtrigger deliveries and verify their Standard Webhooks signatures.
//
//   npm ci
//   EVENTTRIGGER_SIGNING_SECRET=whsec_... PORT=9001 node verify.js
//
// Answers 204 to a delivery whose signature is good (and prints `verified <webhook-id>
// <body>`), 400 to anything else. Listens on 127.0.0.1 unless HOST says otherwise.
"use strict";

const http = require("node:http");
const { Webhook } = require("standardwebhooks");

const secret = process.env.EVENTTRIGGER_SIGNING_SECRET;
if (!secret) {
  console.error("set EVENTTRIGGER_SIGNING_SECRET to the trigger's signing secret (whsec_...)");
  process.exit(2);
}
const webhook = new Webhook(secret);
const host = process.env.HOST || "127.0.0.1";
const port = Number(process.env.PORT || 9001);

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    // The raw bytes exactly as they arrived: the signature covers these bytes, and JSON
    // parsed and serialised again (other spacing, key order or escapes) is different
    // bytes that no longer match it. So no body-parsing middleware before this point.
    const body = Buffer.concat(chunks);
    try {
      // Also refuses a webhook-timestamp more than 5 minutes away from now, so a captured
      // delivery cannot be replayed later.
      webhook.verify(body, req.headers, { jsonParse: false });
    } catch {
      res.writeHead(400).end();
      return;
    }
    // Handle the event here (JSON.parse(body)). A delivery can arrive more than once:
    // webhook-id is the same on every attempt, so use it to skip repeats.
    console.log(`verified ${req.headers["webhook-id"]} ${body.toString("utf8")}`);
    res.writeHead(204).end();
  });
});

server.listen(port, host, () => console.error(`listening on http://${host}:${port}`));
