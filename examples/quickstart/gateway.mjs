// @ts-check
// The quickstart workflow: a task, then an approval, then a task.
//
//   smithers dev            # serves this module when no other is configured
//   curl .../v1/rpc/launchRun -d '{"workflow":"quickstart","input":{"name":"world"}}'
//   curl .../v1/rpc/listApprovals -d '{}'
//   curl .../v1/rpc/submitApproval -d '{"runId":"<id>","nodeId":"ship","decision":{"approved":true}}'
//   curl .../v1/rpc/getRun -d '{"runId":"<id>"}'     # output: {shipped: true, ...}
import { SmithersError } from "smithers-orchestrator";

/** @param {import("smithers-orchestrator").Gateway} gateway */
export default function register(gateway) {
  gateway.register(
    "quickstart",
    async (ctx) => {
      // A task's result is journaled: after a restart it is replayed, not re-run.
      const draft = await ctx.task("draft", async (t) => {
        const name = typeof ctx.input.name === "string" ? ctx.input.name : "world";
        if (name.length > 200) throw new SmithersError("INVALID_NAME", "name is too long", { retryable: false });
        return { greeting: `Hello, ${name}!` };
      });

      // The run parks (no goroutine, no JavaScript state) until someone decides.
      const decision = await ctx.approval("ship", {
        request: { title: `Ship "${draft.greeting}"?`, summary: "Approve to publish the greeting." },
        onDeny: "continue",
      });
      if (!decision.approved) {
        return { shipped: false, greeting: draft.greeting, note: decision.note };
      }

      const published = await ctx.task("publish", async (t) => {
        t.emit(`publishing ${draft.greeting}\n`);
        return { publishedBy: decision.decidedBy, key: t.idempotencyKey };
      });
      return { shipped: true, greeting: draft.greeting, ...published };
    },
    { readableName: "Quickstart", description: "A task, an approval, then a task" },
  );
}
