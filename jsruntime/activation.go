package jsruntime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"

	"github.com/smithers-orchestrator/smithers-go/host"
)

type stepKey struct {
	id        string
	iteration int
}

// waitFor is a ctx promise parked on a node that settles outside the
// executor (approval, signal, timer).
type waitFor struct {
	kind    host.NodeKind
	resolve func(any) error
	reject  func(any) error
}

// activation is the executor's state for one host.Session: the workflow's
// JavaScript promise chain on one worker, its pending waits, and the
// goroutines it started. Fields marked loop-only are touched only on the
// worker's loop goroutine.
type activation struct {
	ex  *Executor
	w   *worker
	s   *host.Session
	log *slog.Logger

	ctx    context.Context // cancelled when the activation ends: aborts in-flight task work
	cancel context.CancelFunc
	wg     sync.WaitGroup // goroutines started for this activation

	// Loop-only.
	run        host.Run
	wf         host.WorkflowDef
	gen        uint64
	begun      bool // the workflow function was called
	ended      bool
	settled    bool // the workflow function settled; completion is committing
	inflight   int  // commits, task attempts, fetch/exec, JS timers in progress
	waits      map[stepKey]*waitFor
	used       map[stepKey]bool
	valueIndex int
	replaying  bool        // true until the pass has visited every journaled node
	replayLeft int         // journaled nodes not yet visited in this pass
	parking    bool        // a Park is committing
	held       []host.Node // deliveries that arrived while parking
	running    int         // task attempts executing (maxConcurrency)
	// unjournaled is the first attempt whose body is being called before
	// its start is journaled (taskRun.runFirstAttempt): a commit asked
	// for meanwhile journals that start first.
	unjournaled *attemptRun
	attempts    map[*attemptRun]struct{} // attempts whose body has not settled, for t.signal on cancel
	pending     []func()                 // attempts waiting for a maxConcurrency slot

	// Task output (t.emit, t.exec) is coalesced before it is committed as
	// task.output events: at most every outputDelay or outputChunk bytes.
	out      []*pendingOutput
	outBytes int
	outTimer bool

	cmu        sync.Mutex
	commits    []commitJob
	committing bool
}

// pendingOutput is buffered output of one node and stream.
type pendingOutput struct {
	nodeID, stream string
	text           strings.Builder
}

const (
	outputDelay = 20 * time.Millisecond
	outputChunk = 64 << 10
)

// output buffers a chunk of a task's output for a task.output event.
func (a *activation) output(nodeID, text, stream string) {
	if a.ended || text == "" {
		return
	}
	var p *pendingOutput
	if n := len(a.out); n > 0 && a.out[n-1].nodeID == nodeID && a.out[n-1].stream == stream {
		p = a.out[n-1]
	} else {
		p = &pendingOutput{nodeID: nodeID, stream: stream}
		a.out = append(a.out, p)
	}
	p.text.WriteString(text)
	a.outBytes += len(text)
	if a.outBytes >= outputChunk {
		a.flushOutput()
		return
	}
	if !a.outTimer {
		a.outTimer = true
		a.inflight++ // buffered output keeps the run from parking or ending
		time.AfterFunc(outputDelay, func() {
			a.w.post(a, func() {
				a.inflight--
				a.outTimer = false
				a.flushOutput()
			})
		})
	}
}

// flushOutput commits the buffered output, one event per node and stream
// run, in the order it was written.
func (a *activation) flushOutput() {
	if len(a.out) == 0 {
		return
	}
	out := a.out
	a.out, a.outBytes = nil, 0
	for _, p := range out {
		nodeID, stream, text := p.nodeID, p.stream, p.text.String()
		a.enqueueCommit(func() error { return a.s.Emit(nodeID, text, stream) }, nil)
	}
}

type commitJob struct {
	do   func() error
	then func(error)
}

func newActivation(ex *Executor, w *worker, s *host.Session) *activation {
	ctx, cancel := context.WithCancel(context.Background())
	return &activation{ex: ex, w: w, s: s, log: s.Logger(), ctx: ctx, cancel: cancel,
		waits: map[stepKey]*waitFor{}, used: map[stepKey]bool{}}
}

// commit runs do (a host step commit) on the activation's commit goroutine,
// in the order commits were issued, then runs then on the loop. Commits of
// one activation never reorder, so its events keep the order of its steps;
// buffered task output is committed first.
func (a *activation) commit(do func() error, then func(error)) {
	if a.ended {
		return
	}
	if at := a.unjournaled; at != nil {
		at.t.journalStart(at) // a step or heartbeat of the body comes after its start
	}
	a.flushOutput()
	a.enqueueCommit(do, then)
}

func (a *activation) enqueueCommit(do func() error, then func(error)) {
	a.inflight++
	a.cmu.Lock()
	a.commits = append(a.commits, commitJob{do: do, then: then})
	start := !a.committing
	if start {
		a.committing = true
		a.wg.Add(1)
	}
	a.cmu.Unlock()
	if start {
		go a.drainCommits()
	}
}

func (a *activation) drainCommits() {
	defer a.wg.Done()
	for {
		a.cmu.Lock()
		if len(a.commits) == 0 {
			a.committing = false
			a.cmu.Unlock()
			return
		}
		j := a.commits[0]
		a.commits = a.commits[1:]
		a.cmu.Unlock()
		err := j.do()
		a.w.post(a, func() {
			a.inflight--
			if j.then != nil {
				j.then(err)
			}
		})
	}
}

// async runs work on its own goroutine (fetch, exec), then done on the loop.
func (a *activation) async(work func(ctx context.Context) func()) {
	if a.ended {
		return
	}
	a.inflight++
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		then := work(a.ctx)
		a.w.post(a, func() {
			a.inflight--
			if then != nil {
				then()
			}
		})
	}()
}

// start calls the workflow function with a fresh ctx; journaled steps
// resolve from the journal (replay) until the first new one.
func (a *activation) start() {
	w := a.w
	if a.s.Ended() {
		a.end()
		return
	}
	if w.unusable.Load() && a.ex.anyUsableWorker() {
		// The worker was retired after this run was handed to it:
		// another one runs it.
		a.restart()
		return
	}
	a.gen = w.gen
	a.run = a.s.Run()
	a.wf = a.s.Workflow()
	w.acts[a] = struct{}{}
	a.replayLeft = a.s.JournalSize()
	a.replaying = a.replayLeft > 0
	fn, ok := w.workflows[a.wf.Key]
	if !ok && !w.registered {
		// The worker was rebuilt and its async register(gateway) has not
		// settled yet: start once it has.
		delete(w.acts, a)
		time.AfterFunc(10*time.Millisecond, func() { w.post(a, a.start) })
		return
	}
	if !ok {
		a.finishFailed(storedError{Name: "SmithersError", Code: host.CodeWorkflowMissing, Message: fmt.Sprintf("workflow %q is not registered on this worker", a.wf.Key)})
		return
	}
	a.begun = true
	ctxObj, err := a.newCtx()
	if err != nil {
		a.finishFailed(storedError{Name: "SmithersError", Code: host.CodeWorkflowFailed, Message: "build ctx: " + err.Error()})
		return
	}
	v, err := w.call(fn, goja.Undefined(), ctxObj)
	if err != nil {
		if w.broken != nil {
			return
		}
		a.onWorkflowRejected(exceptionValue(w.rt, err))
		return
	}
	w.helpers.settle(v, a.onWorkflowResolved, a.onWorkflowRejected)
}

func exceptionValue(rt *goja.Runtime, err error) goja.Value {
	var ex *goja.Exception
	if errors.As(err, &ex) {
		return ex.Value()
	}
	return rt.NewGoError(err)
}

func (a *activation) onWorkflowResolved(v goja.Value) {
	if a.ended || a.settled {
		return
	}
	out, err := a.w.helpers.storable(v, a.ex.maxOutput)
	if err != nil {
		if a.w.uncatchable(err) {
			return
		}
		se := a.w.unstorable("the workflow's return value", err)
		if se.Code == "" {
			se.Code = host.CodeWorkflowFailed
		}
		a.finishFailed(se)
		return
	}
	a.settled = true
	a.commit(func() error { a.s.Complete(out); return nil }, func(error) { a.end() })
}

func (a *activation) onWorkflowRejected(e goja.Value) {
	if a.ended || a.settled {
		return
	}
	se := a.w.storedErrorOf(e)
	if se.Code == "" {
		se.Code = host.CodeWorkflowFailed
	}
	a.finishFailed(se)
}

func (a *activation) finishFailed(se storedError) {
	if a.ended || a.settled {
		return
	}
	a.settled = true
	errJSON := se.json()
	a.commit(func() error { a.s.Fail(errJSON); return nil }, func(error) { a.end() })
}

// afterTurn runs after every turn of the activation: with nothing in flight
// it parks the run when it waits on approvals, signals or timers, and fails
// it when it waits on something nothing will ever settle.
func (a *activation) afterTurn() {
	if !a.begun || a.ended || a.settled || a.parking || a.inflight > 0 {
		return
	}
	if len(a.waits) > 0 {
		a.park()
		return
	}
	a.finishFailed(storedError{Name: "SmithersError", Code: host.CodeWorkflowFailed,
		Message: "the workflow is awaiting a promise that nothing will settle (not a ctx.* call, task or timer)"})
}

// park commits the run's waiting status on the commit goroutine, so the
// worker keeps serving other runs meanwhile. Deliveries that arrive while
// the park commits are held: if the run parked, they have the engine
// activate it again (the journal already has them); if it did not (the
// journal showed nothing waiting), they are delivered here.
func (a *activation) park() {
	a.parking = true
	// The waits the workflow awaits: Park does not park a run one of them
	// is already settled for in the store, and hands those back.
	awaiting := make([]host.NodeRef, 0, len(a.waits))
	for k := range a.waits {
		awaiting = append(awaiting, host.NodeRef{NodeID: k.id, Iteration: k.iteration})
	}
	var parked bool
	var settled []host.Node
	a.commit(func() error {
		var err error
		parked, settled, err = a.s.Park(awaiting)
		return err
	}, func(err error) {
		a.parking = false
		held := append(a.held, settled...)
		a.held = nil
		if err != nil && !errors.Is(err, host.ErrSessionEnded) && !errors.Is(err, host.ErrRunTerminal) {
			// Try again in a second (the turn after the delay parks anew)
			// rather than spinning against a failing store.
			a.log.Error("park run; retrying in 1s", "err", err)
			a.inflight++
			time.AfterFunc(time.Second, func() { a.w.post(a, func() { a.inflight-- }) })
		}
		if parked {
			a.end()
			if len(held) > 0 {
				a.s.Rewake()
			}
			return
		}
		for _, n := range held {
			a.deliver(n)
		}
	})
}

// deliver settles the wait on node n, if the workflow is waiting on it.
func (a *activation) deliver(n host.Node) {
	if a.parking {
		a.held = append(a.held, n)
		return
	}
	k := stepKey{n.NodeID, n.Iteration}
	wt, ok := a.waits[k]
	if !ok || !n.State.Settled() {
		return
	}
	delete(a.waits, k)
	a.settleFromNode(n, wt.resolve, wt.reject, false)
}

// end drops the activation's JavaScript state and aborts its goroutines'
// work. Pending ctx promises never settle.
func (a *activation) end() {
	if a.ended {
		return
	}
	a.ended = true
	a.cancel()
	a.waits = nil
	a.pending = nil
	delete(a.w.acts, a)
	a.w.dropTimers(a)
	a.ex.forget(a)
}

// abandon ends the activation on the engine's request (cancel, timeout,
// shutdown).
func (a *activation) abandon(reason error) {
	a.log.Debug("run activation detached", "reason", reason)
	// Task bodies still running hear it on t.signal before their
	// activation's state is dropped.
	code, msg := host.CodeCancelled, reason.Error()
	var he *host.Error
	if errors.As(reason, &he) {
		code, msg = he.Code, he.Message
	}
	// The listeners run as this activation's (timers they start are its
	// own and dropped with it), and each attempt is finished first so that
	// a body settling in reaction commits nothing.
	prev := a.w.current
	a.w.current = a
	for at := range a.attempts {
		if at.finish() && at.signal.rt == a.w.rt {
			at.signal.abort(a.w.smithersError(code, msg, nil))
		}
	}
	a.w.current = prev
	a.end()
}

// restart ends the activation after its worker lost the JavaScript state
// and has the engine replay the run once its goroutines returned.
func (a *activation) restart() {
	a.end()
	go func() {
		a.wg.Wait()
		a.s.Restart()
	}()
}

// failInterrupted fails the run whose turn blew the budget or the stack.
func (a *activation) failInterrupted(cause error) {
	errJSON := storedError{Name: "SmithersError", Code: host.CodeJSInterrupted, Message: cause.Error()}.json()
	a.end()
	go func() {
		a.wg.Wait()
		a.s.Fail(errJSON)
	}()
}

// settleFromNode resolves or rejects a ctx promise from a settled node, the
// same way whether the node settled just now or in an earlier activation.
func (a *activation) settleFromNode(n host.Node, resolve, reject func(any) error, continueOnFail bool) {
	w := a.w
	var err error
	switch n.State {
	case host.NodeFinished:
		v, perr := w.helpers.parse(n.OutputJSON)
		if perr != nil {
			err = reject(w.smithersError(host.CodeWorkflowFailed, "stored output of "+n.NodeID+" is not valid JSON", nil))
			break
		}
		err = resolve(v)
	case host.NodeSkipped:
		err = resolve(goja.Undefined())
	case host.NodeFailed:
		if continueOnFail {
			err = resolve(goja.Undefined())
			break
		}
		err = reject(w.errorFromJSON(n.ErrorJSON, host.CodeTaskFailed))
	case host.NodeCancelled:
		err = reject(w.smithersError(host.CodeCancelled, "Run was cancelled", nil))
	default:
		return
	}
	if err != nil {
		w.uncatchable(err)
	}
}
