package api

import (
	"container/list"
	"sync"
)

// wsSlots admits WebSocket connections: at most max sockets in all, of
// which at most maxPending have not completed connect yet.
//
// A socket is pending from its upgrade until its first successful
// connect. Pending sockets cost the gateway a slot without proving
// anything, so a flood of silent sockets must not lock real clients out:
// when the pending sockets are at their cap, or every slot is taken while
// some are pending, the oldest pending socket is evicted and its slot goes
// to the newcomer. A new socket is refused only when every slot is held
// by an authenticated socket. A real client completes connect within a
// round trip of its upgrade, so it is only evicted if maxPending sockets
// arrive in that time.
//
// wsSlots is safe for concurrent use.
type wsSlots struct {
	mu         sync.Mutex
	max        int
	maxPending int
	inUse      int
	pending    list.List // of *wsSlot, oldest first
}

// wsSlot is one admitted socket's slot.
type wsSlot struct {
	elem     *list.Element // in wsSlots.pending while pending, else nil
	released bool
	// evicted is closed when the slot is taken back from the pending
	// socket; its writer then closes the socket.
	evicted chan struct{}
}

func newWSSlots(max, maxPending int) *wsSlots {
	return &wsSlots{max: max, maxPending: min(max, maxPending)}
}

// acquire reserves a slot for a new, pending socket, evicting the oldest
// pending sockets as needed; it reports how many it evicted. The slot is
// nil when every slot is held by an authenticated socket.
func (s *wsSlots) acquire() (*wsSlot, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	evicted := 0
	for s.pending.Len() >= s.maxPending || s.inUse >= s.max {
		oldest := s.pending.Front()
		if oldest == nil {
			return nil, evicted
		}
		victim := oldest.Value.(*wsSlot)
		s.releaseLocked(victim)
		close(victim.evicted)
		evicted++
	}
	slot := &wsSlot{evicted: make(chan struct{})}
	slot.elem = s.pending.PushBack(slot)
	s.inUse++
	return slot, evicted
}

// authenticated marks the slot's socket as connected: it is no longer
// pending and can no longer be evicted. It reports false when the slot was
// evicted already (the socket is being closed).
func (s *wsSlots) authenticated(slot *wsSlot) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slot.released {
		return false
	}
	if slot.elem != nil {
		s.pending.Remove(slot.elem)
		slot.elem = nil
	}
	return true
}

// release frees the slot of a socket that ended; it is idempotent.
func (s *wsSlots) release(slot *wsSlot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(slot)
}

func (s *wsSlots) releaseLocked(slot *wsSlot) {
	if slot.released {
		return
	}
	slot.released = true
	if slot.elem != nil {
		s.pending.Remove(slot.elem)
		slot.elem = nil
	}
	s.inUse--
}

// counts returns the slots in use and how many of them are pending.
func (s *wsSlots) counts() (inUse, pending int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inUse, s.pending.Len()
}
