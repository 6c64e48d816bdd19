package host_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// TestRegressRefreshLeasesDropsTheSuccessorActivation: one gateway process on
// an exclusive store (no other process exists). Runs sleep in short steps, so
// they park and are woken (markRunning bumps the epoch, a new activation
// replaces the parked one) all the time, while refreshLeases runs every
// millisecond. refreshLeases compares the epoch of the session it listed
// before its transaction with the row's epoch: the parked-and-rewoken run
// looks "lost", and loseLease detaches by run id, i.e. the successor.
func TestRegressRefreshLeasesDropsTheSuccessorActivation(t *testing.T) {
	const steps = 150
	var killed atomic.Int64 // activations that found themselves detached mid-flight
	script := func(s *host.Session) {
		for i := 0; i < steps; i++ {
			n, ok := s.Lookup("nap", i)
			if !ok {
				var err error
				if n, err = s.StartTimer("nap", i, "", s.NowMs()+1); err != nil {
					if errors.Is(err, host.ErrSessionEnded) {
						killed.Add(1)
					}
					return
				}
			}
			for !n.State.Settled() {
				parked, _, err := s.Park(nil)
				if errors.Is(err, host.ErrSessionEnded) {
					killed.Add(1)
				}
				if err != nil || parked {
					return
				}
				time.Sleep(time.Millisecond) // a delivery is on its way
				if s.Ended() {
					return
				}
				n, _ = s.Lookup("nap", i)
			}
		}
		s.Complete(`"rested"`)
	}
	e := newEngine(t, script, engineOpts{heartbeat: time.Millisecond})
	ctx := context.Background()
	var ids []string
	for i := 0; i < 8; i++ {
		r, _, err := e.gw.LaunchRun(ctx, host.LaunchInput{Workflow: "wf", RunID: fmt.Sprintf("nap-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.RunID)
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, id := range ids {
		for e.run(id).Status != host.RunFinished && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	logs := e.logs.String()
	lost := strings.Count(logs, "run taken over by another gateway process")
	orphaned := strings.Count(logs, "reactivating a running run that had no activation")
	t.Logf("false lease losses: %d; live activations detached under the workflow: %d; runs found running without an activation: %d", lost, killed.Load(), orphaned)
	if lost > 0 {
		t.Fatalf("a single process on an exclusive store detached %d activations as taken over by another process", lost)
	}
}
