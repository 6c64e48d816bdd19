package jsruntime

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/dop251/goja"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// This file turns errors between Go and JavaScript: host errors into
// SmithersError objects, JavaScript error values into the stored error JSON
// ({name, code, message, details, retryable, stack}), and back.

// jsValueError carries a JavaScript value thrown or rejected.
type jsValueError struct {
	rt *goja.Runtime
	v  goja.Value
}

func (e jsValueError) Error() string { return describeJSError(e.rt, e.v) }

// describeJSError renders "Name: message" for error objects and String(v)
// otherwise.
func describeJSError(rt *goja.Runtime, v goja.Value) string {
	if o, ok := v.(*goja.Object); ok {
		name, msg := o.Get("name"), o.Get("message")
		if present(msg) {
			if present(name) {
				return name.String() + ": " + msg.String()
			}
			return msg.String()
		}
	}
	if v == nil {
		return "undefined"
	}
	return v.String()
}

// storedError is the JSON form of an error kept in node and run rows.
type storedError struct {
	Name      string          `json:"name"`
	Code      string          `json:"code,omitempty"`
	Message   string          `json:"message"`
	Details   json.RawMessage `json:"details,omitempty"`
	Retryable *bool           `json:"retryable,omitempty"`
	Stack     string          `json:"stack,omitempty"`
}

func (e storedError) json() string {
	b, _ := json.Marshal(e)
	return string(b)
}

// storedErrorOf reads a thrown JavaScript value into a storedError.
func (w *worker) storedErrorOf(v goja.Value) storedError {
	e := storedError{Name: "Error"}
	o, ok := v.(*goja.Object)
	if !ok {
		if v != nil {
			e.Message = v.String()
		}
		return e.bounded()
	}
	if n := o.Get("name"); present(n) {
		e.Name = n.String()
	}
	if m := o.Get("message"); present(m) {
		e.Message = m.String()
	} else {
		e.Message = v.String()
	}
	if c := o.Get("code"); present(c) {
		e.Code = c.String()
	}
	if d := o.Get("details"); present(d) {
		if s, err := w.helpers.stringify(d); err == nil && s != "" {
			e.Details = json.RawMessage(s)
		}
	}
	if r := o.Get("retryable"); present(r) {
		if b, ok := r.Export().(bool); ok {
			e.Retryable = &b
		}
	}
	if s := o.Get("stack"); present(s) {
		e.Stack = userStack(s.String())
	}
	return e.bounded()
}

// maxErrorDetails bounds the JSON of a stored error's details.
const maxErrorDetails = 4 * host.MaxErrorOutputBytes

// bounded cuts what a thrown value may make too large to store: the
// message and the stack keep their first host.MaxErrorOutputBytes bytes and
// say how much was cut; details over maxErrorDetails of JSON are replaced
// by {"detailsCut": <bytes>}. A stored error is kept in the attempt, the
// node and the run and travels in node.failed and run.completed.
func (e storedError) bounded() storedError {
	e.Message = headWithNote(e.Message, host.MaxErrorOutputBytes)
	e.Stack = headWithNote(e.Stack, host.MaxErrorOutputBytes)
	if len(e.Details) > maxErrorDetails {
		e.Details = json.RawMessage(fmt.Sprintf(`{"detailsCut":%d}`, len(e.Details)))
	}
	return e
}

// headWithNote keeps the first max bytes of s (fewer, so as to end on a
// whole UTF-8 character) and says how many bytes were cut, when any were.
func headWithNote(s string, max int) string {
	if len(s) <= max {
		return s
	}
	n := max
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + fmt.Sprintf("[… %d bytes cut …]", len(s)-n)
}

// userStack drops the stack lines of the gateway's own Go functions (goja
// names them like "github.com/.../jsruntime.(*activation).jsApproval-fm
// (native)"): a workflow author can do nothing with them.
func userStack(stack string) string {
	lines := strings.Split(stack, "\n")
	kept := lines[:0]
	for _, l := range lines {
		if strings.HasSuffix(l, "(native)") && strings.Contains(l, "smithers-go/") {
			continue
		}
		kept = append(kept, l)
	}
	return strings.Join(kept, "\n")
}

// smithersError builds `new SmithersError(code, message, {details})`.
func (w *worker) smithersError(code, message string, details any) goja.Value {
	rt := w.rt
	ctor := rt.GlobalObject().Get("__smithers_orchestrator").ToObject(rt).Get("SmithersError")
	opts := rt.NewObject()
	if details != nil {
		must(opts.Set("details", details))
	}
	obj, err := rt.New(ctor, rt.ToValue(code), rt.ToValue(message), opts)
	if err != nil {
		return rt.NewGoError(errors.New(code + ": " + message))
	}
	return obj
}

// errorFromJSON rebuilds the SmithersError of a stored error, so a replayed
// failure throws exactly what the live one did.
func (w *worker) errorFromJSON(errJSON, fallbackCode string) goja.Value {
	var e storedError
	_ = json.Unmarshal([]byte(errJSON), &e)
	if e.Code == "" {
		e.Code = fallbackCode
	}
	if e.Message == "" {
		e.Message = e.Code
	}
	var details any
	if len(e.Details) > 0 {
		if v, err := w.helpers.parse(string(e.Details)); err == nil {
			details = v
		}
	}
	return w.smithersError(e.Code, e.Message, details)
}

// unstorable describes why what (a task's return value, the workflow's)
// could not be handed to the journal (see jsHelpers.storable): a
// SmithersError OUTPUT_TOO_LARGE over the cap, a TypeError otherwise; it is
// never retried, as another attempt would return the same.
func (w *worker) unstorable(what string, err error) storedError {
	no := false
	var tooLarge errOutputTooLarge
	if errors.As(err, &tooLarge) {
		return storedError{Name: "SmithersError", Code: host.CodeOutputTooLarge, Message: what + " " + err.Error(), Retryable: &no}
	}
	var notJSON errNotStorable
	if errors.As(err, &notJSON) {
		return storedError{Name: "TypeError", Message: what + " " + err.Error(), Retryable: &no}
	}
	return storedError{Name: "TypeError", Message: what + " cannot be stored as JSON: " + describeErr(w.rt, err), Retryable: &no}
}

// outputTooLarge is the SmithersError OUTPUT_TOO_LARGE thrown at a step
// that hands the journal more than the cap; retryable is false, as a retry
// would hand it the same.
func (w *worker) outputTooLarge(msg string) goja.Value {
	e := w.smithersError(host.CodeOutputTooLarge, msg, nil)
	if o, ok := e.(*goja.Object); ok {
		_ = o.Set("retryable", false)
	}
	return e
}

// hostErrorToJS turns an error returned by host into a JavaScript error
// value carrying its code.
func (w *worker) hostErrorToJS(err error) goja.Value {
	var he *host.Error
	if errors.As(err, &he) {
		return w.smithersError(he.Code, he.Message, nil)
	}
	return w.smithersError(host.CodeServerError, err.Error(), nil)
}

// retryable reports whether a failed attempt with this error may be tried
// again. CANCELLED never is. An explicit retryable property wins: a
// SmithersError with retryable: false is not retried, and t.fetch's network
// failures, TypeErrors as in browsers, carry retryable: true. Otherwise
// the JavaScript error classes that signal a bug in the task body
// (TypeError, ReferenceError, SyntaxError) are not retried, and every
// other error is.
func (e storedError) retryable() bool {
	switch {
	case e.Code == host.CodeCancelled:
		return false
	case e.Retryable != nil:
		return *e.Retryable
	}
	return e.Name != "TypeError" && e.Name != "ReferenceError" && e.Name != "SyntaxError"
}
