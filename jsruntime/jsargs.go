package jsruntime

import (
	"fmt"
	"math"

	"github.com/dop251/goja"
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
	return int64(f)
}

func positiveInt(rt *goja.Runtime, v goja.Value, what string) int64 {
	n := nonNegativeInt(rt, v, what)
	if n == 0 {
		panic(rt.NewTypeError("%s must be greater than 0", what))
	}
	return n
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
