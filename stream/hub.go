package stream

import (
	"sync"
	"sync/atomic"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// Hub fans committed events out to subscribers.
type Hub struct {
	mu   sync.RWMutex
	subs map[*Subscriber]struct{}
	// last is the stateVersion of the newest published event.
	last atomic.Int64
	// overflows counts subscribers cut off for falling behind.
	overflows atomic.Int64
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{subs: map[*Subscriber]struct{}{}}
}

// Limits bound one subscriber's queue.
type Limits struct {
	MaxEvents int // default 4096
	// MaxBytes bounds the backlog a commit finds in the queue: a commit is
	// refused (the subscriber cut off) when the events already waiting
	// reach it, so a queue holds at most MaxBytes plus one commit. An
	// event larger than MaxBytes (a task output of several MiB) still
	// reaches a subscriber that keeps up. Default 1 MiB, so that a full
	// gateway (1000 sockets) holds about 1 GiB of lagging backlog, under
	// the default heap limit.
	MaxBytes int
}

// Subscribe registers a subscriber; wants (called under no lock of the
// caller's, from publishing goroutines) selects the events it receives.
func (h *Hub) Subscribe(l Limits, wants func(host.Event) bool) *Subscriber {
	if l.MaxEvents <= 0 {
		l.MaxEvents = 4096
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = 1 << 20
	}
	s := &Subscriber{hub: h, limits: l, wants: wants, ready: make(chan struct{}, 1), gone: make(chan struct{})}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

// Publish delivers events, in order, to every subscriber that wants them.
// It never blocks. Wire it as the store's commit hook
// (sqlite.Options.OnCommit) so it sees commits in their true order: the
// events of one call are one commit, which a subscriber takes whole when
// its backlog is within its byte budget (see Limits.MaxBytes).
func (h *Hub) Publish(events []host.Event) {
	if len(events) == 0 {
		return
	}
	for _, e := range events {
		for {
			cur := h.last.Load()
			if e.StateVersion <= cur || h.last.CompareAndSwap(cur, e.StateVersion) {
				break
			}
		}
	}
	queued := make([]*Queued, len(events))
	for i := range events {
		queued[i] = &Queued{Event: events[i]}
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs {
		backlog := -1 // measured when the first wanted event is offered
		for _, e := range queued {
			if s.wants == nil || s.wants(e.Event) {
				if !s.offer(e, &backlog) {
					h.overflows.Add(1)
					break
				}
			}
		}
	}
}

// StateVersion is the stateVersion of the newest published event (0 before
// the first). Publish advances it before delivering, so it is never behind
// an event a subscriber holds.
func (h *Hub) StateVersion() int64 { return h.last.Load() }

// Overflows is the number of subscribers cut off for falling behind.
func (h *Hub) Overflows() int64 { return h.overflows.Load() }

// Subscribers is the number of live subscribers.
func (h *Hub) Subscribers() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.subs)
}

func (h *Hub) remove(s *Subscriber) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}
