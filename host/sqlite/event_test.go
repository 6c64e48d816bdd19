package sqlite

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

func TestAppendEventRoundTrip(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1))
	events := update(t, s, func(tx host.Tx) error {
		if _, err := tx.AppendEvent("r1", "node.pending", json.RawMessage(`{"nodeId":"a"}`), 100); err != nil {
			return err
		}
		_, err := tx.AppendEvent("r1", "run.heartbeat", nil, 101)
		return err
	})
	want := []host.Event{
		{RunID: "r1", Seq: 1, StateVersion: 1, Name: "node.pending", Payload: json.RawMessage(`{"nodeId":"a"}`), AtMs: 100},
		{RunID: "r1", Seq: 2, StateVersion: 2, Name: "run.heartbeat", AtMs: 101},
	}
	if !reflect.DeepEqual(events, want) {
		t.Errorf("Update events = %+v, want %+v", events, want)
	}
	got, err := s.ListEvents(ctx, "r1", 0, 0)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ListEvents = %+v, %v; want %+v", got, err, want)
	}
	if got, _ := s.ListEvents(ctx, "r1", 1, 0); !reflect.DeepEqual(got, want[1:]) {
		t.Errorf("ListEvents after 1 = %+v", got)
	}
	if got, _ := s.ListEvents(ctx, "r1", 0, 1); !reflect.DeepEqual(got, want[:1]) {
		t.Errorf("ListEvents limit 1 = %+v", got)
	}
	r, _, _ := s.GetRun(ctx, "r1")
	if r.LastSeq != 2 {
		t.Errorf("LastSeq = %d, want 2", r.LastSeq)
	}

	_, err = s.Update(ctx, func(tx host.Tx) error {
		_, err := tx.AppendEvent("ghost", "node.pending", nil, 1)
		return err
	})
	if err == nil {
		t.Error("AppendEvent to a missing run succeeded")
	}
}

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

func TestEventWindowTrims(t *testing.T) {
	const window = 5
	s, path := openTemp(t, Options{EventWindow: window})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1), newRun("r2", "deploy", 2))
	if seq, _ := s.FirstEventSeq(ctx, "r1"); seq != 0 {
		t.Errorf("FirstEventSeq without events = %d, want 0", seq)
	}
	appendEvents(t, s, "r2", 1)

	var lastVersion int64
	for i := 1; i <= 12; i++ {
		ev := appendEvents(t, s, "r1", 1)[0]
		if ev.StateVersion <= lastVersion {
			t.Fatalf("stateVersion went from %d to %d", lastVersion, ev.StateVersion)
		}
		lastVersion = ev.StateVersion
		kept, err := s.ListEvents(ctx, "r1", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		wantKept := min(i, window)
		if len(kept) != wantKept {
			t.Fatalf("after %d events %d are kept, want %d", i, len(kept), wantKept)
		}
		wantFirst := int64(i - wantKept + 1)
		if kept[0].Seq != wantFirst || kept[len(kept)-1].Seq != int64(i) {
			t.Errorf("after %d events kept seqs %v", i, seqs(kept))
		}
		if first, _ := s.FirstEventSeq(ctx, "r1"); first != wantFirst {
			t.Errorf("after %d events FirstEventSeq = %d, want %d", i, first, wantFirst)
		}
	}
	// The other run's window is untouched.
	if got, _ := s.ListEvents(ctx, "r2", 0, 0); len(got) != 1 {
		t.Errorf("r2 events = %v", got)
	}
	if v, _ := s.StateVersion(ctx); v != lastVersion {
		t.Errorf("StateVersion = %d, want %d", v, lastVersion)
	}

	// After reopen (with a larger window) neither seq nor stateVersion
	// restarts.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path, Options{EventWindow: 100})
	if v, _ := s.StateVersion(ctx); v != lastVersion {
		t.Errorf("StateVersion after reopen = %d, want %d", v, lastVersion)
	}
	ev := appendEvents(t, s, "r1", 1)[0]
	if ev.Seq != 13 || ev.StateVersion != lastVersion+1 {
		t.Errorf("after reopen event = seq %d version %d, want 13, %d", ev.Seq, ev.StateVersion, lastVersion+1)
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
