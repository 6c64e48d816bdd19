package jsruntime

import (
	"fmt"
	"math"
	"time"

	"github.com/dop251/goja"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// Argument checks for bindings: each failure throws a JavaScript TypeError
// naming the function and field, thrown at the caller's line.

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// present reports whether an optional value was given (not undefined/null).
func present(v goja.Value) bool {
	return v != nil && !goja.IsUndefined(v) && !goja.IsNull(v)
}

// optionsObject returns v as an object, nil when absent; anything else
// throws.
func optionsObject(rt *goja.Runtime, v goja.Value, what string) *goja.Object {
	if !present(v) {
		return nil
	}
	o, ok := v.(*goja.Object)
	if !ok {
		panic(rt.NewTypeError("%s must be an object, got %s", what, describeValue(v)))
	}
	return o
}

func optString(rt *goja.Runtime, o *goja.Object, field string, where func(string) string) string {
	if o == nil {
		return ""
	}
	v := o.Get(field)
	if !present(v) {
		return ""
	}
	s, ok := v.Export().(string)
	if !ok {
		panic(rt.NewTypeError("%s must be a string, got %s", where(field), describeValue(v)))
	}
	return s
}

// number returns v as a finite float64 or throws.
func number(rt *goja.Runtime, v goja.Value, what string) float64 {
	var f float64
	switch x := v.Export().(type) {
	case int64:
		f = float64(x)
	case float64:
		f = x
	default:
		panic(rt.NewTypeError("%s must be a number, got %s", what, describeValue(v)))
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		panic(rt.NewTypeError("%s must be a finite number", what))
	}
	return f
}

func nonNegativeInt(rt *goja.Runtime, v goja.Value, what string) int64 {
	f := number(rt, v, what)
	if f < 0 || f != math.Trunc(f) {
		panic(rt.NewTypeError("%s must be a non-negative integer, got %v", what, f))
	}
	if f >= math.MaxInt64 {
		panic(rt.NewTypeError("%s is too large, got %s", what, v.String()))
	}
	return int64(f)
}

// durationMs reads a duration in milliseconds that workflow code gave (a
// timeoutMs, backoffMs, a sleep, a timer's durationMs): a whole number from
// 0 (1 when positive) to host.MaxDurationMs (100 years). Anything else
// throws a TypeError with code INVALID_DURATION naming what, the value and
// the bound, so that no duration can overflow a time.Duration (about 292
// years) further on, nor fire at once because it did.
func durationMs(rt *goja.Runtime, v goja.Value, what string, positive bool) int64 {
	fail := func(format string, args ...any) { panic(invalidDuration(rt, what+": "+fmt.Sprintf(format, args...))) }
	var f float64
	switch x := v.Export().(type) {
	case int64:
		f = float64(x)
	case float64:
		f = x
	default:
		fail("a duration must be a number of milliseconds, got %s", describeValue(v))
	}
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		fail("duration %s ms is not a finite number", v.String())
	case f < 0:
		fail("duration %s ms is negative", v.String())
	case f != math.Trunc(f):
		fail("duration %s ms is not a whole number of milliseconds", v.String())
	case f > float64(host.MaxDurationMs):
		fail("duration %s ms is above the maximum of %d ms (100 years)", v.String(), host.MaxDurationMs)
	case positive && f == 0:
		fail("duration 0 ms must be greater than 0")
	}
	return int64(f)
}

// untilMs reads an absolute time in Unix milliseconds (ctx.timer's untilMs):
// a finite number no further than host.MaxDurationMs ahead of nowMs. A time
// in the past is due at once (it reads as nowMs when earlier still than
// the epoch).
func untilMs(rt *goja.Runtime, v goja.Value, what string, nowMs int64) int64 {
	fail := func(format string, args ...any) { panic(invalidDuration(rt, what+": "+fmt.Sprintf(format, args...))) }
	var f float64
	switch x := v.Export().(type) {
	case int64:
		f = float64(x)
	case float64:
		f = x
	default:
		fail("a time must be a number of Unix milliseconds, got %s", describeValue(v))
	}
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		fail("time %s is not a finite number", v.String())
	case f-float64(nowMs) > float64(host.MaxDurationMs):
		fail("time %s is %.0f ms from now, above the maximum of %d ms (100 years)", v.String(), f-float64(nowMs), host.MaxDurationMs)
	case f < 0:
		return nowMs
	}
	return int64(math.Ceil(f))
}

// invalidDuration is the TypeError of a refused duration: code
// INVALID_DURATION, not retried.
func invalidDuration(rt *goja.Runtime, msg string) *goja.Object {
	e := rt.NewTypeError("%s", msg)
	must(e.Set("code", host.CodeInvalidDuration))
	return e
}

// millis converts a duration in milliseconds to a time.Duration, clamped to
// [0, host.MaxDurationMs] so that the conversion never overflows.
func millis(ms int64) time.Duration {
	return time.Duration(min(max(ms, 0), host.MaxDurationMs)) * time.Millisecond
}

func positiveInt(rt *goja.Runtime, v goja.Value, what string) int64 {
	n := nonNegativeInt(rt, v, what)
	if n == 0 {
		panic(rt.NewTypeError("%s must be greater than 0", what))
	}
	return n
}

// callName names a ctx call by its step id in error messages:
// ctx.task("build").
func callName(fn string, idArg goja.Value) string {
	if id, ok := idArg.Export().(string); ok {
		return fmt.Sprintf("%s(%q)", fn, id)
	}
	return fn
}

func stringArray(rt *goja.Runtime, v goja.Value, what string) []string {
	o, ok := v.(*goja.Object)
	if !ok || o.ClassName() != "Array" {
		panic(rt.NewTypeError("%s must be an array of strings, got %s", what, describeValue(v)))
	}
	var out []string
	for i := int64(0); i < o.Get("length").ToInteger(); i++ {
		s, ok := o.Get(fmt.Sprint(i)).Export().(string)
		if !ok {
			panic(rt.NewTypeError("%s[%d] must be a string", what, i))
		}
		out = append(out, s)
	}
	return out
}

func optBool(rt *goja.Runtime, o *goja.Object, field, what string) bool {
	if o == nil {
		return false
	}
	v := o.Get(field)
	if !present(v) {
		return false
	}
	b, ok := v.Export().(bool)
	if !ok {
		panic(rt.NewTypeError("%s.%s must be a boolean, got %s", what, field, describeValue(v)))
	}
	return b
}

// oneOf reads an optional string option restricted to allowed values; the
// first allowed value is the default.
func oneOf(rt *goja.Runtime, o *goja.Object, field, what string, allowed ...string) string {
	s := optString(rt, o, field, func(f string) string { return what + "." + f })
	if s == "" {
		return allowed[0]
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	panic(rt.NewTypeError("%s.%s must be one of %q, got %q", what, field, allowed, s))
}

// describeValue names a value's type for error messages.
func describeValue(v goja.Value) string {
	switch {
	case v == nil || goja.IsUndefined(v):
		return "undefined"
	case goja.IsNull(v):
		return "null"
	}
	switch x := v.Export().(type) {
	case string:
		if len(x) > 40 {
			x = x[:40] + "..."
		}
		return fmt.Sprintf("string %q", x)
	case bool:
		return fmt.Sprintf("boolean %v", x)
	case int64, float64:
		return "number " + v.String() // as JavaScript prints it
	}
	if o, ok := v.(*goja.Object); ok {
		if _, fn := goja.AssertFunction(o); fn {
			return "function"
		}
		return o.ClassName()
	}
	return v.String()
}
