package jsruntime

import (
	"fmt"

	"github.com/dop251/goja"
)

// helpersSource is evaluated once per runtime; its functions are easier to
// write in JavaScript than through the goja API.
const helpersSource = `(function () {
  "use strict";
  function deepFreeze(v) {
    if (v !== null && typeof v === "object" && !Object.isFrozen(v)) {
      Object.freeze(v);
      for (const k of Object.keys(v)) deepFreeze(v[k]);
    }
    return v;
  }
  function parallel(thunks, opts) {
    if (!Array.isArray(thunks)) throw new TypeError("ctx.parallel(thunks): thunks must be an array of functions");
    thunks.forEach(function (t, i) {
      if (typeof t !== "function") throw new TypeError("ctx.parallel(thunks): thunks[" + i + "] must be a function");
    });
    var max = opts && opts.maxConcurrency !== undefined ? opts.maxConcurrency : Infinity;
    if (!(typeof max === "number" && max >= 1)) throw new TypeError("ctx.parallel: maxConcurrency must be a number >= 1");
    return new Promise(function (resolve, reject) {
      var results = new Array(thunks.length), next = 0, running = 0, done = 0, failed = false;
      if (thunks.length === 0) { resolve(results); return; }
      function launch() {
        while (!failed && running < max && next < thunks.length) {
          const i = next++;
          running++;
          Promise.resolve().then(function () { return thunks[i](); }).then(function (v) {
            results[i] = v; running--; done++;
            if (done === thunks.length) resolve(results); else launch();
          }, function (e) { failed = true; reject(e); });
        }
      }
      launch();
    });
  }
  // fetchFailed builds t.fetch's rejection: a TypeError as in browsers
  // ("fetch failed", the detail in cause, with the Node.js-style code of a
  // network failure), marked retryable when a later attempt may succeed.
  // It is built here so that module code replacing TypeError or Error
  // cannot change it.
  function fetchFailed(detail, code, retryable) {
    const cause = new Error(detail);
    if (code !== "") cause.code = code;
    const e = new TypeError("fetch failed: " + detail);
    Object.defineProperty(e, "cause", { value: cause, writable: true, enumerable: false, configurable: true });
    if (retryable) e.retryable = true;
    return e;
  }
  // storable is JSON.stringify for a value a step hands the journal (a
  // task's or the workflow's return value). JSON.stringify would turn a
  // function or Symbol into nothing (or null in an array), and undefined
  // in an array into null: here those are reported, with where they sit,
  // so that no data is lost silently. (An undefined property is left out,
  // as JSON always does; BigInt and cycles throw in JSON.stringify itself.)
  // It returns [json, ""] or [undefined, "a function at .x.y"].
  function lost(holder, x) {
    const t = typeof x;
    return t === "function" || t === "symbol" || (t === "undefined" && Array.isArray(holder));
  }
  function storable(v) {
    let bad = false;
    const json = JSON.stringify(v, function (k, x) {
      if (lost(this, x)) bad = true;
      return x;
    });
    return bad ? [undefined, whereLost(v)] : [json, ""];
  }
  // whereLost walks v again, as JSON.stringify does, to say what was lost
  // where; only a failing value pays for it.
  function whereLost(v) {
    const paths = new WeakMap(); // object -> its path from v
    let top = true, found = "";
    JSON.stringify(v, function (k, x) {
      let path = "";
      if (top) {
        top = false;
      } else {
        const base = paths.get(this) || "";
        path = Array.isArray(this) ? base + "[" + k + "]"
          : /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(k) ? base + "." + k : base + "[" + JSON.stringify(k) + "]";
      }
      if (found === "" && lost(this, x)) {
        found = (x === undefined ? "undefined" : "a " + typeof x) + (path === "" ? "" : " at " + path);
      }
      if (x !== null && typeof x === "object") paths.set(x, path);
      return x;
    });
    return found === "" ? "a value with no JSON form" : found;
  }
  return {
    fetchFailed: fetchFailed,
    storable: storable,
    settle: function (p, ok, err) { Promise.resolve(p).then(ok, err); },
    stringify: function (v) { return JSON.stringify(v); },
    parse: function (s) { return JSON.parse(s); },
    deepFreeze: deepFreeze,
    parallel: parallel,
  };
})()`

// jsHelpers are the helper functions of one runtime.
type jsHelpers struct {
	rt         *goja.Runtime
	settleFn   goja.Callable
	stringifyF goja.Callable
	parseFn    goja.Callable
	freezeFn   goja.Callable
	fetchFn    goja.Callable
	storableFn goja.Callable
	parallel   goja.Value
}

func newHelpers(rt *goja.Runtime) (jsHelpers, error) {
	v, err := rt.RunString(helpersSource)
	if err != nil {
		return jsHelpers{}, fmt.Errorf("evaluate helpers: %w", err)
	}
	o := v.ToObject(rt)
	h := jsHelpers{rt: rt, parallel: o.Get("parallel")}
	var ok bool
	for name, dst := range map[string]*goja.Callable{"settle": &h.settleFn, "stringify": &h.stringifyF, "parse": &h.parseFn, "deepFreeze": &h.freezeFn, "fetchFailed": &h.fetchFn, "storable": &h.storableFn} {
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
	return fmt.Sprintf("is %s%d bytes%s, above the gateway's cap of %d bytes (SMITHERS_GATEWAY_MAX_OUTPUT_BYTES)", at, e.size, e.of, e.limit)
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

func (h jsHelpers) deepFreeze(v goja.Value) goja.Value {
	out, err := h.freezeFn(goja.Undefined(), v)
	if err != nil {
		return v
	}
	return out
}
