package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// openAt opens the store at path and closes it when the test ends.
func openAt(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// openTemp opens a store in a fresh temporary directory.
func openTemp(t testing.TB, opts Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", "smithers.db")
	return openAt(t, path, opts), path
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

// newRun is a minimal valid run.
func newRun(id, workflowKey string, createdAtMs int64) host.Run {
	return host.Run{RunID: id, WorkflowKey: workflowKey, Status: host.RunRunning, CreatedAtMs: createdAtMs}
}

// insertRuns commits the given runs in one Update.
func insertRuns(t testing.TB, s *Store, runs ...host.Run) {
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

// appendEvents appends n events to the run, one Update each, and returns them.
func appendEvents(t testing.TB, s *Store, runID string, n int) []host.Event {
	t.Helper()
	var all []host.Event
	for i := 0; i < n; i++ {
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
