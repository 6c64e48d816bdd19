package host_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// gatedTask is a one-task workflow whose body waits for gate.
func gatedTask(gate <-chan struct{}, output string) func(s *host.Session) {
	return func(s *host.Session) {
		if n, ok := s.Lookup("a", 0); !ok || n.State != host.NodeFinished {
			var attempt int
			var err error
			if ok {
				_, attempt, err = s.StartAttempt("a", 0)
			} else {
				_, attempt, err = s.BeginTask("a", 0, "", "")
			}
			if err != nil {
				return
			}
			<-gate
			if _, err := s.FinishTask("a", 0, attempt, output); err != nil {
				return
			}
		}
		n, _ := s.Lookup("a", 0)
		s.Complete(n.OutputJSON)
	}
}

func TestLostLeaseIsTakenOverAndFenced(t *testing.T) {
	const lease, beat = 400 * time.Millisecond, 100 * time.Millisecond
	gateA, gateB := make(chan struct{}), make(chan struct{})
	a := newEngine(t, gatedTask(gateA, `"from a"`), engineOpts{shared: true, instance: "a", lease: lease, heartbeat: beat})
	b := newEngine(t, gatedTask(gateB, `"from b"`), engineOpts{replicaOf: a, instance: "b", lease: lease, heartbeat: beat})
	ctx := context.Background()
	r, _, err := a.gw.LaunchRun(ctx, host.LaunchInput{Workflow: "wf"})
	if err != nil {
		t.Fatal(err)
	}
	a.waitFor("the task to start on a", func() bool { n, _ := a.store.ListNodes(ctx, r.RunID); return len(n) == 1 })

	// a is cut off from the database (paused, partitioned): it can renew
	// nothing, and b takes the run over once the lease runs out.
	cut := time.Now()
	a.store.full.Store(true)
	b.waitFor("b to take the run over", func() bool {
		atts, _ := b.store.ListAttempts(ctx, r.RunID, "a", 0)
		return len(atts) == 2
	})
	if took := time.Since(cut); took > lease+3*beat {
		t.Errorf("takeover took %v, want within the lease (%v) and a heartbeat", took, lease)
	}
	if got := b.run(r.RunID); got.RuntimeOwnerID != "b" || got.LeaseEpoch < 2 {
		t.Fatalf("after the takeover the run is owned by %q at epoch %d", got.RuntimeOwnerID, got.LeaseEpoch)
	}

	// a comes back and its old body finishes: its commit is fenced off.
	a.store.full.Store(false)
	close(gateA)
	a.waitFor("a to drop its activation", func() bool { return strings.Contains(a.logs.String(), "taken over by another gateway process") })
	if nodes, _ := b.store.ListNodes(ctx, r.RunID); nodes[0].State == host.NodeFinished {
		t.Fatalf("the stale process committed the task it lost: node %+v", nodes[0])
	}
	close(gateB)
	done := b.waitStatus(r.RunID, host.RunFinished)
	if done.OutputJSON != `"from b"` {
		t.Fatalf("run output %s, want the new owner's", done.OutputJSON)
	}
	atts, _ := b.store.ListAttempts(ctx, r.RunID, "a", 0)
	if len(atts) != 2 || atts[0].State != host.AttemptFailed || atts[1].State != host.AttemptFinished {
		t.Fatalf("attempts %+v: want the lost one abandoned and the new owner's finished", atts)
	}
}

func TestDecisionOnAnotherProcessReachesTheLiveRun(t *testing.T) {
	// a runs the workflow; b only serves the decision, as a replica
	// answering an RPC would.
	spec := gateSpec(`{"mode":"gate"}`)
	a := newEngine(t, approvalFlow(nil, spec), engineOpts{shared: true, instance: "a", heartbeat: 50 * time.Millisecond})
	b := newEngine(t, approvalFlow(nil, spec), engineOpts{replicaOf: a, instance: "b", heartbeat: 50 * time.Millisecond})
	ctx := context.Background()
	r, _, err := a.gw.LaunchRun(ctx, host.LaunchInput{Workflow: "wf"})
	if err != nil {
		t.Fatal(err)
	}
	a.waitStatus(r.RunID, host.RunWaitingApproval)
	if err := b.gw.SubmitApproval(ctx, host.DecisionInput{RunID: r.RunID, NodeID: "ship", Approved: true}); err != nil {
		t.Fatal(err)
	}
	a.waitStatus(r.RunID, host.RunFinished)
}

func TestDecisionOnAnotherProcessReachesALiveActivation(t *testing.T) {
	// The activation on a stays live while it waits (as one with other
	// work in flight does): only the commit feed can tell it of b's
	// decision.
	live := func(s *host.Session) {
		if _, ok := s.Lookup("ship", 0); !ok {
			if _, err := s.RequestApproval("ship", 0, host.ApprovalSpec{RequestJSON: `{"mode":"gate"}`, OnDeny: "fail"}); err != nil {
				return
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) && !s.Ended() {
			if n, _ := s.Lookup("ship", 0); n.State.Settled() {
				s.Complete(n.OutputJSON)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	a := newEngine(t, live, engineOpts{shared: true, instance: "a"})
	b := newEngine(t, live, engineOpts{replicaOf: a, instance: "b"})
	ctx := context.Background()
	r, _, err := a.gw.LaunchRun(ctx, host.LaunchInput{Workflow: "wf"})
	if err != nil {
		t.Fatal(err)
	}
	a.waitFor("the approval to be requested", func() bool { n, _ := a.store.ListNodes(ctx, r.RunID); return len(n) == 1 })
	if err := b.gw.SubmitApproval(ctx, host.DecisionInput{RunID: r.RunID, NodeID: "ship", Approved: true}); err != nil {
		t.Fatal(err)
	}
	done := a.waitStatus(r.RunID, host.RunFinished)
	if done.RuntimeOwnerID != "a" {
		t.Fatalf("the run finished under %q, want its live owner a", done.RuntimeOwnerID)
	}
}
