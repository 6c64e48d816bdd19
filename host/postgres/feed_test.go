package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/testkit"
)

// feedLog collects what OnCommit receives.
type feedLog struct {
	mu     sync.Mutex
	events []host.Event
}

func (l *feedLog) onCommit(events []host.Event) {
	l.mu.Lock()
	l.events = append(l.events, events...)
	l.mu.Unlock()
}

func (l *feedLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// check fails t unless the log holds every event of want once, per run in
// seq order, and nothing else.
func (l *feedLog) check(t *testing.T, name string, want map[string][]host.Event) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	got := map[string][]int64{}
	for _, e := range l.events {
		got[e.RunID] = append(got[e.RunID], e.Seq)
	}
	for id, evs := range want {
		seqs := got[id]
		ok := len(seqs) == len(evs)
		for i := 0; ok && i < len(evs); i++ {
			ok = seqs[i] == evs[i].Seq
		}
		if !ok {
			t.Errorf("%s saw run %s as seqs %v, want 1..%d once each in order", name, id, seqs, len(evs))
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("%s saw events of run %s, which has none", name, id)
		}
	}
}

// stored returns every run's events as the database has them.
func stored(t *testing.T, s *Store) (map[string][]host.Event, int) {
	t.Helper()
	runs, err := s.ListRuns(context.Background(), host.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	want, total := map[string][]host.Event{}, 0
	for _, r := range runs {
		evs, err := s.ListEvents(context.Background(), r.RunID, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > 0 {
			want[r.RunID] = evs
			total += len(evs)
		}
	}
	return want, total
}

// killListeners terminates the listening connections of every store on
// the database and returns how many it killed.
func killListeners(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	err := s.pool.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE query LIKE 'LISTEN%' AND datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestEveryStoreSeesEveryCommit: two stores on one database (two gateway
// processes) each receive every event either commits, once, in per-run
// order, also while their listening connections are killed and come back.
func TestEveryStoreSeesEveryCommit(t *testing.T) {
	url := pg.Cluster(t).NewDatabase(t)
	var logA, logB testkit.Buffer
	var feedA, feedB feedLog
	a := openDB(t, url, Options{OnCommit: feedA.onCommit, Logger: slog.New(slog.NewTextHandler(&logA, nil))})
	b := openDB(t, url, Options{OnCommit: feedB.onCommit, Logger: slog.New(slog.NewTextHandler(&logB, nil))})
	ctx := context.Background()
	runs := []string{"a0", "a1", "a2", "b0", "b1", "b2", "s0", "s1"}
	for i, id := range runs {
		update(t, a, func(tx host.Tx) error { return tx.InsertRun(newRun(id, "w", int64(i))) })
	}
	// Each store writes its own runs and the shared ones, 1 to 3 events
	// per Update.
	var committed atomic.Int64
	var wg sync.WaitGroup
	for w, s := range map[string]*Store{"a": a, "b": b} {
		for g := range 3 {
			wg.Go(func() {
				for i := range 40 {
					id := fmt.Sprintf("%s%d", w, (g+i)%3)
					if i%3 == 0 {
						id = fmt.Sprintf("s%d", i%2)
					}
					n := 1 + i%3
					if _, err := s.Update(ctx, func(tx host.Tx) error {
						for range n {
							if err := tx.AppendEvent(id, "node.started", []byte(`{}`), 1); err != nil {
								return err
							}
						}
						return nil
					}); err != nil {
						t.Errorf("Update: %v", err)
						return
					}
					committed.Add(int64(n))
				}
			})
		}
	}
	// Kill both listeners three times while the writers run, each time
	// once they are back.
	back := func(n int) {
		t.Helper()
		waitFor(t, "both listeners to be back", func() bool {
			return logA.Count("listening again") >= n && logB.Count("listening again") >= n
		})
	}
	for i, at := range []int64{60, 200, 350} {
		waitFor(t, fmt.Sprintf("%d events committed", at), func() bool { return committed.Load() >= at })
		back(i)
		if n := killListeners(t, a); n < 2 {
			t.Fatalf("killed %d listening connections, want both stores'", n)
		}
	}
	wg.Wait()
	// And once more with nothing in flight: what B commits while A is
	// not listening reaches A when it is back.
	back(3)
	if n := killListeners(t, a); n < 2 {
		t.Fatalf("killed %d listening connections, want both stores'", n)
	}
	for _, id := range runs {
		appendEvent(t, b, id, "node.finished")
	}
	back(4)
	want, total := stored(t, a)
	waitFor(t, "both stores to see every event", func() bool { return feedA.len() >= total && feedB.len() >= total })
	// Nothing more may arrive: close, then compare.
	a.Close()
	b.Close()
	feedA.check(t, "store A", want)
	feedB.check(t, "store B", want)
}

// TestUpdatesOfOneRunFromTwoStoresTakeTurns: two processes appending to one
// run and rewriting its row never interleave: seqs are gap-free and no
// update is lost.
func TestUpdatesOfOneRunFromTwoStoresTakeTurns(t *testing.T) {
	url := pg.Cluster(t).NewDatabase(t)
	a := openDB(t, url, Options{})
	b := openDB(t, url, Options{})
	ctx := context.Background()
	update(t, a, func(tx host.Tx) error { return tx.InsertRun(newRun("r", "w", 1)) })
	const per = 60
	var wg sync.WaitGroup
	for _, s := range []*Store{a, b, a, b} {
		wg.Go(func() {
			for range per {
				if _, err := s.Update(ctx, func(tx host.Tx) error {
					r, _, err := tx.GetRun("r")
					if err != nil {
						return err
					}
					r.HeartbeatAtMs++
					if err := tx.UpdateRun(r); err != nil {
						return err
					}
					err = tx.AppendEvent("r", "run.heartbeat", nil, 1)
					return err
				}); err != nil {
					t.Errorf("Update: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	r, _, err := b.GetRun(ctx, "r")
	if err != nil || r.HeartbeatAtMs != 4*per || r.LastSeq != 4*per {
		t.Fatalf("run = heartbeat %d, lastSeq %d (%v); want %d and %d", r.HeartbeatAtMs, r.LastSeq, err, 4*per, 4*per)
	}
	evs, _ := a.ListEvents(ctx, "r", 0, 0)
	for i, e := range evs {
		if e.Seq != int64(i+1) || (i > 0 && e.StateVersion <= evs[i-1].StateVersion) {
			t.Fatalf("event %d: seq %d version %d after %d", i, e.Seq, e.StateVersion, evs[max(i-1, 0)].StateVersion)
		}
	}
}

// TestOneIdempotencyKeyFromTwoStoresGivesOneRun: concurrent launches with
// one key on two processes create one run, which every launch returns.
func TestOneIdempotencyKeyFromTwoStoresGivesOneRun(t *testing.T) {
	url := pg.Cluster(t).NewDatabase(t)
	stores := []*Store{openDB(t, url, Options{}), openDB(t, url, Options{})}
	ctx := context.Background()
	for round := range 5 {
		key := fmt.Sprintf("key-%d", round)
		got := make([]string, 12)
		var wg sync.WaitGroup
		for i := range got {
			wg.Go(func() {
				_, err := stores[i%2].Update(ctx, func(tx host.Tx) error {
					got[i] = ""
					r, ok, err := tx.RunByIdempotencyKey("deploy", key)
					if err != nil || ok {
						got[i] = r.RunID
						return err
					}
					r = newRun(fmt.Sprintf("%s-launch-%d", key, i), "deploy", 1)
					r.IdempotencyKey = key
					if err := tx.InsertRun(r); err != nil {
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
		runs, err := stores[0].ListRuns(ctx, host.RunFilter{RunIDPrefix: key + "-"})
		if err != nil || len(runs) != 1 {
			t.Fatalf("key %s: %d runs (%v), want 1", key, len(runs), err)
		}
		for i, id := range got {
			if id != runs[0].RunID {
				t.Errorf("key %s: launch %d answered %q, want %q", key, i, id, runs[0].RunID)
			}
		}
	}
}

// TestFeedForgetsRunsAndStillDeliversOnce: a store whose map of delivered
// seqs holds a few runs (the others are forgotten once their events are
// behind a barrier) still delivers every event of another process's
// commits once and in order, also for runs it forgot that get events
// again.
func TestFeedForgetsRunsAndStillDeliversOnce(t *testing.T) {
	url := pg.Cluster(t).NewDatabase(t)
	var feedA feedLog
	a := openDB(t, url, Options{OnCommit: feedA.onCommit})
	a.feed.mu.Lock()
	a.feed.maxRuns, a.feed.completedTTL, a.feed.barrierEvery = 3, 0, 10*time.Millisecond
	a.feed.mu.Unlock()
	b := openDB(t, url, Options{})
	const runs = 30
	total := 0
	for i := range runs {
		id := fmt.Sprintf("r%02d", i)
		update(t, b, func(tx host.Tx) error { return tx.InsertRun(newRun(id, "w", int64(i))) })
		appendEvent(t, b, id, "node.started")
		appendEvent(t, b, id, host.EventRunCompleted)
		total += 2
		// Every few runs, let A catch up so that it forgets the old ones.
		if i%5 == 4 {
			waitFor(t, "A to see the events so far", func() bool { return feedA.len() >= total })
		}
	}
	waitFor(t, "A to forget runs", func() bool {
		a.feed.mu.Lock()
		defer a.feed.mu.Unlock()
		return a.feed.evictions > 0
	})
	// Forgotten runs get events again (a retried run), from B and from A.
	for i := range runs {
		s := b
		if i%2 == 0 {
			s = a
		}
		appendEvent(t, s, fmt.Sprintf("r%02d", i), "node.started")
		total++
	}
	waitFor(t, "A to see every event", func() bool { return feedA.len() >= total })
	want, n := stored(t, b)
	if n != total {
		t.Fatalf("stored %d events, want %d", n, total)
	}
	a.Close()
	feedA.check(t, "store A", want)
}
