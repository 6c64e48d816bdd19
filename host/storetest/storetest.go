package storetest

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// Options is what a test needs to vary in the store it opens.
type Options struct {
	// EventWindow is the number of events kept per run (0: the store's
	// default).
	EventWindow int
	// OnCommit, when set, is the store's commit hook: it must receive
	// every committed event once, in per-run seq order.
	OnCommit func(events []host.Event)
}

// Opener opens a new, empty store for one test and closes it when the test
// ends (t.Cleanup). Closing a store twice must be harmless: some tests
// close it themselves.
type Opener func(t *testing.T, opts Options) host.Store

// Run runs every contract test as a subtest of t, each on stores of its own
// from open.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		test func(t *testing.T, open Opener)
	}{
		{"RunRoundTrip", testRunRoundTrip},
		{"UpdateRunKeepsLastSeq", testUpdateRunKeepsLastSeq},
		{"NodeCountsFollowTheNodes", testNodeCountsFollowTheNodes},
		{"GetRunView", testGetRunView},
		{"GetRunViewSeesEveryCommit", testGetRunViewSeesEveryCommit},
		{"ListRuns", testListRuns},
		{"ListRunsPagesThroughEveryRunOnce", testListRunsPagesThroughEveryRunOnce},
		{"RunByIdempotencyKey", testRunByIdempotencyKey},
		{"ListExpiredRuns", testListExpiredRuns},
		{"DeleteRunTakesEverythingOfTheRun", testDeleteRunCascades},
		{"DeleteRunDropsItsNewEvents", testDeleteRunDropsItsNewEvents},
		{"NodeAndAttemptRoundTrip", testNodeAndAttemptRoundTrip},
		{"InsertNodeOnlyNew", testInsertNodeOnlyNew},
		{"DeleteNodeKeepsAttempts", testDeleteNodeKeepsAttempts},
		{"ListDueNodes", testListDueNodes},
		{"ListWaitingNodes", testListWaitingNodes},
		{"ApprovalRoundTrip", testApprovalRoundTrip},
		{"RecentManualDecisions", testRecentManualDecisions},
		{"Signals", testSignals},
		{"ValuesRoundTrip", testValuesRoundTrip},
		{"CronRoundTrip", testCronRoundTrip},
		{"ProcessRoundTrip", testProcessRoundTrip},
		{"WebhookDeliveries", testWebhookDeliveries},
		{"AppendEventRoundTrip", testAppendEventRoundTrip},
		{"PayloadsRoundTripByteForByte", testPayloadsByteForByte},
		{"EventWindowTrims", testEventWindowTrims},
		{"StateVersionNeverGoesBack", testStateVersionNeverGoesBack},
		{"FailedUpdateWritesNothing", testFailedUpdateWritesNothing},
		{"UpdatePanicIsRaisedInCaller", testUpdatePanic},
		{"TxUnusableAfterUpdate", testTxUnusableAfterUpdate},
		{"UpdateAfterClose", testUpdateAfterClose},
		{"EventsOnlyAfterCommit", testEventsOnlyAfterCommit},
		{"OnCommitSeesEveryEventOnceInOrder", testOnCommitOnceInOrder},
		{"ConcurrentUpdatesLoseNothing", testConcurrentUpdatesLoseNothing},
		{"ConcurrentReadModifyWriteTakesTurns", testReadModifyWriteTakesTurns},
		{"ConcurrentLaunchesWithOneIdempotencyKey", testIdempotencyRace},
		{"ConcurrentWebhookDeliveriesOfOneID", testWebhookDeliveryRace},
		{"ConcurrentReadersDuringWrites", testConcurrentReadersDuringWrites},
		{"HealthyWhenOpen", testHealthy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.test(t, open) })
	}
}

// update runs fn through Update and fails the test on error.
func update(t testing.TB, s host.Store, fn func(tx host.Tx) error) []host.Event {
	t.Helper()
	events, err := s.Update(context.Background(), fn)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	return events
}

// newRun is a minimal valid run.
func newRun(id, workflowKey string, createdAtMs int64) host.Run {
	return host.Run{RunID: id, WorkflowKey: workflowKey, Status: host.RunRunning, CreatedAtMs: createdAtMs}
}

// insertRuns commits the given runs in one Update.
func insertRuns(t testing.TB, s host.Store, runs ...host.Run) {
	t.Helper()
	update(t, s, func(tx host.Tx) error {
		for _, r := range runs {
			if err := tx.InsertRun(r); err != nil {
				return err
			}
		}
		return nil
	})
}

// appendEvents appends n events to the run, one Update each, and returns
// them.
func appendEvents(t testing.TB, s host.Store, runID string, n int) []host.Event {
	t.Helper()
	var all []host.Event
	for range n {
		all = append(all, update(t, s, func(tx host.Tx) error {
			err := tx.AppendEvent(runID, "node.started", []byte(`{"i":1}`), 1000)
			return err
		})...)
	}
	return all
}

// seqs returns the seqs of events.
func seqs(events []host.Event) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.Seq
	}
	return out
}

func ids(runs []host.Run) []string {
	out := []string{}
	for _, r := range runs {
		out = append(out, r.RunID)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// collector is an OnCommit that keeps what it receives.
type collector struct {
	mu     sync.Mutex
	events []host.Event
	calls  int
}

func (c *collector) onCommit(events []host.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	c.events = append(c.events, events...)
}

func (c *collector) snapshot() []host.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]host.Event(nil), c.events...)
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

// checkFeed checks that got holds each event of want exactly once and, per
// run, in seq order; want maps run ids to their events in seq order.
func checkFeed(t testing.TB, got []host.Event, want map[string][]host.Event) {
	t.Helper()
	byRun := map[string][]host.Event{}
	for _, e := range got {
		byRun[e.RunID] = append(byRun[e.RunID], e)
	}
	for id, w := range want {
		g := byRun[id]
		if len(g) != len(w) {
			t.Errorf("run %s: OnCommit saw seqs %v, want %v", id, seqs(g), seqs(w))
			continue
		}
		for i := range w {
			if g[i].Seq != w[i].Seq || g[i].StateVersion != w[i].StateVersion || g[i].Name != w[i].Name ||
				string(g[i].Payload) != string(w[i].Payload) {
				t.Errorf("run %s: OnCommit event %d = %+v, want %+v", id, i, g[i], w[i])
				break
			}
		}
	}
	for id, g := range byRun {
		if _, ok := want[id]; !ok {
			t.Errorf("OnCommit saw %d events of run %s, which has none", len(g), id)
		}
	}
}

// sortNodes orders nodes by FiresAtMs (stable).
func sortNodes(ns []host.Node) {
	sort.SliceStable(ns, func(i, j int) bool { return ns[i].FiresAtMs < ns[j].FiresAtMs })
}

func runID(prefix string, i int) string { return fmt.Sprintf("%s%03d", prefix, i) }
