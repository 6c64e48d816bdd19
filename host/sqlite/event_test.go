package sqlite

import (
	"context"
	"reflect"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

func TestEventSeqContinuesAcrossReopen(t *testing.T) {
	s, path := openTemp(t, Options{})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1), newRun("r2", "deploy", 2))
	first := appendEvents(t, s, "r1", 3)
	appendEvents(t, s, "r2", 2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openAt(t, path, Options{})
	v, err := s.StateVersion(ctx)
	if err != nil || v != 5 {
		t.Fatalf("StateVersion after reopen = %d, %v; want 5", v, err)
	}
	more := appendEvents(t, s, "r1", 2)
	if got := seqs(more); !reflect.DeepEqual(got, []int64{4, 5}) {
		t.Errorf("seqs after reopen = %v, want [4 5]", got)
	}
	if more[0].StateVersion != 6 || more[1].StateVersion != 7 {
		t.Errorf("stateVersions after reopen = %d, %d; want 6, 7", more[0].StateVersion, more[1].StateVersion)
	}
	all, _ := s.ListEvents(ctx, "r1", 0, 0)
	if got := seqs(all); !reflect.DeepEqual(got, []int64{1, 2, 3, 4, 5}) {
		t.Errorf("all seqs = %v", got)
	}
	if !reflect.DeepEqual(all[:3], first) {
		t.Errorf("events before reopen changed: %+v, want %+v", all[:3], first)
	}
}

// TestStateVersionNeverGoesBack checks that stateVersion is the highest
// version ever assigned even when the rows that carried it are gone.
func TestStateVersionNeverGoesBack(t *testing.T) {
	s, _ := openTemp(t, Options{EventWindow: 1})
	ctx := context.Background()
	if v, err := s.StateVersion(ctx); err != nil || v != 0 {
		t.Fatalf("StateVersion of an empty store = %d, %v", v, err)
	}
	insertRuns(t, s, newRun("r1", "deploy", 1))
	appendEvents(t, s, "r1", 4)
	// Delete the run's events behind the store's back (a cascade from a
	// future run deletion would do the same).
	update(t, s, func(htx host.Tx) error {
		_, err := htx.(*tx).exec(`DELETE FROM events`)
		return err
	})
	if v, _ := s.StateVersion(ctx); v != 4 {
		t.Errorf("StateVersion after deleting every event = %d, want 4", v)
	}
	if ev := appendEvents(t, s, "r1", 1)[0]; ev.StateVersion != 5 || ev.Seq != 5 {
		t.Errorf("next event = seq %d version %d, want 5, 5", ev.Seq, ev.StateVersion)
	}
}
