package host

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// timerEntry is one durable deadline: a node's timer (sleep, approval or
// event timeout) or a run's timeoutMs. The journal is the source of truth;
// entries are re-armed from it at start, and a fired entry whose node is no
// longer waiting is ignored.
type timerEntry struct {
	at        int64 // Unix ms
	runID     string
	nodeID    string
	iteration int
	deadline  bool // the run's timeoutMs rather than a node
}

type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// maxTimerWait is the longest the timer goroutine sleeps before looking
// again.
const maxTimerWait = time.Hour

// timerWheel fires timerEntries when they come due, late rather than never:
// one goroutine sleeps until the earliest entry. Parked runs cost one heap
// entry each, no goroutine.
type timerWheel struct {
	now  func() time.Time
	fire func(timerEntry)

	mu      sync.Mutex
	entries timerHeap
	armed   map[timerEntry]bool // what entries holds: arming twice is a no-op
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	running bool
}

func newTimerWheel(now func() time.Time, fire func(timerEntry)) *timerWheel {
	return &timerWheel{now: now, fire: fire, armed: map[timerEntry]bool{}, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

func (w *timerWheel) arm(e timerEntry) {
	w.mu.Lock()
	if w.armed[e] {
		w.mu.Unlock()
		return
	}
	w.armed[e] = true
	heap.Push(&w.entries, e)
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *timerWheel) start() {
	w.mu.Lock()
	w.running = true
	w.mu.Unlock()
	go w.loop()
}

func (w *timerWheel) close() {
	w.mu.Lock()
	running := w.running
	w.running = false
	w.mu.Unlock()
	if !running {
		return
	}
	close(w.stop)
	<-w.done
}

func (w *timerWheel) loop() {
	defer close(w.done)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		var due []timerEntry
		w.mu.Lock()
		now := w.now().UnixMilli()
		for len(w.entries) > 0 && w.entries[0].at <= now {
			e := heap.Pop(&w.entries).(timerEntry)
			delete(w.armed, e)
			due = append(due, e)
		}
		// Sleep until the earliest entry, at most maxTimerWait: an entry
		// centuries away (a stored deadline from before durations were
		// bounded) must neither overflow time.Duration nor spin.
		wait := maxTimerWait
		if len(w.entries) > 0 {
			if ms := w.entries[0].at - now; ms < maxTimerWait.Milliseconds() {
				wait = time.Duration(ms) * time.Millisecond
			}
		}
		w.mu.Unlock()
		for _, e := range due {
			w.fire(e)
		}
		if len(due) > 0 {
			continue
		}
		t.Reset(wait)
		select {
		case <-w.stop:
			return
		case <-w.kick:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		case <-t.C:
		}
	}
}

// dueScanAhead is how far ahead a shared-store scan arms timers: a little
// more than a heartbeat, so that consecutive scans overlap.
func (g *Gateway) dueScanAhead() time.Duration { return 2 * g.heartbeat }

// armDueWork arms the timers and run deadlines that come due soon, as the
// store has them: on a store shared by several gateway processes, a timer
// armed by another process (which may have died) fires here too. The
// commit that fires it re-checks the node in its transaction, so a timer
// fires once whichever process gets there first.
func (g *Gateway) armDueWork() {
	ctx := context.Background()
	before := g.now().Add(g.dueScanAhead()).UnixMilli()
	nodes, err := g.store.ListDueNodes(ctx, before)
	if err != nil {
		g.log.Error("scan due timers", "err", err)
		return
	}
	for _, n := range nodes {
		g.timers.arm(timerEntry{at: n.FiresAtMs, runID: n.RunID, nodeID: n.NodeID, iteration: n.Iteration})
	}
	runs, err := g.store.ListRuns(ctx, RunFilter{DeadlineBeforeMs: before,
		Statuses: []RunStatus{RunRunning, RunWaitingApproval, RunWaitingEvent, RunWaitingTimer}})
	if err != nil {
		g.log.Error("scan due run deadlines", "err", err)
		return
	}
	for _, r := range runs {
		g.timers.arm(timerEntry{at: r.DeadlineAtMs, runID: r.RunID, deadline: true})
	}
}
