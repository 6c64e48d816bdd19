package storetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// counts builds the NodeCounts of the given states.
func counts(states ...host.NodeState) host.NodeCounts {
	var c host.NodeCounts
	for _, s := range states {
		c.Add(s, 1)
	}
	return c
}

// testNodeCountsFollowTheNodes: a run's NodeCounts follows every PutNode and
// DeleteNode, is read by every run read, is ignored by InsertRun and
// UpdateRun, and is rolled back with a failed Update.
func testNodeCountsFollowTheNodes(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	r := newRun("r1", "deploy", 1)
	r.NodeCounts = counts(host.NodeFailed) // ignored
	insertRuns(t, s, r, newRun("other", "deploy", 2))
	check := func(when string, want host.NodeCounts) {
		t.Helper()
		if got, _, _ := s.GetRun(ctx, "r1"); got.NodeCounts != want {
			t.Errorf("%s: GetRun counts %v, want %v", when, got.NodeCounts, want)
		}
		if v, _, _ := s.GetRunView(ctx, "r1"); v.Run.NodeCounts != want {
			t.Errorf("%s: GetRunView counts %v, want %v", when, v.Run.NodeCounts, want)
		}
		runs, _ := s.ListRuns(ctx, host.RunFilter{WorkflowKey: "deploy"})
		found := false
		for _, r := range runs {
			if r.RunID == "r1" {
				found = true
				if r.NodeCounts != want {
					t.Errorf("%s: ListRuns counts %v, want %v", when, r.NodeCounts, want)
				}
			}
		}
		if !found {
			t.Errorf("%s: ListRuns %+v lacks r1", when, runs)
		}
		update(t, s, func(tx host.Tx) error {
			if got, _, _ := tx.GetRun("r1"); got.NodeCounts != want {
				t.Errorf("%s: tx.GetRun counts %v, want %v", when, got.NodeCounts, want)
			}
			return nil
		})
	}
	check("new run", host.NodeCounts{})
	node := func(id string, state host.NodeState) host.Node {
		return host.Node{RunID: "r1", NodeID: id, Kind: host.KindTask, State: state, CreatedAtMs: 10}
	}
	update(t, s, func(tx host.Tx) error {
		for _, n := range []host.Node{node("a", host.NodePending), node("b", host.NodeInProgress), node("c", host.NodeWaitingApproval)} {
			if err := tx.PutNode(n); err != nil {
				return err
			}
		}
		// Within the transaction the counts are already the new ones.
		if got, _, _ := tx.GetRun("r1"); got.NodeCounts != counts(host.NodePending, host.NodeInProgress, host.NodeWaitingApproval) {
			t.Errorf("tx.GetRun after PutNode: counts %v", got.NodeCounts)
		}
		return nil
	})
	check("three nodes", counts(host.NodePending, host.NodeInProgress, host.NodeWaitingApproval))
	update(t, s, func(tx host.Tx) error {
		if err := tx.PutNode(node("a", host.NodeInProgress)); err != nil {
			return err
		}
		if err := tx.PutNode(node("b", host.NodeFinished)); err != nil {
			return err
		}
		// Same state, other fields: no change.
		c := node("c", host.NodeWaitingApproval)
		c.Label = "relabelled"
		return tx.PutNode(c)
	})
	check("states changed", counts(host.NodeInProgress, host.NodeFinished, host.NodeWaitingApproval))
	update(t, s, func(tx host.Tx) error { return tx.DeleteNode("r1", "c", 0) })
	check("node deleted", counts(host.NodeInProgress, host.NodeFinished))
	update(t, s, func(tx host.Tx) error {
		full := fullRun("r1")
		full.NodeCounts = counts(host.NodeSkipped, host.NodeSkipped) // ignored
		return tx.UpdateRun(full)
	})
	check("UpdateRun", counts(host.NodeInProgress, host.NodeFinished))
	boom := errors.New("boom")
	if _, err := s.Update(ctx, func(tx host.Tx) error {
		if err := tx.PutNode(node("a", host.NodeFinished)); err != nil {
			return err
		}
		if err := tx.PutNode(node("z", host.NodeFailed)); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("failed Update: %v", err)
	}
	check("failed Update", counts(host.NodeInProgress, host.NodeFinished))
	if got, _, _ := s.GetRun(ctx, "other"); got.NodeCounts != (host.NodeCounts{}) {
		t.Errorf("another run's counts %v", got.NodeCounts)
	}
}

// testGetRunView: the node a waiting run waits on is its first node in the
// state its status names (soonest to fire for timers, else oldest; ties by
// creation, then node id, then iteration); other runs wait on nothing.
func testGetRunView(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	type n = host.Node
	tests := []struct {
		name   string
		status host.RunStatus
		nodes  []n
		want   string // node id, "" for none
	}{
		{"approval: oldest", host.RunWaitingApproval, []n{
			{NodeID: "late", State: host.NodeWaitingApproval, CreatedAtMs: 900},
			{NodeID: "early", State: host.NodeWaitingApproval, CreatedAtMs: 800},
			{NodeID: "a-timer", State: host.NodeWaitingTimer, CreatedAtMs: 100, FiresAtMs: 5},
			{NodeID: "done", State: host.NodeFinished, CreatedAtMs: 1},
		}, "early"},
		{"approval: ties by node id, then iteration", host.RunWaitingApproval, []n{
			{NodeID: "b", State: host.NodeWaitingApproval, CreatedAtMs: 800},
			{NodeID: "a", Iteration: 2, State: host.NodeWaitingApproval, CreatedAtMs: 800},
			{NodeID: "a", Iteration: 1, State: host.NodeWaitingApproval, CreatedAtMs: 800},
		}, "a#1"},
		{"timer: soonest to fire", host.RunWaitingTimer, []n{
			{NodeID: "t2", State: host.NodeWaitingTimer, CreatedAtMs: 1, FiresAtMs: 2_000_000},
			{NodeID: "t1", State: host.NodeWaitingTimer, CreatedAtMs: 2, FiresAtMs: 1_500_000},
		}, "t1"},
		{"timer: ties by creation", host.RunWaitingTimer, []n{
			{NodeID: "a", State: host.NodeWaitingTimer, CreatedAtMs: 9, FiresAtMs: 100},
			{NodeID: "b", State: host.NodeWaitingTimer, CreatedAtMs: 8, FiresAtMs: 100},
		}, "b"},
		{"event: oldest", host.RunWaitingEvent, []n{
			{NodeID: "ev2", State: host.NodeWaitingEvent, CreatedAtMs: 20},
			{NodeID: "ev1", State: host.NodeWaitingEvent, CreatedAtMs: 10, MetaJSON: `{"waitForEvent":{"signalName":"pay"}}`},
		}, "ev1"},
		{"waiting with no such node", host.RunWaitingEvent, []n{
			{NodeID: "a", State: host.NodeWaitingApproval, CreatedAtMs: 1},
		}, ""},
		{"running waits on nothing", host.RunRunning, []n{
			{NodeID: "a", State: host.NodeWaitingApproval, CreatedAtMs: 1},
		}, ""},
		// Node states and run statuses share names: a finished run does
		// not wait on its finished nodes.
		{"finished waits on nothing", host.RunFinished, []n{
			{NodeID: "a", State: host.NodeFinished, CreatedAtMs: 1},
		}, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fullRun("run-" + string(rune('a'+i)))
			r.Status, r.IdempotencyKey = tt.status, r.RunID
			insertRuns(t, s, r)
			update(t, s, func(tx host.Tx) error {
				for _, nd := range tt.nodes {
					nd.RunID, nd.Kind = r.RunID, host.KindApproval
					if err := tx.PutNode(nd); err != nil {
						return err
					}
				}
				return nil
			})
			v, ok, err := s.GetRunView(ctx, r.RunID)
			if err != nil || !ok {
				t.Fatalf("GetRunView = %v, %v", ok, err)
			}
			want := r
			for _, nd := range tt.nodes {
				want.NodeCounts.Add(nd.State, 1)
			}
			if v.Run != want {
				t.Errorf("run %+v, want %+v", v.Run, want)
			}
			got := ""
			if v.WaitingOn != nil {
				got = v.WaitingOn.NodeID
				if v.WaitingOn.Iteration != 0 {
					got += "#" + string(rune('0'+v.WaitingOn.Iteration))
				}
				var match *host.Node
				for i := range tt.nodes {
					if tt.nodes[i].NodeID == v.WaitingOn.NodeID && tt.nodes[i].Iteration == v.WaitingOn.Iteration {
						match = &tt.nodes[i]
					}
				}
				wantNode := *match
				wantNode.RunID, wantNode.Kind = r.RunID, host.KindApproval
				if *v.WaitingOn != wantNode {
					t.Errorf("waiting on %+v, want %+v", *v.WaitingOn, wantNode)
				}
			}
			if got != tt.want {
				t.Errorf("waiting on %q, want %q", got, tt.want)
			}
		})
	}
	if _, ok, err := s.GetRunView(ctx, "missing"); ok || err != nil {
		t.Errorf("GetRunView(missing) = %v, %v; want false, nil", ok, err)
	}
}

// testGetRunViewSeesEveryCommit: GetRunView, read again and again (a store
// may keep what it read), shows each committed change once its Update has
// returned, and while writes go on it never goes back to an older state.
func testGetRunViewSeesEveryCommit(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1))
	view := func() host.RunView {
		t.Helper()
		v, ok, err := s.GetRunView(ctx, "r1")
		if err != nil || !ok {
			t.Fatalf("GetRunView = %v, %v", ok, err)
		}
		return v
	}
	view()
	view()
	steps := []struct {
		name  string
		write func(tx host.Tx) error
		check func(v host.RunView) bool
	}{
		{"UpdateRun", func(tx host.Tx) error {
			r, _, _ := tx.GetRun("r1")
			r.Status = host.RunWaitingApproval
			return tx.UpdateRun(r)
		}, func(v host.RunView) bool { return v.Run.Status == host.RunWaitingApproval && v.WaitingOn == nil }},
		{"PutNode", func(tx host.Tx) error {
			return tx.PutNode(host.Node{RunID: "r1", NodeID: "gate", Kind: host.KindApproval, State: host.NodeWaitingApproval, CreatedAtMs: 5})
		}, func(v host.RunView) bool {
			return v.WaitingOn != nil && v.WaitingOn.NodeID == "gate" && v.Run.NodeCounts.Of(host.NodeWaitingApproval) == 1
		}},
		{"AppendEvent", func(tx host.Tx) error {
			err := tx.AppendEvent("r1", "approval.requested", nil, 5)
			return err
		}, func(v host.RunView) bool { return v.Run.LastSeq == 1 }},
		{"PutNode settles", func(tx host.Tx) error {
			return tx.PutNode(host.Node{RunID: "r1", NodeID: "gate", Kind: host.KindApproval, State: host.NodeFinished, CreatedAtMs: 5})
		}, func(v host.RunView) bool { return v.WaitingOn == nil && v.Run.NodeCounts.Of(host.NodeFinished) == 1 }},
		{"DeleteNode", func(tx host.Tx) error { return tx.DeleteNode("r1", "gate", 0) },
			func(v host.RunView) bool { return v.Run.NodeCounts == host.NodeCounts{} }},
	}
	for _, st := range steps {
		update(t, s, st.write)
		if v := view(); !st.check(v) {
			t.Fatalf("after %s: %+v", st.name, v)
		}
		view()
	}
	update(t, s, func(tx host.Tx) error { _, err := tx.DeleteRun("r1"); return err })
	if _, ok, err := s.GetRunView(ctx, "r1"); ok || err != nil {
		t.Fatalf("after DeleteRun: %v, %v", ok, err)
	}

	// Readers racing a writer: each read is at least as new as the last
	// commit that returned before it started.
	insertRuns(t, s, newRun("r2", "deploy", 2))
	var committed atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for i := range 100 {
			update(t, s, func(tx host.Tx) error {
				err := tx.AppendEvent("r2", "node.started", nil, 1)
				return err
			})
			committed.Store(int64(i + 1))
		}
	})
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				floor := committed.Load()
				v, ok, err := s.GetRunView(ctx, "r2")
				if err != nil || !ok || v.Run.LastSeq < floor {
					t.Errorf("GetRunView = %d, %v, %v: older than the commit of seq %d", v.Run.LastSeq, ok, err, floor)
					return
				}
			}
		})
	}
	wg.Wait()
}
