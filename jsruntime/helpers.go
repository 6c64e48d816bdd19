package jsruntime

import (
	_ "embed"
	"fmt"

	"github.com/dop251/goja"
)

// helpersName names the helpers script in stack traces; the "smithers:"
// scheme marks it as the gateway's own code.
const helpersName = "smithers:helpers.js"

// helpersSource evaluates to the helper functions of jsHelpers.
//
//go:embed helpers.js
var helpersSource string

// jsHelpers are the helper functions of one runtime.
type jsHelpers struct {
	rt         *goja.Runtime
	settleFn   goja.Callable
	stringifyF goja.Callable
	parseFn    goja.Callable
	parseFrzFn goja.Callable
	fetchFn    goja.Callable
	storableFn goja.Callable
	parallel   goja.Value
}

func newHelpers(rt *goja.Runtime) (jsHelpers, error) {
	prg, err := goja.Compile(helpersName, helpersSource, false)
	if err != nil {
		return jsHelpers{}, fmt.Errorf("compile helpers: %w", err)
	}
	v, err := rt.RunProgram(prg)
	if err != nil {
		return jsHelpers{}, fmt.Errorf("evaluate helpers: %w", err)
	}
	o := v.ToObject(rt)
	h := jsHelpers{rt: rt, parallel: o.Get("parallel")}
	var ok bool
	for name, dst := range map[string]*goja.Callable{"settle": &h.settleFn, "stringify": &h.stringifyF, "parse": &h.parseFn, "parseFrozen": &h.parseFrzFn, "fetchFailed": &h.fetchFn, "storable": &h.storableFn} {
		if *dst, ok = goja.AssertFunction(o.Get(name)); !ok {
			return jsHelpers{}, fmt.Errorf("helper %s missing", name)
		}
	}
	return h, nil
}

// settle calls ok or fail when p (a promise or plain value) settles.
func (h jsHelpers) settle(p goja.Value, ok, fail func(goja.Value)) {
	_, err := h.settleFn(goja.Undefined(), p,
		h.rt.ToValue(func(c goja.FunctionCall) goja.Value { ok(c.Argument(0)); return goja.Undefined() }),
		h.rt.ToValue(func(c goja.FunctionCall) goja.Value { fail(c.Argument(0)); return goja.Undefined() }))
	if err != nil {
		panic(err)
	}
}

// stringify is JSON.stringify; "" stands for undefined (functions,
// undefined). It fails for values JSON cannot hold (cycles, BigInt).
func (h jsHelpers) stringify(v goja.Value) (string, error) {
	out, err := h.stringifyF(goja.Undefined(), v)
	if err != nil {
		return "", err
	}
	if goja.IsUndefined(out) {
		return "", nil
	}
	return out.String(), nil
}

// errNotStorable: a value a step hands the journal has no JSON form.
type errNotStorable struct{ reason string }

func (e errNotStorable) Error() string {
	return "cannot be stored as JSON: " + e.reason +
		" (a step's value must be JSON data: no functions, Symbols, BigInts, cycles or undefined in arrays)"
}

// errOutputTooLarge: a value a step hands the journal is over the cap.
type errOutputTooLarge struct {
	size    int    // bytes (UTF-8)
	atLeast bool   // size is a lower bound: the text was not copied into Go
	of      string // what the bytes are: " of JSON", or ""
	limit   int
}

func (e errOutputTooLarge) Error() string {
	at := ""
	if e.atLeast {
		at = "at least "
	}
	return fmt.Sprintf("is %s%d bytes%s, over the gateway's limit of %d (SMITHERS_GATEWAY_MAX_OUTPUT_BYTES)", at, e.size, e.of, e.limit)
}

// storable serialises v, a value a step hands the journal, as JSON of at
// most limit bytes ("" for undefined). It fails with errNotStorable for a
// value JSON cannot carry, errOutputTooLarge over the cap, or the
// exception of JSON.stringify (a BigInt, a cycle, a throwing toJSON). The
// size is checked on the JavaScript string before it is copied into Go.
func (h jsHelpers) storable(v goja.Value, limit int) (string, error) {
	res, err := h.storableFn(goja.Undefined(), v)
	if err != nil {
		return "", err
	}
	pair := res.(*goja.Object)
	if bad := pair.Get("1").String(); bad != "" {
		return "", errNotStorable{bad}
	}
	out := pair.Get("0")
	if goja.IsUndefined(out) {
		return "", nil
	}
	if js, ok := out.(goja.String); ok && js.Length() > limit {
		e := tooLarge(js, limit)
		e.of = " of JSON"
		return "", e
	}
	s := out.String()
	if len(s) > limit {
		return "", errOutputTooLarge{size: len(s), of: " of JSON", limit: limit}
	}
	return s, nil
}

// textWithin converts v to a string of at most limit bytes of UTF-8, or
// fails with errOutputTooLarge. The length of a JavaScript string is
// checked before it is copied into Go.
func textWithin(v goja.Value, limit int) (string, error) {
	if js, ok := v.(goja.String); ok && js.Length() > limit {
		return "", tooLarge(js, limit)
	}
	text := v.String()
	if len(text) > limit {
		return "", errOutputTooLarge{size: len(text), limit: limit}
	}
	return text, nil
}

// tooLarge describes js, a JavaScript string longer than limit: as a
// UTF-16 unit is at least one byte of UTF-8, it is too large without being
// copied into Go. Its exact size in UTF-8 is counted when that is cheap
// next to what built it; past that, the error says "at least".
func tooLarge(js goja.String, limit int) errOutputTooLarge {
	n := js.Length()
	if n > 8*limit {
		return errOutputTooLarge{size: n, atLeast: true, limit: limit}
	}
	size := 0
	for i := 0; i < n; i++ {
		switch c := js.CharAt(i); {
		case c < 0x80:
			size++
		case c < 0x800:
			size += 2
		case c >= 0xD800 && c < 0xDC00 && i+1 < n && js.CharAt(i+1) >= 0xDC00 && js.CharAt(i+1) < 0xE000:
			size += 4 // a surrogate pair
			i++
		default:
			size += 3 // the rest of the BMP; a lone surrogate becomes U+FFFD
		}
	}
	return errOutputTooLarge{size: size, limit: limit}
}

// parse is JSON.parse; "" gives undefined.
func (h jsHelpers) parse(s string) (goja.Value, error) {
	if s == "" {
		return goja.Undefined(), nil
	}
	return h.parseFn(goja.Undefined(), h.rt.ToValue(s))
}

// fetchFailed builds the TypeError t.fetch rejects with (see the helper).
func (h jsHelpers) fetchFailed(detail, code string, retryable bool) goja.Value {
	v, err := h.fetchFn(goja.Undefined(), h.rt.ToValue(detail), h.rt.ToValue(code), h.rt.ToValue(retryable))
	if err != nil {
		panic(err)
	}
	return v
}

// parseFrozen is JSON.parse of s, deeply frozen: one call into JavaScript
// where parse and deepFreeze are two (it is on every activation's path).
func (h jsHelpers) parseFrozen(s string) (goja.Value, error) {
	return h.parseFrzFn(goja.Undefined(), h.rt.ToValue(s))
}
