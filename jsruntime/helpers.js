// The helpers script runs once per runtime, before the workflow module; it evaluates to the
// helper functions of jsHelpers, which are easier to write in JavaScript than through the goja
// API.
(function () {
  "use strict";
  // The error classes as they are before module code runs, which may replace the globals.
  const OriginalError = Error, OriginalTypeError = TypeError;
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
  // It is built from the original classes, so that module code replacing
  // TypeError or Error cannot change it.
  function fetchFailed(detail, code, retryable) {
    const cause = new OriginalError(detail);
    if (code !== "") cause.code = code;
    const e = new OriginalTypeError("fetch failed: " + detail);
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
    // parseFrozen is parse then deepFreeze in one call into JavaScript (ctx.input, ctx.auth).
    parseFrozen: function (s) { return deepFreeze(JSON.parse(s)); },
    parallel: parallel,
  };
})();
