package stream

import (
	"fmt"
	"sync"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

func ev(run string, seq int64) host.Event {
	return host.Event{RunID: run, Seq: seq, StateVersion: seq, Name: "node.started", Payload: []byte(`{"runId":"` + run + `"}`)}
}

func TestSlowSubscriberIsCutOffOthersGetEverything(t *testing.T) {
	h := NewHub()
	slow := h.Subscribe(Limits{MaxEvents: 10}, nil)
	fast := h.Subscribe(Limits{MaxEvents: 10}, nil)
	var got []int64
	for i := int64(1); i <= 100; i++ {
		h.Publish([]host.Event{ev("r", i)})
		for _, e := range fast.Drain() { // the fast one keeps up
			got = append(got, e.Seq)
		}
	}
	if !slow.Overflowed() || fast.Overflowed() {
		t.Fatalf("slow overflowed %v, fast overflowed %v", slow.Overflowed(), fast.Overflowed())
	}
	select {
	case <-slow.Gone():
	default:
		t.Fatal("slow subscriber not gone")
	}
	if n, _ := slow.Peak(); n > 10 {
		t.Fatalf("slow queue held %d events, bound 10", n)
	}
	if len(got) != 100 {
		t.Fatalf("fast subscriber got %d events", len(got))
	}
	for i, s := range got {
		if s != int64(i+1) {
			t.Fatalf("out of order at %d: %d", i, s)
		}
	}
	if h.Overflows() != 1 {
		t.Fatalf("overflows %d", h.Overflows())
	}
}

func TestByteBoundAndFilter(t *testing.T) {
	h := NewHub()
	s := h.Subscribe(Limits{MaxEvents: 1000, MaxBytes: 1000}, func(e host.Event) bool { return e.RunID == "a" })
	for i := int64(1); i <= 5; i++ {
		h.Publish([]host.Event{ev("b", i)}) // filtered out: never counts
	}
	if s.Overflowed() || len(s.Drain()) != 0 {
		t.Fatal("filtered events were queued")
	}
	// A subscriber that never drains is cut off once its backlog fills the
	// budget: at most the budget plus one commit is ever held.
	small := host.Event{RunID: "a", Name: "task.output", Payload: make([]byte, 100)}
	for i := 0; i < 100 && !s.Overflowed(); i++ {
		h.Publish([]host.Event{small})
	}
	if !s.Overflowed() {
		t.Fatal("a subscriber that never drains was not cut off")
	}
	if _, b := s.Peak(); b >= 1000+eventSize(small) {
		t.Fatalf("queue held %d bytes, budget 1000 plus one commit of %d", b, eventSize(small))
	}
}

// TestLargeEventsReachASubscriberThatKeepsUp: events larger than the byte
// budget (task outputs of 4 MiB against a 1 MiB budget), alone, several in
// one commit, or behind a few small events the writer has not drained yet,
// reach a subscriber that drains between commits; a subscriber that does
// not is cut off at the next commit.
func TestLargeEventsReachASubscriberThatKeepsUp(t *testing.T) {
	const budget = 1 << 20
	big := func(seq int64, name string) host.Event {
		return host.Event{RunID: "r", Seq: seq, StateVersion: seq, Name: name, Payload: make([]byte, 4<<20)}
	}
	h := NewHub()
	keeping := h.Subscribe(Limits{MaxBytes: budget}, nil)
	lagging := h.Subscribe(Limits{MaxBytes: budget}, nil)
	var got []int64
	drain := func() {
		for _, e := range keeping.Drain() {
			got = append(got, e.Seq)
		}
	}
	h.Publish([]host.Event{big(1, "task.output")})
	drain()
	// One commit carrying two large events.
	h.Publish([]host.Event{big(2, "node.failed"), big(3, "run.completed")})
	drain()
	// Small events the writer has not drained yet, then a large one.
	h.Publish([]host.Event{ev("r", 4)})
	h.Publish([]host.Event{ev("r", 5)})
	h.Publish([]host.Event{big(6, "task.output")})
	drain()
	if keeping.Overflowed() {
		t.Fatal("a subscriber that keeps up was cut off by large events")
	}
	if want := []int64{1, 2, 3, 4, 5, 6}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got seqs %v, want %v", got, want)
	}
	if !lagging.Overflowed() {
		t.Fatal("a subscriber that never drained was not cut off")
	}
	if h.Overflows() != 1 {
		t.Fatalf("overflows %d, want 1", h.Overflows())
	}
}

func TestPublishNeverBlocksAndIsRaceFree(t *testing.T) {
	h := NewHub()
	var wg sync.WaitGroup
	subs := make([]*Subscriber, 8)
	for i := range subs {
		subs[i] = h.Subscribe(Limits{MaxEvents: 50}, nil)
	}
	for p := 0; p < 4; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := int64(1); i <= 500; i++ {
				h.Publish([]host.Event{ev(fmt.Sprint(p), i)})
			}
		}(p)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			subs[0].Drain()
		}
	}()
	wg.Wait()
	for _, s := range subs {
		s.Close()
	}
	if h.Subscribers() != 0 {
		t.Fatalf("%d subscribers left", h.Subscribers())
	}
}

// TestEventEncodedOnceForAllSubscribers: every subscriber drains the same
// published value, whose encoding is computed by the first that asks.
func TestEventEncodedOnceForAllSubscribers(t *testing.T) {
	h := NewHub()
	subs := []*Subscriber{h.Subscribe(Limits{}, nil), h.Subscribe(Limits{}, nil), h.Subscribe(Limits{}, nil)}
	h.Publish([]host.Event{ev("r", 1)})
	calls := 0
	encode := func(e host.Event) []byte { calls++; return []byte(e.Name) }
	var first []byte
	for _, s := range subs {
		q := s.Drain()
		if len(q) != 1 || q[0].Seq != 1 {
			t.Fatalf("drained %v", q)
		}
		b := q[0].Encoded(0, encode)
		if first != nil && &b[0] != &first[0] {
			t.Fatal("subscribers got different encodings")
		}
		first = b
	}
	if calls != 1 {
		t.Fatalf("encoded %d times for 3 subscribers", calls)
	}
}
