package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// fullRun sets every field to a non-zero value.
func fullRun(id string) host.Run {
	return host.Run{
		RunID: id, ParentRunID: "parent-1", WorkflowKey: "deploy", WorkflowPath: "/w/gateway.mjs",
		WorkflowHash: "sha256:abc", Status: host.RunWaitingTimer, CreatedAtMs: 1000,
		StartedAtMs: 1001, FinishedAtMs: 1002, HeartbeatAtMs: 1003, RuntimeOwnerID: "owner-1",
		CancelRequestedAtMs: 1004, ErrorJSON: `{"code":"X"}`, ConfigJSON: `{"gatewayWorkflowKey":"deploy"}`,
		InputJSON: `{"a":1}`, OutputJSON: `null`, IdempotencyKey: "key-1", DeadlineAtMs: 1_700_000_099_999,
		LeaseEpoch: 7,
	}
}

func testRunRoundTrip(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	tests := []struct {
		name string
		run  host.Run
	}{
		{"every field set", fullRun("run-full")},
		{"optional fields zero", newRun("run-zero", "deploy", 5)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var inTx host.Run
			update(t, s, func(tx host.Tx) error {
				if err := tx.InsertRun(tt.run); err != nil {
					return err
				}
				r, ok, err := tx.GetRun(tt.run.RunID)
				if err != nil || !ok {
					t.Errorf("tx.GetRun = %v, %v", ok, err)
				}
				inTx = r
				l, ok, err := tx.RunLease(tt.run.RunID)
				want := host.RunLease{Status: tt.run.Status, RuntimeOwnerID: tt.run.RuntimeOwnerID, LeaseEpoch: tt.run.LeaseEpoch}
				if err != nil || !ok || l != want {
					t.Errorf("tx.RunLease = %+v, %v, %v; want %+v", l, ok, err, want)
				}
				return nil
			})
			got, ok, err := s.GetRun(ctx, tt.run.RunID)
			if err != nil || !ok {
				t.Fatalf("GetRun = %v, %v", ok, err)
			}
			if !reflect.DeepEqual(got, tt.run) {
				t.Errorf("GetRun = %+v, want %+v", got, tt.run)
			}
			if !reflect.DeepEqual(inTx, tt.run) {
				t.Errorf("tx.GetRun = %+v, want %+v", inTx, tt.run)
			}
		})
	}
	if _, ok, err := s.GetRun(ctx, "missing"); ok || err != nil {
		t.Errorf("GetRun(missing) = %v, %v; want false, nil", ok, err)
	}
	update(t, s, func(tx host.Tx) error {
		if _, ok, err := tx.GetRun("missing"); ok || err != nil {
			t.Errorf("tx.GetRun(missing) = %v, %v; want false, nil", ok, err)
		}
		if _, ok, err := tx.RunLease("missing"); ok || err != nil {
			t.Errorf("tx.RunLease(missing) = %v, %v; want false, nil", ok, err)
		}
		return nil
	})
	// A new run's LastSeq is 0 whatever the caller set.
	r := newRun("run-seq", "deploy", 6)
	r.LastSeq = 42
	insertRuns(t, s, r)
	if got, _, _ := s.GetRun(ctx, "run-seq"); got.LastSeq != 0 {
		t.Errorf("LastSeq of a new run = %d, want 0", got.LastSeq)
	}
}

func testUpdateRunKeepsLastSeq(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1))
	appendEvents(t, s, "r1", 3)

	want := fullRun("r1")
	want.LastSeq = 99 // must be ignored
	update(t, s, func(tx host.Tx) error { return tx.UpdateRun(want) })

	got, _, err := s.GetRun(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	want.LastSeq = 3
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after UpdateRun: %+v, want %+v", got, want)
	}

	// Clearing optional fields stores them as unset again.
	cleared := newRun("r1", "deploy", 1)
	update(t, s, func(tx host.Tx) error { return tx.UpdateRun(cleared) })
	got, _, _ = s.GetRun(ctx, "r1")
	cleared.LastSeq = 3
	if !reflect.DeepEqual(got, cleared) {
		t.Errorf("after clearing UpdateRun: %+v, want %+v", got, cleared)
	}

	if _, err := s.Update(ctx, func(tx host.Tx) error {
		return tx.UpdateRun(newRun("nope", "deploy", 1))
	}); err == nil {
		t.Error("UpdateRun of a missing run succeeded")
	}

	// Updates of a row the function read (a store may write only what
	// changed): every change lands, also a field set and cleared again,
	// one changed back, and an update that changes nothing.
	var final host.Run
	update(t, s, func(tx host.Tx) error {
		r, ok, err := tx.GetRun("r1")
		if err != nil || !ok {
			return fmt.Errorf("get run: %v %v", ok, err)
		}
		r.Status, r.FinishedAtMs, r.OutputJSON = host.RunFinished, 77, `{"ok":true}`
		if err := tx.UpdateRun(r); err != nil {
			return err
		}
		r.OutputJSON, r.ErrorJSON, r.Status = "", `{"code":"X"}`, host.RunFailed
		if err := tx.UpdateRun(r); err != nil {
			return err
		}
		if err := tx.UpdateRun(r); err != nil {
			return err
		}
		r.Status = host.RunFinished
		final = r
		return tx.UpdateRun(r)
	})
	got, _, _ = s.GetRun(ctx, "r1")
	if !reflect.DeepEqual(got, final) {
		t.Errorf("after updates of a read row: %+v, want %+v", got, final)
	}
	fresh, _, _ := s.GetRun(ctx, "r1")
	fresh.FinishedAtMs = 0
	update(t, s, func(tx host.Tx) error {
		if _, _, err := tx.GetRun("r1"); err != nil {
			return err
		}
		return tx.UpdateRun(fresh)
	})
	if got, _, _ = s.GetRun(ctx, "r1"); !reflect.DeepEqual(got, fresh) {
		t.Errorf("after clearing a read row's finish time: %+v, want %+v", got, fresh)
	}

	// A refused update stays refused when repeated: taking a key another
	// run of the workflow has is a unique-key violation each time.
	keyed := newRun("r2", "deploy", 2)
	keyed.IdempotencyKey = "k"
	insertRuns(t, s, keyed)
	var second error
	_, _ = s.Update(ctx, func(tx host.Tx) error {
		r, _, err := tx.GetRun("r1")
		if err != nil {
			return err
		}
		r.IdempotencyKey = "k"
		first := tx.UpdateRun(r)
		second = tx.UpdateRun(r)
		return errors.Join(first, second, errors.New("roll back"))
	})
	if second == nil {
		t.Error("a repeated UpdateRun that breaks a unique key succeeded")
	}
}

// testDeleteRunDropsItsNewEvents: a function that appends events to a run
// and then deletes it commits, and leaves no event of it.
func testDeleteRunDropsItsNewEvents(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1), newRun("r2", "deploy", 2))
	events := update(t, s, func(tx host.Tx) error {
		for _, id := range []string{"r1", "r2", "r1"} {
			if err := tx.AppendEvent(id, "node.started", nil, 1); err != nil {
				return err
			}
		}
		_, err := tx.DeleteRun("r1")
		return err
	})
	if len(events) != 1 || events[0].RunID != "r2" {
		t.Errorf("Update returned %+v, want r2's event only", events)
	}
	if got, _ := s.ListEvents(ctx, "r1", 0, 0); len(got) != 0 {
		t.Errorf("events of the deleted run: %+v", got)
	}
	if got, _ := s.ListEvents(ctx, "r2", 0, 0); len(got) != 1 {
		t.Errorf("events of r2: %+v", got)
	}
}

func testListRuns(t *testing.T, open Opener) {
	s := open(t, Options{})
	mk := func(id, wf string, created int64, st host.RunStatus, deadline int64) host.Run {
		r := newRun(id, wf, created)
		r.Status, r.DeadlineAtMs = st, deadline
		return r
	}
	runs := []host.Run{
		mk("a", "deploy", 100, host.RunFinished, 0),
		mk("b", "deploy", 300, host.RunRunning, 5000),
		mk("c", "audit", 200, host.RunWaitingApproval, 4000),
		mk("d", "audit", 300, host.RunFailed, 0), // same time as b: runId breaks the tie
		mk("ca", "audit", 50, host.RunWaitingTimer, 6000),
	}
	runs[2].CancelRequestedAtMs = 7 // c
	runs[3].CancelRequestedAtMs = 9 // d
	insertRuns(t, s, runs...)
	tests := []struct {
		name string
		f    host.RunFilter
		want []string
	}{
		{"all newest first", host.RunFilter{}, []string{"d", "b", "c", "a", "ca"}},
		{"limit", host.RunFilter{Limit: 2}, []string{"d", "b"}},
		{"one status", host.RunFilter{Statuses: []host.RunStatus{host.RunRunning}}, []string{"b"}},
		{"statuses", host.RunFilter{Statuses: []host.RunStatus{host.RunFinished, host.RunFailed}}, []string{"d", "a"}},
		{"workflow", host.RunFilter{WorkflowKey: "deploy"}, []string{"b", "a"}},
		{"workflow and status", host.RunFilter{WorkflowKey: "audit", Statuses: []host.RunStatus{host.RunWaitingApproval}}, []string{"c"}},
		{"no match", host.RunFilter{WorkflowKey: "none"}, []string{}},
		{"created from", host.RunFilter{CreatedFromMs: 200}, []string{"d", "b", "c"}},
		{"created range", host.RunFilter{CreatedFromMs: 150, CreatedToMs: 300}, []string{"c"}},
		{"created to", host.RunFilter{CreatedToMs: 200}, []string{"a", "ca"}},
		{"run id prefix", host.RunFilter{RunIDPrefix: "c"}, []string{"c", "ca"}},
		{"run id prefix matching one", host.RunFilter{RunIDPrefix: "ca"}, []string{"ca"}},
		{"run id prefix matching none", host.RunFilter{RunIDPrefix: "e"}, []string{}},
		{"deadline at or before", host.RunFilter{DeadlineBeforeMs: 5000}, []string{"b", "c"}},
		{"cancel requested", host.RunFilter{CancelRequested: true}, []string{"d", "c"}},
		{"cancel requested and status", host.RunFilter{CancelRequested: true, Statuses: []host.RunStatus{host.RunWaitingApproval}}, []string{"c"}},
		{"deadline and status", host.RunFilter{DeadlineBeforeMs: 9000, Statuses: []host.RunStatus{host.RunWaitingTimer}}, []string{"ca"}},
		{"after a cursor on a tie", host.RunFilter{After: &host.RunCursor{CreatedAtMs: 300, RunID: "d"}}, []string{"b", "c", "a", "ca"}},
		{"page two of two", host.RunFilter{After: &host.RunCursor{CreatedAtMs: 200, RunID: "c"}, Limit: 2}, []string{"a", "ca"}},
		{"cursor and filter", host.RunFilter{After: &host.RunCursor{CreatedAtMs: 300, RunID: "b"}, WorkflowKey: "audit"}, []string{"c", "ca"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListRuns(context.Background(), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ids(got), tt.want) {
				t.Errorf("ListRuns(%+v) = %v, want %v", tt.f, ids(got), tt.want)
			}
		})
	}
	one, _ := s.ListRuns(context.Background(), host.RunFilter{WorkflowKey: "deploy", Limit: 1})
	if len(one) != 1 || !reflect.DeepEqual(one[0], runs[1]) {
		t.Errorf("ListRuns row = %+v, want %+v", one, runs[1])
	}
}

func testListRunsPagesThroughEveryRunOnce(t *testing.T, open Opener) {
	s := open(t, Options{})
	var runs []host.Run
	for i := range 250 {
		runs = append(runs, newRun(runID("r", i), "wf", int64(i/7))) // many ties
	}
	insertRuns(t, s, runs...)
	seen := map[string]bool{}
	f := host.RunFilter{Limit: 40}
	var last host.Run
	for range 20 {
		got, err := s.ListRuns(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		for _, r := range got {
			if seen[r.RunID] {
				t.Fatalf("run %s listed twice across pages", r.RunID)
			}
			if last.RunID != "" && (r.CreatedAtMs > last.CreatedAtMs || (r.CreatedAtMs == last.CreatedAtMs && r.RunID > last.RunID)) {
				t.Fatalf("run %s (%d) listed after %s (%d): not newest first", r.RunID, r.CreatedAtMs, last.RunID, last.CreatedAtMs)
			}
			seen[r.RunID], last = true, r
		}
		f.After = &host.RunCursor{CreatedAtMs: last.CreatedAtMs, RunID: last.RunID}
	}
	if len(seen) != 250 {
		t.Fatalf("paging listed %d of 250 runs", len(seen))
	}
}

func testRunByIdempotencyKey(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	keyed := newRun("r1", "deploy", 1)
	keyed.IdempotencyKey = "k1"
	insertRuns(t, s, keyed, newRun("r2", "deploy", 2), newRun("r3", "deploy", 3)) // two without key

	tests := []struct {
		name, workflow, key string
		wantID              string // "" = not found
	}{
		{"same workflow and key", "deploy", "k1", "r1"},
		{"other workflow", "audit", "k1", ""},
		{"other key", "deploy", "k2", ""},
		{"empty key matches nothing", "deploy", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			update(t, s, func(tx host.Tx) error {
				r, ok, err := tx.RunByIdempotencyKey(tt.workflow, tt.key)
				if err != nil {
					return err
				}
				if ok != (tt.wantID != "") || r.RunID != tt.wantID {
					t.Errorf("RunByIdempotencyKey(%q, %q) = %q, %v; want %q", tt.workflow, tt.key, r.RunID, ok, tt.wantID)
				}
				return nil
			})
		})
	}

	// A second run with the same (workflow, key) is refused; the same key
	// under another workflow is fine.
	dup := newRun("r4", "deploy", 4)
	dup.IdempotencyKey = "k1"
	if _, err := s.Update(ctx, func(tx host.Tx) error { return tx.InsertRun(dup) }); err == nil {
		t.Error("InsertRun with a taken idempotency key succeeded")
	}
	if _, found, _ := s.GetRun(ctx, "r4"); found {
		t.Error("the refused run was stored")
	}
	other := newRun("r5", "audit", 5)
	other.IdempotencyKey = "k1"
	insertRuns(t, s, other)
	// A duplicate run id is refused too.
	if _, err := s.Update(ctx, func(tx host.Tx) error { return tx.InsertRun(newRun("r2", "deploy", 9)) }); err == nil {
		t.Error("InsertRun with a taken run id succeeded")
	}
}

func testListExpiredRuns(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	mk := func(id string, st host.RunStatus, finished int64) host.Run {
		r := newRun(id, "deploy", 1)
		r.Status, r.FinishedAtMs = st, finished
		return r
	}
	insertRuns(t, s,
		mk("f300", host.RunFinished, 300),
		mk("x100", host.RunFailed, 100),
		mk("c200", host.RunCancelled, 200),
		mk("late", host.RunFinished, 900),
		mk("live", host.RunRunning, 0),
		mk("cont", host.RunContinued, 50), // not terminal
		mk("wait", host.RunWaitingApproval, 60),
	)
	tests := []struct {
		before int64
		limit  int
		want   []string
	}{
		{1000, 10, []string{"x100", "c200", "f300", "late"}},
		{900, 10, []string{"x100", "c200", "f300"}},
		{1000, 2, []string{"x100", "c200"}},
		{100, 10, nil},
	}
	for _, tt := range tests {
		got, err := s.ListExpiredRuns(ctx, tt.before, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(tt.want) || (len(got) > 0 && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("ListExpiredRuns(%d, %d) = %v, want %v", tt.before, tt.limit, got, tt.want)
		}
	}
}

func testDeleteRunCascades(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	insertRuns(t, s, newRun("gone", "deploy", 1), newRun("kept", "deploy", 2))
	fill := func(id string, pgid int) {
		update(t, s, func(tx host.Tx) error {
			if err := tx.PutNode(host.Node{RunID: id, NodeID: "n", Kind: host.KindTask, State: host.NodeFinished}); err != nil {
				return err
			}
			if err := tx.PutAttempt(host.Attempt{RunID: id, NodeID: "n", Attempt: 1, State: host.AttemptFinished}); err != nil {
				return err
			}
			if err := tx.PutApproval(host.Approval{RunID: id, NodeID: "ask", Status: host.ApprovalRequested, RequestedAtMs: 1}); err != nil {
				return err
			}
			if _, err := tx.InsertSignal(host.Signal{RunID: id, Name: "s"}); err != nil {
				return err
			}
			if err := tx.PutValue(id, 0, `1`); err != nil {
				return err
			}
			if err := tx.InsertProcess(host.Process{PGID: pgid, StartTime: 1, RunID: id, NodeID: "n", Attempt: 1, Owner: "h:1:x"}); err != nil {
				return err
			}
			err := tx.AppendEvent(id, "node.finished", []byte(`{}`), 1)
			return err
		})
	}
	fill("gone", 4001)
	fill("kept", 4002)
	update(t, s, func(tx host.Tx) error {
		if ok, err := tx.DeleteRun("gone"); err != nil || !ok {
			t.Errorf("DeleteRun = %v, %v; want true", ok, err)
		}
		if ok, err := tx.DeleteRun("gone"); err != nil || ok {
			t.Errorf("second DeleteRun = %v, %v; want false", ok, err)
		}
		if ok, err := tx.DeleteRun("never"); err != nil || ok {
			t.Errorf("DeleteRun(unknown) = %v, %v; want false", ok, err)
		}
		return nil
	})
	count := func(id string) map[string]int {
		n := map[string]int{}
		if _, ok, _ := s.GetRun(ctx, id); ok {
			n["run"]++
		}
		nodes, _ := s.ListNodes(ctx, id)
		attempts, _ := s.ListAttempts(ctx, id, "n", 0)
		approvals, _ := s.ListApprovals(ctx, host.ApprovalFilter{RunID: id})
		signals, _ := s.ListSignals(ctx, id)
		events, _ := s.ListEvents(ctx, id, 0, 0)
		values, _ := s.ListValues(ctx, id)
		procs, _ := s.ListProcesses(ctx)
		for _, p := range procs {
			if p.RunID == id {
				n["processes"]++
			}
		}
		if first, _ := s.FirstEventSeq(ctx, id); first != 0 {
			n["firstSeq"]++
		}
		n["nodes"], n["attempts"], n["approvals"], n["signals"], n["events"], n["values"] =
			len(nodes), len(attempts), len(approvals), len(signals), len(events), len(values)
		return n
	}
	for k, v := range count("gone") {
		if v != 0 {
			t.Errorf("the deleted run kept %d %s", v, k)
		}
	}
	for k, v := range count("kept") {
		if v != 1 {
			t.Errorf("the other run has %d %s, want 1", v, k)
		}
	}
}
