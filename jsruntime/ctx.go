package jsruntime

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"strconv"

	"github.com/dop251/goja"
	"github.com/google/uuid"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// newCtx builds the workflow context object of docs/workflows.md.
func (a *activation) newCtx() (*goja.Object, error) {
	w := a.w
	rt := w.rt
	ctx := rt.NewObject()
	set := func(k string, v any) { must(ctx.Set(k, v)) }
	set("runId", a.run.RunID)
	set("workflow", a.wf.Key)
	input, config := a.run.InputJSON, a.run.ConfigJSON
	w.lazyFrozen(ctx, "input", func() string { return orEmptyObject(input) })
	w.lazyFrozen(ctx, "auth", func() string {
		var cfg struct {
			Auth json.RawMessage `json:"auth"`
		}
		_ = json.Unmarshal([]byte(config), &cfg)
		return orEmptyObject(string(cfg.Auth))
	})
	set("task", a.jsTask)
	set("approval", a.jsApproval)
	set("waitForEvent", a.jsWaitForEvent)
	set("signal", a.jsSignal)
	set("sleep", a.jsSleep)
	set("timer", a.jsTimer)
	set("parallel", w.helpers.parallel)
	set("now", func(goja.FunctionCall) goja.Value {
		return a.value("now", func() string { return strconv.FormatInt(a.s.NowMs(), 10) })
	})
	set("random", func(goja.FunctionCall) goja.Value {
		return a.value("random", func() string {
			n, _ := rand.Int(rand.Reader, big.NewInt(1<<53))
			return strconv.FormatFloat(float64(n.Int64())/math.Pow(2, 53), 'g', -1, 64)
		})
	})
	set("uuid", func(goja.FunctionCall) goja.Value {
		return a.value("uuid", func() string { return strconv.Quote(uuid.NewString()) })
	})
	// ctx.log's five objects are made when it is first read.
	w.lazyProperty(ctx, "log", func() goja.Value {
		logObj := rt.NewObject()
		for _, l := range []struct {
			name  string
			level slog.Level
		}{{"debug", slog.LevelDebug}, {"info", slog.LevelInfo}, {"warn", slog.LevelWarn}, {"error", slog.LevelError}} {
			must(logObj.Set(l.name, func(call goja.FunctionCall) goja.Value {
				a.structuredLog(l.level, call.Argument(0), call.Argument(1))
				return goja.Undefined()
			}))
		}
		return logObj
	})
	return ctx, nil
}

// lazyFrozen defines obj[name] as the deeply frozen value of the JSON
// text src returns, parsed when it is first read: every activation builds
// a ctx, and parsing and freezing ctx.input and ctx.auth was a tenth of
// the gateway's CPU for a short run that reads neither. It reads as the
// data property it stands for: enumerable, the same value at every read,
// and an assignment replaces it (on the object assigned to, as for a
// plain property).
func (w *worker) lazyFrozen(obj *goja.Object, name string, src func() string) {
	w.lazyProperty(obj, name, func() goja.Value {
		v, err := w.helpers.parseFrozen(src())
		if err != nil {
			panic(err)
		}
		return v
	})
}

// lazyProperty defines obj[name] as the value make returns when it is
// first read, and reads as a plain data property (see lazyFrozen).
func (w *worker) lazyProperty(obj *goja.Object, name string, make func() goja.Value) {
	rt := w.rt
	var v goja.Value
	get := func(goja.FunctionCall) goja.Value {
		if v == nil {
			v = make()
		}
		return v
	}
	set := func(call goja.FunctionCall) goja.Value {
		must(call.This.ToObject(rt).DefineDataProperty(name, call.Argument(0), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE))
		return goja.Undefined()
	}
	must(obj.DefineAccessorProperty(name, rt.ToValue(get), rt.ToValue(set), goja.FLAG_TRUE, goja.FLAG_TRUE))
}

func orEmptyObject(s string) string {
	if s == "" {
		return "{}"
	}
	return s
}

// value returns the journaled ctx.now/random/uuid value for this call's
// position in the pass, journaling a fresh one the first time.
func (a *activation) value(kind string, fresh func() string) goja.Value {
	rt := a.w.rt
	if a.ended {
		panic(rt.NewTypeError("ctx.%s called after the run's activation ended", kind))
	}
	idx := a.valueIndex
	a.valueIndex++
	raw, err := a.s.Value(idx, kind, fresh())
	if err != nil {
		panic(a.w.hostErrorToJS(err))
	}
	v, err := a.w.helpers.parse(raw)
	if err != nil {
		panic(err)
	}
	return v
}

// structuredLog is ctx.log.*: a message and an optional fields object,
// muted while the run replays.
func (a *activation) structuredLog(level slog.Level, msg, fields goja.Value) {
	if a.replaying || a.ended {
		return
	}
	attrs := []any{"source", "ctx.log"}
	if o, ok := fields.(*goja.Object); ok {
		for _, k := range o.Keys() {
			attrs = append(attrs, k, o.Get(k).Export())
		}
	}
	text := ""
	if present(msg) {
		text = msg.String()
	}
	a.log.Log(a.ctx, level, text, attrs...)
}

// stepID validates a step id argument (a TypeError otherwise) and claims it
// for this pass: a second use of the same id rejects with DUPLICATE_ID.
func (a *activation) stepID(v goja.Value, fn string) (stepKey, error) {
	rt := a.w.rt
	id, ok := v.Export().(string)
	if !ok || !host.ValidStepID(id) {
		panic(rt.NewTypeError("%s: id must be a string matching ^[A-Za-z0-9:_-]{1,128}$, got %s", fn, describeValue(v)))
	}
	k := stepKey{id: id}
	if a.used[k] {
		return k, fmt.Errorf("%s: id %q is used twice in this run (ids must be unique per iteration)", fn, id)
	}
	a.used[k] = true
	return k, nil
}

// newPromise creates a promise whose resolve/reject report uncatchable
// errors to the worker.
func (a *activation) newPromise() (*goja.Promise, func(any) error, func(any) error) {
	return a.w.rt.NewPromise()
}

// step is a journaled ctx primitive being called: its key, the node the
// run's journal already holds for it, and the promise the call returns.
type step struct {
	key     stepKey
	node    host.Node
	found   bool // the journal holds node
	promise *goja.Promise
	resolve func(any) error
	reject  func(any) error
	// settled is true when promise is already settled (duplicate id,
	// nondeterminism, a settled node replayed, or an ended activation):
	// the primitive has nothing more to do.
	settled bool
}

// value is the promise as the JavaScript value the primitive returns.
func (st step) value(rt *goja.Runtime) goja.Value { return rt.ToValue(st.promise) }

// begin is the common start of every journaled ctx primitive: it claims the
// id, and looks up the journaled node if there is one.
func (a *activation) begin(fn string, idArg goja.Value, kind host.NodeKind, continueOnFail bool) step {
	var st step
	st.promise, st.resolve, st.reject = a.newPromise()
	k, err := a.stepID(idArg, fn)
	st.key = k
	if a.ended {
		st.settled = true
		return st
	}
	if err != nil {
		a.rejectWith(st.reject, a.w.smithersError(host.CodeDuplicateID, err.Error(), nil))
		st.settled = true
		return st
	}
	st.node, st.found = a.s.Lookup(k.id, k.iteration)
	if st.found && st.node.Kind != kind {
		a.rejectWith(st.reject, a.w.smithersError(host.CodeNondeterminism,
			fmt.Sprintf("%s(%q): the run's journal has %q as a %s node; a journaled id cannot change kind (nondeterministic workflow code?)", fn, k.id, k.id, st.node.Kind), nil))
		st.settled = true
		return st
	}
	if st.found {
		if a.replayLeft--; a.replayLeft <= 0 {
			a.replaying = false
		}
	}
	if st.found && st.node.State.Settled() {
		a.settleFromNode(st.node, st.resolve, st.reject, continueOnFail)
		st.settled = true
		return st
	}
	a.replaying = false
	return st
}

func (a *activation) rejectWith(reject func(any) error, v goja.Value) {
	if err := reject(v); err != nil {
		a.w.uncatchable(err)
	}
}

// wait parks a ctx promise on node k until it settles. The journal is read
// again first: a decision may have landed between the commit and now.
func (a *activation) wait(k stepKey, kind host.NodeKind, resolve, reject func(any) error) {
	if a.ended {
		return
	}
	if n, ok := a.s.Lookup(k.id, k.iteration); ok && n.State.Settled() {
		a.settleFromNode(n, resolve, reject, false)
		return
	}
	a.waits[k] = &waitFor{kind: kind, resolve: resolve, reject: reject}
}
