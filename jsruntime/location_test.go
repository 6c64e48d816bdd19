package jsruntime

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dop251/goja"
)

// registerException evaluates b and calls its register, which must throw; it returns the
// exception.
func registerException(t *testing.T, b *Bundle) *goja.Exception {
	t.Helper()
	rt, exports := evalBundle(t, b)
	_, err := invokeRegister(rt, exports)
	var ex *goja.Exception
	if !errors.As(err, &ex) {
		t.Fatalf("register returned %v, want a JS exception", err)
	}
	return ex
}

func TestExceptionLocation(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		file  string
		line  int
	}{
		{"throw in register", map[string]string{"gateway.mjs": `import { SmithersError } from "smithers-orchestrator";

const helpers = { a: 1, ...{ b: 2 } };

export default function register(gateway) {
  const key = helpers?.a ?? "none";
  throw new SmithersError("BAD", "register failed " + key);
}
`}, "gateway.mjs", 7},
		{"throw in an imported file", map[string]string{
			"gateway.ts": `import { check } from "./lib/check";

export default function register(gateway: unknown): void {
  check(gateway);
}
`,
			"lib/check.ts": `type Gateway = unknown;
// a comment
export function check(g: Gateway): void {
  if (g) {
    throw new Error("bad gateway");
  }
}
`}, "lib/check.ts", 5},
		{"SmithersError with a bad code (thrown in the prelude)", map[string]string{"gateway.mjs": `import { SmithersError } from "smithers-orchestrator";
export default function register(gateway) {

  return new SmithersError(42, "x");
}
`}, "gateway.mjs", 4},
		{"native function throws", map[string]string{"gateway.mjs": `export default function register(gateway) {
  const text = "{";
  return JSON.parse(text);
}
`}, "gateway.mjs", 3},
		{"error in an esbuild helper", map[string]string{"gateway.mjs": `class Box {
  #v = 1;
  get v() { return this.#v; }
}
export default function register(gateway) {
  const get = Object.getOwnPropertyDescriptor(Box.prototype, "v").get;
  return get.call({});
}
`}, "gateway.mjs", 3},
		{"async register rejects with a SmithersError", map[string]string{"gateway.mjs": `import { SmithersError } from "smithers-orchestrator";
export async function register(gateway) {
  await Promise.resolve();

  throw new SmithersError("LATE", "failed after await");
}
`}, "gateway.mjs", 5},
		{"async register", map[string]string{"gateway.mjs": `export async function register(gateway) {
  await null;
  null.boom;
}
`}, "gateway.mjs", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			entry := "gateway.mjs"
			if _, ok := tc.files[entry]; !ok {
				entry = "gateway.ts"
			}
			dir := writeModuleFiles(t, tc.files)
			b, err := BuildBundle(filepath.Join(dir, entry))
			if err != nil {
				t.Fatal(err)
			}
			rt, exports := evalBundle(t, b)
			fn, _ := goja.AssertFunction(exports.Get("register"))
			if fn == nil {
				fn, _ = goja.AssertFunction(exports.Get("default"))
			}
			want := filepath.Join(dir, filepath.FromSlash(tc.file))
			res, err := fn(goja.Undefined(), rt.NewObject())
			if err == nil {
				// An async register rejects its promise with the error instead of throwing.
				p, ok := res.Export().(*goja.Promise)
				if !ok || p.State() != goja.PromiseStateRejected {
					t.Fatalf("register returned %v, want a throw or a rejection", res)
				}
				file, line, col, ok := errorValueLocation(p.Result())
				if !ok || file != want || line != tc.line || col < 1 {
					t.Fatalf("location %s:%d:%d (ok=%v), want %s:%d\n%s", file, line, col, ok, want, tc.line,
						p.Result().ToObject(rt).Get("stack"))
				}
				return
			}
			var ex *goja.Exception
			if !errors.As(err, &ex) {
				t.Fatalf("register: %v", err)
			}
			file, line, col, ok := exceptionLocation(ex)
			if !ok || file != want || line != tc.line || col < 1 {
				t.Fatalf("location %s:%d:%d (ok=%v), want %s:%d\n%s", file, line, col, ok, want, tc.line, ex.String())
			}
			// The Error's own stack (what a rejection carries) gives the same answer when the
			// error was created where it was thrown.
			if obj, isErr := ex.Value().(*goja.Object); isErr && obj.Get("stack") != nil && tc.name != "native function throws" &&
				!strings.Contains(tc.name, "prelude") && !strings.Contains(tc.name, "helper") {
				vf, vl, _, vok := errorValueLocation(obj)
				if !vok || vf != want || vl != tc.line {
					t.Fatalf("errorValueLocation %s:%d (ok=%v), want %s:%d", vf, vl, vok, want, tc.line)
				}
			}
		})
	}
}

func TestExceptionLocationRelativePathAndStack(t *testing.T) {
	dir := writeModuleFiles(t, map[string]string{
		"sub dir/gateway.mjs": "export default function register(gateway) {\n  throw new TypeError(\"nope\");\n}\n",
	})
	t.Chdir(dir)
	b, err := BuildBundle(filepath.Join("sub dir", "gateway.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	ex := registerException(t, b)
	file, line, _, ok := exceptionLocation(ex)
	if !ok || file != filepath.Join("sub dir", "gateway.mjs") || line != 2 {
		t.Fatalf("location %q:%d (ok=%v), want %q:2\n%s", file, line, ok, "sub dir/gateway.mjs", ex.String())
	}
	if !strings.Contains(ex.String(), "gateway.mjs:2:") {
		t.Fatalf("stack trace does not point at the original file:\n%s", ex.String())
	}
}

func TestExceptionLocationWithPlainCompile(t *testing.T) {
	dir := writeModuleFiles(t, map[string]string{
		"gateway.mjs": "export default function register(gateway) {\n\n  throw new Error(\"x\");\n}\n",
	})
	b, err := BuildBundle(filepath.Join(dir, "gateway.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	// A caller compiling Code under Path itself still gets the user's position.
	rt := scriptRuntime(t)
	prg, err := goja.Compile(b.Path, b.Code, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.RunProgram(prg); err != nil {
		t.Fatal(err)
	}
	_, err = invokeRegister(rt, rt.GlobalObject().Get(moduleGlobal).ToObject(rt))
	var ex *goja.Exception
	if !errors.As(err, &ex) {
		t.Fatalf("register: %v", err)
	}
	file, line, _, ok := exceptionLocation(ex)
	if !ok || file != b.Path || line != 3 {
		t.Fatalf("location %s:%d (ok=%v), want %s:3", file, line, ok, b.Path)
	}
}

func TestExceptionLocationWithoutUserFrames(t *testing.T) {
	rt := scriptRuntime(t)
	_, err := rt.RunString(`new globalThis.__smithers_orchestrator.SmithersError("")`)
	var ex *goja.Exception
	if !errors.As(err, &ex) {
		t.Fatal(err)
	}
	// The only JS frames are the prelude's and an unnamed script's: none is the user's module.
	if file, line, _, ok := exceptionLocation(ex); ok {
		t.Fatalf("location %s:%d, want none in\n%s", file, line, ex.String())
	}
	if _, _, _, ok := errorValueLocation(ex.Value()); ok {
		t.Fatal("errorValueLocation found a user frame in gateway code")
	}
	if _, _, _, ok := errorValueLocation(rt.ToValue("not an error")); ok {
		t.Fatal("a string has a location")
	}
	if _, _, _, ok := exceptionLocation(nil); ok {
		t.Fatal("nil exception has a location")
	}
}

func TestParseStackFrame(t *testing.T) {
	tests := []struct {
		in        string
		file      string
		line, col int
		ok        bool
	}{
		{"register (gateway.mjs:7:9(12))", "gateway.mjs", 7, 9, true},
		{"/tmp/x y/gateway.mjs:3:1(0)", "/tmp/x y/gateway.mjs", 3, 1, true},
		{"f (/a/gateway.mjs (bundle):40:5(3))", "/a/gateway.mjs (bundle)", 40, 5, true},
		{"native", "", 0, 0, false},
		{"JSON.parse (native)", "", 0, 0, false},
		{"garbage:(x)", "", 0, 0, false},
	}
	for _, tc := range tests {
		file, line, col, ok := parseStackFrame(tc.in)
		if file != tc.file || line != tc.line || col != tc.col || ok != tc.ok {
			t.Errorf("parseStackFrame(%q) = %q, %d, %d, %v; want %q, %d, %d, %v",
				tc.in, file, line, col, ok, tc.file, tc.line, tc.col, tc.ok)
		}
	}
}
