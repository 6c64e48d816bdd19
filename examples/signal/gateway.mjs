// @ts-check
// A workflow that waits for an external event: an order waits for its
// payment signal, matched by correlation id.
//
//   launchRun    {"workflow":"order","input":{"orderId":"o-42","amount":30}}
//   submitSignal {"runId":"<id>","signalName":"payment","correlationId":"o-42","data":{"paid":30}}
//
// A signal sent before the run reaches the wait is buffered, not lost.
/** @param {import("smithers-orchestrator").Gateway} gateway */
export default function register(gateway) {
  gateway.register(
    "order",
    async (ctx) => {
      const order = await ctx.task("create-order", () => ({
        orderId: String(ctx.input.orderId ?? "o-1"),
        amount: Number(ctx.input.amount ?? 0),
      }));
      const payment = await ctx.signal("payment", { correlationId: order.orderId, timeoutMs: 24 * 3600 * 1000 });
      const receipt = await ctx.task("fulfil", () => ({
        orderId: order.orderId,
        paid: payment.paid,
        settled: payment.paid >= order.amount,
      }));
      ctx.log.info("order fulfilled", { orderId: order.orderId });
      return receipt;
    },
    { readableName: "Order", description: "Waits for a payment signal" },
  );
}
