package sqlite

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// commitDirect runs fns as one group commit on the test goroutine. The
// writer goroutine is idle (blocked receiving a request), so the test may use
// its connection; any later Update is ordered after this by the channel.
func commitDirect(s *Store, reqs ...*request) []result {
	res := make([]result, len(reqs))
	s.commitBatch(reqs, res)
	return res
}

func req(ctx context.Context, fn func(host.Tx) error) *request {
	return &request{ctx: ctx, fn: fn, done: make(chan result, 1)}
}

func TestGroupCommitIsolatesFailures(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1))
	errBoom := errors.New("boom")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	ran := map[string]bool{}
	step := func(name string, then func() error) func(host.Tx) error {
		return func(tx host.Tx) error {
			ran[name] = true
			if err := tx.InsertRun(newRun("run-"+name, "deploy", 2)); err != nil {
				return err
			}
			if err := tx.AppendEvent("r1", name, nil, 1); err != nil {
				return err
			}
			return then()
		}
	}
	ok := func() error { return nil }
	res := commitDirect(s,
		req(ctx, step("a", ok)),
		req(ctx, step("b", func() error { return errBoom })),
		req(ctx, step("c", ok)),
		req(ctx, step("d", func() error { panic("kaboom") })),
		req(cancelled, step("e", ok)),
		req(ctx, step("f", ok)),
	)

	wantEvents := map[int]host.Event{
		0: {RunID: "r1", Seq: 1, StateVersion: 1, Name: "a", AtMs: 1},
		2: {RunID: "r1", Seq: 2, StateVersion: 2, Name: "c", AtMs: 1},
		5: {RunID: "r1", Seq: 3, StateVersion: 3, Name: "f", AtMs: 1},
	}
	for i, want := range wantEvents {
		if res[i].err != nil || res[i].panicked || !reflect.DeepEqual(res[i].events, []host.Event{want}) {
			t.Errorf("request %d: %+v, want events [%+v]", i, res[i], want)
		}
	}
	if !errors.Is(res[1].err, errBoom) || res[1].events != nil {
		t.Errorf("failing request: %+v, want boom and no events", res[1])
	}
	if !res[3].panicked || res[3].panicVal != "kaboom" || res[3].events != nil {
		t.Errorf("panicking request: %+v", res[3])
	}
	if !errors.Is(res[4].err, context.Canceled) || ran["e"] {
		t.Errorf("cancelled request: %+v, ran %v; want context.Canceled without running", res[4], ran["e"])
	}

	for name, want := range map[string]bool{"a": true, "b": false, "c": true, "d": false, "e": false, "f": true} {
		if _, found, err := s.GetRun(ctx, "run-"+name); err != nil || found != want {
			t.Errorf("run-%s exists = %v (%v), want %v", name, found, err, want)
		}
	}
	events, _ := s.ListEvents(ctx, "r1", 0, 0)
	var names []string
	for _, e := range events {
		names = append(names, e.Name)
	}
	if !reflect.DeepEqual(names, []string{"a", "c", "f"}) || !reflect.DeepEqual(seqs(events), []int64{1, 2, 3}) {
		t.Errorf("committed events %v seqs %v", names, seqs(events))
	}
	if r, _, _ := s.GetRun(ctx, "r1"); r.LastSeq != 3 {
		t.Errorf("LastSeq = %d, want 3", r.LastSeq)
	}
}

func TestGroupCommitFailedCommitFailsEveryRequest(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1))
	appendOne := func(tx host.Tx) error {
		err := tx.AppendEvent("r1", "node.pending", nil, 1)
		return err
	}
	// A deferred foreign-key violation passes every statement and savepoint
	// and makes COMMIT itself fail.
	violateAtCommit := func(htx host.Tx) error {
		if _, err := htx.(*tx).exec("PRAGMA defer_foreign_keys = ON"); err != nil {
			return err
		}
		_, err := htx.(*tx).exec(`INSERT INTO nodes (run_key, run_id, node_id, iteration, kind, state)
			VALUES (999999, 'ghost', 'n', 0, 'task', 'pending')`)
		return err
	}
	errOwn := errors.New("own failure")
	res := commitDirect(s,
		req(ctx, appendOne),
		req(ctx, violateAtCommit),
		req(ctx, func(host.Tx) error { return errOwn }),
		req(ctx, appendOne),
	)
	for _, i := range []int{0, 1, 3} {
		if res[i].err == nil || res[i].events != nil {
			t.Errorf("request %d: %+v, want the commit error and no events", i, res[i])
		}
	}
	if !errors.Is(res[2].err, errOwn) {
		t.Errorf("request that failed on its own: %v, want its own error", res[2].err)
	}
	if events, _ := s.ListEvents(ctx, "r1", 0, 0); len(events) != 0 {
		t.Errorf("events after failed commit: %+v", events)
	}
	// The writer recovers: the next commit works and the seq did not move.
	ev := appendEvents(t, s, "r1", 1)
	if ev[0].Seq != 1 || ev[0].StateVersion != 1 {
		t.Errorf("event after failed commit = %+v, want seq 1 version 1", ev[0])
	}
}

func TestUpdateHonoursContextWhileQueued(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()

	// Hold the writer inside a function.
	started, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		_, err := s.Update(ctx, func(tx host.Tx) error {
			close(started)
			<-release
			return tx.InsertRun(newRun("held", "deploy", 1))
		})
		held <- err
	}()
	<-started

	cctx, cancel := context.WithCancel(ctx)
	qctx := &doneWatcher{Context: cctx, asked: make(chan struct{})}
	queued := make(chan error, 1)
	ran := make(chan struct{}, 1)
	go func() {
		_, err := s.Update(qctx, func(host.Tx) error { ran <- struct{}{}; return nil })
		queued <- err
	}()
	<-qctx.asked // Update is waiting to be scheduled
	cancel()
	if err := <-queued; !errors.Is(err, context.Canceled) {
		t.Errorf("queued Update after cancel = %v, want context.Canceled", err)
	}
	close(release)
	if err := <-held; err != nil {
		t.Errorf("held Update = %v", err)
	}
	select {
	case <-ran:
		t.Error("the cancelled Update's function ran")
	default:
	}
	if _, found, _ := s.GetRun(ctx, "held"); !found {
		t.Error("held Update did not commit")
	}

	// An already cancelled context never reaches the writer.
	if _, err := s.Update(qctx, func(host.Tx) error { t.Error("ran"); return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Update with a cancelled context = %v", err)
	}
}

// doneWatcher reports when Done is first called, that is when Update starts
// waiting on the context.
type doneWatcher struct {
	context.Context
	once  sync.Once
	asked chan struct{}
}

func (c *doneWatcher) Done() <-chan struct{} {
	c.once.Do(func() { close(c.asked) })
	return c.Context.Done()
}

// TestGroupCommitRunsAgainOnlyAfterAFailure: a batch whose functions all
// succeed runs each once; a failure in a batch of several runs the batch
// again with a savepoint per function (the Store contract allows a second
// run: what the last run assigned is what committed), and the others'
// writes commit once; a lone function that fails runs once.
func TestGroupCommitRunsAgainOnlyAfterAFailure(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1))
	calls := map[string]int{}
	errNo := errors.New("no")
	appendAs := func(name string, fail bool) func(host.Tx) error {
		return func(tx host.Tx) error {
			calls[name]++
			if err := tx.AppendEvent("r1", name, nil, 1); err != nil {
				return err
			}
			if fail {
				return errNo
			}
			return nil
		}
	}
	commitDirect(s, req(ctx, appendAs("a", false)), req(ctx, appendAs("b", false)))
	if calls["a"] != 1 || calls["b"] != 1 {
		t.Fatalf("calls in a batch that succeeded: %v, want each once", calls)
	}
	res := commitDirect(s, req(ctx, appendAs("c", false)), req(ctx, appendAs("x", true)), req(ctx, appendAs("d", false)))
	if calls["c"] != 2 || calls["x"] != 2 || calls["d"] != 1 {
		t.Errorf("calls after a failure: %v, want c and x twice (the second run isolates x), d once", calls)
	}
	if !errors.Is(res[1].err, errNo) || res[0].err != nil || res[2].err != nil {
		t.Errorf("results: %+v", res)
	}
	if len(res[0].events) != 1 || res[0].events[0].Seq != 3 || len(res[2].events) != 1 || res[2].events[0].Seq != 4 {
		t.Errorf("events of c and d: %+v, %+v; want seq 3 and 4", res[0].events, res[2].events)
	}
	res = commitDirect(s, req(ctx, appendAs("y", true)))
	if calls["y"] != 1 || !errors.Is(res[0].err, errNo) {
		t.Errorf("a lone failing function: %d calls, %v; want one call and its error", calls["y"], res[0].err)
	}
	events, _ := s.ListEvents(ctx, "r1", 0, 0)
	var names []string
	for _, e := range events {
		names = append(names, e.Name)
	}
	if !reflect.DeepEqual(names, []string{"a", "b", "c", "d"}) || !reflect.DeepEqual(seqs(events), []int64{1, 2, 3, 4}) {
		t.Errorf("committed events %v seqs %v", names, seqs(events))
	}
}

// TestGroupCommitStopsWhenSQLiteRolledBack: when SQLite rolls the
// transaction back under a function (as it does by itself on a full disk)
// and the function carries on, no statement runs outside a transaction:
// the function's later writes are refused, the batch fails, and nothing of
// it, nor of the functions after it, is committed.
func TestGroupCommitStopsWhenSQLiteRolledBack(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1))
	var laterWrite error
	lost := func(htx host.Tx) error {
		if _, err := htx.(*tx).exec("ROLLBACK"); err != nil {
			return err
		}
		laterWrite = htx.AppendEvent("r1", "after-rollback", nil, 1)
		return nil // ignores both
	}
	appendOne := func(htx host.Tx) error {
		err := htx.AppendEvent("r1", "other", nil, 1)
		return err
	}
	for _, batch := range [][]*request{
		{req(ctx, lost)},
		{req(ctx, appendOne), req(ctx, lost), req(ctx, appendOne)},
	} {
		res := commitDirect(s, batch...)
		if !errors.Is(laterWrite, errTxLost) {
			t.Errorf("a write after the rollback: %v, want errTxLost", laterWrite)
		}
		for i, r := range res {
			if r.err == nil || r.events != nil {
				t.Errorf("batch of %d, request %d: %+v, want an error and no events", len(batch), i, r)
			}
		}
		if events, _ := s.ListEvents(ctx, "r1", 0, 0); len(events) != 0 {
			t.Fatalf("committed after a lost transaction: %+v", events)
		}
	}
	// The writer recovers.
	if ev := appendEvents(t, s, "r1", 1); ev[0].Seq != 1 {
		t.Errorf("next event = %+v, want seq 1", ev[0])
	}
}
