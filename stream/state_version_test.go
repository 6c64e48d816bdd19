package stream

import (
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// TestStateVersionIsNeverBehindADeliveredEvent: a socket stamping its
// non-broadcast frames with the hub's StateVersion never stamps one older
// than an event it was already handed.
func TestStateVersionIsNeverBehindADeliveredEvent(t *testing.T) {
	h := NewHub()
	if h.StateVersion() != 0 {
		t.Fatalf("fresh hub StateVersion %d", h.StateVersion())
	}
	s := h.Subscribe(Limits{}, func(e host.Event) bool {
		if h.StateVersion() < e.StateVersion {
			t.Errorf("event %d offered while StateVersion is %d", e.StateVersion, h.StateVersion())
		}
		return true
	})
	defer s.Close()
	h.Publish([]host.Event{ev("a", 1), ev("a", 2)})
	h.Publish([]host.Event{ev("b", 5)})
	h.Publish([]host.Event{ev("c", 3)}) // a late batch never moves it back
	if h.StateVersion() != 5 {
		t.Fatalf("StateVersion %d, want 5", h.StateVersion())
	}
	if n := len(s.Drain()); n != 4 {
		t.Fatalf("drained %d events", n)
	}
}
