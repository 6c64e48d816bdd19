package host

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ConcurrencyLimit is a workflow's concurrency option: at most Limit task
// bodies of the workflow run at once across all its runs, or, with Key, per
// value of that path into the run input ("tenant", "customer.id").
type ConcurrencyLimit struct {
	Limit int
	Key   string
}

// slotKey names one concurrency pool: a workflow, and the run's key value.
type slotKey struct {
	workflow, value string
}

// slotWaiter is a task attempt waiting for a slot. Waiters are served in
// launch order: the run's creation time, then its id, then the order the
// run asked.
type slotWaiter struct {
	createdAtMs int64
	runID       string
	seq         uint64
	session     *Session
	node        nodeKey
	grant       func()
}

// slotPool is one pool's running count, queue and limit.
type slotPool struct {
	running int
	limit   int
	waiting []*slotWaiter
}

// slots is the gateway's table of concurrency pools. A waiting attempt is
// a queue entry and a callback, never a blocked goroutine; a pool with
// nothing running and nothing waiting is dropped.
type slots struct {
	mu    sync.Mutex
	pools map[slotKey]*slotPool
	seq   uint64
	// settling holds, per workflow, the runs resumed at start that have
	// not asked for a slot yet: until they have (or settleTimeout passed),
	// the workflow's free slots are not handed out, so that a resumed
	// late run cannot overtake an earlier one that is still replaying.
	settling map[string]map[string]bool
	// onWaiting, when set, is told a workflow's new waiting count.
	onWaiting func(workflow string, waiting int)
}

// acquire takes a slot of the pool for the session's attempt, calling grant
// at once (on the caller's goroutine) when one is free, else later, on the
// goroutine of the release that frees it.
func (sl *slots) acquire(k slotKey, limit int, s *Session, node nodeKey, createdAtMs int64, grant func()) {
	sl.mu.Lock()
	p := sl.pools[k]
	if p == nil {
		p = &slotPool{}
		sl.pools[k] = p
	}
	p.limit = limit
	if p.running < limit && len(p.waiting) == 0 && len(sl.settling[k.workflow]) == 0 {
		p.running++
		sl.mu.Unlock()
		grant()
		return
	}
	sl.seq++
	w := &slotWaiter{createdAtMs: createdAtMs, runID: s.runID, seq: sl.seq, session: s, node: node, grant: grant}
	i := sort.Search(len(p.waiting), func(i int) bool { return w.before(p.waiting[i]) })
	p.waiting = append(p.waiting, nil)
	copy(p.waiting[i+1:], p.waiting[i:])
	p.waiting[i] = w
	grants := sl.settledLocked(k.workflow, s.runID)
	n := sl.waitingLocked(k.workflow)
	sl.mu.Unlock()
	sl.report(k.workflow, n)
	for _, g := range grants {
		g()
	}
}

// settle marks the runs of a workflow resumed at start: the workflow's
// slots wait for them (see slots.settling).
func (sl *slots) settle(workflow string, runIDs []string) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.settling == nil {
		sl.settling = map[string]map[string]bool{}
	}
	set := map[string]bool{}
	for _, id := range runIDs {
		set[id] = true
	}
	sl.settling[workflow] = set
}

// settledLocked notes that runID has asked (or ended); once every resumed
// run of the workflow has, the workflow's queues are served in launch
// order. It returns the grants to call after unlocking.
func (sl *slots) settledLocked(workflow, runID string) []func() {
	set := sl.settling[workflow]
	if len(set) == 0 || !set[runID] {
		return nil
	}
	delete(set, runID)
	if len(set) > 0 {
		return nil
	}
	delete(sl.settling, workflow)
	return sl.serveLocked(workflow)
}

// endSettling stops waiting for resumed runs that never asked (they parked
// or wait on something else) and serves every queue.
func (sl *slots) endSettling() {
	sl.mu.Lock()
	var grants []func()
	for wf := range sl.settling {
		delete(sl.settling, wf)
		grants = append(grants, sl.serveLocked(wf)...)
	}
	sl.mu.Unlock()
	for _, g := range grants {
		g()
	}
}

// serveLocked hands the free slots of the workflow's pools to their heads
// of line and returns the grants to call after unlocking.
func (sl *slots) serveLocked(workflow string) []func() {
	var grants []func()
	for k, p := range sl.pools {
		if k.workflow != workflow {
			continue
		}
		for p.running < p.limit && len(p.waiting) > 0 {
			grants = append(grants, p.waiting[0].grant)
			p.waiting = p.waiting[1:]
			p.running++
		}
	}
	return grants
}

func (w *slotWaiter) before(o *slotWaiter) bool {
	if w.createdAtMs != o.createdAtMs {
		return w.createdAtMs < o.createdAtMs
	}
	if w.runID != o.runID {
		return w.runID < o.runID
	}
	return w.seq < o.seq
}

// release gives a slot back and hands it to the first waiter, if any.
func (sl *slots) release(k slotKey, limit int) {
	sl.mu.Lock()
	p := sl.pools[k]
	if p == nil {
		sl.mu.Unlock()
		return
	}
	p.running--
	var next *slotWaiter
	if len(p.waiting) > 0 && p.running < limit {
		next = p.waiting[0]
		p.waiting = p.waiting[1:]
		p.running++
	}
	if p.running <= 0 && len(p.waiting) == 0 {
		delete(sl.pools, k)
	}
	n := sl.waitingLocked(k.workflow)
	sl.mu.Unlock()
	if next != nil {
		sl.report(k.workflow, n)
		next.grant()
	}
}

// dropSession removes the waiters of an ended activation (its replay asks
// again, in launch order).
func (sl *slots) dropSession(s *Session) {
	sl.mu.Lock()
	var grants []func()
	for wf := range sl.settling {
		grants = append(grants, sl.settledLocked(wf, s.runID)...)
	}
	changed := map[string]bool{}
	for k, p := range sl.pools {
		kept := p.waiting[:0]
		for _, w := range p.waiting {
			if w.session == s {
				changed[k.workflow] = true
				continue
			}
			kept = append(kept, w)
		}
		p.waiting = kept
		if p.running <= 0 && len(p.waiting) == 0 {
			delete(sl.pools, k)
		}
	}
	counts := map[string]int{}
	for wf := range changed {
		counts[wf] = sl.waitingLocked(wf)
	}
	sl.mu.Unlock()
	for wf, n := range counts {
		sl.report(wf, n)
	}
	for _, g := range grants {
		g()
	}
}

func (sl *slots) waitingLocked(workflow string) int {
	n := 0
	for k, p := range sl.pools {
		if k.workflow == workflow {
			n += len(p.waiting)
		}
	}
	return n
}

func (sl *slots) report(workflow string, n int) {
	if sl.onWaiting != nil {
		sl.onWaiting(workflow, n)
	}
}

// concurrencyValue is the run's value of the limit's key path into its
// input ("" without a key, or when the input has no such value).
func concurrencyValue(c *ConcurrencyLimit, inputJSON string) string {
	if c == nil || c.Key == "" {
		return ""
	}
	var doc any
	if json.Unmarshal([]byte(inputJSON), &doc) != nil {
		return ""
	}
	for _, seg := range strings.Split(c.Key, ".") {
		switch v := doc.(type) {
		case map[string]any:
			doc = v[seg]
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(v) {
				return ""
			}
			doc = v[i]
		default:
			return ""
		}
	}
	switch v := doc.(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		b, _ := json.Marshal(v)
		return fmt.Sprint(string(b))
	}
}

// pool is the session's concurrency pool (computed once per activation);
// ok is false when the workflow has no limit.
func (s *Session) pool() (slotKey, int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.wf.Concurrency
	if c == nil || c.Limit <= 0 {
		return slotKey{}, 0, false
	}
	if s.slotPool == nil {
		s.slotPool = &slotKey{s.wf.Key, concurrencyValue(c, s.run.InputJSON)}
	}
	return *s.slotPool, c.Limit, true
}

// AcquireTaskSlot asks for a slot of the workflow's concurrency limit for
// an attempt of task nodeID. grant is called once the slot is the
// attempt's: at once when one is free (or the workflow has no limit), else
// when an earlier-launched run's attempt releases one. The caller returns
// the slot with ReleaseTaskSlot when the attempt's body ends. Nothing
// blocks while waiting; an activation that ends while waiting loses its
// place (and any slot it still holds), and its replay asks again in launch
// order.
func (s *Session) AcquireTaskSlot(nodeID string, iteration int, grant func()) {
	k, limit, ok := s.pool()
	if !ok {
		grant()
		return
	}
	held := func() {
		s.mu.Lock()
		if s.slotsClosed {
			// The activation ended between the slot being handed to it
			// and now: give the slot straight back.
			s.mu.Unlock()
			s.g.slots.release(k, limit)
			return
		}
		s.slotsHeld++
		s.mu.Unlock()
		grant()
	}
	s.g.slots.acquire(k, limit, s, nodeKey{nodeID, iteration}, s.Run().CreatedAtMs, held)
}

// ReleaseTaskSlot returns a slot AcquireTaskSlot granted.
func (s *Session) ReleaseTaskSlot() {
	k, limit, ok := s.pool()
	if !ok {
		return
	}
	s.mu.Lock()
	if s.slotsHeld == 0 {
		s.mu.Unlock()
		return
	}
	s.slotsHeld--
	s.mu.Unlock()
	s.g.slots.release(k, limit)
}

// releaseSlots gives back everything an ended activation still holds or
// waits for.
func (s *Session) releaseSlots() {
	k, limit, ok := s.pool()
	if !ok {
		// No pool known (the activation ended before it loaded its run):
		// it holds nothing, but the queues may still wait for its run.
		s.g.slots.dropSession(s)
		return
	}
	s.mu.Lock()
	n := s.slotsHeld
	s.slotsHeld = 0
	s.slotsClosed = true
	s.mu.Unlock()
	s.g.slots.dropSession(s)
	for range n {
		s.g.slots.release(k, limit)
	}
}

// settleTimeout bounds how long, after a start, the concurrency queues wait
// for resumed runs to ask for their slots again.
const settleTimeout = 5 * time.Second
