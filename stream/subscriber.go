package stream

import (
	"sync"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// Subscriber is one consumer's bounded queue of events.
type Subscriber struct {
	hub    *Hub
	limits Limits
	wants  func(host.Event) bool

	mu         sync.Mutex
	queue      []*Queued
	bytes      int
	peakEvents int
	peakBytes  int
	overflowed bool
	closed     bool
	ready      chan struct{} // signalled when the queue becomes non-empty
	gone       chan struct{} // closed on overflow or Close
}

// eventSize estimates the memory an event holds in the queue.
func eventSize(e host.Event) int { return len(e.Payload) + len(e.Name) + len(e.RunID) + 64 }

// offer appends e, one of the events of a commit, unless that would exceed
// the bounds; on overflow the subscriber is cut off and offer reports false.
// *backlog is the byte size of the queue the commit found, or -1 before
// its first event is offered.
//
// The byte budget bounds that backlog, not the queue with the commit added:
// a commit is refused only when the events already waiting reach MaxBytes.
// A single event may be as large as a task output (several MiB, more than
// the budget), and a commit may carry several (node.failed and
// run.completed with the same error): a subscriber that keeps up, whose
// queue holds at most what arrived since its writer last drained it, gets
// them, while one that has fallen a budget behind is cut off at its next
// commit. A queue holds at most MaxBytes plus one commit. The count bound
// applies to every event.
func (s *Subscriber) offer(e *Queued, backlog *int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.overflowed {
		return true
	}
	if *backlog < 0 {
		*backlog = s.bytes
	}
	if len(s.queue)+1 > s.limits.MaxEvents || *backlog >= s.limits.MaxBytes {
		s.overflowed = true
		s.queue = nil
		s.bytes = 0
		close(s.gone)
		return false
	}
	size := eventSize(e.Event)
	s.queue = append(s.queue, e)
	s.bytes += size
	s.peakEvents = max(s.peakEvents, len(s.queue))
	s.peakBytes = max(s.peakBytes, s.bytes)
	select {
	case s.ready <- struct{}{}:
	default:
	}
	return true
}

// Ready is signalled when events may be waiting; call Drain then.
func (s *Subscriber) Ready() <-chan struct{} { return s.ready }

// Gone is closed when the subscriber overflowed or was closed.
func (s *Subscriber) Gone() <-chan struct{} { return s.gone }

// Drain takes every queued event, oldest first. The events are shared with
// the other subscribers: read them, do not change them.
func (s *Subscriber) Drain() []*Queued {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue
	s.queue = nil
	s.bytes = 0
	return q
}

// Overflowed reports whether the subscriber was cut off for falling behind.
func (s *Subscriber) Overflowed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overflowed
}

// Peak returns the largest queue length and byte size ever held.
func (s *Subscriber) Peak() (events, bytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peakEvents, s.peakBytes
}

// Close unregisters the subscriber; queued events are dropped.
func (s *Subscriber) Close() {
	s.hub.remove(s)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.queue = nil
	if !s.overflowed {
		close(s.gone)
	}
}
