package jsruntime

import (
	"context"
	"fmt"
	"time"

	"github.com/dop251/goja"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// taskOptions are the options of ctx.task (docs/workflows.md).
type taskOptions struct {
	retries        int
	backoffMs      int64
	timeoutMs      int64
	label          string
	continueOnFail bool
}

const maxBackoffMs = 300000

func (a *activation) taskOptions(idArg, v goja.Value) taskOptions {
	rt := a.w.rt
	const what = "ctx.task options"
	named := callName("ctx.task", idArg) + " options."
	o := optionsObject(rt, v, what)
	opts := taskOptions{retries: 3, backoffMs: 1000}
	if o == nil {
		return opts
	}
	if r := o.Get("retries"); present(r) {
		opts.retries = int(nonNegativeInt(rt, r, what+".retries"))
	}
	if b := o.Get("backoffMs"); present(b) {
		opts.backoffMs = durationMs(rt, b, named+"backoffMs", false)
	}
	if t := o.Get("timeoutMs"); present(t) {
		opts.timeoutMs = durationMs(rt, t, named+"timeoutMs", true)
	}
	opts.label = optString(rt, o, "label", func(f string) string { return what + "." + f })
	opts.continueOnFail = optBool(rt, o, "continueOnFail", what)
	return opts
}

// taskRun drives one task node through its attempts.
type taskRun struct {
	a       *activation
	key     stepKey
	body    goja.Callable
	opts    taskOptions
	resolve func(any) error
	reject  func(any) error
	attempt *attemptRun // the attempt in flight, nil between attempts
	// slotHeld is true while the task holds a slot of the workflow's
	// concurrency limit: from the grant until its attempt's body ends.
	slotHeld bool
	meta     string // the node's meta JSON (its options)
	// settled is set when ctx.task's promise was settled (or rejected
	// because the engine refused a step): later answers change nothing.
	settled bool
}

// attemptRun is one execution of a task body.
type attemptRun struct {
	t         *taskRun
	number    int
	ctx       context.Context // cancelled on timeout, cancel, or when the attempt settles
	cancel    context.CancelFunc
	signal    *abortSignal
	timer     *time.Timer
	finished  bool
	emitted   int  // bytes of output streamed by this attempt
	truncated bool // the output passed MaxOutputBytes and was cut
	// unjournaled is true while the attempt's start is not journaled yet:
	// a first attempt runs its body before its start is (runFirstAttempt),
	// and the start is journaled with the result when the body settles in
	// that turn, or on its own before anything else of the attempt.
	unjournaled bool
	startedAtMs int64
}

// jsTask is ctx.task(id, body, opts).
func (a *activation) jsTask(call goja.FunctionCall) goja.Value {
	rt := a.w.rt
	opts := a.taskOptions(call.Argument(0), call.Argument(2))
	st := a.begin("ctx.task", call.Argument(0), host.KindTask, opts.continueOnFail)
	if st.settled {
		return st.value(rt)
	}
	k, resolve, reject := st.key, st.resolve, st.reject
	metaJSON := fmt.Sprintf(`{"retries":%d,"backoffMs":%d,"timeoutMs":%d,"continueOnFail":%t}`, opts.retries, opts.backoffMs, opts.timeoutMs, opts.continueOnFail)
	body, isFn := goja.AssertFunction(call.Argument(1))
	if !isFn {
		out, err := a.w.helpers.storable(call.Argument(1), a.ex.maxOutput)
		if err != nil {
			if a.w.uncatchable(err) {
				panic(err)
			}
			se := a.w.unstorable(fmt.Sprintf("ctx.task(%q, value): the static value", k.id), err)
			if se.Code == host.CodeOutputTooLarge {
				panic(a.w.outputTooLarge(se.Message))
			}
			panic(rt.NewTypeError("%s", se.Message))
		}
		a.commit(func() error {
			_, err := a.s.StaticTask(k.id, k.iteration, opts.label, metaJSON, out)
			return err
		}, func(err error) {
			if err != nil {
				a.rejectWith(reject, a.w.hostErrorToJS(err))
				return
			}
			if n, ok := a.s.Lookup(k.id, k.iteration); ok {
				a.settleFromNode(n, resolve, reject, opts.continueOnFail)
			}
		})
		return st.value(rt)
	}
	t := &taskRun{a: a, key: k, body: body, opts: opts, resolve: resolve, reject: reject, meta: metaJSON}
	a.inflight++  // the task is in flight until its node settles
	if st.found { // journaled but unsettled: a previous activation stopped mid-task
		t.schedule()
		return st.value(rt)
	}
	if max := a.wf.MaxConcurrency; a.wf.Concurrency == nil && (max == 0 || a.running < max) {
		// A slot is free: the first attempt runs in a turn of its own,
		// as soon as this one ends (runFirstAttempt). Under a workflow
		// concurrency limit the node is journaled pending first (below),
		// so that it shows while the attempt waits for a slot.
		a.running++
		if !a.w.post(a, t.runFirstAttempt) {
			// The worker stopped (the gateway is closing): nothing runs.
			a.running--
			a.inflight--
		}
		return st.value(rt)
	}
	a.commit(func() error {
		_, err := a.s.CreateTask(k.id, k.iteration, opts.label, metaJSON)
		return err
	}, func(err error) {
		if err != nil {
			t.settleWithError(a.w.hostErrorToJS(err))
			return
		}
		t.schedule()
	})
	return st.value(rt)
}

// schedule starts the next attempt now, or once the run's maxConcurrency
// and the workflow's concurrency limit both give it a slot.
//
// The run's own slot is taken first, the workflow's second: waiting for
// the run's slot while holding the workflow's would keep other runs'
// bodies from a slot this run cannot use yet, while the other way round
// only keeps this run's own later tasks waiting, and they would queue
// behind this attempt for the workflow's slot anyway.
func (t *taskRun) schedule() {
	a := t.a
	if a.ended || t.settled {
		return
	}
	if max := a.wf.MaxConcurrency; max > 0 && a.running >= max {
		a.pending = append(a.pending, t.schedule)
		return
	}
	a.running++
	t.acquireWorkflowSlot(func() {
		a.commit(func() error {
			_, _, err := a.s.StartAttempt(t.key.id, t.key.iteration)
			return err
		}, func(err error) {
			if err != nil {
				t.releaseSlot()
				t.settleWithError(a.w.hostErrorToJS(err))
				return
			}
			n, _ := a.s.Lookup(t.key.id, t.key.iteration)
			t.runAttempt(n.Attempts)
		})
	})
}

// acquireWorkflowSlot calls start on the loop once the task holds a slot
// of the workflow's concurrency limit (at once without a limit). Waiting
// is a place in the engine's queue and a callback, no goroutine; the task
// keeps the activation in flight meanwhile, so the run does not park.
func (t *taskRun) acquireWorkflowSlot(start func()) {
	a := t.a
	if a.wf.Concurrency == nil {
		start()
		return
	}
	s := a.s
	s.AcquireTaskSlot(t.key.id, t.key.iteration, func() {
		// The grant comes on the loop inside AcquireTaskSlot or on the
		// goroutine of the release that freed the slot: either way the
		// attempt starts in a turn of its own. The turn runs even when the
		// activation ended meanwhile, to give back a slot that nothing
		// would use (the engine releases an ended activation's slots, but
		// a grant racing with that release would otherwise keep one).
		if !a.w.enqueue(job{act: a, always: true, fn: func() {
			if a.ended {
				s.ReleaseTaskSlot()
				return
			}
			t.slotHeld = true
			start()
		}}) {
			s.ReleaseTaskSlot() // the worker stopped: the gateway is closing
		}
	})
}

// releaseSlot ends an attempt's hold on its slots (the workflow's and the
// run's) and starts the run's next attempt waiting for a run slot.
func (t *taskRun) releaseSlot() {
	a := t.a
	if t.slotHeld {
		t.slotHeld = false
		a.s.ReleaseTaskSlot()
	}
	a.running--
	if len(a.pending) > 0 && !a.ended {
		next := a.pending[0]
		a.pending = a.pending[1:]
		next()
	}
}

// runAttempt calls the body with a fresh t.
func (t *taskRun) runAttempt(number int) {
	at := t.newAttempt(number)
	v, err := t.callBody(at)
	if err != nil {
		if t.a.w.broken != nil {
			return
		}
		t.onAttemptFailed(at, exceptionValue(t.a.w.rt, err))
		return
	}
	t.a.w.helpers.settle(v, func(v goja.Value) { t.onAttemptSucceeded(at, v) }, func(e goja.Value) { t.onAttemptFailed(at, e) })
}

// newAttempt makes the attempt in flight and arms its timeout.
func (t *taskRun) newAttempt(number int) *attemptRun {
	a := t.a
	w := a.w
	ctx, cancel := context.WithCancel(a.ctx)
	at := &attemptRun{t: t, number: number, ctx: ctx, cancel: cancel}
	at.signal = newAbortSignal(w)
	t.attempt = at
	if a.attempts == nil {
		a.attempts = map[*attemptRun]struct{}{}
	}
	a.attempts[at] = struct{}{}
	if t.opts.timeoutMs > 0 {
		at.timer = time.AfterFunc(millis(t.opts.timeoutMs), func() {
			w.post(a, func() {
				if at.finished {
					return
				}
				e := w.smithersError(host.CodeTaskTimeout, fmt.Sprintf("Task %s attempt %d timed out after %dms", t.key.id, number, t.opts.timeoutMs), nil)
				at.abort(e)
				t.onAttemptFailed(at, e)
			})
		})
	}
	return at
}

// callBody calls the task body with a fresh t.
func (t *taskRun) callBody(at *attemptRun) (goja.Value, error) {
	w := t.a.w
	tObj := t.newT(at)
	w.node = t.key.id
	v, err := w.call(t.body, goja.Undefined(), tObj)
	w.node = ""
	return v, err
}

func (at *attemptRun) finish() bool {
	if at.finished {
		return false
	}
	at.finished = true
	delete(at.t.a.attempts, at)
	if at.timer != nil {
		at.timer.Stop()
	}
	at.cancel()
	return true
}

// abort aborts t.signal with reason and cancels the attempt's goroutines.
func (at *attemptRun) abort(reason goja.Value) {
	at.signal.abort(reason)
	at.cancel()
}

func (t *taskRun) onAttemptSucceeded(at *attemptRun, v goja.Value) {
	a := t.a
	if a.ended || !at.finish() {
		return
	}
	t.releaseSlot()
	out, err := a.w.helpers.storable(v, a.ex.maxOutput)
	if err != nil {
		if a.w.uncatchable(err) {
			return
		}
		// Not retried: another attempt would return the same.
		t.journalStart(at)
		t.onFinalFailure(at, a.w.unstorable("its return value", err))
		return
	}
	finish := func() error {
		_, err := a.s.FinishTask(t.key.id, t.key.iteration, at.number, out)
		return err
	}
	if at.unjournaled {
		// The body settled in the turn it began: its start, attempt and
		// result are one commit.
		at.unjournaled = false
		finish = func() error {
			_, err := a.s.RanTask(t.key.id, t.key.iteration, t.opts.label, t.meta, at.startedAtMs, out)
			return err
		}
	}
	a.commit(finish, func(err error) {
		if err != nil {
			t.settleWithError(a.w.hostErrorToJS(err))
			return
		}
		t.settleFromJournal()
	})
}

// onAttemptFailed records a failed attempt and retries it after a backoff,
// unless the error is not retryable or the attempts are used up.
func (t *taskRun) onAttemptFailed(at *attemptRun, e goja.Value) {
	a := t.a
	if a.ended || !at.finish() {
		return
	}
	t.journalStart(at)
	t.releaseSlot()
	se := a.w.storedErrorOf(e)
	if !se.retryable() || at.number > t.opts.retries {
		t.onFinalFailure(at, se)
		return
	}
	errJSON := se.json()
	a.commit(func() error {
		_, err := a.s.FailAttempt(t.key.id, t.key.iteration, at.number, errJSON, false)
		return err
	}, func(err error) {
		if err != nil {
			t.settleWithError(a.w.hostErrorToJS(err))
			return
		}
		delay := t.opts.backoffMs << min(at.number-1, 20)
		if delay > maxBackoffMs || delay < 0 {
			delay = maxBackoffMs
		}
		a.inflight++ // the backoff keeps the run active
		time.AfterFunc(millis(delay), func() {
			a.w.post(a, func() {
				a.inflight--
				t.schedule()
			})
		})
	})
}

// onFinalFailure fails the node: ctx.task rejects with a SmithersError
// (TASK_TIMEOUT, the body's own SmithersError code, or TASK_FAILED), or
// resolves to undefined with continueOnFail.
func (t *taskRun) onFinalFailure(at *attemptRun, cause storedError) {
	a := t.a
	code := host.CodeTaskFailed
	if cause.Name == "SmithersError" && cause.Code != "" {
		code = cause.Code
	}
	msg := fmt.Sprintf("Task %s failed after %d attempt(s): %s", t.key.id, at.number, cause.Message)
	if cause.Name != "" && cause.Name != "SmithersError" && cause.Name != "Error" {
		msg = fmt.Sprintf("Task %s failed after %d attempt(s): %s: %s", t.key.id, at.number, cause.Name, cause.Message)
	}
	details := map[string]any{"attempts": at.number, "cause": map[string]any{"name": cause.Name, "code": cause.Code, "message": cause.Message}}
	if len(cause.Details) > 0 {
		details["causeDetails"] = cause.Details
	}
	final := storedError{Name: "SmithersError", Code: code, Message: msg, Stack: cause.Stack}
	final.Details, _ = jsonMarshal(details)
	errJSON := final.json()
	a.commit(func() error {
		_, err := a.s.FailAttempt(t.key.id, t.key.iteration, at.number, errJSON, true)
		return err
	}, func(err error) {
		if err != nil {
			t.settleWithError(a.w.hostErrorToJS(err))
			return
		}
		t.settleFromJournal()
	})
}

func (t *taskRun) settleFromJournal() {
	a := t.a
	if t.settled {
		return
	}
	t.settled = true
	a.inflight--
	if n, ok := a.s.Lookup(t.key.id, t.key.iteration); ok && n.State.Settled() {
		a.settleFromNode(n, t.resolve, t.reject, t.opts.continueOnFail)
	}
}

// settleWithError rejects ctx.task when the engine refused a step (the run
// was cancelled or finished meanwhile).
func (t *taskRun) settleWithError(e goja.Value) {
	if t.settled {
		return
	}
	t.settled = true
	t.a.inflight--
	t.a.rejectWith(t.reject, e)
}
