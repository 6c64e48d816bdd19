package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

func testAppendEventRoundTrip(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1))
	events := update(t, s, func(tx host.Tx) error {
		if err := tx.AppendEvent("r1", "node.pending", json.RawMessage(`{"nodeId":"a"}`), 100); err != nil {
			return err
		}
		err := tx.AppendEvent("r1", "run.heartbeat", nil, 101)
		return err
	})
	if len(events) != 2 {
		t.Fatalf("Update returned %d events, want 2", len(events))
	}
	if events[0].StateVersion <= 0 || events[1].StateVersion <= events[0].StateVersion {
		t.Errorf("stateVersions %d, %d: want positive and increasing", events[0].StateVersion, events[1].StateVersion)
	}
	want := []host.Event{
		{RunID: "r1", Seq: 1, StateVersion: events[0].StateVersion, Name: "node.pending", Payload: json.RawMessage(`{"nodeId":"a"}`), AtMs: 100},
		{RunID: "r1", Seq: 2, StateVersion: events[1].StateVersion, Name: "run.heartbeat", AtMs: 101},
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
	if got, _ := s.ListEvents(ctx, "r1", 2, 0); len(got) != 0 {
		t.Errorf("ListEvents after the last = %+v", got)
	}
	if got, _ := s.ListEvents(ctx, "none", 0, 0); len(got) != 0 {
		t.Errorf("ListEvents of an unknown run = %+v", got)
	}
	r, _, _ := s.GetRun(ctx, "r1")
	if r.LastSeq != 2 {
		t.Errorf("LastSeq = %d, want 2", r.LastSeq)
	}
	if first, err := s.FirstEventSeq(ctx, "r1"); err != nil || first != 1 {
		t.Errorf("FirstEventSeq = %d, %v; want 1", first, err)
	}
	if v, err := s.StateVersion(ctx); err != nil || v != want[1].StateVersion {
		t.Errorf("StateVersion = %d, %v; want %d", v, err, want[1].StateVersion)
	}

	_, err = s.Update(ctx, func(tx host.Tx) error {
		err := tx.AppendEvent("ghost", "node.pending", nil, 1)
		return err
	})
	if err == nil {
		t.Error("AppendEvent to a missing run succeeded")
	}

	// Each run has its own seq from 1; stateVersion is gateway-wide.
	insertRuns(t, s, newRun("r2", "deploy", 2))
	more := update(t, s, func(tx host.Tx) error {
		for _, id := range []string{"r2", "r1", "r2"} {
			if err := tx.AppendEvent(id, "node.started", nil, 1); err != nil {
				return err
			}
		}
		return nil
	})
	if got := seqs(more); !reflect.DeepEqual(got, []int64{1, 3, 2}) {
		t.Errorf("seqs across two runs = %v, want [1 3 2]", got)
	}
	for i, e := range more {
		if e.StateVersion <= want[1].StateVersion || (i > 0 && e.StateVersion <= more[i-1].StateVersion) {
			t.Errorf("stateVersions %d..: not increasing across runs", e.StateVersion)
		}
	}

	// Many events of one function, of two runs in turn: what Update
	// returns is what was stored, seq and stateVersion alike.
	many := update(t, s, func(tx host.Tx) error {
		for i := range 41 {
			id := []string{"r1", "r2"}[i%2]
			if err := tx.AppendEvent(id, "task.output", json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)), int64(i)); err != nil {
				return err
			}
		}
		return nil
	})
	if len(many) != 41 {
		t.Fatalf("Update returned %d events, want 41", len(many))
	}
	stored := map[string][]host.Event{}
	for _, id := range []string{"r1", "r2"} {
		evs, err := s.ListEvents(ctx, id, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		stored[id] = evs
	}
	for i, e := range many {
		if i > 0 && e.StateVersion <= many[i-1].StateVersion {
			t.Errorf("event %d: stateVersion %d after %d", i, e.StateVersion, many[i-1].StateVersion)
		}
		var found bool
		for _, got := range stored[e.RunID] {
			if got.Seq == e.Seq {
				found = true
				if !reflect.DeepEqual(got, e) {
					t.Errorf("event %d returned %+v, stored %+v", i, e, got)
				}
			}
		}
		if !found {
			t.Errorf("event %d (%s seq %d) not stored", i, e.RunID, e.Seq)
		}
	}
}

// testPayloadsByteForByte: event payloads and JSON columns come back as the
// bytes stored (no re-encoding: key order, spacing and escapes stay).
func testPayloadsByteForByte(t *testing.T, open Opener) {
	s := open(t, Options{})
	ctx := context.Background()
	payloads := []string{
		`{"b":1,"a":2}`,
		`{ "spaced" : [1, 2.50, 1e3] , "nested": {"z":null} }`,
		`"\u00e9\u0000\ud83d\ude00 escaped"`,
		`"é 😀 raw unicode"`,
		`[]`,
		`12345678901234567890`,
	}
	r := newRun("r1", "deploy", 1)
	r.InputJSON, r.ConfigJSON = payloads[1], payloads[0]
	insertRuns(t, s, r)
	update(t, s, func(tx host.Tx) error {
		for _, p := range payloads {
			if err := tx.AppendEvent("r1", "task.output", json.RawMessage(p), 1); err != nil {
				return err
			}
		}
		return tx.PutNode(host.Node{RunID: "r1", NodeID: "n", Kind: host.KindTask, State: host.NodeFinished,
			OutputJSON: payloads[2], MetaJSON: payloads[3]})
	})
	events, err := s.ListEvents(ctx, "r1", 0, 0)
	if err != nil || len(events) != len(payloads) {
		t.Fatalf("ListEvents = %d events, %v", len(events), err)
	}
	for i, e := range events {
		if string(e.Payload) != payloads[i] {
			t.Errorf("payload %d = %q, want %q", i, e.Payload, payloads[i])
		}
	}
	got, _, _ := s.GetRun(ctx, "r1")
	if got.InputJSON != payloads[1] || got.ConfigJSON != payloads[0] {
		t.Errorf("run JSON = %q / %q", got.InputJSON, got.ConfigJSON)
	}
	nodes, _ := s.ListNodes(ctx, "r1")
	if len(nodes) != 1 || nodes[0].OutputJSON != payloads[2] || nodes[0].MetaJSON != payloads[3] {
		t.Errorf("node JSON = %+v", nodes)
	}
}

func testEventWindowTrims(t *testing.T, open Opener) {
	const window = 5
	s := open(t, Options{EventWindow: window})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1), newRun("r2", "deploy", 2))
	if seq, err := s.FirstEventSeq(ctx, "r1"); err != nil || seq != 0 {
		t.Errorf("FirstEventSeq without events = %d, %v; want 0", seq, err)
	}
	appendEvents(t, s, "r2", 1)

	var lastVersion int64
	for i := 1; i <= 12; i++ {
		ev := appendEvents(t, s, "r1", 1)[0]
		if ev.Seq != int64(i) {
			t.Fatalf("event %d has seq %d", i, ev.Seq)
		}
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
	// A read after a trimmed seq starts at the oldest kept.
	if got, _ := s.ListEvents(ctx, "r1", 2, 3); !reflect.DeepEqual(seqs(got), []int64{8, 9, 10}) {
		t.Errorf("ListEvents after a trimmed seq = %v, want [8 9 10]", seqs(got))
	}
	// The other run's window is untouched.
	if got, _ := s.ListEvents(ctx, "r2", 0, 0); len(got) != 1 {
		t.Errorf("r2 events = %v", got)
	}
	if v, _ := s.StateVersion(ctx); v != lastVersion {
		t.Errorf("StateVersion = %d, want %d", v, lastVersion)
	}
	// One transaction appending more than the window keeps the newest.
	update(t, s, func(tx host.Tx) error {
		for range 2 * window {
			if err := tx.AppendEvent("r2", "node.started", nil, 1); err != nil {
				return err
			}
		}
		return nil
	})
	if got, _ := s.ListEvents(ctx, "r2", 0, 0); !reflect.DeepEqual(seqs(got), []int64{7, 8, 9, 10, 11}) {
		t.Errorf("r2 after a large transaction keeps %v, want [7 8 9 10 11]", seqs(got))
	}
}

// testStateVersionNeverGoesBack: stateVersion is the highest ever
// assigned, also once the run that carried it is deleted.
func testStateVersionNeverGoesBack(t *testing.T, open Opener) {
	s := open(t, Options{EventWindow: 1})
	ctx := context.Background()
	if v, err := s.StateVersion(ctx); err != nil || v != 0 {
		t.Fatalf("StateVersion of an empty store = %d, %v", v, err)
	}
	insertRuns(t, s, newRun("old", "deploy", 1), newRun("r1", "deploy", 2))
	appendEvents(t, s, "old", 1)
	last := appendEvents(t, s, "r1", 4)[3].StateVersion
	update(t, s, func(tx host.Tx) error {
		_, err := tx.DeleteRun("r1")
		return err
	})
	if v, _ := s.StateVersion(ctx); v != last {
		t.Errorf("StateVersion after deleting the newest run = %d, want %d", v, last)
	}
	update(t, s, func(tx host.Tx) error {
		_, err := tx.DeleteRun("old")
		return err
	})
	if v, _ := s.StateVersion(ctx); v != last {
		t.Errorf("StateVersion after deleting every event = %d, want %d", v, last)
	}
	insertRuns(t, s, newRun("r2", "deploy", 3))
	if ev := appendEvents(t, s, "r2", 1)[0]; ev.StateVersion <= last || ev.Seq != 1 {
		t.Errorf("next event = seq %d version %d, want 1 and above %d", ev.Seq, ev.StateVersion, last)
	}
}
