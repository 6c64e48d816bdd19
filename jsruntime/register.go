package jsruntime

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/dop251/goja"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// registerTimeout bounds an async register(gateway).
const registerTimeout = 30 * time.Second

type registration struct {
	defs []host.WorkflowDef
	err  error
}

// register evaluates the module on the worker's runtime, calls its register
// function, and returns the workflows it registered.
func (w *worker) register(ctx context.Context) ([]host.WorkflowDef, error) {
	result := make(chan registration, 1)
	if !w.post(nil, func() { w.initRuntimeAsync(result) }) {
		return nil, errors.New("worker stopped")
	}
	select {
	case r := <-result:
		return r.defs, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("loading the workflow module was interrupted: %w", context.Cause(ctx))
	case <-time.After(registerTimeout):
		return nil, &LoadError{File: w.ex.path, Message: fmt.Sprintf("register(gateway) did not settle within %s", registerTimeout)}
	}
}

// initRuntime builds a fresh runtime (used when a worker is rebuilt after
// the module registered successfully once).
func (w *worker) initRuntime() error {
	result := make(chan registration, 1)
	w.initRuntimeAsync(result)
	select {
	case r := <-result:
		return r.err
	default:
		return nil // async register: it completes in later turns
	}
}

// initRuntimeAsync runs on the loop: it builds the runtime, evaluates the
// bundle and calls register(gateway); result receives the outcome once
// register (sync or async) has settled.
func (w *worker) initRuntimeAsync(result chan<- registration) {
	w.gen++
	w.registered = false
	w.rt = goja.New()
	w.rtForInterrupt.Store(w.rt)
	w.rt.SetMaxCallStackSize(w.ex.maxStack)
	w.workflows = map[string]goja.Callable{}
	w.registering = result
	defs := map[string]host.WorkflowDef{}
	fail := func(err error) {
		w.registered = true
		w.settleRegistration(registration{err: err})
	}
	if err := w.installRuntime(); err != nil {
		fail(fmt.Errorf("set up JavaScript runtime: %w", err))
		return
	}
	if _, err := w.rt.RunProgram(w.ex.program); err != nil {
		w.uncatchable(err) // a runaway top level: the runtime is spent
		fail(w.loadError("evaluating the module failed", err))
		return
	}
	mod := w.rt.GlobalObject().Get("__smithers_module")
	var reg goja.Callable
	if obj, ok := mod.(*goja.Object); ok {
		if fn, ok := goja.AssertFunction(obj.Get("register")); ok {
			reg = fn
		} else if fn, ok := goja.AssertFunction(obj.Get("default")); ok {
			reg = fn
		}
	}
	if reg == nil {
		w.log.Warn("workflow module exports neither register nor a default function", "module", w.ex.path)
		w.registered = true
		w.settleRegistration(registration{})
		return
	}
	gw := w.rt.NewObject()
	must(gw.Set("register", func(call goja.FunctionCall) goja.Value {
		def, fn := w.parseRegistration(call)
		if _, dup := defs[def.Key]; dup {
			panic(w.rt.NewTypeError("workflow %q is already registered: duplicate workflow keys are refused", def.Key))
		}
		defs[def.Key] = def
		w.workflows[def.Key] = fn
		return goja.Undefined()
	}))
	done := func() {
		out := make([]host.WorkflowDef, 0, len(defs))
		for _, d := range defs {
			out = append(out, d)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
		w.registered, w.everRegistered = true, true
		w.settleRegistration(registration{defs: out})
	}
	v, err := w.call(reg, goja.Undefined(), gw)
	if err != nil {
		fail(w.loadError("register(gateway) threw", err))
		return
	}
	if p, ok := v.Export().(*goja.Promise); ok {
		if p.State() == goja.PromiseStateFulfilled {
			done()
			return
		}
		w.helpers.settle(v, func(goja.Value) { done() }, func(e goja.Value) {
			fail(w.loadError("register(gateway) rejected", jsValueError{w.rt, e}))
		})
		return
	}
	done()
}

// settleRegistration sends the outcome of the register(gateway) in
// progress, once. Loop-only.
func (w *worker) settleRegistration(r registration) {
	if ch := w.registering; ch != nil {
		w.registering = nil
		ch <- r
	}
}

// loadError turns a JavaScript failure during module evaluation into a
// *LoadError pointing at the user's file:line.
func (w *worker) loadError(what string, err error) error {
	var le *LoadError
	if errors.As(err, &le) {
		return le
	}
	// A runaway (turn budget, heap, call depth) says why, where the
	// interrupt struck.
	if reason, ok := w.uncatchableReason(err); ok {
		var ie *goja.InterruptedError
		var se *goja.StackOverflowError
		var at *goja.Exception
		switch {
		case errors.As(err, &ie):
			at = &ie.Exception
		case errors.As(err, &se):
			at = &se.Exception
		}
		if file, line, col, ok := exceptionLocation(at); ok {
			return &LoadError{File: file, Line: line, Column: col, Message: what + ": " + reason}
		}
		return &LoadError{File: w.ex.path, Message: what + ": " + reason}
	}
	var ex *goja.Exception
	msg := err.Error()
	if errors.As(err, &ex) {
		msg = describeJSError(w.rt, ex.Value())
		if file, line, col, ok := exceptionLocation(ex); ok {
			return &LoadError{File: file, Line: line, Column: col, Message: what + ": " + msg}
		}
	}
	var jv jsValueError
	if errors.As(err, &jv) {
		msg = describeJSError(w.rt, jv.v)
		if file, line, col, ok := errorValueLocation(jv.v); ok {
			return &LoadError{File: file, Line: line, Column: col, Message: what + ": " + msg}
		}
	}
	return &LoadError{File: w.ex.path, Message: what + ": " + msg}
}

var envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parseRegistration validates gateway.register(key, workflow, options);
// mistakes throw a TypeError at the caller's line.
func (w *worker) parseRegistration(call goja.FunctionCall) (host.WorkflowDef, goja.Callable) {
	rt := w.rt
	keyV := call.Argument(0)
	key, ok := keyV.Export().(string)
	if !ok || !host.ValidWorkflowKey(key) {
		panic(rt.NewTypeError("gateway.register: workflow key must be a string matching ^[A-Za-z0-9._:-]{1,128}$, got %s", describeValue(keyV)))
	}
	fn, ok := goja.AssertFunction(call.Argument(1))
	if !ok {
		panic(rt.NewTypeError("gateway.register(%q, workflow): workflow must be a function async (ctx) => result", key))
	}
	def := host.WorkflowDef{Key: key, VersionPolicy: host.VersionReplay}
	o := optionsObject(rt, call.Argument(2), fmt.Sprintf("gateway.register(%q) options", key))
	if o == nil {
		return def, fn
	}
	where := func(field string) string { return fmt.Sprintf("gateway.register(%q) option %s", key, field) }
	def.ReadableName = optString(rt, o, "readableName", where)
	def.Description = optString(rt, o, "description", where)
	if s := optString(rt, o, "schedule", where); s != "" {
		if err := host.ValidateCronPattern(s); err != nil {
			panic(rt.NewTypeError("%s: %s", where("schedule"), err.(*host.Error).Message))
		}
		def.Schedule = s
	}
	if v := o.Get("maxConcurrency"); present(v) {
		def.MaxConcurrency = int(positiveInt(rt, v, where("maxConcurrency")))
	}
	if v := o.Get("timeoutMs"); present(v) {
		def.TimeoutMs = durationMs(rt, v, where("timeoutMs"), true)
	}
	if v := o.Get("env"); present(v) {
		for _, name := range stringArray(rt, v, where("env")) {
			if !envNamePattern.MatchString(name) {
				panic(rt.NewTypeError("%s: %q is not an environment variable name", where("env"), name))
			}
			def.Env = append(def.Env, name)
		}
	}
	if s := optString(rt, o, "versionPolicy", where); s != "" {
		if s != host.VersionReplay && s != host.VersionStrict {
			panic(rt.NewTypeError(`%s must be "replay" or "strict", got %q`, where("versionPolicy"), s))
		}
		def.VersionPolicy = s
	}
	if v := o.Get("webhook"); present(v) {
		def.Webhook = parseWebhook(rt, v, where, w.ex.lookupEnv)
	}
	if v := o.Get("concurrency"); present(v) {
		def.Concurrency = w.parseConcurrency(v, key, where)
	}
	// Said once: by the first worker, at its first registration.
	if w.id == 0 && !w.everRegistered {
		for _, k := range o.Keys() {
			if !registerOptions[k] {
				w.log.Warn("gateway.register: unknown option ignored (a typo?)", "workflow", key, "option", k,
					"known", "readableName, description, schedule, webhook, maxConcurrency, concurrency, timeoutMs, env, versionPolicy")
			}
		}
	}
	return def, fn
}

// registerOptions are the options of gateway.register (docs/workflows.md).
var registerOptions = map[string]bool{"readableName": true, "description": true, "schedule": true, "webhook": true,
	"maxConcurrency": true, "concurrency": true, "timeoutMs": true, "env": true, "versionPolicy": true}

// parseConcurrency reads the concurrency option {limit, key?}: at most
// limit task bodies of the workflow run at once across all its runs, or
// per value of key, a dotted path into the run input ("tenant",
// "customer.id").
func (w *worker) parseConcurrency(v goja.Value, workflow string, where func(string) string) *host.ConcurrencyLimit {
	rt := w.rt
	o := optionsObject(rt, v, where("concurrency"))
	lv := o.Get("limit")
	if !present(lv) {
		panic(rt.NewTypeError("%s: limit is required (a positive integer: how many task bodies of the workflow run at once)", where("concurrency")))
	}
	c := &host.ConcurrencyLimit{Limit: int(positiveInt(rt, lv, where("concurrency.limit")))}
	if kv := o.Get("key"); present(kv) {
		k, ok := kv.Export().(string)
		if !ok || !validInputPath(k) {
			panic(rt.NewTypeError(`%s must be a dotted path into the run input such as "tenant" or "customer.id", got %s`, where("concurrency.key"), describeValue(kv)))
		}
		c.Key = k
	}
	if w.id == 0 && !w.everRegistered {
		for _, k := range o.Keys() {
			if k != "limit" && k != "key" {
				w.log.Warn("gateway.register: unknown option ignored (a typo?)", "workflow", workflow, "option", "concurrency."+k, "known", "limit, key")
			}
		}
	}
	return c
}

// validInputPath reports whether p is a non-empty dotted path of non-empty
// segments.
func validInputPath(p string) bool {
	if p == "" {
		return false
	}
	for _, seg := range strings.Split(p, ".") {
		if seg == "" {
			return false
		}
	}
	return true
}

// parseWebhook reads the webhook option. The secret is given as secret (a
// literal) or secretEnv (the name of an environment variable the gateway
// reads at start, so the secret stays out of the module's source).
func parseWebhook(rt *goja.Runtime, v goja.Value, where func(string) string, lookupEnv func(string) (string, bool)) *host.WebhookConfig {
	o := optionsObject(rt, v, where("webhook"))
	wh := &host.WebhookConfig{}
	sub := func(f string) string { return where("webhook." + f) }
	wh.Secret = optString(rt, o, "secret", sub)
	if name := optString(rt, o, "secretEnv", sub); name != "" {
		if wh.Secret != "" {
			panic(rt.NewTypeError("%s and %s are both set: give the secret one way", sub("secret"), sub("secretEnv")))
		}
		if !envNamePattern.MatchString(name) {
			panic(rt.NewTypeError("%s: %q is not an environment variable name", sub("secretEnv"), name))
		}
		secret, ok := lookupEnv(name)
		if !ok || strings.TrimSpace(secret) == "" {
			panic(rt.NewTypeError("%s names %s, which is not set in the gateway's environment (or is blank)", sub("secretEnv"), name))
		}
		wh.Secret = secret
	}
	wh.SignatureHeader = optString(rt, o, "signatureHeader", sub)
	if pv := o.Get("signaturePrefix"); present(pv) {
		// Present, even "", overrides the default "sha256=".
		prefix := optString(rt, o, "signaturePrefix", sub)
		wh.SignaturePrefix = &prefix
	}
	wh.DeliveryHeader = optString(rt, o, "deliveryHeader", sub)
	if sv := o.Get("signal"); present(sv) {
		so := optionsObject(rt, sv, sub("signal"))
		sig := &host.WebhookSignal{}
		sig.Name = optString(rt, so, "name", func(f string) string { return sub("signal." + f) })
		sig.CorrelationIDPath = optString(rt, so, "correlationIdPath", func(f string) string { return sub("signal." + f) })
		sig.RunIDPath = optString(rt, so, "runIdPath", func(f string) string { return sub("signal." + f) })
		sig.PayloadPath = optString(rt, so, "payloadPath", func(f string) string { return sub("signal." + f) })
		wh.Signal = sig
	}
	if rv := o.Get("run"); present(rv) {
		ro := optionsObject(rt, rv, sub("run"))
		run := &host.WebhookRun{InputPath: optString(rt, ro, "inputPath", func(f string) string { return sub("run." + f) })}
		if ev := ro.Get("enabled"); present(ev) {
			b, ok := ev.Export().(bool)
			if !ok {
				panic(rt.NewTypeError("%s must be a boolean", sub("run.enabled")))
			}
			run.Enabled = &b
		}
		wh.Run = run
	}
	return wh
}
