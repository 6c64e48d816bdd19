package jsruntime

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/dop251/goja"
)

func jsonMarshal(v any) (json.RawMessage, error) { return json.Marshal(v) }

// newT builds the task body context t of docs/workflows.md: the only place
// effects are allowed.
func (t *taskRun) newT(at *attemptRun) *goja.Object {
	a := t.a
	rt := a.w.rt
	o := rt.NewObject()
	set := func(k string, v any) { must(o.Set(k, v)) }
	set("runId", a.run.RunID)
	set("nodeId", t.key.id)
	set("iteration", t.key.iteration)
	set("attempt", at.number)
	set("idempotencyKey", fmt.Sprintf("%s:%s:%d", a.run.RunID, t.key.id, t.key.iteration))
	a.w.lazyProperty(o, "signal", at.signal.object)
	set("heartbeat", func(call goja.FunctionCall) goja.Value {
		data := ""
		if present(call.Argument(0)) {
			s, err := a.w.helpers.stringify(call.Argument(0))
			if err != nil {
				panic(rt.NewTypeError("t.heartbeat(data): data must be JSON-serialisable"))
			}
			if limit := a.ex.maxOutput; len(s) > limit {
				panic(a.w.outputTooLarge("t.heartbeat(data): data " + errOutputTooLarge{size: len(s), of: " of JSON", limit: limit}.Error()))
			}
			data = s
		}
		if !at.finished {
			a.commit(func() error { return a.s.Heartbeat(t.key.id, t.key.iteration, at.number, data) }, nil)
		}
		return goja.Undefined()
	})
	set("emit", func(call goja.FunctionCall) goja.Value {
		text, err := textWithin(call.Argument(0), a.ex.maxOutput)
		if err != nil {
			panic(a.w.outputTooLarge("t.emit(text): text " + err.Error()))
		}
		stream := "stdout"
		if present(call.Argument(1)) {
			stream = call.Argument(1).String()
			if stream != "stdout" && stream != "stderr" {
				panic(rt.NewTypeError(`t.emit(text, stream): stream must be "stdout" or "stderr", got %q`, stream))
			}
		}
		if !at.finished {
			t.emit(at, text, stream)
		}
		return goja.Undefined()
	})
	set("env", func(call goja.FunctionCall) goja.Value {
		name, ok := call.Argument(0).Export().(string)
		if !ok {
			panic(rt.NewTypeError("t.env(name): name must be a string"))
		}
		if !slices.Contains(a.wf.Env, name) {
			panic(rt.NewTypeError("t.env(%q): %s is not in the env allowlist of workflow %q (gateway.register options.env)", name, name, a.wf.Key))
		}
		v, ok := a.ex.lookupEnv(name)
		if !ok {
			return goja.Undefined()
		}
		return rt.ToValue(v)
	})
	set("fetch", func(call goja.FunctionCall) goja.Value { return t.fetch(at, call) })
	set("exec", func(call goja.FunctionCall) goja.Value { return t.exec(at, call) })
	return o
}

// emit records task output for a task.output event (coalesced by the
// activation, committed in order with the task's steps). An attempt's
// streamed output is bounded by MaxOutputBytes; past it, one marker says
// so and the rest is dropped.
func (t *taskRun) emit(at *attemptRun, text, stream string) {
	t.journalStart(at) // output goes after the start it belongs to
	limit := t.a.ex.maxOutput
	if at.emitted+len(text) > limit {
		if at.truncated {
			return
		}
		text = text[:limit-at.emitted] + fmt.Sprintf("\n[output truncated: more than %d bytes]\n", limit)
		at.emitted, at.truncated = limit, true
	} else {
		at.emitted += len(text)
	}
	t.a.output(t.key.id, text, stream)
}

// abortSignal is the AbortSignal-like t.signal: aborted, reason,
// onabort, addEventListener("abort"), removeEventListener,
// throwIfAborted(). Loop-only.
type abortSignal struct {
	w         *worker
	rt        *goja.Runtime
	obj       *goja.Object
	aborted   bool
	reason    goja.Value
	listeners []goja.Callable
}

func newAbortSignal(w *worker) *abortSignal {
	return &abortSignal{w: w, rt: w.rt, reason: goja.Undefined()}
}

// object is t.signal, made when the body first reads it (most never do).
func (s *abortSignal) object() goja.Value {
	if s.obj != nil {
		return s.obj
	}
	rt := s.rt
	o := rt.NewObject()
	must(o.DefineAccessorProperty("aborted", rt.ToValue(func(goja.FunctionCall) goja.Value { return rt.ToValue(s.aborted) }), nil, goja.FLAG_FALSE, goja.FLAG_TRUE))
	must(o.DefineAccessorProperty("reason", rt.ToValue(func(goja.FunctionCall) goja.Value { return s.reason }), nil, goja.FLAG_FALSE, goja.FLAG_TRUE))
	must(o.Set("onabort", goja.Null()))
	must(o.Set("addEventListener", func(call goja.FunctionCall) goja.Value {
		if call.Argument(0).String() == "abort" {
			if fn, ok := goja.AssertFunction(call.Argument(1)); ok {
				s.listeners = append(s.listeners, fn)
			}
		}
		return goja.Undefined()
	}))
	must(o.Set("removeEventListener", func(call goja.FunctionCall) goja.Value { return goja.Undefined() }))
	must(o.Set("throwIfAborted", func(goja.FunctionCall) goja.Value {
		if s.aborted {
			panic(s.reason)
		}
		return goja.Undefined()
	}))
	s.obj = o
	return o
}

func (s *abortSignal) abort(reason goja.Value) {
	if s.aborted {
		return
	}
	s.aborted = true
	s.reason = reason
	if s.obj == nil {
		return // never read: nothing listens
	}
	event := s.rt.NewObject()
	must(event.Set("type", "abort"))
	// A listener's own exception is its business; an interrupt or stack
	// overflow is recorded by w.call for the turn.
	if fn, ok := goja.AssertFunction(s.obj.Get("onabort")); ok {
		_, _ = s.w.call(fn, s.obj, event)
	}
	for _, fn := range s.listeners {
		_, _ = s.w.call(fn, s.obj, event)
	}
}
