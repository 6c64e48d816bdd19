package storetest

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

func testNodeAndAttemptRoundTrip(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1))
	nodes := []host.Node{
		{RunID: "r1", NodeID: "build", Iteration: 0, Kind: host.KindTask, State: host.NodeFinished,
			Label: "Build", OutputJSON: `{"sha":"x"}`, ErrorJSON: `{"code":"E"}`, MetaJSON: `{"retries":2}`,
			Attempts: 2, CreatedAtMs: 10, UpdatedAtMs: 20, FiresAtMs: 30},
		{RunID: "r1", NodeID: "ship", Iteration: 1, Kind: host.KindApproval, State: host.NodePending,
			CreatedAtMs: 11},
	}
	attempts := []host.Attempt{
		{RunID: "r1", NodeID: "build", Iteration: 0, Attempt: 1, State: host.AttemptFailed,
			StartedAtMs: 1, FinishedAtMs: 2, HeartbeatAtMs: 3, HeartbeatDataJSON: `{"p":1}`,
			ErrorJSON: `{"code":"TASK_FAILED"}`, MetaJSON: `{"pgid":4}`},
		{RunID: "r1", NodeID: "build", Iteration: 0, Attempt: 2, State: host.AttemptInProgress},
	}
	update(t, s, func(tx host.Tx) error {
		for _, n := range nodes {
			if err := tx.PutNode(n); err != nil {
				return err
			}
		}
		for _, a := range attempts {
			if err := tx.PutAttempt(a); err != nil {
				return err
			}
		}
		for _, n := range nodes {
			got, ok, err := tx.GetNode(n.RunID, n.NodeID, n.Iteration)
			if err != nil || !ok || !reflect.DeepEqual(got, n) {
				t.Errorf("tx.GetNode = %+v, %v, %v; want %+v", got, ok, err, n)
			}
		}
		for _, a := range attempts {
			got, ok, err := tx.GetAttempt(a.RunID, a.NodeID, a.Iteration, a.Attempt)
			if err != nil || !ok || !reflect.DeepEqual(got, a) {
				t.Errorf("tx.GetAttempt = %+v, %v, %v; want %+v", got, ok, err, a)
			}
		}
		if _, ok, err := tx.GetNode("r1", "build", 7); ok || err != nil {
			t.Errorf("GetNode(missing iteration) = %v, %v", ok, err)
		}
		if _, ok, err := tx.GetAttempt("r1", "build", 0, 9); ok || err != nil {
			t.Errorf("GetAttempt(missing) = %v, %v", ok, err)
		}
		// SettleAttempt changes state, error and finish time only.
		if ok, err := tx.SettleAttempt("r1", "build", 0, 1, host.AttemptFinished, "", 9); !ok || err != nil {
			t.Errorf("SettleAttempt(existing) = %v, %v", ok, err)
		}
		settled := attempts[0]
		settled.State, settled.ErrorJSON, settled.FinishedAtMs = host.AttemptFinished, "", 9
		if got, _, err := tx.GetAttempt("r1", "build", 0, 1); err != nil || !reflect.DeepEqual(got, settled) {
			t.Errorf("settled attempt = %+v, %v; want %+v", got, err, settled)
		}
		if ok, err := tx.SettleAttempt("r1", "build", 0, 9, host.AttemptFailed, `{"code":"X"}`, 9); ok || err != nil {
			t.Errorf("SettleAttempt(missing) = %v, %v; want false, nil", ok, err)
		}
		if _, ok, _ := tx.GetAttempt("r1", "build", 0, 9); ok {
			t.Error("SettleAttempt of a missing attempt created it")
		}
		if err := tx.PutAttempt(attempts[0]); err != nil {
			return err
		}
		listed, err := tx.ListNodes("r1")
		if err != nil || !reflect.DeepEqual(listed, nodes) {
			t.Errorf("tx.ListNodes = %+v, %v", listed, err)
		}
		return nil
	})

	gotNodes, err := s.ListNodes(ctx, "r1")
	if err != nil || !reflect.DeepEqual(gotNodes, nodes) {
		t.Errorf("ListNodes = %+v, %v; want %+v", gotNodes, err, nodes)
	}
	// One node's iterations, in iteration order, and nothing of the others.
	second := host.Node{RunID: "r1", NodeID: "build", Iteration: 1, Kind: host.KindTask, State: host.NodePending, CreatedAtMs: 12}
	update(t, s, func(tx host.Tx) error { return tx.PutNode(second) })
	iters, err := s.ListNodeIterations(ctx, "r1", "build")
	if err != nil || !reflect.DeepEqual(iters, []host.Node{nodes[0], second}) {
		t.Errorf("ListNodeIterations(build) = %+v, %v; want %+v", iters, err, []host.Node{nodes[0], second})
	}
	if iters, err := s.ListNodeIterations(ctx, "r1", "nope"); err != nil || len(iters) != 0 {
		t.Errorf("ListNodeIterations(missing) = %+v, %v", iters, err)
	}
	update(t, s, func(tx host.Tx) error { return tx.DeleteNode("r1", "build", 1) })

	gotAttempts, err := s.ListAttempts(ctx, "r1", "build", 0)
	if err != nil || !reflect.DeepEqual(gotAttempts, attempts) {
		t.Errorf("ListAttempts = %+v, %v; want %+v", gotAttempts, err, attempts)
	}

	// Put overwrites: settle the pending node.
	settled := nodes[1]
	settled.State, settled.OutputJSON, settled.UpdatedAtMs = host.NodeFinished, `true`, 50
	update(t, s, func(tx host.Tx) error { return tx.PutNode(settled) })
	gotNodes, _ = s.ListNodes(ctx, "r1")
	if len(gotNodes) != 2 || !reflect.DeepEqual(gotNodes[1], settled) {
		t.Errorf("after overwrite ListNodes = %+v", gotNodes)
	}
	// And clears: a finished node's timer is unset again.
	cleared := nodes[0]
	cleared.FiresAtMs, cleared.Label, cleared.ErrorJSON = 0, "", ""
	update(t, s, func(tx host.Tx) error { return tx.PutNode(cleared) })
	gotNodes, _ = s.ListNodes(ctx, "r1")
	if len(gotNodes) != 2 || !reflect.DeepEqual(gotNodes[0], cleared) {
		t.Errorf("after clearing ListNodes = %+v", gotNodes)
	}

	// A node of a run that does not exist is refused.
	if _, err := s.Update(ctx, func(tx host.Tx) error {
		return tx.PutNode(host.Node{RunID: "ghost", NodeID: "n", Kind: host.KindTask, State: host.NodePending})
	}); err == nil {
		t.Error("PutNode for a missing run succeeded")
	}
}

// testInsertNodeOnlyNew: InsertNode writes a node the run does not have,
// with its counts, and refuses (writing nothing) one it has.
func testInsertNodeOnlyNew(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1))
	first := host.Node{RunID: "r1", NodeID: "a", Kind: host.KindTask, State: host.NodeFinished, Label: "first",
		OutputJSON: `{"n":1}`, MetaJSON: `{"retries":3}`, Attempts: 1, CreatedAtMs: 5, UpdatedAtMs: 6}
	update(t, s, func(tx host.Tx) error {
		added, err := tx.InsertNode(first)
		if err != nil || !added {
			return fmt.Errorf("InsertNode of a new node = %v, %v", added, err)
		}
		other := first
		other.Iteration = 1 // another key
		if added, err := tx.InsertNode(other); err != nil || !added {
			return fmt.Errorf("InsertNode of iteration 1 = %v, %v", added, err)
		}
		again := first
		again.State, again.OutputJSON, again.Label = host.NodeFailed, `{"n":2}`, "second"
		if added, err := tx.InsertNode(again); err != nil || added {
			return fmt.Errorf("InsertNode of an existing node = %v, %v; want false", added, err)
		}
		return nil
	})
	nodes, err := s.ListNodes(ctx, "r1")
	if err != nil || len(nodes) != 2 || !reflect.DeepEqual(nodes[0], first) {
		t.Errorf("nodes after a refused insert = %+v, %v; want %+v first", nodes, err, first)
	}
	r, _, _ := s.GetRun(ctx, "r1")
	if r.NodeCounts.Of(host.NodeFinished) != 2 || r.NodeCounts.Of(host.NodeFailed) != 0 {
		t.Errorf("node counts = %+v, want two finished", r.NodeCounts)
	}
}

func testDeleteNodeKeepsAttempts(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1))
	update(t, s, func(tx host.Tx) error {
		for i, id := range []string{"a", "b"} {
			if err := tx.PutNode(host.Node{RunID: "r1", NodeID: id, Kind: host.KindTask, State: host.NodeFailed, CreatedAtMs: int64(i)}); err != nil {
				return err
			}
			if err := tx.PutAttempt(host.Attempt{RunID: "r1", NodeID: id, Attempt: 1, State: host.AttemptFailed}); err != nil {
				return err
			}
		}
		return nil
	})
	update(t, s, func(tx host.Tx) error {
		if err := tx.DeleteNode("r1", "a", 0); err != nil {
			return err
		}
		if _, ok, err := tx.GetNode("r1", "a", 0); ok || err != nil {
			t.Errorf("GetNode after DeleteNode = %v, %v", ok, err)
		}
		// Deleting what is not there is not an error.
		return tx.DeleteNode("r1", "a", 0)
	})
	nodes, _ := s.ListNodes(ctx, "r1")
	if len(nodes) != 1 || nodes[0].NodeID != "b" {
		t.Errorf("nodes after DeleteNode = %+v, want only b", nodes)
	}
	if attempts, _ := s.ListAttempts(ctx, "r1", "a", 0); len(attempts) != 1 {
		t.Errorf("attempts of the deleted node = %+v, want them kept", attempts)
	}
}

// testListWaitingNodes: a run's nodes in one waiting state, oldest first,
// and none of its other nodes or of other runs.
func testListWaitingNodes(t *testing.T, open Opener) {
	s := open(t, Options{})
	insertRuns(t, s, newRun("r1", "deploy", 1), newRun("r2", "deploy", 2))
	node := func(run, id string, iteration int, state host.NodeState, createdAtMs int64) host.Node {
		return host.Node{RunID: run, NodeID: id, Iteration: iteration, Kind: host.KindEvent, State: state, CreatedAtMs: createdAtMs, MetaJSON: `{"m":"` + id + `"}`}
	}
	late := node("r1", "a-late", 0, host.NodeWaitingEvent, 30)
	b1 := node("r1", "b", 1, host.NodeWaitingEvent, 20)
	b0 := node("r1", "b", 0, host.NodeWaitingEvent, 20)
	first := node("r1", "z-first", 0, host.NodeWaitingEvent, 10)
	all := []host.Node{late, b1, b0, first,
		node("r1", "done", 0, host.NodeFinished, 5),
		node("r1", "gate", 0, host.NodeWaitingApproval, 6),
		node("r2", "other", 0, host.NodeWaitingEvent, 1)}
	update(t, s, func(tx host.Tx) error {
		for _, n := range all {
			if err := tx.PutNode(n); err != nil {
				return err
			}
		}
		got, err := tx.ListWaitingNodes("r1", host.NodeWaitingEvent)
		if want := []host.Node{first, b0, b1, late}; err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ListWaitingNodes(r1, waiting-event) = %+v, %v; want %+v", got, err, want)
		}
		if got, err := tx.ListWaitingNodes("r1", host.NodeWaitingTimer); err != nil || len(got) != 0 {
			t.Errorf("ListWaitingNodes(r1, waiting-timer) = %+v, %v; want none", got, err)
		}
		if got, err := tx.ListWaitingNodes("nope", host.NodeWaitingEvent); err != nil || len(got) != 0 {
			t.Errorf("ListWaitingNodes(missing run) = %+v, %v; want none", got, err)
		}
		if _, err := tx.ListWaitingNodes("r1", host.NodeFinished); err == nil {
			t.Error("ListWaitingNodes(finished) succeeded; it lists waiting states only")
		}
		return nil
	})
}

func testListDueNodes(t *testing.T, open Opener) {
	s := open(t, Options{})
	statuses := []host.RunStatus{host.RunRunning, host.RunWaitingApproval, host.RunWaitingEvent,
		host.RunWaitingTimer, host.RunFinished, host.RunContinued, host.RunFailed, host.RunCancelled}
	var want []host.Node
	update(t, s, func(tx host.Tx) error {
		for i, st := range statuses {
			r := newRun("run-"+string(st), "deploy", int64(i))
			r.Status = st
			if err := tx.InsertRun(r); err != nil {
				return err
			}
			due := host.Node{RunID: r.RunID, NodeID: "sleep", Kind: host.KindTimer,
				State: host.NodeWaitingTimer, FiresAtMs: int64(1000 + i)}
			others := []host.Node{
				{RunID: r.RunID, NodeID: "ask", Kind: host.KindApproval, State: host.NodeWaitingApproval, FiresAtMs: int64(2000 + i)},
				{RunID: r.RunID, NodeID: "wait", Kind: host.KindEvent, State: host.NodeWaitingEvent, FiresAtMs: int64(3000 + i)},
				// Not due: no timer, or no longer waiting.
				{RunID: r.RunID, NodeID: "nowait", Kind: host.KindEvent, State: host.NodeWaitingEvent},
				{RunID: r.RunID, NodeID: "fired", Kind: host.KindTimer, State: host.NodeFinished, FiresAtMs: 500},
				{RunID: r.RunID, NodeID: "task", Kind: host.KindTask, State: host.NodeInProgress, FiresAtMs: 500},
			}
			for _, n := range append([]host.Node{due}, others...) {
				if err := tx.PutNode(n); err != nil {
					return err
				}
			}
			if !st.Terminal() {
				want = append(want, due, others[0], others[1])
			}
		}
		return nil
	})
	sortNodes(want) // soonest first
	got, err := s.ListDueNodes(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ListDueNodes =\n%+v\nwant\n%+v", got, want)
	}
	// With a bound, only the nodes firing at or before it.
	var soon []host.Node
	for _, n := range want {
		if n.FiresAtMs <= 2001 {
			soon = append(soon, n)
		}
	}
	got, err = s.ListDueNodes(context.Background(), 2001)
	if err != nil || !reflect.DeepEqual(got, soon) {
		t.Errorf("ListDueNodes(2001) = %+v, %v\nwant %+v", got, err, soon)
	}
}

func testApprovalRoundTrip(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1), newRun("r2", "audit", 2))
	approvals := []host.Approval{
		{RunID: "r1", NodeID: "ship", Iteration: 0, Status: host.ApprovalApproved, RequestedAtMs: 300,
			DecidedAtMs: 400, Note: "ok", DecidedBy: "alice", RequestJSON: `{"title":"Ship?"}`,
			DecisionJSON: `{"approved":true}`, AutoApproved: true, WorkflowKey: "deploy"},
		{RunID: "r2", NodeID: "check", Iteration: 0, Status: host.ApprovalRequested, RequestedAtMs: 100,
			WorkflowKey: "audit"},
		{RunID: "r1", NodeID: "gate", Iteration: 2, Status: host.ApprovalRequested, RequestedAtMs: 200,
			WorkflowKey: "deploy"},
	}
	update(t, s, func(tx host.Tx) error {
		for _, a := range approvals {
			stored := a
			stored.WorkflowKey = "ignored"
			if err := tx.PutApproval(stored); err != nil {
				return err
			}
		}
		got, ok, err := tx.GetApproval("r1", "ship", 0)
		if err != nil || !ok || !reflect.DeepEqual(got, approvals[0]) {
			t.Errorf("tx.GetApproval = %+v, %v, %v; want %+v", got, ok, err, approvals[0])
		}
		if _, ok, err := tx.GetApproval("r1", "ship", 1); ok || err != nil {
			t.Errorf("GetApproval(missing) = %v, %v", ok, err)
		}
		return nil
	})

	tests := []struct {
		name string
		f    host.ApprovalFilter
		want []host.Approval
	}{
		{"all, oldest request first", host.ApprovalFilter{}, []host.Approval{approvals[1], approvals[2], approvals[0]}},
		{"by run", host.ApprovalFilter{RunID: "r1"}, []host.Approval{approvals[2], approvals[0]}},
		{"by workflow", host.ApprovalFilter{WorkflowKey: "audit"}, []host.Approval{approvals[1]}},
		{"by status", host.ApprovalFilter{Status: host.ApprovalRequested}, []host.Approval{approvals[1], approvals[2]}},
		{"run and status", host.ApprovalFilter{RunID: "r1", Status: host.ApprovalRequested}, []host.Approval{approvals[2]}},
		{"limit", host.ApprovalFilter{Limit: 2}, []host.Approval{approvals[1], approvals[2]}},
		{"no match", host.ApprovalFilter{WorkflowKey: "nope"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListApprovals(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) || (len(got) > 0 && !reflect.DeepEqual(got, tt.want)) {
				t.Errorf("ListApprovals(%+v) =\n%+v\nwant\n%+v", tt.f, got, tt.want)
			}
		})
	}

	// A decision overwrites the request, and can be undone field by field.
	decided := approvals[1]
	decided.Status, decided.DecidedAtMs, decided.DecidedBy, decided.Note = host.ApprovalDenied, 150, "bob", "no"
	update(t, s, func(tx host.Tx) error { return tx.PutApproval(decided) })
	got, _ := s.ListApprovals(ctx, host.ApprovalFilter{RunID: "r2"})
	if len(got) != 1 || !reflect.DeepEqual(got[0], decided) {
		t.Errorf("after the decision: %+v, want %+v", got, decided)
	}
}

func testRecentManualDecisions(t *testing.T, open Opener) {
	s := open(t, Options{})
	runs := []host.Run{newRun("a", "deploy", 1), newRun("b", "deploy", 2), newRun("c", "deploy", 3),
		newRun("d", "deploy", 4), newRun("e", "audit", 5), newRun("x", "deploy", 6)}
	insertRuns(t, s, runs...)
	dec := func(run, node string, st host.ApprovalStatus, at int64, auto bool) host.Approval {
		return host.Approval{RunID: run, NodeID: node, Status: st, RequestedAtMs: 1, DecidedAtMs: at,
			AutoApproved: auto, DecidedBy: "someone", WorkflowKey: "deploy"}
	}
	all := []host.Approval{
		dec("a", "ship", host.ApprovalApproved, 100, false),
		dec("b", "ship", host.ApprovalDenied, 300, false),
		dec("c", "ship", host.ApprovalApproved, 200, true), // automatic
		{RunID: "d", NodeID: "ship", Status: host.ApprovalRequested, RequestedAtMs: 1},
		dec("e", "ship", host.ApprovalApproved, 400, false), // another workflow
		dec("x", "ship", host.ApprovalApproved, 500, false), // the run asking
		dec("a", "other", host.ApprovalApproved, 600, false),
	}
	update(t, s, func(tx host.Tx) error {
		for _, a := range all {
			if err := tx.PutApproval(a); err != nil {
				return err
			}
		}
		return nil
	})
	update(t, s, func(tx host.Tx) error {
		got, err := tx.RecentManualDecisions("deploy", "ship", "x", 10)
		if err != nil {
			return err
		}
		want := []host.Approval{all[1], all[0]}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("RecentManualDecisions =\n%+v\nwant\n%+v", got, want)
		}
		got, err = tx.RecentManualDecisions("deploy", "ship", "x", 1)
		if err != nil || len(got) != 1 || got[0].RunID != "b" {
			t.Errorf("RecentManualDecisions limit 1 = %+v, %v; want b's", got, err)
		}
		got, err = tx.RecentManualDecisions("deploy", "nobody", "x", 10)
		if err != nil || len(got) != 0 {
			t.Errorf("RecentManualDecisions of an unknown node = %+v, %v", got, err)
		}
		return nil
	})
}

func testSignals(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1), newRun("r2", "deploy", 2))

	inputs := []host.Signal{
		{RunID: "r1", Name: "deploy.done", CorrelationID: ptr("sha-1"), PayloadJSON: `{"n":0}`, ReceivedAtMs: 10, ReceivedBy: "alice"},
		{RunID: "r1", Name: "deploy.done", PayloadJSON: `{"n":1}`, ReceivedAtMs: 11},
		{RunID: "r1", Name: "deploy.done", CorrelationID: ptr(""), PayloadJSON: `{"n":2}`, ReceivedAtMs: 12},
		{RunID: "r1", Name: "deploy.done", CorrelationID: ptr("sha-1"), PayloadJSON: `{"n":3}`, ReceivedAtMs: 13},
		{RunID: "r2", Name: "deploy.done", PayloadJSON: `{"n":4}`, ReceivedAtMs: 14},
		{RunID: "r1", Name: "other", PayloadJSON: `{"n":5}`, ReceivedAtMs: 15},
	}
	wantSeq := []int64{0, 1, 2, 3, 0, 4} // per run, 0-based
	var stored []host.Signal
	update(t, s, func(tx host.Tx) error {
		stored = stored[:0]
		for i, in := range inputs {
			got, err := tx.InsertSignal(in)
			if err != nil {
				return err
			}
			if got.Seq != wantSeq[i] {
				t.Errorf("signal %d: seq %d, want %d", i, got.Seq, wantSeq[i])
			}
			in.Seq = wantSeq[i]
			if !reflect.DeepEqual(got, in) {
				t.Errorf("InsertSignal returned %+v, want %+v", got, in)
			}
			stored = append(stored, got)
		}
		if n, err := tx.CountBufferedSignals("r1"); err != nil || n != 5 {
			t.Errorf("CountBufferedSignals(r1) = %d, %v; want 5", n, err)
		}
		return nil
	})

	tests := []struct {
		name        string
		runID, sig  string
		correlation *string
		wantSeq     int64 // -1: none
	}{
		{"nil matches only nil", "r1", "deploy.done", nil, 1},
		{"string matches oldest equal", "r1", "deploy.done", ptr("sha-1"), 0},
		{"empty string is not nil", "r1", "deploy.done", ptr(""), 2},
		{"no signal with that correlation", "r1", "deploy.done", ptr("sha-2"), -1},
		{"other name", "r1", "other", nil, 4},
		{"other run", "r2", "deploy.done", nil, 0},
		{"unknown name", "r1", "nope", nil, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			update(t, s, func(tx host.Tx) error {
				got, ok, err := tx.OldestUnconsumedSignal(tt.runID, tt.sig, tt.correlation)
				if err != nil {
					return err
				}
				if tt.wantSeq < 0 {
					if ok {
						t.Errorf("found %+v, want none", got)
					}
					return nil
				}
				if !ok || got.Seq != tt.wantSeq {
					t.Errorf("found seq %d (%v), want %d", got.Seq, ok, tt.wantSeq)
				}
				return nil
			})
		})
	}

	// Consuming the oldest sha-1 signal exposes the next one.
	update(t, s, func(tx host.Tx) error {
		if err := tx.ConsumeSignal("r1", 0, "deployed"); err != nil {
			return err
		}
		got, ok, err := tx.OldestUnconsumedSignal("r1", "deploy.done", ptr("sha-1"))
		if err != nil || !ok || got.Seq != 3 {
			t.Errorf("after consume: %+v, %v, %v; want seq 3", got, ok, err)
		}
		if n, err := tx.CountBufferedSignals("r1"); err != nil || n != 4 {
			t.Errorf("CountBufferedSignals(r1) after consume = %d, %v; want 4", n, err)
		}
		if n, err := tx.CountBufferedSignals("none"); err != nil || n != 0 {
			t.Errorf("CountBufferedSignals(none) = %d, %v; want 0", n, err)
		}
		return nil
	})
	if _, err := s.Update(ctx, func(tx host.Tx) error { return tx.ConsumeSignal("r1", 42, "n") }); err == nil {
		t.Error("ConsumeSignal of a missing signal succeeded")
	}
	if _, err := s.Update(ctx, func(tx host.Tx) error {
		_, err := tx.InsertSignal(host.Signal{RunID: "ghost", Name: "x"})
		return err
	}); err == nil {
		t.Error("InsertSignal for a missing run succeeded")
	}

	got, err := s.ListSignals(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	want := []host.Signal{stored[0], stored[1], stored[2], stored[3], stored[5]}
	want[0].ConsumedBy = "deployed"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ListSignals =\n%+v\nwant\n%+v", got, want)
	}
	// Seqs continue after the ones stored.
	update(t, s, func(tx host.Tx) error {
		sig, err := tx.InsertSignal(host.Signal{RunID: "r1", Name: "late"})
		if err == nil && sig.Seq != 5 {
			t.Errorf("next signal seq = %d, want 5", sig.Seq)
		}
		return err
	})
}

func testValuesRoundTrip(t *testing.T, open Opener) {
	s := open(t, Options{})
	insertRuns(t, s, newRun("r1", "deploy", 1), newRun("r2", "deploy", 2))
	update(t, s, func(tx host.Tx) error {
		// Out of order on purpose: ListValues returns call order.
		for _, v := range []struct {
			i int
			v string
		}{{2, `"uuid"`}, {0, `1700000000000`}, {1, `0.5`}} {
			if err := tx.PutValue("r1", v.i, v.v); err != nil {
				return err
			}
		}
		return tx.PutValue("r2", 0, `"other"`)
	})
	got, err := s.ListValues(context.Background(), "r1")
	want := []string{`1700000000000`, `0.5`, `"uuid"`}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ListValues = %q, %v; want %q", got, err, want)
	}
	// A value journaled again at an index replaces it.
	update(t, s, func(tx host.Tx) error { return tx.PutValue("r1", 1, `0.25`) })
	got, _ = s.ListValues(context.Background(), "r1")
	if want[1] = `0.25`; !reflect.DeepEqual(got, want) {
		t.Errorf("ListValues after overwrite = %q, want %q", got, want)
	}
	if got, err := s.ListValues(context.Background(), "none"); err != nil || len(got) != 0 {
		t.Errorf("ListValues(none) = %q, %v", got, err)
	}
}

func testCronRoundTrip(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	crons := []host.Cron{
		{CronID: "gateway:a", Pattern: "0 8 * * 1-5", WorkflowPath: "gateway:a", WorkflowKey: "a",
			Enabled: true, CreatedAtMs: 1, LastRunAtMs: 2, NextRunAtMs: 3, ErrorJSON: "boom"},
		{CronID: "gateway:b", Pattern: "* * * * *", Enabled: false},
	}
	update(t, s, func(tx host.Tx) error {
		for _, c := range crons {
			if err := tx.PutCron(c); err != nil {
				return err
			}
		}
		got, ok, err := tx.GetCron("gateway:a")
		if err != nil || !ok || !reflect.DeepEqual(got, crons[0]) {
			t.Errorf("tx.GetCron = %+v, %v, %v", got, ok, err)
		}
		return nil
	})
	got, err := s.ListCrons(ctx)
	if err != nil || !reflect.DeepEqual(got, crons) {
		t.Errorf("ListCrons = %+v, %v; want %+v", got, err, crons)
	}

	crons[1].Enabled, crons[1].NextRunAtMs = true, 77
	update(t, s, func(tx host.Tx) error {
		if err := tx.PutCron(crons[1]); err != nil {
			return err
		}
		if ok, err := tx.DeleteCron("gateway:a"); err != nil || !ok {
			t.Errorf("DeleteCron(existing) = %v, %v", ok, err)
		}
		if ok, err := tx.DeleteCron("gateway:a"); err != nil || ok {
			t.Errorf("DeleteCron(deleted) = %v, %v", ok, err)
		}
		if _, ok, err := tx.GetCron("gateway:a"); ok || err != nil {
			t.Errorf("GetCron(deleted) = %v, %v", ok, err)
		}
		return nil
	})
	got, err = s.ListCrons(ctx)
	if err != nil || !reflect.DeepEqual(got, crons[1:]) {
		t.Errorf("ListCrons after delete = %+v, %v", got, err)
	}
}

func testProcessRoundTrip(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	const owner = "host-a:4242:1f2e"
	procs := []host.Process{
		{PGID: 4242, StartTime: 1 << 40, RunID: "r1", NodeID: "build", Attempt: 2, StartedAtMs: 1234, Owner: owner},
		{PGID: 7, StartTime: 99, Owner: owner},
	}
	update(t, s, func(tx host.Tx) error {
		for _, p := range procs {
			if err := tx.InsertProcess(p); err != nil {
				return err
			}
		}
		return nil
	})
	got, err := s.ListProcesses(ctx)
	want := []host.Process{procs[1], procs[0]}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ListProcesses = %+v, %v; want %+v", got, err, want)
	}
	// A recycled pgid replaces the stale record; deleting twice is fine.
	recycled := host.Process{PGID: 7, StartTime: 100, RunID: "r2", Owner: owner}
	update(t, s, func(tx host.Tx) error {
		if err := tx.InsertProcess(recycled); err != nil {
			return err
		}
		if err := tx.DeleteProcess(owner, 4242); err != nil {
			return err
		}
		return tx.DeleteProcess(owner, 4242)
	})
	got, err = s.ListProcesses(ctx)
	if err != nil || !reflect.DeepEqual(got, []host.Process{recycled}) {
		t.Errorf("ListProcesses after replace/delete = %+v, %v", got, err)
	}
}

func testWebhookDeliveries(t *testing.T, open Opener) {
	s := open(t, Options{})
	mk := func(id string, created int64, st host.RunStatus) host.Run {
		r := newRun(id, "hook", created)
		r.Status = st
		return r
	}
	insertRuns(t, s, mk("w1", 1, host.RunWaitingEvent), mk("w2", 2, host.RunWaitingEvent), mk("busy", 3, host.RunRunning))
	waiting := func(run, node string, created int64) host.Node {
		return host.Node{RunID: run, NodeID: node, Kind: host.KindEvent, State: host.NodeWaitingEvent, CreatedAtMs: created}
	}
	nodes := []host.Node{
		waiting("w1", "late", 10), waiting("w1", "early", 5),
		{RunID: "w1", NodeID: "done", Kind: host.KindEvent, State: host.NodeFinished, CreatedAtMs: 1},
		waiting("w2", "x", 1),
		waiting("busy", "y", 1), // the run is not waiting on an event
	}
	update(t, s, func(tx host.Tx) error {
		for _, n := range nodes {
			if err := tx.PutNode(n); err != nil {
				return err
			}
		}
		return nil
	})
	update(t, s, func(tx host.Tx) error {
		got, err := tx.WaitingEventNodes(10)
		want := []host.Node{nodes[3], nodes[1], nodes[0]} // newest run first, creation order
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("WaitingEventNodes(10) = %+v, %v\nwant %+v", got, err, want)
		}
		got, err = tx.WaitingEventNodes(1)
		if err != nil || !reflect.DeepEqual(got, want[:1]) {
			t.Errorf("WaitingEventNodes(1) = %+v, %v\nwant %+v", got, err, want[:1])
		}
		return nil
	})

	lookup := func(wf, id string, since int64) (string, bool) {
		t.Helper()
		var resp string
		var ok bool
		update(t, s, func(tx host.Tx) error {
			var err error
			resp, ok, err = tx.WebhookDelivery(wf, id, since)
			return err
		})
		return resp, ok
	}
	put := func(id, resp string, at int64) {
		t.Helper()
		update(t, s, func(tx host.Tx) error { return tx.PutWebhookDelivery("hook", id, resp, at) })
	}
	if _, ok := lookup("hook", "d1", 0); ok {
		t.Error("an unknown delivery was found")
	}
	put("d1", `{"n":1}`, 1000)
	if resp, ok := lookup("hook", "d1", 1000); !ok || resp != `{"n":1}` {
		t.Errorf("WebhookDelivery(d1) = %q, %v", resp, ok)
	}
	if _, ok := lookup("hook", "d1", 1001); ok {
		t.Error("a delivery received before sinceMs was found")
	}
	if _, ok := lookup("other", "d1", 0); ok {
		t.Error("another workflow's delivery was found")
	}
	put("d1", `{"n":2}`, 2000) // an expired record is replaced
	if resp, ok := lookup("hook", "d1", 1500); !ok || resp != `{"n":2}` {
		t.Errorf("WebhookDelivery(d1) after replace = %q, %v", resp, ok)
	}
	put("d2", `{}`, 500)
	put("d3", `{}`, 600)
	put("d4", `{}`, 3000)
	sweep := func(before int64, limit int) int {
		t.Helper()
		var n int
		update(t, s, func(tx host.Tx) error {
			var err error
			n, err = tx.DeleteWebhookDeliveries(before, limit)
			return err
		})
		return n
	}
	if n := sweep(2500, 2); n != 2 {
		t.Errorf("first sweep deleted %d, want 2", n)
	}
	if _, ok := lookup("hook", "d1", 0); !ok {
		t.Error("the sweep did not start with the oldest records")
	}
	if n := sweep(2500, 10); n != 1 {
		t.Errorf("second sweep deleted %d, want 1", n)
	}
	for id, want := range map[string]bool{"d1": false, "d2": false, "d3": false, "d4": true} {
		if _, ok := lookup("hook", id, 0); ok != want {
			t.Errorf("after sweeping, %s found = %v, want %v", id, ok, want)
		}
	}
}
