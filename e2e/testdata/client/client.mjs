// Drives a gateway with the official @smithers-orchestrator/gateway-client,
// for e2e/client_test.go. The test bundles this file with esbuild and runs it
// under Node 20+.
//
// Environment:
//   GATEWAY_URL, GATEWAY_TOKEN   where and as whom to connect
//   WORKFLOW, INPUT              the run to launch (INPUT is JSON)
//   COMPLETION_GRACE_MS          how long to keep reading the stream after
//                                run.completed, to catch a duplicate (default 1500)
//
// Every line on stdout is one JSON object with a "type":
//   launched   {runId, payload}            launchRun answered
//   frame      {event, seq, payload}       a frame yielded by streamRunEventsResilient
//   reconnect  {runId, afterSeq, attempt, backoffMs, reason, error}
//   approved   {nodeId, payload}           submitApproval answered
//   run        {payload}                   getRun answered (on the "getRun" command)
//   done       {run}                       the stream ended after run.completed; getRun
//   error      {where, code, message}      something failed (the exit status is then 1)
//
// Commands on stdin, one per line: "approve <nodeId>", "getRun".
import { createInterface } from "node:readline";
import { SmithersGatewayClient } from "@smithers-orchestrator/gateway-client";

function emit(type, fields) {
  process.stdout.write(JSON.stringify({ type, ...fields }) + "\n");
}

function describe(error) {
  return {
    code: error && typeof error.code === "string" ? error.code : undefined,
    message: error instanceof Error ? error.message : String(error),
  };
}

function fail(where, error) {
  emit("error", { where, ...describe(error) });
  process.exitCode = 1;
}

if (typeof globalThis.WebSocket !== "function") {
  fail("setup", new Error("this Node has no global WebSocket: run it with --experimental-websocket (Node 20) or use Node 22+"));
  process.exit(1);
}

const baseUrl = process.env.GATEWAY_URL;
const token = process.env.GATEWAY_TOKEN;
const workflow = process.env.WORKFLOW;
const input = JSON.parse(process.env.INPUT ?? "{}");
const graceMs = Number(process.env.COMPLETION_GRACE_MS ?? "1500");
if (!baseUrl || !workflow) {
  fail("setup", new Error("GATEWAY_URL and WORKFLOW are required"));
  process.exit(1);
}

const client = new SmithersGatewayClient({
  baseUrl,
  token,
  client: { id: "smithers-go-e2e", version: "0.32.0", platform: "node" },
});

let runId;
// Commands are handled in order, one at a time.
let commands = Promise.resolve();
const stdin = createInterface({ input: process.stdin });
stdin.on("line", (line) => {
  const [command, ...args] = line.trim().split(/\s+/);
  commands = commands.then(async () => {
    try {
      if (command === "approve") {
        const nodeId = args[0];
        const payload = await client.submitApproval({ runId, nodeId, decision: { approved: true } });
        emit("approved", { nodeId, payload });
      } else if (command === "getRun") {
        emit("run", { payload: await client.getRun({ runId }) });
      } else if (command) {
        throw new Error(`unknown command ${JSON.stringify(line)}`);
      }
    } catch (error) {
      fail(command, error);
    }
  });
});

async function main() {
  const launched = await client.launchRun({ workflow, input });
  runId = launched.runId;
  emit("launched", { runId, payload: launched });

  // afterSeq 0: replay everything from the run's first event, so nothing
  // published between launchRun and the subscription is missed.
  const abort = new AbortController();
  let completed = false;
  const stream = client.streamRunEventsResilient(
    { runId, afterSeq: 0 },
    {
      signal: abort.signal,
      onReconnect: (event) => emit("reconnect", { ...event, error: event.error === undefined ? undefined : describe(event.error) }),
    },
  );
  for await (const frame of stream) {
    emit("frame", { event: frame.event, seq: frame.seq, payload: frame.payload });
    if (!completed && frame.payload && frame.payload.event === "run.completed") {
      // The gateway keeps the stream open after the run ends; read on for a
      // while so that a second run.completed would be seen, then stop.
      completed = true;
      setTimeout(() => abort.abort(), graceMs);
    }
  }
  if (!completed) {
    throw new Error("streamRunEventsResilient ended before run.completed");
  }
  await commands;
  emit("done", { run: await finalRun(client, runId) });
}

// finalRun is getRun, asked again for up to 5 s while a proxy in front of
// several gateways answers 502 or 503: the replica this POST went to may
// have just been killed, and a proxy that cannot resend a request's body
// (Caddy before 2.11.2) answers 502 until its health check takes that
// replica out. The stream under test has already ended; this read is the
// test's, not the client's.
async function finalRun(client, runId) {
  for (let deadline = Date.now() + 5000; ; ) {
    try {
      return await client.getRun({ runId });
    } catch (error) {
      const transient = error instanceof Error && /HTTP 50[23]\b/.test(error.message);
      if (!transient || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

main()
  .catch((error) => fail("main", error))
  .finally(() => {
    client.close();
    stdin.close();
    process.stdin.destroy();
  });
