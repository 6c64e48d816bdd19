// @ts-check
// Workflows for `smithers bench` (bench/doc.go): small fixed shapes whose
// cost is the gateway's, not the workflow's.
//
//   smithers gateway --module examples/bench/gateway.mjs ...
//   smithers bench --scenarios launch --workflow one-task --concurrency 16
//   smithers bench --scenarios launch --workflow ten-tasks --concurrency 64
//   smithers bench --scenarios stream --subscribers 1000 --rate 100
//   smithers bench --scenarios rpc,parked --workflow park
//   smithers bench --scenarios launch --workflow big-output --concurrency 1
/** @param {import("smithers-orchestrator").Gateway} gateway */
export default function register(gateway) {
  // One durable step, then the run completes.
  gateway.register("one-task", async (ctx) => {
    return await ctx.task("only", async () => ({ ok: true }));
  });

  // Ten durable steps in sequence, each one's output the next one's input.
  gateway.register("ten-tasks", async (ctx) => {
    let n = 0;
    for (let i = 0; i < 10; i++) {
      n = await ctx.task(`step-${i}`, async () => n + 1);
    }
    return { steps: n };
  });

  // A task, then it parks on an approval (the parked-run memory scenario).
  gateway.register("park", async (ctx) => {
    await ctx.task("before", async () => ({ ok: true }));
    const d = await ctx.approval("gate", { request: { title: "bench" } });
    return { approved: d.approved };
  });

  // A run whose task returns input.bytes characters (default: just under
  // the 4 MiB output limit) and whose workflow returns them again: what a
  // large output costs the gateway's memory.
  gateway.register("big-output", async (ctx) => {
    const bytes = Number(ctx.input.bytes ?? 4 * 1024 * 1024 - 64);
    const text = await ctx.task("big", async () => "x".repeat(bytes));
    return { length: text.length, text };
  });

  // The stream scenario's emitter: waits for input.count "tick" signals in
  // turn, each settling its wait (one node.finished event per signal), while
  // a task in flight keeps the run active between them (a parked run would
  // replay its whole journal at every signal).
  gateway.register("ticks", async (ctx) => {
    const count = Number(ctx.input.count ?? 1000);
    let done = false;
    const alive = ctx.task("alive", async () => {
      while (!done) await new Promise((r) => setTimeout(r, 20));
      return null;
    });
    for (let i = 0; i < count; i++) {
      await ctx.waitForEvent(`tick-${i}`, { event: "tick" });
    }
    done = true;
    await alive;
    return { ticks: count };
  });
}
