package jsruntime

import (
	"strings"
	"testing"

	"github.com/dop251/goja"
)

// scriptRuntime returns a runtime with the prelude and the globals installed.
func scriptRuntime(t *testing.T) *goja.Runtime {
	t.Helper()
	rt := goja.New()
	if err := installPrelude(rt); err != nil {
		t.Fatal(err)
	}
	if err := installGlobals(rt); err != nil {
		t.Fatal(err)
	}
	return rt
}

// runScript evaluates src in rt and returns its value, failing the test on an exception.
func runScript(t *testing.T, rt *goja.Runtime, src string) goja.Value {
	t.Helper()
	v, err := rt.RunString(src)
	if err != nil {
		t.Fatalf("%s\n-> %v", src, err)
	}
	return v
}

// scriptError evaluates src in rt, which must throw, and returns the thrown value's
// "name: message".
func scriptError(t *testing.T, rt *goja.Runtime, src string) string {
	t.Helper()
	_, err := rt.RunString(src)
	ex, ok := err.(*goja.Exception)
	if !ok {
		t.Fatalf("%s\n-> %v, want an exception", src, err)
	}
	obj, ok := ex.Value().(*goja.Object)
	if !ok {
		return ex.Value().String()
	}
	return obj.Get("name").String() + ": " + obj.Get("message").String()
}

func TestSmithersError(t *testing.T) {
	rt := scriptRuntime(t)
	runScript(t, rt, `var SmithersError = globalThis.__smithers_orchestrator.SmithersError;`)
	tests := []struct {
		expr string
		want any
	}{
		{`new SmithersError("X", "m", {retryable: false}).retryable`, false},
		{`new SmithersError("X", "m", {retryable: true, details: {a: 1}}).details.a`, int64(1)},
		{`new SmithersError("X", "m").details === undefined`, true},
		{`new SmithersError("X", "m").retryable === undefined`, true},
		{`new SmithersError("TASK_FAILED", "m").code`, "TASK_FAILED"},
		{`new SmithersError("X", "went wrong").message`, "went wrong"},
		{`new SmithersError("X").message`, "X"},
		{`new SmithersError("X", "m").name`, "SmithersError"},
		{`new SmithersError("X", "m") instanceof Error`, true},
		{`new SmithersError("X", "m") instanceof SmithersError`, true},
		{`String(new SmithersError("X", "m"))`, "SmithersError: m"},
		{`typeof new SmithersError("X", "m").stack`, "string"},
		{`new SmithersError("X", "m", {cause: "root"}).cause`, "root"},
		{`new SmithersError("X", "m", null).code`, "X"},
		{`JSON.stringify(new SmithersError("X", "m", {details: 1, retryable: false}))`, `{"code":"X","details":1,"retryable":false}`},
		{`class Sub extends SmithersError {}; const s = new Sub("Y", "m"); s instanceof SmithersError && s.code === "Y"`, true},
		{`Object.keys(globalThis).includes("__smithers_orchestrator")`, false},
		{`Object.getOwnPropertyDescriptor(globalThis, "__smithers_orchestrator").enumerable`, false},
		{`(() => { for (const k in globalThis) if (k === "__smithers_orchestrator") return false; return true; })()`, true},
	}
	for _, tc := range tests {
		if got := runScript(t, rt, tc.expr).Export(); got != tc.want {
			t.Errorf("%s = %#v, want %#v", tc.expr, got, tc.want)
		}
	}
}

func TestSmithersErrorRejectsBadArguments(t *testing.T) {
	rt := scriptRuntime(t)
	for _, expr := range []string{
		`new globalThis.__smithers_orchestrator.SmithersError()`,
		`new globalThis.__smithers_orchestrator.SmithersError("")`,
		`new globalThis.__smithers_orchestrator.SmithersError(42, "m")`,
		`new globalThis.__smithers_orchestrator.SmithersError("X", "m", "retry")`,
	} {
		if got := scriptError(t, rt, expr); !strings.HasPrefix(got, "TypeError: SmithersError: ") {
			t.Errorf("%s threw %q, want a TypeError from SmithersError", expr, got)
		}
	}
}

func TestInstallPreludeTwiceFails(t *testing.T) {
	rt := goja.New()
	if err := installPrelude(rt); err != nil {
		t.Fatal(err)
	}
	if err := installPrelude(rt); err == nil {
		t.Fatal("a second installPrelude succeeded; the namespace must not be replaceable")
	}
}
