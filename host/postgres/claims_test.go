package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// Two gateway processes that find the same work due (a cron slot, a timer,
// a webhook delivery retried by its sender) both try to do it; the row or
// key each reads in its transaction decides which one does. These tests
// run the engine's pattern (read under Tx, check, write) from two stores
// at once.

func twoStores(t *testing.T) []*Store {
	t.Helper()
	url := pg.Cluster(t).NewDatabase(t)
	return []*Store{openDB(t, url, Options{}), openDB(t, url, Options{})}
}

// race runs fn on each store from several goroutines at once.
func race(t *testing.T, stores []*Store, perStore int, fn func(tx host.Tx) (bool, error)) int {
	t.Helper()
	var did atomic.Int64
	var wg sync.WaitGroup
	for _, s := range stores {
		for range perStore {
			wg.Go(func() {
				var done bool
				_, err := s.Update(context.Background(), func(tx host.Tx) error {
					var err error
					done, err = fn(tx)
					return err
				})
				if err != nil {
					t.Errorf("Update: %v", err)
				}
				if done {
					did.Add(1)
				}
			})
		}
	}
	wg.Wait()
	return int(did.Load())
}

func TestACronSlotStartsOneRunAcrossProcesses(t *testing.T) {
	stores := twoStores(t)
	update(t, stores[0], func(tx host.Tx) error {
		return tx.PutCron(host.Cron{CronID: "gateway:nightly", Pattern: "0 3 * * *", WorkflowKey: "nightly", Enabled: true, NextRunAtMs: 1000})
	})
	for slot := int64(1000); slot <= 5000; slot += 1000 {
		now := slot + 1
		started := race(t, stores, 4, func(tx host.Tx) (bool, error) {
			c, ok, err := tx.GetCron("gateway:nightly")
			if err != nil || !ok || c.NextRunAtMs > now {
				return false, err // another process took the slot
			}
			c.LastRunAtMs, c.NextRunAtMs = now, slot+1000
			if err := tx.PutCron(c); err != nil {
				return false, err
			}
			return true, tx.InsertRun(newRun(fmt.Sprintf("nightly-%d", slot), "nightly", now))
		})
		if started != 1 {
			t.Fatalf("slot %d started %d runs, want 1", slot, started)
		}
	}
}

func TestATimerFiresOnceAcrossProcesses(t *testing.T) {
	stores := twoStores(t)
	update(t, stores[0], func(tx host.Tx) error {
		if err := tx.InsertRun(newRun("r", "w", 1)); err != nil {
			return err
		}
		for i := range 5 {
			n := host.Node{RunID: "r", NodeID: fmt.Sprintf("sleep-%d", i), Kind: host.KindTimer, State: host.NodeWaitingTimer, FiresAtMs: 10}
			if err := tx.PutNode(n); err != nil {
				return err
			}
		}
		return nil
	})
	due, err := stores[1].ListDueNodes(context.Background(), 10)
	if err != nil || len(due) != 5 {
		t.Fatalf("ListDueNodes = %d nodes, %v; want 5", len(due), err)
	}
	for _, d := range due {
		fired := race(t, stores, 3, func(tx host.Tx) (bool, error) {
			n, ok, err := tx.GetNode(d.RunID, d.NodeID, d.Iteration)
			if err != nil || !ok || n.State != host.NodeWaitingTimer {
				return false, err // settled by another process
			}
			n.State, n.FiresAtMs = host.NodeFinished, 0
			if err := tx.PutNode(n); err != nil {
				return false, err
			}
			err = tx.AppendEvent(n.RunID, host.EventNodeFinished, []byte(`{"nodeId":"`+n.NodeID+`"}`), 11)
			return true, err
		})
		if fired != 1 {
			t.Errorf("timer %s fired %d times, want 1", d.NodeID, fired)
		}
	}
	if due, _ := stores[0].ListDueNodes(context.Background(), 0); len(due) != 0 {
		t.Errorf("timers still due after firing: %+v", due)
	}
	if r, _, _ := stores[0].GetRun(context.Background(), "r"); r.LastSeq != 5 {
		t.Errorf("the run got %d events, want one per timer", r.LastSeq)
	}
}

func TestAWebhookDeliveryActsOnceAcrossProcesses(t *testing.T) {
	stores := twoStores(t)
	update(t, stores[0], func(tx host.Tx) error { return tx.InsertRun(newRun("r", "hook", 1)) })
	for i := range 5 {
		id := fmt.Sprintf("delivery-%d", i)
		acted := race(t, stores, 3, func(tx host.Tx) (bool, error) {
			if _, seen, err := tx.WebhookDelivery("hook", id, 0); err != nil || seen {
				return false, err
			}
			if _, err := tx.InsertSignal(host.Signal{RunID: "r", Name: "push", ReceivedAtMs: 5}); err != nil {
				return false, err
			}
			return true, tx.PutWebhookDelivery("hook", id, `{"delivered":1}`, 5)
		})
		if acted != 1 {
			t.Errorf("%s acted %d times, want 1", id, acted)
		}
	}
	sigs, _ := stores[1].ListSignals(context.Background(), "r")
	if len(sigs) != 5 {
		t.Errorf("%d signals stored, want 5", len(sigs))
	}
}
