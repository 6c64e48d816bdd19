package host_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// TestRegressCancelOnAnotherReplicaLeavesTheActivationRunning: a run's task
// body runs on replica a; cancelRun is answered by replica b (any replica
// answers any request). b finds no local activation, commits "cancelled"
// at once and returns; a is never told: its activation and its task body
// keep running (t.exec children are not killed), and a's session stays in
// its active table.
func TestRegressCancelOnAnotherReplicaLeavesTheActivationRunning(t *testing.T) {
	gate := make(chan struct{})
	bodyEnded := make(chan error, 1)
	script := func(s *host.Session) {
		if _, _, err := s.BeginTask("a", 0, "", ""); err != nil {
			return
		}
		select { // the task body: runs until released or its activation is dropped
		case <-gate:
		case <-time.After(20 * time.Second):
		}
		_, err := s.FinishTask("a", 0, 1, `1`)
		bodyEnded <- err
	}
	a, b := onSQLite(t, script, script, engineOpts{heartbeat: 50 * time.Millisecond, lease: 200 * time.Millisecond})
	ctx := context.Background()
	r, _, err := a.gw.LaunchRun(ctx, host.LaunchInput{Workflow: "wf"})
	if err != nil {
		t.Fatal(err)
	}
	a.waitFor("the task to start on a", func() bool {
		n, _ := a.store.ListNodes(ctx, r.RunID)
		return len(n) == 1 && n[0].State == host.NodeInProgress
	})
	if err := b.gw.CancelRun(ctx, r.RunID); err != nil {
		t.Fatal(err)
	}
	if got := a.run(r.RunID); got.Status != host.RunCancelled {
		t.Fatalf("status after cancel %s", got.Status)
	}
	// Ten heartbeats later, a still runs the cancelled run's activation.
	time.Sleep(500 * time.Millisecond)
	if n := a.gw.ActiveRuns(); n != 0 {
		close(gate)
		err := <-bodyEnded
		t.Fatalf("500 ms after the run was cancelled (by replica b), replica a still has %d live activation(s) for it; "+
			"its task body kept running until released, then FinishTask returned %v (ErrRunTerminal: %v)", n, err, errors.Is(err, host.ErrRunTerminal))
	}
}
