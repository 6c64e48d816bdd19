package postgres

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/host/postgres/pgtest"
	"github.com/smithers-orchestrator/smithers-go/host/storetest"
)

// pg is the test binary's PostgreSQL cluster, started by the first test
// that needs it.
var pg pgtest.Shared

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &pg)) }

// openDB opens a store on url and closes it when the test ends.
func openDB(t testing.TB, url string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// openNew opens a store on a new database of the shared cluster and
// returns it with the database's URL.
func openNew(t testing.TB, opts Options) (*Store, string) {
	t.Helper()
	url := pg.Cluster(t).NewDatabase(t)
	return openDB(t, url, opts), url
}

// TestStoreContract runs the store conformance suite, which host/sqlite
// runs too.
func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts storetest.Options) host.Store {
		s, _ := openNew(t, Options{EventWindow: opts.EventWindow, OnCommit: opts.OnCommit})
		return s
	})
}

// newRun is a minimal valid run.
func newRun(id, workflowKey string, createdAtMs int64) host.Run {
	return host.Run{RunID: id, WorkflowKey: workflowKey, Status: host.RunRunning, CreatedAtMs: createdAtMs}
}

// update runs fn through Update and fails the test on error.
func update(t testing.TB, s *Store, fn func(tx host.Tx) error) []host.Event {
	t.Helper()
	events, err := s.Update(context.Background(), fn)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	return events
}

// appendEvent appends one event to the run in its own Update.
func appendEvent(t testing.TB, s *Store, runID, name string) host.Event {
	t.Helper()
	return update(t, s, func(tx host.Tx) error {
		err := tx.AppendEvent(runID, name, []byte(`{}`), 1)
		return err
	})[0]
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
