package host

import (
	"container/heap"
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
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	running bool
}

func newTimerWheel(now func() time.Time, fire func(timerEntry)) *timerWheel {
	return &timerWheel{now: now, fire: fire, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

func (w *timerWheel) arm(e timerEntry) {
	w.mu.Lock()
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
			due = append(due, heap.Pop(&w.entries).(timerEntry))
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
