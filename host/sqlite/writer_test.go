package sqlite

import (
	"context"
	"errors"
	"fmt"
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
			if _, err := tx.AppendEvent("r1", name, nil, 1); err != nil {
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
		_, err := tx.AppendEvent("r1", "node.pending", nil, 1)
		return err
	}
	// A deferred foreign-key violation passes every statement and savepoint
	// and makes COMMIT itself fail.
	violateAtCommit := func(htx host.Tx) error {
		if _, err := htx.(*tx).exec("PRAGMA defer_foreign_keys = ON"); err != nil {
			return err
		}
		return htx.PutNode(host.Node{RunID: "ghost", NodeID: "n", Kind: host.KindTask, State: host.NodePending})
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

func TestConcurrentUpdatesWithFailures(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	insertRuns(t, s, newRun("shared", "deploy", 0))
	const n = 200
	errOdd := errors.New("refused")
	type outcome struct {
		events []host.Event
		err    error
	}
	out := make([]outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("r%03d", i)
			out[i].events, out[i].err = s.Update(ctx, func(tx host.Tx) error {
				if err := tx.InsertRun(newRun(id, "deploy", int64(i+1))); err != nil {
					return err
				}
				for range 2 {
					if _, err := tx.AppendEvent(id, "node.started", nil, 1); err != nil {
						return err
					}
				}
				switch {
				case i%4 == 0:
					return errOdd
				case i%7 == 0:
					return tx.InsertRun(newRun("shared", "deploy", 1)) // constraint error
				}
				return nil
			})
		})
	}
	wg.Wait()

	versions := map[int64]bool{}
	committed := 0
	for i, o := range out {
		id := fmt.Sprintf("r%03d", i)
		r, found, err := s.GetRun(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		wantFail := i%4 == 0 || i%7 == 0
		if wantFail {
			if o.err == nil || o.events != nil || found {
				t.Errorf("%s: err %v, events %v, run found %v; want failure and nothing written", id, o.err, o.events, found)
			}
			continue
		}
		committed++
		if o.err != nil || len(o.events) != 2 || !found || r.LastSeq != 2 {
			t.Errorf("%s: err %v, %d events, found %v, LastSeq %d", id, o.err, len(o.events), found, r.LastSeq)
			continue
		}
		for j, e := range o.events {
			if e.Seq != int64(j+1) || e.RunID != id {
				t.Errorf("%s: event %d = %+v", id, j, e)
			}
			versions[e.StateVersion] = true
		}
	}
	// Rolled-back functions give their ids back: committed stateVersions are
	// exactly 1..2*committed.
	for v := int64(1); v <= int64(2*committed); v++ {
		if !versions[v] {
			t.Errorf("stateVersion %d missing", v)
		}
	}
	if len(versions) != 2*committed {
		t.Errorf("%d distinct stateVersions, want %d", len(versions), 2*committed)
	}
	if v, _ := s.StateVersion(ctx); v != int64(2*committed) {
		t.Errorf("StateVersion = %d, want %d", v, 2*committed)
	}
}

func TestUpdateAfterClose(t *testing.T) {
	s, _ := openTemp(t, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ran := false
	_, err := s.Update(context.Background(), func(host.Tx) error { ran = true; return nil })
	if !errors.Is(err, ErrClosed) || ran {
		t.Errorf("Update after Close = %v (ran %v), want ErrClosed", err, ran)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
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

func TestUpdatePanicIsRaisedInCaller(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	func() {
		defer func() {
			if p := recover(); p != "kaboom" {
				t.Errorf("recovered %v, want kaboom", p)
			}
		}()
		_, _ = s.Update(ctx, func(tx host.Tx) error {
			if err := tx.InsertRun(newRun("r1", "deploy", 1)); err != nil {
				return err
			}
			panic("kaboom")
		})
	}()
	if _, found, _ := s.GetRun(ctx, "r1"); found {
		t.Error("the panicking function's write was committed")
	}
	insertRuns(t, s, newRun("r2", "deploy", 1))
}

func TestTxUnusableAfterUpdate(t *testing.T) {
	s, _ := openTemp(t, Options{})
	var kept host.Tx
	update(t, s, func(tx host.Tx) error { kept = tx; return nil })
	if _, _, err := kept.GetRun("r1"); !errors.Is(err, errTxDone) {
		t.Errorf("GetRun on a finished tx = %v, want errTxDone", err)
	}
	if err := kept.InsertRun(newRun("r1", "deploy", 1)); !errors.Is(err, errTxDone) {
		t.Errorf("InsertRun on a finished tx = %v, want errTxDone", err)
	}
}

func TestConcurrentReadersDuringWrites(t *testing.T) {
	s, _ := openTemp(t, Options{EventWindow: 50})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1))
	const writes = 300
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for range writes {
			if _, err := s.Update(ctx, func(tx host.Tx) error {
				_, err := tx.AppendEvent("r1", "node.started", nil, 1)
				return err
			}); err != nil {
				t.Errorf("Update: %v", err)
				return
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			var lastSeen int64
			for {
				select {
				case <-done:
					return
				default:
				}
				events, err := s.ListEvents(ctx, "r1", 0, 0)
				if err != nil {
					t.Errorf("ListEvents: %v", err)
					return
				}
				// A snapshot: contiguous seqs, within the window, never
				// older than a previous read.
				for i := 1; i < len(events); i++ {
					if events[i].Seq != events[i-1].Seq+1 || events[i].StateVersion <= events[i-1].StateVersion {
						t.Errorf("non-contiguous read: %v", seqs(events))
						return
					}
				}
				if len(events) > 50 {
					t.Errorf("read %d events, window is 50", len(events))
					return
				}
				if len(events) > 0 {
					last := events[len(events)-1].Seq
					if last < lastSeen {
						t.Errorf("read went back from seq %d to %d", lastSeen, last)
						return
					}
					lastSeen = last
				}
				if _, _, err := s.GetRun(ctx, "r1"); err != nil {
					t.Errorf("GetRun: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if r, _, _ := s.GetRun(ctx, "r1"); r.LastSeq != writes {
		t.Errorf("LastSeq = %d, want %d", r.LastSeq, writes)
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

// TestOnCommitSeesEveryEventInOrder: concurrent Updates appending events to
// one run reach OnCommit gap-free and in seq order.
func TestOnCommitSeesEveryEventInOrder(t *testing.T) {
	var mu sync.Mutex
	var seen []host.Event
	s, _ := openTemp(t, Options{OnCommit: func(ev []host.Event) {
		mu.Lock()
		seen = append(seen, ev...)
		mu.Unlock()
	}})
	ctx := context.Background()
	if _, err := s.Update(ctx, func(tx host.Tx) error {
		return tx.InsertRun(host.Run{RunID: "r", WorkflowKey: "w", Status: host.RunRunning, CreatedAtMs: 1})
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = s.Update(ctx, func(tx host.Tx) error {
				_, err := tx.AppendEvent("r", "node.started", []byte(`{}`), 1)
				return err
			})
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 100 {
		t.Fatalf("OnCommit saw %d events, want 100", len(seen))
	}
	for i, e := range seen {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d: out of order", i, e.Seq)
		}
	}
}
