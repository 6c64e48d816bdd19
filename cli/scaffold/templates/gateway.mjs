// @ts-check
// A workflow module for the smithers gateway. It registers one workflow, "hello": a task drafts a
// greeting, an approval waits for a person to decide, and a second task sends it.
//
//   smithers dev --module gateway.mjs            # serve this module on http://127.0.0.1:7331
//   smithers runs launch hello '{"name":"Ada"}'  # start a run (prints its id)
//   smithers runs follow <runId>                 # watch its events (Ctrl-C to stop)
//   smithers runs approve <runId> review         # decide the approval; the run finishes
//   smithers runs show <runId>                   # nodes, attempts and output
//
// types/smithers-orchestrator.d.ts describes ctx, t and their options; jsconfig.json makes VS Code
// use it to complete and type-check this file.
import { SmithersError } from "smithers-orchestrator";

/** @param {import("smithers-orchestrator").Gateway} gateway */
export default function register(gateway) {
  gateway.register(
    "hello",
    async (ctx) => {
      // Effects belong in task bodies. A finished task is journaled and never runs again, also
      // not after a restart; a failing one is retried (here at most 3 attempts).
      const draft = await ctx.task(
        "draft",
        async (t) => {
          const name = typeof ctx.input.name === "string" ? ctx.input.name : "world";
          if (name.length > 200) throw new SmithersError("INVALID_NAME", "name is too long", { retryable: false });
          t.emit(`drafting a greeting for ${name}\n`);
          return { greeting: `Hello, ${name}!` };
        },
        { retries: 2 },
      );

      // The run parks until someone decides: it holds no memory while it waits.
      const decision = await ctx.approval("review", {
        request: { title: `Send "${draft.greeting}"?`, summary: "Approve to send the greeting." },
        onDeny: "continue",
      });
      if (!decision.approved) {
        return { sent: false, greeting: draft.greeting, note: decision.note };
      }

      const sent = await ctx.task("send", async (t) => {
        ctx.log.info("sending", { greeting: draft.greeting });
        return { sentBy: decision.decidedBy, key: t.idempotencyKey };
      });
      return { sent: true, greeting: draft.greeting, ...sent };
    },
    { readableName: "Hello", description: "A task, an approval, then a task" },
  );
}
