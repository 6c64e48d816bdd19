package api

import (
	"testing"
	"time"
)

// TestWriterClockSchedulesEveryDuty: one timer carries the handshake
// window, pings, credential re-checks, ticks (only once connected) and
// run heartbeats, each at its own period, and a late writer is not owed a
// burst of catch-up duties.
func TestWriterClockSchedulesEveryDuty(t *testing.T) {
	lim := wsLimits{handshake: 10 * time.Second, ping: 3 * time.Second, revokeCheck: 5 * time.Second,
		heartbeat: 4 * time.Second, streamHeartbeat: 7 * time.Second}
	t0 := time.Unix(1000, 0)
	k := newWriterClock(t0, lim)
	defer k.stop()
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

	if d := k.due(at(2.9)); d != (duties{}) {
		t.Fatalf("duties before any is due: %+v", d)
	}
	if d := k.due(at(3)); d != (duties{ping: true}) {
		t.Fatalf("at 3 s: %+v, want a ping", d)
	}
	if d := k.due(at(5)); d != (duties{revoke: true}) {
		t.Fatalf("at 5 s: %+v, want a revoke check", d)
	}
	if d := k.due(at(6)); d != (duties{ping: true}) {
		t.Fatalf("at 6 s: %+v, want the second ping", d)
	}
	if d := k.due(at(7)); d != (duties{beat: true}) {
		t.Fatalf("at 7 s: %+v, want a run heartbeat (and no tick before connect)", d)
	}
	k.connected(at(8))
	if n := k.next(); !n.Equal(at(9)) {
		t.Fatalf("next after connect = %v, want the ping at 9 s", n.Sub(t0))
	}
	if d := k.due(at(10)); d != (duties{ping: true, revoke: true}) {
		t.Fatalf("at 10 s: %+v, want ping and revoke; the handshake window closed at connect", d)
	}
	if d := k.due(at(12)); d != (duties{tick: true, ping: true}) {
		t.Fatalf("at 12 s: %+v, want tick and ping", d)
	}
	// A writer 100 s late does each duty once and resumes from now.
	if d := k.due(at(112)); d != (duties{ping: true, revoke: true, tick: true, beat: true}) {
		t.Fatalf("late: %+v", d)
	}
	if n := k.next(); !n.Equal(at(115)) {
		t.Fatalf("next after a late wake = %v, want 115 s (one ping period on)", n.Sub(t0))
	}

	// Without a connect, the handshake window's end is a duty of its own.
	k2 := newWriterClock(t0, lim)
	defer k2.stop()
	if d := k2.due(at(10)); !d.handshake {
		t.Fatalf("at 10 s without connect: %+v, want the handshake timeout", d)
	}
}

// TestWriterClockWithoutPeriodsIsQuiet: a duty whose period is zero comes
// due once and is then off, and a clock with nothing scheduled does not
// fire.
func TestWriterClockWithoutPeriodsIsQuiet(t *testing.T) {
	t0 := time.Now()
	k := newWriterClock(t0, wsLimits{handshake: time.Hour})
	defer k.stop()
	if d := k.due(t0); d != (duties{ping: true, revoke: true, beat: true}) {
		t.Fatalf("first look: %+v", d)
	}
	if n := k.next(); !n.Equal(t0.Add(time.Hour)) {
		t.Fatalf("next = %v, want only the handshake window's end", n.Sub(t0))
	}
	k.connected(t0)
	if d := k.due(t0.Add(time.Minute)); d != (duties{tick: true}) {
		t.Fatalf("after connect: %+v", d)
	}
	if !k.next().IsZero() {
		t.Fatalf("something is still scheduled: %v", k.next())
	}
	select {
	case <-k.C():
		t.Fatal("a clock with nothing scheduled fired")
	case <-time.After(50 * time.Millisecond):
	}
}
