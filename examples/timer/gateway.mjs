// A workflow with a durable timer: the run parks in waiting-timer and wakes
// when the timer fires, also when the gateway was down at that moment.
//
//   launchRun {"workflow":"reminder","input":{"delayMs":1500,"message":"stand up"}}
export default function register(gateway) {
  gateway.register(
    "reminder",
    async (ctx) => {
      const delayMs = Number(ctx.input.delayMs ?? 60000);
      const scheduledAt = ctx.now();
      await ctx.task("schedule", () => ({ scheduledAt, delayMs }));
      await ctx.sleep("wait", delayMs);
      return await ctx.task("remind", () => ({
        message: String(ctx.input.message ?? "time is up"),
        waitedAtLeastMs: delayMs,
      }));
    },
    { readableName: "Reminder", description: "Sleeps durably, then reminds" },
  );
}
