package jsruntime

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dop251/goja"
)

// job is one turn on a worker's event loop. act is the activation the turn
// runs for (nil for worker-level work such as module registration); a turn
// that blows its budget fails that activation.
type job struct {
	act *activation
	fn  func()
	// always runs the job even when act has ended (deliveries must then
	// have the engine activate the run again).
	always bool
}

// worker is one goja runtime with its event loop goroutine. The runtime is
// touched only from the loop goroutine; post is the only way in from other
// goroutines (it never blocks).
type worker struct {
	id     int
	ex     *Executor
	log    *slog.Logger
	budget time.Duration

	mu      sync.Mutex
	queue   []job
	wakeup  chan struct{}
	stopped bool
	done    chan struct{}

	// Loop-only state.
	rt        *goja.Runtime
	workflows map[string]goja.Callable
	// registered is false while an async register(gateway) of the current
	// runtime is still settling (after a rebuild).
	registered bool
	// everRegistered is set once register(gateway) succeeded on this
	// worker: before that, a runaway turn fails the start-up instead of
	// rebuilding the runtime.
	everRegistered bool
	// registering receives the outcome of the register(gateway) in
	// progress; nil once it was sent.
	registering chan<- registration
	acts        map[*activation]struct{}
	current     *activation
	broken      error  // an uncatchable error (interrupt, stack overflow, panic) ended the turn
	brokenNode  string // the task whose body was running when it did, if any
	helpers     jsHelpers
	gen         uint64 // runtime generation; bumped on rebuild
	timerSeq    int64
	timers      map[int64]*jsTimer
	// node is the task node whose body runs synchronously now ("" when
	// none), reaction the context of the promise reaction running now (nil
	// when none), rejections the promises rejected without a handler in
	// this turn (see rejections.go).
	node       string
	reaction   *asyncContext
	rejections []rejection

	load int // activations assigned (guarded by Executor.mu)

	// turnStart is when the running turn began (UnixNano; 0 when idle) and
	// turnID numbers turns; both change under turnMu (see beginTurn).
	turnMu    sync.Mutex
	turnStart atomic.Int64
	turnID    atomic.Uint64
	// rtForInterrupt is the runtime the watchdog may interrupt.
	rtForInterrupt atomic.Pointer[goja.Runtime]
	// rebuilding is set from the end of a turn that broke the runtime to
	// the end of the rebuild: the heap watchdog leaves such a worker alone
	// (the garbage it waits to collect is the old runtime).
	rebuilding atomic.Bool
	// unusable is set when the runtime could not be rebuilt: the worker
	// takes no more runs.
	unusable atomic.Bool
}

func newWorker(id int, ex *Executor) *worker {
	return &worker{id: id, ex: ex, log: ex.log.With("worker", id), budget: ex.budget,
		wakeup: make(chan struct{}, 1), done: make(chan struct{}), acts: map[*activation]struct{}{}, timers: map[int64]*jsTimer{}}
}

// post queues fn to run on the loop for act. It never blocks; after stop
// nothing more is queued and false is returned (stop drains what was queued
// before).
func (w *worker) post(act *activation, fn func()) bool {
	return w.enqueue(job{act: act, fn: fn})
}

func (w *worker) enqueue(j job) bool {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return false
	}
	w.queue = append(w.queue, j)
	w.mu.Unlock()
	select {
	case w.wakeup <- struct{}{}:
	default:
	}
	return true
}

func (w *worker) stop() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	w.stopped = true
	w.mu.Unlock()
	select {
	case w.wakeup <- struct{}{}:
	default:
	}
	<-w.done
}

func (w *worker) loop() {
	defer close(w.done)
	for {
		w.mu.Lock()
		if len(w.queue) == 0 && w.stopped {
			w.mu.Unlock()
			return
		}
		if len(w.queue) == 0 {
			w.mu.Unlock()
			<-w.wakeup
			continue
		}
		j := w.queue[0]
		w.queue[0] = job{}
		w.queue = w.queue[1:]
		w.mu.Unlock()
		w.runTurn(j)
	}
}

var (
	errTurnBudget = errors.New("turn budget exceeded")
	errHeapLimit  = errors.New("heap limit exceeded")
)

// runTurn runs one job with the turn budget watchdog, then settles the
// consequences: a blown budget or stack overflow fails the activation that
// owned the turn and rebuilds the runtime; otherwise the activation is
// checked for completion, parking or a stall.
func (w *worker) runTurn(j job) {
	if j.act != nil && j.act.ended && !j.always {
		return
	}
	w.current = j.act
	id := w.beginTurn()
	timer := time.AfterFunc(w.budget, func() { w.interruptTurn(id, errTurnBudget) })
	func() {
		defer func() {
			if r := recover(); r != nil {
				w.broken = fmt.Errorf("panic in JavaScript turn: %v", r)
				w.log.Error("panic in JavaScript turn", "panic", r)
			}
		}()
		j.fn()
	}()
	timer.Stop()
	if w.broken == nil {
		w.reportRejections()
	}
	w.rejections, w.reaction, w.node = nil, nil, ""
	if w.broken != nil && w.everRegistered {
		w.rebuilding.Store(true)
	}
	w.endTurn()
	w.current = nil
	if w.broken != nil {
		err, node := w.broken, w.brokenNode
		w.broken, w.brokenNode = nil, ""
		if !w.everRegistered {
			// The module never registered: Load reports the failure
			// (here when register was async and ran away in a later
			// turn) and the gateway does not start, so there is
			// nothing to rebuild (and rebuilding would run the runaway
			// again).
			w.settleRegistration(registration{err: w.loadError("register(gateway) was interrupted", err)})
			return
		}
		if reason, ok := w.uncatchableReason(err); ok {
			if node != "" {
				// A first attempt's body runs before its node is
				// journaled: the message is where the task shows.
				reason += fmt.Sprintf(" in the body of task %q", node)
			}
			err = errors.New(reason)
		}
		w.rebuild(j.act, err)
		return
	}
	if j.act != nil && !j.act.ended {
		j.act.afterTurn()
	}
}

// beginTurn numbers the turn that starts now. The watchdogs (turn budget,
// heap) interrupt a turn only through interruptTurn with that number, so an
// interrupt meant for a turn that already ended never lands on the next.
func (w *worker) beginTurn() uint64 {
	w.turnMu.Lock()
	defer w.turnMu.Unlock()
	id := w.turnID.Add(1)
	w.turnStart.Store(time.Now().UnixNano())
	return id
}

// endTurn closes the turn and clears any interrupt aimed at it that goja
// did not consume (it struck while Go code ran).
func (w *worker) endTurn() {
	w.turnMu.Lock()
	w.turnStart.Store(0)
	w.turnID.Add(1)
	if w.rt != nil {
		w.rt.ClearInterrupt()
	}
	w.turnMu.Unlock()
}

// interruptTurn interrupts the running turn if it is still turn id.
func (w *worker) interruptTurn(id uint64, reason error) bool {
	w.turnMu.Lock()
	defer w.turnMu.Unlock()
	if w.turnID.Load() != id || w.turnStart.Load() == 0 {
		return false
	}
	if rt := w.rtForInterrupt.Load(); rt != nil {
		rt.Interrupt(reason)
	}
	return true
}

// uncatchable records an uncatchable goja error (interrupt, stack overflow)
// so that runTurn rebuilds the worker; it reports whether err was one.
func (w *worker) uncatchable(err error) bool {
	_, ok := w.uncatchableReason(err)
	if ok {
		w.broken = err
		if w.brokenNode == "" {
			// The code running now: a workflow continuation run from
			// inside a body's call is the workflow's, not the task's.
			w.brokenNode = w.asyncContextNow().node
		}
	}
	return ok
}

// uncatchableReason says why an uncatchable goja error ended a turn; ok is
// false for any other error.
func (w *worker) uncatchableReason(err error) (reason string, ok bool) {
	var ie *goja.InterruptedError
	var se *goja.StackOverflowError
	switch {
	case errors.As(err, &ie) && ie.Value() == errHeapLimit:
		return fmt.Sprintf("the gateway's live heap passed its limit of %d MiB while this JavaScript turn ran (runaway allocation?)", w.ex.maxHeap>>20), true
	case errors.As(err, &ie):
		return fmt.Sprintf("a JavaScript turn ran longer than the %s turn budget (infinite loop?)", w.budget), true
	case errors.As(err, &se):
		return "maximum call stack size exceeded (unbounded recursion?)", true
	}
	return "", false
}

// call invokes a JS function; an uncatchable error is recorded for runTurn
// and returned like any other.
func (w *worker) call(fn goja.Callable, this goja.Value, args ...goja.Value) (goja.Value, error) {
	v, err := fn(this, args...)
	if err != nil {
		w.uncatchable(err)
	}
	return v, err
}

// rebuild replaces the runtime after an uncatchable error: goja dropped the
// microtask queue of every run on this worker, so the culprit activation
// fails with JS_INTERRUPTED and every other one is restarted from its
// journal on a fresh runtime.
//
// The other runs' in-flight task bodies are not moved: their state after
// an await lives in the old runtime, objects cannot move between runtimes,
// and the old runtime cannot be kept for them (some of their queued
// continuations were dropped, unknowably which, and module state may be
// half-updated). So their t.exec children are killed with the activation
// and the attempt is recorded ATTEMPT_ABANDONED when the replay starts the
// task's next attempt: at-least-once, as the package documentation says.
func (w *worker) rebuild(culprit *activation, cause error) {
	w.log.Error("JavaScript turn interrupted; rebuilding worker", "err", cause)
	acts := make([]*activation, 0, len(w.acts))
	for a := range w.acts {
		acts = append(acts, a)
	}
	for _, a := range acts {
		if a == culprit {
			a.failInterrupted(cause)
			continue
		}
		a.restart()
	}
	for id, t := range w.timers {
		t.timer.Stop()
		delete(w.timers, id)
	}
	defer w.rebuilding.Store(false)
	// Evaluating the module and register(gateway) again is a turn of its
	// own, under the same budget: code that ran away once may again.
	id := w.beginTurn()
	timer := time.AfterFunc(w.budget, func() { w.interruptTurn(id, errTurnBudget) })
	err := w.initRuntime()
	timer.Stop()
	w.endTurn()
	w.broken, w.brokenNode = nil, ""
	if err != nil {
		// The module registered fine before; failing now means the
		// process is in trouble. The worker takes no more runs.
		w.unusable.Store(true)
		w.log.Error("rebuild worker runtime failed; the worker is retired", "err", err)
	}
}
