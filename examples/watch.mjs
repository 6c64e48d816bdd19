#!/usr/bin/env node
// watch.mjs: follow one run of a smithers gateway over its WebSocket and print
// its events until the run completes. It speaks the protocol directly (see
// docs/websocket.md), so it doubles as a worked example of it:
//
//   connect.challenge -> connect -> [launchRun] -> streamRunEvents {runId, afterSeq}
//   -> run.event frames (replay, then live) ... run.completed
//
// When the socket drops (the gateway restarts, the client fell behind and was
// closed with 1013) it reconnects with a growing delay and resumes with
// afterSeq = the last seq it printed, so no event is missed or printed twice.
//
// Usage:
//   node examples/watch.mjs <runId>                        follow an existing run
//   node examples/watch.mjs --launch <workflow> ['<json input>']   launch a run, then follow it
// Options:
//   --url URL       gateway URL (default $SMITHERS_URL, else http://127.0.0.1:7331)
//   --token TOKEN   bearer token (default $SMITHERS_TOKEN, else ./.smithers/dev-token)
//   --after N       start after seq N (default 0: the run's whole retained history)
//   --live          only events from now on (streamRunEvents without afterSeq)
//   --json          one JSON object per line instead of text
// Exit status: 0 when the run finished, 1 when it failed or was cancelled,
// 2 for a usage, connection or authentication error.
//
// WebSocket: Node.js 22 and later have one built in. Node.js 20 needs the flag
// --experimental-websocket (node --experimental-websocket examples/watch.mjs ...),
// or the `ws` package: run `npm install ws` in this directory (or any parent of
// it) and the script uses it when there is no built-in WebSocket.

import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";

const usage = `usage: node examples/watch.mjs [--url URL] [--token TOKEN] [--after N | --live] [--json] <runId>
       node examples/watch.mjs [--url URL] [--token TOKEN] [--json] --launch <workflow> ['<json input>']`;

function fail(message) {
  console.error(`watch: ${message}`);
  process.exit(2);
}

// ---- arguments ------------------------------------------------------------

const opts = { url: process.env.SMITHERS_URL || "http://127.0.0.1:7331", token: process.env.SMITHERS_TOKEN || "", afterSeq: 0, json: false };
const positional = [];
let launch = null;
for (let args = process.argv.slice(2); args.length > 0; ) {
  const a = args.shift();
  const value = () => (args.length > 0 ? args.shift() : fail(`${a} needs a value\n${usage}`));
  switch (a) {
    case "--url": opts.url = value(); break;
    case "--token": opts.token = value(); break;
    case "--after": opts.afterSeq = Number(value()); break;
    case "--live": opts.afterSeq = undefined; break;
    case "--json": opts.json = true; break;
    case "--launch": launch = { workflow: value(), input: {} }; break;
    case "-h": case "--help": console.log(usage); process.exit(0);
    default: positional.push(a);
  }
}
if (launch) {
  if (positional.length > 1) fail(usage);
  if (positional.length === 1) {
    try { launch.input = JSON.parse(positional[0]); } catch (e) { fail(`the input is not JSON: ${e.message}`); }
  }
  // Choosing the run id here makes the launch safe to repeat: launchRun with
  // the id of an existing run of the workflow answers that run.
  launch.runId = randomUUID();
} else if (positional.length !== 1) {
  fail(usage);
}
if (opts.afterSeq !== undefined && !(Number.isInteger(opts.afterSeq) && opts.afterSeq >= 0)) fail("--after needs a non-negative integer");
if (!opts.token) {
  try { opts.token = readFileSync(".smithers/dev-token", "utf8").trim(); } catch { /* no dev gateway here */ }
}
if (!opts.token) fail("no token: pass --token or set SMITHERS_TOKEN (`smithers token issue --scopes run:read,run:write` makes one)");

const runId = launch ? launch.runId : positional[0];
const wsURL = opts.url.replace(/^http/, "ws");

// The built-in WebSocket (Node.js >= 22, or 20 with --experimental-websocket),
// else the `ws` package; both implement the browser API used below.
let WebSocketImpl = globalThis.WebSocket;
if (typeof WebSocketImpl !== "function") {
  try {
    WebSocketImpl = (await import("ws")).WebSocket;
  } catch {
    fail("this Node.js has no WebSocket: use Node.js 22+, run node --experimental-websocket, or `npm install ws`");
  }
}

// ---- output ---------------------------------------------------------------

function print(line) {
  if (opts.json) {
    console.log(JSON.stringify(line));
    return;
  }
  switch (line.type) {
    case "launched": console.log(`launched ${line.workflow} run ${line.runId}`); break;
    case "stream": console.log(`following run ${line.runId} (after seq ${line.afterSeq ?? "now"}, current seq ${line.currentSeq})`); break;
    case "event": console.log(`#${line.seq} ${line.event} ${describe(line.event, line.payload)}`); break;
    case "gap": console.log(`events ${line.fromSeq}..${line.toSeq} are no longer kept; the run now: ${line.snapshot ? line.snapshot.status : "unknown"}`); break;
    case "reconnect": console.log(`connection lost (${line.reason}); resuming after seq ${line.afterSeq} in ${line.delayMs} ms`); break;
    case "completed": console.log(`run ${line.runId} ${line.status}`); break;
  }
}

function describe(event, p) {
  if (!p || typeof p !== "object") return "";
  switch (event) {
    case "task.output": return `${p.nodeId} [${p.stream}] ${JSON.stringify(p.output)}`;
    case "run.completed": return p.status + (p.error ? ` ${p.error.code}: ${p.error.message}` : "");
    case "node.failed": case "node.retrying": return `${p.nodeId} ${p.error ? `${p.error.code ?? p.error.name}: ${p.error.message}` : ""}`;
    default: {
      const { runId: _, ...rest } = p;
      return JSON.stringify(rest);
    }
  }
}

// ---- protocol ---------------------------------------------------------------

let lastSeq = opts.afterSeq; // the seq to resume after; undefined = live only
let launched = false;
let attempt = 0;

function follow() {
  const ws = new WebSocketImpl(wsURL);
  let nextId = 0;
  const pending = new Map(); // request id -> handler of its response
  let streamId = null;
  let done = false;

  const request = (method, params, onResponse) => {
    const id = `${method}-${++nextId}`;
    pending.set(id, onResponse);
    ws.send(JSON.stringify({ type: "req", id, method, params }));
  };

  const stream = () =>
    request("streamRunEvents", lastSeq === undefined ? { runId } : { runId, afterSeq: lastSeq }, (res) => {
      if (!res.ok) {
        // SeqOutOfRange: the run's events were deleted and recreated (a
        // restored backup, say); RunNotFound: a typo or a deleted run.
        console.error(`watch: streamRunEvents: ${res.error.code}: ${res.error.message}`);
        process.exit(2);
      }
      streamId = res.payload.streamId;
      attempt = 0;
      // A live-only stream starts after currentSeq: resume from there.
      if (lastSeq === undefined) lastSeq = res.payload.currentSeq;
      print({ type: "stream", runId, streamId, afterSeq: res.payload.afterSeq, currentSeq: res.payload.currentSeq });
    });

  ws.addEventListener("open", () => {
    // The server sends connect.challenge first; nothing is signed with its
    // nonce, so connect need not wait for it. subscribe limits the plain
    // broadcasts this socket gets to this run's.
    request("connect", {
      minProtocol: 1, maxProtocol: 1,
      client: { id: "examples/watch.mjs", version: "1", platform: `node ${process.versions.node}` },
      auth: { token: opts.token },
      subscribe: [runId],
    }, (res) => {
      if (!res.ok) {
        // The gateway closes the socket (1008) after a failed connect.
        console.error(`watch: connect: ${res.error.code}: ${res.error.message}`);
        process.exit(2);
      }
      if (launch && !launched) {
        request("launchRun", { workflow: launch.workflow, input: launch.input, runId }, (res) => {
          if (!res.ok) {
            console.error(`watch: launchRun: ${res.error.code}: ${res.error.message}`);
            process.exit(2);
          }
          launched = true;
          print({ type: "launched", workflow: launch.workflow, runId });
          stream();
        });
        return;
      }
      stream();
    });
  });

  ws.addEventListener("message", (msg) => {
    const frame = JSON.parse(typeof msg.data === "string" ? msg.data : msg.data.toString());
    if (frame.type === "res") {
      const handler = pending.get(frame.id);
      pending.delete(frame.id);
      if (handler) handler(frame);
      return;
    }
    const p = frame.payload;
    // Broadcasts (node.*, approval.*, tick ...) also arrive; the stream's own
    // frames carry its streamId.
    if (!p || p.streamId !== streamId) return;
    switch (frame.event) {
      case "run.event":
        lastSeq = p.seq;
        print({ type: "event", seq: p.seq, event: p.event, payload: p.payload });
        if (p.event === "run.completed") {
          done = true;
          print({ type: "completed", runId, status: p.payload.status, error: p.payload.error ?? null });
          ws.close(1000);
          process.exitCode = p.payload.status === "finished" ? 0 : 1;
        }
        break;
      case "run.gap_resync":
        // Events fromSeq..toSeq fell out of the gateway's window: the frame
        // carries a snapshot of the run instead, and the stream goes on.
        lastSeq = p.toSeq;
        print({ type: "gap", fromSeq: p.fromSeq, toSeq: p.toSeq, snapshot: p.snapshot });
        break;
      case "run.error":
        // BackpressureDisconnect: this client fell behind; the socket closes
        // with 1013 next and the loop below resumes from lastSeq.
        if (!opts.json) console.error(`watch: ${p.error.code}: ${p.error.message}`);
        break;
      // run.heartbeat: once a second per stream; nothing to do.
    }
  });

  // Every end of the connection comes here once: a close, or an error with
  // no close after it (Node.js 20's built-in WebSocket fires only error when
  // it cannot connect at all).
  let ended = false;
  const lost = (code, reason) => {
    if (ended || done) return;
    ended = true;
    if (code === 1008) {
      console.error(`watch: the gateway closed the connection: ${reason || "policy violation"}`);
      process.exit(2);
    }
    const delayMs = Math.min(5000, 250 * 2 ** attempt++);
    print({ type: "reconnect", afterSeq: lastSeq ?? null, delayMs, reason: `close ${code}${reason ? " " + reason : ""}` });
    setTimeout(follow, delayMs);
  };
  ws.addEventListener("close", (ev) => lost(ev.code, ev.reason));
  ws.addEventListener("error", () => lost(1006, "connection failed"));
}

follow();
