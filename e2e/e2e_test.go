package e2e

import (
	"path/filepath"
	"testing"
)

// TestQuickstartApprovalOverHTTP walks the quickstart example as its header
// comment tells a user to: launch, find the approval, approve, read the
// output.
func TestQuickstartApprovalOverHTTP(t *testing.T) {
	t.Parallel()
	g := startGateway(t, exampleModule("quickstart"))

	runID := g.launch("quickstart", map[string]any{"name": "e2e"})
	g.waitStatus(runID, "waiting-approval")

	var found *approvalSummary
	for _, a := range g.listApprovals() {
		if a.RunID == runID {
			found = &a
		}
	}
	if found == nil {
		t.Fatalf("listApprovals does not list run %s", runID)
	}
	if found.NodeID != "ship" || found.WorkflowKey != "quickstart" || found.RequestTitle != `Ship "Hello, e2e!"?` {
		t.Fatalf("approval = %+v, want node ship of quickstart titled %q", *found, `Ship "Hello, e2e!"?`)
	}

	g.approve(runID, "ship")
	r := g.waitStatus(runID, "finished")
	assertJSON(t, "output", r.Output,
		`{"shipped":true,"greeting":"Hello, e2e!","publishedBy":"`+approverID+`","key":"`+runID+`:publish:0"}`)
	if r.ErrorJSON != nil {
		t.Errorf("errorJson of a finished run = %s, want null", *r.ErrorJSON)
	}
	for _, a := range g.listApprovals() {
		if a.RunID == runID {
			t.Errorf("listApprovals still lists the decided approval %+v", a)
		}
	}
}

// TestSignalExampleOverHTTP drives examples/signal: a payment signal
// matched by correlation id wakes the waiting order; a signal with another
// correlation id does not.
func TestSignalExampleOverHTTP(t *testing.T) {
	t.Parallel()
	g := startGateway(t, exampleModule("signal"))

	runID := g.launch("order", map[string]any{"orderId": "o-42", "amount": 30})
	g.waitStatus(runID, "waiting-event")
	// Another order's payment is buffered for that correlation id and must
	// not wake this wait.
	g.rpc("submitSignal", map[string]any{"runId": runID, "signalName": "payment", "correlationId": "o-other", "data": map[string]any{"paid": 1}})
	g.rpc("submitSignal", map[string]any{"runId": runID, "signalName": "payment", "correlationId": "o-42", "data": map[string]any{"paid": 30}})
	r := g.waitStatus(runID, "finished")
	assertJSON(t, "output", r.Output, `{"orderId":"o-42","paid":30,"settled":true}`)
}

// TestSignalSentRightAfterLaunch sends the payment in the same breath as
// the launch, so it usually arrives before the run reaches its wait; either
// way it must not be lost.
func TestSignalSentRightAfterLaunch(t *testing.T) {
	t.Parallel()
	g := startGateway(t, exampleModule("signal"))

	runID := g.launch("order", map[string]any{"orderId": "o-7", "amount": 50})
	g.rpc("submitSignal", map[string]any{"runId": runID, "signalName": "payment", "correlationId": "o-7", "data": map[string]any{"paid": 20}})
	r := g.waitStatus(runID, "finished")
	assertJSON(t, "output", r.Output, `{"orderId":"o-7","paid":20,"settled":false}`)
}

// bufferedSignalModule waits for a gate file before reaching its signal
// wait, so the test decides that the signal arrives first.
const bufferedSignalModule = `
export default function register(gateway) {
  gateway.register("late-wait", async (ctx) => {
    await ctx.task("hold", async (t) => {
      await t.exec("sh", ["-c", 'while [ ! -f "$1" ]; do [ -d "${1%/*}" ] || exit 1; sleep 0.02; done', "sh", ctx.input.gate]);
      return true;
    });
    const payment = await ctx.signal("payment", { correlationId: ctx.input.orderId });
    return { paid: payment.paid };
  });
}
`

// TestSignalBufferedBeforeWait sends the signal while the run is provably
// still before its wait (blocked in a task): the wait then consumes it.
func TestSignalBufferedBeforeWait(t *testing.T) {
	t.Parallel()
	g := startGateway(t, writeModule(t, bufferedSignalModule))
	gate := filepath.Join(t.TempDir(), "gate")
	t.Cleanup(func() { openGate(t, gate) })

	runID := g.launch("late-wait", map[string]any{"orderId": "o-9", "gate": gate})
	if s := g.getRun(runID).Status; s != "running" {
		t.Fatalf("run is %s before its task was released, want running", s)
	}
	g.rpc("submitSignal", map[string]any{"runId": runID, "signalName": "payment", "correlationId": "o-9", "data": map[string]any{"paid": 99}})
	openGate(t, gate)
	r := g.waitStatus(runID, "finished")
	assertJSON(t, "output", r.Output, `{"paid":99}`)
}
