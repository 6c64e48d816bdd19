package jsruntime

import (
	"reflect"

	"github.com/dop251/goja"
)

// runFirstAttempt runs a new task's first attempt before its start is
// journaled, to spare a commit: a body that settles in this turn (it
// awaits nothing, as a computation does) is journaled pending, started
// and finished in one transaction with its output (Session.RanTask), as
// a static value is. Otherwise the start is journaled
// (Session.BeginFirstAttempt) before anything else the attempt does is:
// when the turn ends with the body still running, or at its first step,
// output, heartbeat or failure. What this gives up is nothing the
// journal promises: a task still runs at least once (a gateway that dies
// before the start is journaled runs the body again, as attempt 1
// instead of 2), and its result is journaled before ctx.task resolves.
func (t *taskRun) runFirstAttempt() {
	a := t.a
	if t.settled {
		return
	}
	// Output buffered before this body belongs before its start.
	a.flushOutput()
	at := t.newAttempt(1)
	at.unjournaled = true
	at.startedAtMs = a.s.NowMs()
	w := a.w
	a.unjournaled = at
	v, err := t.callBody(at)
	// What follows is still this task's: its result's "then" getter and
	// its storing run code of the body's.
	w.node = t.key.id
	defer func() { w.node = "" }()
	var out goja.Value
	settled := false
	if err == nil && at.unjournaled {
		// A "then" getter that reaches the journal still journals the
		// start first.
		out, settled = w.fulfilled(v)
	}
	a.unjournaled = nil
	switch {
	case w.broken != nil:
		return // the turn ran away: the worker is rebuilt
	case err != nil:
		t.onAttemptFailed(at, exceptionValue(w.rt, err))
	case settled && at.unjournaled:
		t.onAttemptSucceeded(at, out)
	default:
		t.journalStart(at)
		w.helpers.settle(v, func(v goja.Value) { t.onAttemptSucceeded(at, v) }, func(e goja.Value) { t.onAttemptFailed(at, e) })
	}
}

// fulfilled returns what v resolves to when that is known now: v itself
// when it is not a promise or thenable, a promise's value once fulfilled.
// It runs no code of v's but a "then" getter (which Promise.resolve reads
// too); one that throws makes v a rejection, for settle to find, and one
// that runs away ends the turn (w.broken).
func (w *worker) fulfilled(v goja.Value) (goja.Value, bool) {
	o, ok := v.(*goja.Object)
	if !ok {
		return v, true
	}
	if o.ExportType() == promiseType {
		if p := o.Export().(*goja.Promise); p.State() == goja.PromiseStateFulfilled {
			return p.Result(), true
		}
		return nil, false
	}
	then, ok := w.getProperty(o, "then")
	if !ok {
		return nil, false
	}
	if _, thenable := goja.AssertFunction(then); thenable {
		return nil, false
	}
	return v, true
}

// getProperty reads o[name], which may run a getter: false when it threw
// or, uncatchable (an interrupt, a stack overflow), ended the turn.
func (w *worker) getProperty(o *goja.Object, name string) (v goja.Value, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			err, isErr := r.(error)
			if !isErr || !w.uncatchable(err) {
				panic(r)
			}
			v, ok = nil, false
		}
	}()
	if ex := w.rt.Try(func() { v = o.Get(name) }); ex != nil {
		return nil, false
	}
	return v, true
}

// promiseType is what ExportType says of a Promise (Export of any other
// object converts it deeply, calling its getters).
var promiseType = reflect.TypeOf((*goja.Promise)(nil))

// journalStart journals the start of an attempt that ran before it was
// (runFirstAttempt), ahead of any commit the attempt asks for later. When
// the engine refuses it (the run was cancelled or finished meanwhile),
// the attempt ends and ctx.task rejects.
func (t *taskRun) journalStart(at *attemptRun) {
	if !at.unjournaled {
		return
	}
	at.unjournaled = false
	a := t.a
	if a.unjournaled == at {
		a.unjournaled = nil
	}
	if a.ended {
		return
	}
	// Not a.commit: output the body buffered goes after its start. The
	// body ran as attempt 1 of a node the journal did not have: a node
	// found there after all means an old journal (the run replays).
	a.enqueueCommit(func() error {
		_, err := a.s.BeginFirstAttempt(t.key.id, t.key.iteration, t.opts.label, t.meta, at.startedAtMs)
		return err
	}, func(err error) {
		if err == nil {
			return
		}
		e := a.w.hostErrorToJS(err)
		if !at.finished {
			at.abort(e) // the body still runs: it hears why on t.signal
		}
		if at.finish() {
			t.releaseSlot()
		}
		t.settleWithError(e)
	})
}
