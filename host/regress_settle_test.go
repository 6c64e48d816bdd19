package host_test

import (
	"context"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// TestRegressSettlingWaitsForARunThatEndedBeforeLoading: at start, a running
// run of a workflow with a concurrency limit joins the settling set. Its
// activation ends before it loaded the workflow (here: another live replica
// owns it), so release -> releaseSlots returns early (Session.pool() sees no
// workflow) and never calls dropSession: the workflow's slots stay withheld
// for the full settleTimeout (5 s) although nothing is left to settle.
func TestRegressSettlingWaitsForARunThatEndedBeforeLoading(t *testing.T) {
	now := time.Now().UnixMilli()
	st := &slotTask{running: map[string]int{}, max: map[string]int{}}
	e := newEngine(t, st.script(func(*host.Session) string { return "" }), engineOpts{shared: true, lease: time.Hour,
		concurrency: &host.ConcurrencyLimit{Limit: 1}, beforeBoot: func(fs *faultyStore) {
			insertRun(t, fs, host.Run{RunID: "elsewhere", Status: host.RunRunning, CreatedAtMs: now, StartedAtMs: now,
				RuntimeOwnerID: "other:1:x", HeartbeatAtMs: now})
		}})
	e.waitFor("the resumed run to be left to its owner", func() bool { return e.gw.ActiveRuns() == 0 })
	began := time.Now()
	r, _, err := e.gw.LaunchRun(context.Background(), host.LaunchInput{Workflow: "wf"})
	if err != nil {
		t.Fatal(err)
	}
	e.waitStatus(r.RunID, host.RunFinished)
	// With the bug the slot waits for the other run's hour-long lease;
	// 10 s leaves a loaded CI machine room.
	if took := time.Since(began); took > 10*time.Second {
		t.Fatalf("a one-task run with a free slot took %v: its slot waited for a run that had already ended", took)
	}
}
