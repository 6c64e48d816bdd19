package postgres

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// TestSeqAndStateVersionContinueAcrossReopen: a gateway restarted on the
// database (or another replica) numbers the next events after the stored
// ones.
func TestSeqAndStateVersionContinueAcrossReopen(t *testing.T) {
	s, url := openNew(t, Options{EventWindow: 3})
	ctx := context.Background()
	update(t, s, func(tx host.Tx) error { return tx.InsertRun(newRun("r", "w", 1)) })
	var last host.Event
	for range 5 {
		last = appendEvent(t, s, "r", "node.started")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDB(t, url, Options{EventWindow: 10})
	if v, err := s.StateVersion(ctx); err != nil || v != last.StateVersion {
		t.Fatalf("StateVersion after reopen = %d, %v; want %d", v, err, last.StateVersion)
	}
	next := appendEvent(t, s, "r", "node.started")
	if next.Seq != 6 || next.StateVersion <= last.StateVersion {
		t.Errorf("after reopen event = seq %d version %d, want 6 and above %d", next.Seq, next.StateVersion, last.StateVersion)
	}
	evs, _ := s.ListEvents(ctx, "r", 0, 0)
	var seqs []int64
	for _, e := range evs {
		seqs = append(seqs, e.Seq)
	}
	if !reflect.DeepEqual(seqs, []int64{3, 4, 5, 6}) {
		t.Errorf("kept seqs = %v, want [3 4 5 6] (the old window's, then the new event)", seqs)
	}
}

func TestOpenRefusesABadURL(t *testing.T) {
	if _, err := Open(context.Background(), "postgres://user:secret@127.0.0.1:1/x?sslmode=bogus", Options{}); err == nil {
		t.Fatal("Open with a bad URL succeeded")
	} else if strings.Contains(err.Error(), "secret") {
		t.Errorf("the error shows the password: %v", err)
	}
}

func TestSetsParam(t *testing.T) {
	for _, tc := range []struct {
		conn string
		want bool
	}{
		{"postgres://u@h/db?pool_max_conns=4", true},
		{"postgresql://u@h/db?sslmode=disable", false},
		{"host=h dbname=db pool_max_conns=4", true},
		{"host=h dbname=db", false},
	} {
		if got := setsParam(tc.conn, "pool_max_conns"); got != tc.want {
			t.Errorf("setsParam(%q) = %v, want %v", tc.conn, got, tc.want)
		}
	}
}

func TestNotificationPayloads(t *testing.T) {
	for _, tc := range []struct {
		in   string
		last int64
		run  string
		ok   bool
	}{
		{"4 5 a", 5, "a", true},
		{"1 1 b b", 1, "b b", true},
		{"1 x a", 0, "", false},
		{"1 2", 0, "", false},
		{"1 2 ", 0, "", false},
	} {
		last, run, ok := parseNotification(tc.in)
		if last != tc.last || run != tc.run || ok != tc.ok {
			t.Errorf("parseNotification(%q) = %d, %q, %v", tc.in, last, run, ok)
		}
	}
}
