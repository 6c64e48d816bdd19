package jsruntime

import (
	"encoding/json"
	"math"

	"github.com/dop251/goja"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// autoApproveOption validates ctx.approval's autoApprove option {after?,
// condition?, revertOn?, audit?} on every pass (a mistake throws at the
// call, replay or not) and returns it with its JSON form. condition and
// revertOn may be booleans or functions; the functions are called only
// when the node is first requested (evalAutoApprove).
func (a *activation) autoApproveOption(idArg, v goja.Value) (*goja.Object, string) {
	rt := a.w.rt
	what := callName("ctx.approval", idArg) + " options.autoApprove"
	o := optionsObject(rt, v, what)
	if av := o.Get("after"); present(av) {
		if f := number(rt, av, what+".after"); f != math.Trunc(f) || math.Abs(f) > 1e9 {
			panic(rt.NewTypeError("%s.after must be a whole number of earlier approvals, got %s", what, av.String()))
		}
	}
	for _, f := range []string{"condition", "revertOn"} {
		fv := o.Get(f)
		if !present(fv) {
			continue
		}
		if _, isFn := goja.AssertFunction(fv); isFn {
			continue
		}
		if _, isBool := fv.Export().(bool); !isBool {
			panic(rt.NewTypeError("%s.%s must be a boolean or a function returning one, got %s", what, f, describeValue(fv)))
		}
	}
	optBool(rt, o, "audit", what)
	s, err := a.w.helpers.stringify(o)
	if err != nil {
		if a.w.uncatchable(err) {
			panic(err)
		}
		panic(rt.NewTypeError("%s must be JSON-serialisable", what))
	}
	return o, s
}

// evalAutoApprove evaluates the autoApprove option of an approval being
// requested for the first time: it calls condition and revertOn when they
// are functions (on the loop, without arguments, this being the option), fills spec.AutoApprove
// for the engine's rule, and stores the option in the request with the
// functions' results in their place, as listApprovals shows it. The node
// is journaled with the results, so a replay decides the same way without
// calling them again. A function that throws or returns a non-boolean is a
// TypeError naming the option, returned for the call's promise.
func (a *activation) evalAutoApprove(idArg goja.Value, ar *approvalRequest) goja.Value {
	if ar.auto == nil {
		return nil
	}
	rt := a.w.rt
	what := callName("ctx.approval", idArg) + " options.autoApprove"
	o := ar.auto
	rule := &host.AutoApprove{Condition: true}
	var stored map[string]json.RawMessage
	if err := json.Unmarshal([]byte(ar.autoJSON), &stored); err != nil || stored == nil {
		stored = map[string]json.RawMessage{}
	}
	if av := o.Get("after"); present(av) {
		rule.After = int(number(rt, av, what+".after"))
	}
	rule.Audit = optBool(rt, o, "audit", what)
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"condition", &rule.Condition}, {"revertOn", &rule.RevertOn}} {
		fv := o.Get(f.name)
		if !present(fv) {
			continue
		}
		if fn, isFn := goja.AssertFunction(fv); isFn {
			res, err := a.w.call(fn, o) // called as a method of the option, as opts.autoApprove.condition()
			if err != nil {
				if a.w.broken != nil {
					panic(err) // a runaway: the turn ends here
				}
				return rt.NewTypeError("%s.%s threw: %s", what, f.name, describeJSError(rt, exceptionValue(rt, err)))
			}
			fv = res
		}
		b, ok := fv.Export().(bool)
		if !ok {
			if _, isPromise := fv.Export().(*goja.Promise); isPromise {
				return rt.NewTypeError("%s.%s must return a boolean, got a Promise (it is called synchronously: not an async function)", what, f.name)
			}
			return rt.NewTypeError("%s.%s must return a boolean, got %s", what, f.name, describeValue(fv))
		}
		*f.dst = b
		stored[f.name], _ = json.Marshal(b)
	}
	ar.spec.AutoApprove = rule
	ar.req["autoApprove"] = stored
	return nil
}
