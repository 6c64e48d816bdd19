package jsruntime

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dop251/goja"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// jsApproval is ctx.approval(id, opts): parks the run in waiting-approval
// until submitApproval; resolves to {approved, note, decidedBy, decidedAtMs,
// value}. An autoApprove rule is evaluated when the node is first
// requested; when the engine approves by it, the promise resolves at once.
func (a *activation) jsApproval(call goja.FunctionCall) goja.Value {
	rt := a.w.rt
	idArg := call.Argument(0)
	opts := optionsObject(rt, call.Argument(1), "ctx.approval options")
	ar := a.approvalSpec(idArg, opts)
	st := a.begin("ctx.approval", idArg, host.KindApproval, false)
	if st.settled {
		return st.value(rt)
	}
	if st.found {
		// Journaled: the request, and what its autoApprove functions
		// returned, are the journal's; they are not evaluated again.
		a.wait(st.key, host.KindApproval, st.resolve, st.reject)
		return st.value(rt)
	}
	if err := a.evalAutoApprove(idArg, &ar); err != nil {
		a.rejectWith(st.reject, err)
		return st.value(rt)
	}
	spec := ar.finish()
	var n host.Node
	a.commit(func() error {
		var err error
		n, err = a.s.RequestApproval(st.key.id, st.key.iteration, spec)
		return err
	}, func(err error) {
		if err != nil {
			a.rejectWith(st.reject, a.w.hostErrorToJS(err))
			return
		}
		if n.State.Settled() { // auto-approved in the requesting commit
			a.settleFromNode(n, st.resolve, st.reject, false)
			return
		}
		a.wait(st.key, host.KindApproval, st.resolve, st.reject)
	})
	return st.value(rt)
}

// approvalRequest is a validated ctx.approval call: the spec, the stored
// request being built, and the autoApprove option still to evaluate.
type approvalRequest struct {
	spec host.ApprovalSpec
	req  map[string]any
	// auto is the autoApprove option (nil when absent); autoJSON its JSON
	// form, functions left out.
	auto     *goja.Object
	autoJSON string
}

// finish sets the stored request and returns the spec.
func (ar *approvalRequest) finish() host.ApprovalSpec {
	b, err := json.Marshal(ar.req)
	if err != nil {
		// Every part was validated as JSON above; a failure here is a bug,
		// and an approval stored without its restrictions must never be.
		panic(fmt.Sprintf("ctx.approval: encode the request: %v", err))
	}
	ar.spec.RequestJSON = string(b)
	return ar.spec
}

// approvalSpec validates the approval options of docs/workflows.md and builds the
// stored request.
func (a *activation) approvalSpec(idArg goja.Value, o *goja.Object) approvalRequest {
	rt := a.w.rt
	const what = "ctx.approval options"
	id, _ := idArg.Export().(string)
	label := optString(rt, o, "label", func(f string) string { return what + "." + f })
	req := map[string]any{"title": nil, "summary": nil, "metadata": nil}
	if o != nil {
		if rv := o.Get("request"); present(rv) {
			ro := optionsObject(rt, rv, what+".request")
			where := func(f string) string { return what + ".request." + f }
			if t := optString(rt, ro, "title", where); t != "" {
				req["title"] = t
			}
			if s := optString(rt, ro, "summary", where); s != "" {
				req["summary"] = s
			}
			if m := ro.Get("metadata"); present(m) {
				// "" is JSON.stringify's undefined (a function, a Symbol):
				// refuse it too, or the whole stored request would be
				// lost, restrictions included.
				s, err := a.w.helpers.stringify(m)
				if err != nil || s == "" {
					panic(rt.NewTypeError("%s.request.metadata must be JSON-serialisable, got %s", what, describeValue(m)))
				}
				req["metadata"] = json.RawMessage(s)
			}
		}
	}
	if req["title"] == nil {
		if label != "" {
			req["title"] = label
		} else {
			req["title"] = id
		}
	}
	req["mode"] = oneOf(rt, o, "mode", what, "gate", "decision", "select", "rank")
	options := []map[string]any{}
	if o != nil {
		if ov := o.Get("options"); present(ov) {
			arr, ok := ov.(*goja.Object)
			if !ok || arr.ClassName() != "Array" {
				panic(rt.NewTypeError("%s.options must be an array of {key, label, summary?}", what))
			}
			for i := int64(0); i < arr.Get("length").ToInteger(); i++ {
				eo := optionsObject(rt, arr.Get(fmt.Sprint(i)), fmt.Sprintf("%s.options[%d]", what, i))
				where := func(f string) string { return fmt.Sprintf("%s.options[%d].%s", what, i, f) }
				key, lbl := optString(rt, eo, "key", where), optString(rt, eo, "label", where)
				if key == "" || lbl == "" {
					panic(rt.NewTypeError("%s.options[%d] needs a string key and label", what, i))
				}
				opt := map[string]any{"key": key, "label": lbl}
				if s := optString(rt, eo, "summary", where); s != "" {
					opt["summary"] = s
				}
				options = append(options, opt)
			}
		}
	}
	req["options"] = options
	req["allowedScopes"], req["allowedUsers"] = []string{}, []string{}
	req["autoApprove"] = nil
	ar := approvalRequest{req: req}
	if o != nil {
		for _, f := range []string{"allowedScopes", "allowedUsers"} {
			if v := o.Get(f); present(v) {
				req[f] = stringArray(rt, v, what+"."+f)
			}
		}
		if v := o.Get("autoApprove"); present(v) {
			ar.auto, ar.autoJSON = a.autoApproveOption(idArg, v)
		}
	}
	ar.spec = host.ApprovalSpec{Label: label, OnDeny: oneOf(rt, o, "onDeny", what, "fail", "continue", "skip")}
	if o != nil {
		if v := o.Get("timeoutMs"); present(v) {
			ar.spec.TimeoutMs = durationMs(rt, v, callName("ctx.approval", idArg)+" options.timeoutMs", true)
		}
	}
	return ar
}

// jsWaitForEvent is ctx.waitForEvent(id, {event, correlationId, timeoutMs,
// onTimeout}): resolves to the payload of the matching signal.
func (a *activation) jsWaitForEvent(call goja.FunctionCall) goja.Value {
	return a.waitForEvent("ctx.waitForEvent", call.Argument(0), call.Argument(1), "")
}

// jsSignal is ctx.signal(name, opts): waitForEvent with event = name.
func (a *activation) jsSignal(call goja.FunctionCall) goja.Value {
	name, _ := call.Argument(0).Export().(string)
	return a.waitForEvent("ctx.signal", call.Argument(0), call.Argument(1), name)
}

func (a *activation) waitForEvent(fn string, idArg, optsArg goja.Value, eventName string) goja.Value {
	rt := a.w.rt
	what := fn + " options"
	o := optionsObject(rt, optsArg, what)
	spec := host.EventSpec{SignalName: eventName}
	if e := optString(rt, o, "event", func(f string) string { return what + "." + f }); e != "" {
		spec.SignalName = e
	}
	if spec.SignalName == "" {
		spec.SignalName, _ = idArg.Export().(string)
	}
	spec.Label = optString(rt, o, "label", func(f string) string { return what + "." + f })
	if o != nil {
		if c := o.Get("correlationId"); present(c) {
			s, ok := c.Export().(string)
			if !ok {
				panic(rt.NewTypeError("%s.correlationId must be a string or null, got %s", what, describeValue(c)))
			}
			// Signals' correlation ids are trimmed and "" means none
			// (docs/rpc.md); the wait's must match that.
			if s = strings.TrimSpace(s); s != "" {
				spec.CorrelationID = &s
			}
		}
		if v := o.Get("timeoutMs"); present(v) {
			spec.TimeoutMs = durationMs(rt, v, callName(fn, idArg)+" options.timeoutMs", true)
		}
	}
	spec.OnTimeout = oneOf(rt, o, "onTimeout", what, "fail", "continue", "skip")
	return a.waitStep(fn, idArg, host.KindEvent, func(k stepKey) error {
		_, err := a.s.WaitForEvent(k.id, k.iteration, spec)
		return err
	})
}

// jsSleep is ctx.sleep(id, ms): a durable timer.
func (a *activation) jsSleep(call goja.FunctionCall) goja.Value {
	rt := a.w.rt
	what := "ctx.sleep(id, ms)"
	if id, ok := call.Argument(0).Export().(string); ok {
		what = fmt.Sprintf("ctx.sleep(%q, ms)", id)
	}
	ms := durationMs(rt, call.Argument(1), what, false)
	return a.timer("ctx.sleep", call.Argument(0), func(now int64) int64 { return now + ms })
}

// jsTimer is ctx.timer(id, {durationMs} | {untilMs}).
func (a *activation) jsTimer(call goja.FunctionCall) goja.Value {
	rt := a.w.rt
	o := optionsObject(rt, call.Argument(1), "ctx.timer options")
	if o == nil {
		panic(rt.NewTypeError("ctx.timer(id, opts): opts must be {durationMs} or {untilMs}"))
	}
	if v := o.Get("durationMs"); present(v) {
		ms := durationMs(rt, v, callName("ctx.timer", call.Argument(0))+" options.durationMs", false)
		return a.timer("ctx.timer", call.Argument(0), func(now int64) int64 { return now + ms })
	}
	if v := o.Get("untilMs"); present(v) {
		until := untilMs(rt, v, callName("ctx.timer", call.Argument(0))+" options.untilMs", a.s.NowMs())
		return a.timer("ctx.timer", call.Argument(0), func(int64) int64 { return until })
	}
	panic(rt.NewTypeError("ctx.timer(id, opts): opts must be {durationMs} or {untilMs}"))
}

func (a *activation) timer(fn string, idArg goja.Value, firesAt func(now int64) int64) goja.Value {
	at := firesAt(a.s.NowMs())
	return a.waitStep(fn, idArg, host.KindTimer, func(k stepKey) error {
		_, err := a.s.StartTimer(k.id, k.iteration, "", at)
		return err
	})
}

// waitStep is the common body of the wait kinds (approval, event, timer):
// unless the run's journal already holds the node, journal it with create
// (on the commit goroutine); then park the returned promise on the node
// until the engine delivers its settlement.
func (a *activation) waitStep(fn string, idArg goja.Value, kind host.NodeKind, create func(k stepKey) error) goja.Value {
	rt := a.w.rt
	st := a.begin(fn, idArg, kind, false)
	if st.settled {
		return st.value(rt)
	}
	if st.found {
		a.wait(st.key, kind, st.resolve, st.reject)
		return st.value(rt)
	}
	a.commit(func() error { return create(st.key) }, func(err error) {
		if err != nil {
			a.rejectWith(st.reject, a.w.hostErrorToJS(err))
			return
		}
		a.wait(st.key, kind, st.resolve, st.reject)
	})
	return st.value(rt)
}
