// @ts-check
// A workflow with a durable timer: the run parks in waiting-timer and wakes
// when the timer fires, also when the gateway was down at that moment.
//
//   launchRun {"workflow":"reminder","input":{"delayMs":1500,"message":"stand up"}}
/** @param {import("smithers-orchestrator").Gateway} gateway */
export default function register(gateway) {
  gateway.register(
    "reminder",
    async (ctx) => {
      const delayMs = Number(ctx.input.delayMs ?? 60000);
      const scheduledAt = ctx.now();
      await ctx.task("schedule", () => ({ scheduledAt, delayMs }));
      await ctx.sleep("wait", delayMs);
      // ctx.now() is journaled: the value before the sleep is the same on
      // every replay, the one after it is taken when the timer has fired.
      const wokeAt = ctx.now();
      return await ctx.task("remind", () => ({
        message: String(ctx.input.message ?? "time is up"),
        delayMs,
        waitedMs: wokeAt - scheduledAt,
      }));
    },
    { readableName: "Reminder", description: "Sleeps durably, then reminds" },
  );
}
