package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

func TestListRuns(t *testing.T) {
	s, _ := openTemp(t, Options{})
	mk := func(id, wf string, created int64, st host.RunStatus) host.Run {
		r := newRun(id, wf, created)
		r.Status = st
		return r
	}
	runs := []host.Run{
		mk("a", "deploy", 100, host.RunFinished),
		mk("b", "deploy", 300, host.RunRunning),
		mk("c", "audit", 200, host.RunWaitingApproval),
		mk("d", "audit", 300, host.RunFailed), // same time as b: runId breaks the tie
	}
	insertRuns(t, s, runs...)
	ids := func(rs []host.Run) []string {
		out := []string{}
		for _, r := range rs {
			out = append(out, r.RunID)
		}
		return out
	}
	tests := []struct {
		name string
		f    host.RunFilter
		want []string
	}{
		{"all newest first", host.RunFilter{}, []string{"d", "b", "c", "a"}},
		{"limit", host.RunFilter{Limit: 2}, []string{"d", "b"}},
		{"one status", host.RunFilter{Statuses: []host.RunStatus{host.RunRunning}}, []string{"b"}},
		{"statuses", host.RunFilter{Statuses: []host.RunStatus{host.RunFinished, host.RunFailed}}, []string{"d", "a"}},
		{"workflow", host.RunFilter{WorkflowKey: "deploy"}, []string{"b", "a"}},
		{"workflow and status", host.RunFilter{WorkflowKey: "audit", Statuses: []host.RunStatus{host.RunWaitingApproval}}, []string{"c"}},
		{"no match", host.RunFilter{WorkflowKey: "none"}, []string{}},
		{"created from", host.RunFilter{CreatedFromMs: 200}, []string{"d", "b", "c"}},
		{"created range", host.RunFilter{CreatedFromMs: 150, CreatedToMs: 300}, []string{"c"}},
		{"run id prefix", host.RunFilter{RunIDPrefix: "c"}, []string{"c"}},
		{"after a cursor on a tie", host.RunFilter{After: &host.RunCursor{CreatedAtMs: 300, RunID: "d"}}, []string{"b", "c", "a"}},
		{"page two of two", host.RunFilter{After: &host.RunCursor{CreatedAtMs: 200, RunID: "c"}, Limit: 2}, []string{"a"}},
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
	all, _ := s.ListRuns(context.Background(), host.RunFilter{WorkflowKey: "deploy", Limit: 1})
	if len(all) != 1 || !reflect.DeepEqual(all[0], runs[1]) {
		t.Errorf("ListRuns row = %+v, want %+v", all, runs[1])
	}
}

func TestRunByIdempotencyKey(t *testing.T) {
	s, _ := openTemp(t, Options{})
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
	other := newRun("r5", "audit", 5)
	other.IdempotencyKey = "k1"
	insertRuns(t, s, other)
	// A duplicate run id is refused too.
	if _, err := s.Update(ctx, func(tx host.Tx) error { return tx.InsertRun(newRun("r2", "deploy", 9)) }); err == nil {
		t.Error("InsertRun with a taken run id succeeded")
	}
}

func TestListDueNodesExcludesTerminalRuns(t *testing.T) {
	s, _ := openTemp(t, Options{})
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
	// Expected order: soonest first.
	sortNodes := func(ns []host.Node) {
		for i := 1; i < len(ns); i++ {
			for j := i; j > 0 && ns[j].FiresAtMs < ns[j-1].FiresAtMs; j-- {
				ns[j], ns[j-1] = ns[j-1], ns[j]
			}
		}
	}
	sortNodes(want)
	got, err := s.ListDueNodes(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ListDueNodes =\n%+v\nwant\n%+v", got, want)
	}
}

func TestDeletedRunsFreeSpaceForNewOnes(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	payload := json.RawMessage(`"` + strings.Repeat("x", 8<<10) + `"`)
	fill := func(prefix string) {
		for i := 0; i < 100; i++ {
			id := fmt.Sprintf("%s-%d", prefix, i)
			r := newRun(id, "deploy", int64(i))
			r.Status, r.FinishedAtMs = host.RunFinished, int64(i+1)
			insertRuns(t, s, r)
			update(t, s, func(tx host.Tx) error {
				for j := 0; j < 5; j++ {
					if _, err := tx.AppendEvent(id, "task.output", payload, 1); err != nil {
						return err
					}
				}
				return nil
			})
		}
	}
	pages := func() int {
		var n int
		if err := s.rdb.QueryRowContext(ctx, "PRAGMA page_count").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	fill("a")
	full := pages()
	ids, err := s.ListExpiredRuns(ctx, 1000, 1000)
	if err != nil || len(ids) != 100 {
		t.Fatalf("ListExpiredRuns = %d ids, %v; want the 100 finished runs", len(ids), err)
	}
	update(t, s, func(tx host.Tx) error {
		for _, id := range ids {
			if ok, err := tx.DeleteRun(id); err != nil || !ok {
				return fmt.Errorf("delete %s: %v %v", id, ok, err)
			}
		}
		return nil
	})
	if evs, _ := s.ListEvents(ctx, "a-0", 0, 0); len(evs) != 0 {
		t.Fatalf("a deleted run kept %d events", len(evs))
	}
	fill("b")
	if after := pages(); after > full+full/20 {
		t.Fatalf("the database grew from %d to %d pages refilling what was deleted: freed pages are not reused", full, after)
	}
}

func TestListRunsPagesThroughEveryRunOnce(t *testing.T) {
	s, _ := openTemp(t, Options{})
	var runs []host.Run
	for i := 0; i < 250; i++ {
		runs = append(runs, newRun(fmt.Sprintf("r%03d", i), "wf", int64(i/7))) // many ties
	}
	insertRuns(t, s, runs...)
	seen := map[string]bool{}
	f := host.RunFilter{Limit: 40}
	for page := 0; page < 20; page++ {
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
			seen[r.RunID] = true
		}
		last := got[len(got)-1]
		f.After = &host.RunCursor{CreatedAtMs: last.CreatedAtMs, RunID: last.RunID}
	}
	if len(seen) != 250 {
		t.Fatalf("paging listed %d of 250 runs", len(seen))
	}
}
