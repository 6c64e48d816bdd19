package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// testFailedUpdateWritesNothing: a function returning an error writes
// nothing and gets no events, however much it wrote first; so does one
// whose context is cancelled.
func testFailedUpdateWritesNothing(t *testing.T, open Opener) {
	var feed collector
	s := open(t, Options{OnCommit: feed.onCommit})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1))
	errBoom := errors.New("boom")
	events, err := s.Update(ctx, func(tx host.Tx) error {
		if err := tx.InsertRun(newRun("r2", "deploy", 2)); err != nil {
			return err
		}
		if err := tx.AppendEvent("r1", "node.started", nil, 1); err != nil {
			return err
		}
		if err := tx.PutNode(host.Node{RunID: "r1", NodeID: "n", Kind: host.KindTask, State: host.NodePending}); err != nil {
			return err
		}
		if err := tx.PutCron(host.Cron{CronID: "c", Pattern: "* * * * *"}); err != nil {
			return err
		}
		if _, err := tx.InsertSignal(host.Signal{RunID: "r1", Name: "s"}); err != nil {
			return err
		}
		return fmt.Errorf("refused: %w", errBoom)
	})
	if !errors.Is(err, errBoom) || events != nil {
		t.Fatalf("Update = %v, %v; want the function's error and no events", events, err)
	}
	if _, found, _ := s.GetRun(ctx, "r2"); found {
		t.Error("the failed function's run was committed")
	}
	if evs, _ := s.ListEvents(ctx, "r1", 0, 0); len(evs) != 0 {
		t.Errorf("the failed function's events were committed: %+v", evs)
	}
	if r, _, _ := s.GetRun(ctx, "r1"); r.LastSeq != 0 {
		t.Errorf("LastSeq after a failed function = %d, want 0", r.LastSeq)
	}
	if nodes, _ := s.ListNodes(ctx, "r1"); len(nodes) != 0 {
		t.Errorf("the failed function's node was committed: %+v", nodes)
	}
	if crons, _ := s.ListCrons(ctx); len(crons) != 0 {
		t.Errorf("the failed function's cron was committed: %+v", crons)
	}
	if sigs, _ := s.ListSignals(ctx, "r1"); len(sigs) != 0 {
		t.Errorf("the failed function's signal was committed: %+v", sigs)
	}

	// A cancelled context: the function does not run (or its work is
	// dropped) and the caller is told.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	ran := false
	if _, err := s.Update(cctx, func(tx host.Tx) error {
		ran = true
		return tx.InsertRun(newRun("r3", "deploy", 3))
	}); !errors.Is(err, context.Canceled) {
		t.Errorf("Update with a cancelled context = %v (ran %v), want context.Canceled", err, ran)
	}
	if _, found, _ := s.GetRun(ctx, "r3"); found {
		t.Error("an Update with a cancelled context committed")
	}

	// The store goes on: the seq did not move.
	ev := appendEvents(t, s, "r1", 1)
	if ev[0].Seq != 1 {
		t.Errorf("event after failed functions = seq %d, want 1", ev[0].Seq)
	}
	waitFor(t, "OnCommit to see the committed event", func() bool { return feed.len() >= 1 })
	checkFeed(t, feed.snapshot(), map[string][]host.Event{"r1": ev})
}

func testUpdatePanic(t *testing.T, open Opener) {
	s := open(t, Options{})
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

func testTxUnusableAfterUpdate(t *testing.T, open Opener) {
	s := open(t, Options{})
	var kept host.Tx
	update(t, s, func(tx host.Tx) error { kept = tx; return nil })
	if _, _, err := kept.GetRun("r1"); err == nil {
		t.Error("GetRun on a finished tx succeeded")
	}
	if err := kept.InsertRun(newRun("r1", "deploy", 1)); err == nil {
		t.Error("InsertRun on a finished tx succeeded")
	}
	if _, found, _ := s.GetRun(context.Background(), "r1"); found {
		t.Error("a finished tx wrote a run")
	}
}

func testUpdateAfterClose(t *testing.T, open Opener) {
	s := open(t, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ran := false
	if _, err := s.Update(context.Background(), func(host.Tx) error { ran = true; return nil }); err == nil || ran {
		t.Errorf("Update after Close = %v (ran %v), want an error", err, ran)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// testEventsOnlyAfterCommit: while the function runs, neither readers nor
// OnCommit see its events; once Update returns, readers do.
func testEventsOnlyAfterCommit(t *testing.T, open Opener) {
	var feed collector
	s := open(t, Options{OnCommit: feed.onCommit})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1))
	events := update(t, s, func(tx host.Tx) error {
		if err := tx.AppendEvent("r1", "node.started", nil, 1); err != nil {
			return err
		}
		if evs, err := s.ListEvents(ctx, "r1", 0, 0); err != nil || len(evs) != 0 {
			t.Errorf("a reader saw uncommitted events: %+v, %v", evs, err)
		}
		if r, _, err := s.GetRun(ctx, "r1"); err != nil || r.LastSeq != 0 {
			t.Errorf("a reader saw an uncommitted LastSeq %d (%v)", r.LastSeq, err)
		}
		if n := feed.len(); n != 0 {
			t.Errorf("OnCommit saw %d events before the commit", n)
		}
		return nil
	})
	if evs, _ := s.ListEvents(ctx, "r1", 0, 0); len(evs) != 1 || evs[0].Seq != events[0].Seq {
		t.Errorf("after Update a reader sees %+v, want %+v", evs, events)
	}
	waitFor(t, "OnCommit to see the event", func() bool { return feed.len() == 1 })
	checkFeed(t, feed.snapshot(), map[string][]host.Event{"r1": events})
}

// testOnCommitOnceInOrder: concurrent Updates appending to a few runs reach
// OnCommit once each, in per-run seq order, with the seq and stateVersion
// Update returned.
func testOnCommitOnceInOrder(t *testing.T, open Opener) {
	var feed collector
	s := open(t, Options{OnCommit: feed.onCommit})
	ctx := context.Background()
	const runs, per = 4, 25
	for i := range runs {
		insertRuns(t, s, newRun(runID("r", i), "w", int64(i)))
	}
	var (
		mu   sync.Mutex
		all  []host.Event
		wg   sync.WaitGroup
		errs = make(chan error, runs*per)
	)
	for i := range runs * per {
		wg.Go(func() {
			id := runID("r", i%runs)
			evs, err := s.Update(ctx, func(tx host.Tx) error {
				err := tx.AppendEvent(id, "node.started", []byte(fmt.Sprintf(`{"i":%d}`, i)), 1)
				return err
			})
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			all = append(all, evs...)
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Update: %v", err)
	}
	want := map[string][]host.Event{}
	for i := range runs {
		id := runID("r", i)
		evs, err := s.ListEvents(ctx, id, 0, 0)
		if err != nil || len(evs) != per {
			t.Fatalf("run %s has %d events (%v), want %d", id, len(evs), err, per)
		}
		want[id] = evs
	}
	// What Update returned is what was stored.
	returned := map[int64]host.Event{}
	for _, e := range all {
		returned[e.StateVersion] = e
	}
	for _, evs := range want {
		for _, e := range evs {
			if r, ok := returned[e.StateVersion]; !ok || r.Seq != e.Seq || r.RunID != e.RunID {
				t.Errorf("stored event %+v was not returned by its Update (got %+v)", e, r)
			}
		}
	}
	waitFor(t, "OnCommit to see every event", func() bool { return feed.len() >= runs*per })
	// Nothing more may arrive: close the store, then count.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkFeed(t, feed.snapshot(), want)
}

// testConcurrentUpdatesLoseNothing: many goroutines' Updates, some failing,
// commit exactly the successful ones, each whole.
func testConcurrentUpdatesLoseNothing(t *testing.T, open Opener) {
	s := open(t, Options{})
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
			id := runID("r", i)
			out[i].events, out[i].err = s.Update(ctx, func(tx host.Tx) error {
				if err := tx.InsertRun(newRun(id, "deploy", int64(i+1))); err != nil {
					return err
				}
				for range 2 {
					if err := tx.AppendEvent(id, "node.started", nil, 1); err != nil {
						return err
					}
				}
				if err := tx.AppendEvent("shared", "node.started", nil, 1); err != nil {
					return err
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
	var maxVersion int64
	for i, o := range out {
		id := runID("r", i)
		r, found, err := s.GetRun(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if i%4 == 0 || i%7 == 0 {
			if o.err == nil || o.events != nil || found {
				t.Errorf("%s: err %v, events %v, run found %v; want failure and nothing written", id, o.err, o.events, found)
			}
			continue
		}
		committed++
		if o.err != nil || len(o.events) != 3 || !found || r.LastSeq != 2 {
			t.Errorf("%s: err %v, %d events, found %v, LastSeq %d", id, o.err, len(o.events), found, r.LastSeq)
			continue
		}
		for j, e := range o.events[:2] {
			if e.Seq != int64(j+1) || e.RunID != id {
				t.Errorf("%s: event %d = %+v", id, j, e)
			}
		}
		for _, e := range o.events {
			if versions[e.StateVersion] {
				t.Errorf("stateVersion %d given twice", e.StateVersion)
			}
			versions[e.StateVersion] = true
			maxVersion = max(maxVersion, e.StateVersion)
		}
	}
	// The shared run's seqs are gap-free: one per committed function.
	shared, err := s.ListEvents(ctx, "shared", 0, 0)
	if err != nil || len(shared) != committed {
		t.Fatalf("shared run has %d events (%v), want %d", len(shared), err, committed)
	}
	for i, e := range shared {
		if e.Seq != int64(i+1) || (i > 0 && e.StateVersion <= shared[i-1].StateVersion) {
			t.Fatalf("shared run's events out of order at %d: %+v", i, e)
		}
	}
	if r, _, _ := s.GetRun(ctx, "shared"); r.LastSeq != int64(committed) {
		t.Errorf("shared LastSeq = %d, want %d", r.LastSeq, committed)
	}
	if v, _ := s.StateVersion(ctx); v != maxVersion {
		t.Errorf("StateVersion = %d, want %d", v, maxVersion)
	}
}

// testReadModifyWriteTakesTurns: functions that read a run, node, cron or
// approval through Tx and write it back never lose a concurrent update.
func testReadModifyWriteTakesTurns(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1))
	update(t, s, func(tx host.Tx) error {
		if err := tx.PutNode(host.Node{RunID: "r1", NodeID: "n", Kind: host.KindTask, State: host.NodeInProgress}); err != nil {
			return err
		}
		if err := tx.PutApproval(host.Approval{RunID: "r1", NodeID: "a", Status: host.ApprovalRequested}); err != nil {
			return err
		}
		return tx.PutCron(host.Cron{CronID: "c", Pattern: "* * * * *", Enabled: true})
	})
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, err := s.Update(ctx, func(tx host.Tx) error {
				switch i % 4 {
				case 0:
					r, _, err := tx.GetRun("r1")
					if err != nil {
						return err
					}
					r.HeartbeatAtMs++
					return tx.UpdateRun(r)
				case 1:
					nd, _, err := tx.GetNode("r1", "n", 0)
					if err != nil {
						return err
					}
					nd.Attempts++
					return tx.PutNode(nd)
				case 2:
					c, _, err := tx.GetCron("c")
					if err != nil {
						return err
					}
					c.NextRunAtMs++
					return tx.PutCron(c)
				default:
					a, _, err := tx.GetApproval("r1", "a", 0)
					if err != nil {
						return err
					}
					a.DecidedAtMs++
					return tx.PutApproval(a)
				}
			})
			if err != nil {
				t.Errorf("Update: %v", err)
			}
		})
	}
	wg.Wait()
	r, _, _ := s.GetRun(ctx, "r1")
	nodes, _ := s.ListNodes(ctx, "r1")
	crons, _ := s.ListCrons(ctx)
	approvals, _ := s.ListApprovals(ctx, host.ApprovalFilter{RunID: "r1"})
	if r.HeartbeatAtMs != n/4 || len(nodes) != 1 || nodes[0].Attempts != n/4 ||
		len(crons) != 1 || crons[0].NextRunAtMs != n/4 || len(approvals) != 1 || approvals[0].DecidedAtMs != n/4 {
		t.Errorf("after %d increments of each: run %d, node %+v, cron %+v, approval %+v", n/4,
			r.HeartbeatAtMs, nodes, crons, approvals)
	}
}

// testIdempotencyRace: concurrent launches with one idempotency key, each
// looking the key up before inserting, create one run, and every launch
// answers with it.
func testIdempotencyRace(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	const n = 16
	got := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, err := s.Update(ctx, func(tx host.Tx) error {
				got[i] = ""
				r, ok, err := tx.RunByIdempotencyKey("deploy", "once")
				if err != nil {
					return err
				}
				if ok {
					got[i] = r.RunID
					return nil
				}
				r = newRun(runID("launch", i), "deploy", int64(i))
				r.IdempotencyKey = "once"
				if err := tx.InsertRun(r); err != nil {
					return err
				}
				if err := tx.AppendEvent(r.RunID, "run.created", nil, 1); err != nil {
					return err
				}
				got[i] = r.RunID
				return nil
			})
			if err != nil {
				t.Errorf("launch %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	runs, err := s.ListRuns(ctx, host.RunFilter{WorkflowKey: "deploy"})
	if err != nil || len(runs) != 1 {
		t.Fatalf("launches created %d runs (%v), want 1", len(runs), err)
	}
	for i, id := range got {
		if id != runs[0].RunID {
			t.Errorf("launch %d answered %q, want %q", i, id, runs[0].RunID)
		}
	}
}

// testWebhookDeliveryRace: concurrent deliveries of one id, each checking
// the delivery record before acting, act once.
func testWebhookDeliveryRace(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "hook", 1))
	const n = 12
	var (
		mu    sync.Mutex
		first int
		wg    sync.WaitGroup
	)
	for range n {
		wg.Go(func() {
			var acted bool
			_, err := s.Update(ctx, func(tx host.Tx) error {
				acted = false
				if _, seen, err := tx.WebhookDelivery("hook", "delivery-1", 0); err != nil || seen {
					return err
				}
				if _, err := tx.InsertSignal(host.Signal{RunID: "r1", Name: "push"}); err != nil {
					return err
				}
				acted = true
				return tx.PutWebhookDelivery("hook", "delivery-1", `{"delivered":1}`, 10)
			})
			if err != nil {
				t.Errorf("delivery: %v", err)
			}
			if acted {
				mu.Lock()
				first++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	sigs, _ := s.ListSignals(ctx, "r1")
	if first != 1 || len(sigs) != 1 {
		t.Errorf("%d deliveries acted and %d signals were stored; want 1 and 1", first, len(sigs))
	}
}

func testConcurrentReadersDuringWrites(t *testing.T, open Opener) {
	const window = 50
	s := open(t, Options{EventWindow: window})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1))
	const writes = 200
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for range writes {
			if _, err := s.Update(ctx, func(tx host.Tx) error {
				err := tx.AppendEvent("r1", "node.started", nil, 1)
				return err
			}); err != nil {
				t.Errorf("Update: %v", err)
				return
			}
		}
	})
	for range 3 {
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
				if len(events) > window {
					t.Errorf("read %d events, window is %d", len(events), window)
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
			}
		})
	}
	wg.Wait()
	if r, _, _ := s.GetRun(ctx, "r1"); r.LastSeq != writes {
		t.Errorf("LastSeq = %d, want %d", r.LastSeq, writes)
	}
}

func testHealthy(t *testing.T, open Opener) {
	s := open(t, Options{})
	if err := s.Health(); err != nil {
		t.Errorf("Health of a new store = %v", err)
	}
	insertRuns(t, s, newRun("r1", "deploy", 1))
	if err := s.Health(); err != nil {
		t.Errorf("Health after a commit = %v", err)
	}
}
