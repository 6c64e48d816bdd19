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
  return {
    fetchFailed: fetchFailed,
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
	for name, dst := range map[string]*goja.Callable{"settle": &h.settleFn, "stringify": &h.stringifyF, "parse": &h.parseFn, "deepFreeze": &h.freezeFn, "fetchFailed": &h.fetchFn} {
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
