package sqlite

import (
	"context"
	"reflect"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

func TestSignals(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1), newRun("r2", "deploy", 2))

	inputs := []host.Signal{
		{RunID: "r1", Name: "deploy.done", CorrelationID: ptr("sha-1"), PayloadJSON: `{"n":0}`, ReceivedAtMs: 10, ReceivedBy: "alice"},
		{RunID: "r1", Name: "deploy.done", PayloadJSON: `{"n":1}`, ReceivedAtMs: 11},
		{RunID: "r1", Name: "deploy.done", CorrelationID: ptr(""), PayloadJSON: `{"n":2}`, ReceivedAtMs: 12},
		{RunID: "r1", Name: "deploy.done", CorrelationID: ptr("sha-1"), PayloadJSON: `{"n":3}`, ReceivedAtMs: 13},
		{RunID: "r2", Name: "deploy.done", PayloadJSON: `{"n":4}`, ReceivedAtMs: 14},
		{RunID: "r1", Name: "other", PayloadJSON: `{"n":5}`, ReceivedAtMs: 15},
	}
	wantSeq := []int64{0, 1, 2, 3, 0, 4} // per run, 0-based
	var stored []host.Signal
	update(t, s, func(tx host.Tx) error {
		for i, in := range inputs {
			got, err := tx.InsertSignal(in)
			if err != nil {
				return err
			}
			if got.Seq != wantSeq[i] {
				t.Errorf("signal %d: seq %d, want %d", i, got.Seq, wantSeq[i])
			}
			in.Seq = wantSeq[i]
			if !reflect.DeepEqual(got, in) {
				t.Errorf("InsertSignal returned %+v, want %+v", got, in)
			}
			stored = append(stored, got)
		}
		return nil
	})

	tests := []struct {
		name        string
		runID, sig  string
		correlation *string
		wantSeq     int64 // -1: none
	}{
		{"nil matches only nil", "r1", "deploy.done", nil, 1},
		{"string matches oldest equal", "r1", "deploy.done", ptr("sha-1"), 0},
		{"empty string is not nil", "r1", "deploy.done", ptr(""), 2},
		{"no signal with that correlation", "r1", "deploy.done", ptr("sha-2"), -1},
		{"other name", "r1", "other", nil, 4},
		{"other run", "r2", "deploy.done", nil, 0},
		{"unknown name", "r1", "nope", nil, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			update(t, s, func(tx host.Tx) error {
				got, ok, err := tx.OldestUnconsumedSignal(tt.runID, tt.sig, tt.correlation)
				if err != nil {
					return err
				}
				if tt.wantSeq < 0 {
					if ok {
						t.Errorf("found %+v, want none", got)
					}
					return nil
				}
				if !ok || got.Seq != tt.wantSeq {
					t.Errorf("found seq %d (%v), want %d", got.Seq, ok, tt.wantSeq)
				}
				return nil
			})
		})
	}

	// Consuming the oldest sha-1 signal exposes the next one.
	update(t, s, func(tx host.Tx) error {
		if err := tx.ConsumeSignal("r1", 0, "deployed"); err != nil {
			return err
		}
		got, ok, err := tx.OldestUnconsumedSignal("r1", "deploy.done", ptr("sha-1"))
		if err != nil || !ok || got.Seq != 3 {
			t.Errorf("after consume: %+v, %v, %v; want seq 3", got, ok, err)
		}
		return nil
	})
	if _, err := s.Update(ctx, func(tx host.Tx) error { return tx.ConsumeSignal("r1", 42, "n") }); err == nil {
		t.Error("ConsumeSignal of a missing signal succeeded")
	}

	got, err := s.ListSignals(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	want := []host.Signal{stored[0], stored[1], stored[2], stored[3], stored[5]}
	want[0].ConsumedBy = "deployed"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ListSignals =\n%+v\nwant\n%+v", got, want)
	}
}
