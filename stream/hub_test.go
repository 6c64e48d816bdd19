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
	big := host.Event{RunID: "a", Seq: 1, Payload: make([]byte, 2000)}
	h.Publish([]host.Event{big})
	if !s.Overflowed() {
		t.Fatal("an event larger than the byte bound did not cut the subscriber off")
	}
	if _, b := s.Peak(); b > 1000 {
		t.Fatalf("queue held %d bytes", b)
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
