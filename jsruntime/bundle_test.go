package jsruntime

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dop251/goja"
)

// writeModuleFiles writes files (slash-separated name -> source) into a new temporary directory
// and returns the directory.
func writeModuleFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// buildModule writes files and bundles the entry among them, failing the test on error.
func buildModule(t *testing.T, entry string, files map[string]string) *Bundle {
	t.Helper()
	dir := writeModuleFiles(t, files)
	b, err := BuildBundle(filepath.Join(dir, entry))
	if err != nil {
		t.Fatalf("BuildBundle: %v", err)
	}
	return b
}

// loadModuleError writes files, bundles the entry and returns the *LoadError it must fail with,
// and the directory the files were written to.
func loadModuleError(t *testing.T, entry string, files map[string]string) (*LoadError, string) {
	t.Helper()
	dir := writeModuleFiles(t, files)
	b, err := BuildBundle(filepath.Join(dir, entry))
	if err == nil {
		t.Fatalf("BuildBundle succeeded, want a LoadError; code:\n%s", b.Code)
	}
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("BuildBundle error %T %v, want *LoadError", err, err)
	}
	return le, dir
}

// evalBundle evaluates b in a fresh runtime with the prelude and the globals and returns the
// runtime and the module's exports.
func evalBundle(t *testing.T, b *Bundle) (*goja.Runtime, *goja.Object) {
	t.Helper()
	rt := goja.New()
	if err := installPrelude(rt); err != nil {
		t.Fatal(err)
	}
	if err := installGlobals(rt); err != nil {
		t.Fatal(err)
	}
	prg, err := b.Compile()
	if err != nil {
		t.Fatalf("compile: %v\n%s", err, b.Code)
	}
	if _, err := rt.RunProgram(prg); err != nil {
		t.Fatalf("run bundle: %v", err)
	}
	exports, ok := rt.GlobalObject().Get(moduleGlobal).(*goja.Object)
	if !ok {
		t.Fatalf("globalThis.%s is not an object", moduleGlobal)
	}
	return rt, exports
}

// callRegister calls the module's default export (or named register) with an empty gateway and
// returns its result exported to Go, resolving a returned promise.
func callRegister(t *testing.T, rt *goja.Runtime, exports *goja.Object) any {
	t.Helper()
	res, err := invokeRegister(rt, exports)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	return res.Export()
}

func invokeRegister(rt *goja.Runtime, exports *goja.Object) (goja.Value, error) {
	fnv := exports.Get("default")
	if fnv == nil || goja.IsUndefined(fnv) {
		fnv = exports.Get("register")
	}
	fn, ok := goja.AssertFunction(fnv)
	if !ok {
		return nil, errors.New("module exports no register function")
	}
	res, err := fn(goja.Undefined(), rt.NewObject())
	if err != nil {
		return nil, err
	}
	if p, ok := res.Export().(*goja.Promise); ok {
		switch p.State() {
		case goja.PromiseStateFulfilled:
			return p.Result(), nil
		case goja.PromiseStateRejected:
			return nil, errors.New("rejected: " + p.Result().String())
		default:
			return nil, errors.New("promise still pending")
		}
	}
	return res, nil
}

// jsonOf compares values through JSON, which irons out Go number types.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBuildBundleExtensions(t *testing.T) {
	tests := []struct {
		entry, src string
	}{
		{"gateway.mjs", "export default function register(gateway) { return 'mjs'; }\n"},
		{"gateway.js", "export function register(gateway) { return 'js'; }\n"},
		{"gateway.ts", `
interface Gateway { register(key: string, fn: (ctx: unknown) => Promise<unknown>): void }
enum Kind { A = "ts" }
type Out = string;
export default function register(gateway: Gateway): Out {
  const id = <T,>(x: T): T => x;
  return id<string>(Kind.A);
}
`},
		{"gateway.jsx", "export default function register(gateway) { return 'jsx'; }\n"},
		{"gateway.tsx", `
type G = { register: Function };
export default async function register(gateway: G): Promise<string> {
  const id = <T,>(x: T): T => x;
  return id("tsx");
}
`},
	}
	for _, tc := range tests {
		t.Run(tc.entry, func(t *testing.T) {
			b := buildModule(t, tc.entry, map[string]string{tc.entry: tc.src})
			rt, exports := evalBundle(t, b)
			want := filepath.Ext(tc.entry)[1:]
			if got := callRegister(t, rt, exports); got != want {
				t.Fatalf("register() = %v, want %q", got, want)
			}
		})
	}
}

func TestBuildBundleRejectsOtherExtensions(t *testing.T) {
	for _, name := range []string{"gateway.cjs", "gateway.json", "gateway"} {
		t.Run(name, func(t *testing.T) {
			_, err := BuildBundleSource(name, "export default 1;")
			var le *LoadError
			if !errors.As(err, &le) || !strings.Contains(le.Message, "unsupported module extension") {
				t.Fatalf("error %v, want a LoadError about the extension", err)
			}
			if le.File != name {
				t.Fatalf("File = %q, want %q", le.File, name)
			}
		})
	}
}

func TestBuildBundleRelativeImports(t *testing.T) {
	b := buildModule(t, "gateway.ts", map[string]string{
		"gateway.ts": `
import { double } from "./lib/math";
import { greet } from "./lib/greet.mjs";
import config from "./config.json";
export default function register(gateway: unknown) {
  return { n: double(21), greeting: greet("smithers"), name: config.name };
}
`,
		"lib/math.ts":      "export const double = (n: number): number => n * 2;\n",
		"lib/greet.mjs":    "import { suffix } from '../shared/suffix.js';\nexport function greet(who) { return `hi ${who}` + suffix; }\n",
		"shared/suffix.js": "export const suffix = '!';\n",
		"config.json":      `{"name": "cfg"}`,
	})
	rt, exports := evalBundle(t, b)
	got := jsonOf(t, callRegister(t, rt, exports))
	if want := `{"greeting":"hi smithers!","n":42,"name":"cfg"}`; got != want {
		t.Fatalf("register() = %s, want %s", got, want)
	}
}

func TestBuildBundleSourceInMemory(t *testing.T) {
	dir := writeModuleFiles(t, map[string]string{"lib.mjs": "export const x = 7;\n"})
	b, err := BuildBundleSource(filepath.Join(dir, "embedded.mjs"),
		"import { x } from './lib.mjs';\nexport default () => x * 6;\n")
	if err != nil {
		t.Fatal(err)
	}
	rt, exports := evalBundle(t, b)
	if got := jsonOf(t, callRegister(t, rt, exports)); got != "42" {
		t.Fatalf("register() = %s, want 42", got)
	}
}

func TestBundleAssignsGlobalThisProperty(t *testing.T) {
	b := buildModule(t, "gateway.mjs", map[string]string{"gateway.mjs": "export const answer = 42;\n"})
	if strings.Contains(b.Code, "var "+moduleGlobal) {
		t.Fatalf("code declares a var %s:\n%s", moduleGlobal, b.Code)
	}
	rt := goja.New()
	if err := installPrelude(rt); err != nil {
		t.Fatal(err)
	}
	// Evaluated inside a function, a var would stay local; the exports must still reach globalThis.
	fn, err := rt.RunString("(function (code) { (0, eval)(code); })")
	if err != nil {
		t.Fatal(err)
	}
	call, _ := goja.AssertFunction(fn)
	if _, err := call(goja.Undefined(), rt.ToValue(b.Code)); err != nil {
		t.Fatal(err)
	}
	v, err := rt.RunString("globalThis.__smithers_module.answer")
	if err != nil {
		t.Fatal(err)
	}
	if v.ToInteger() != 42 {
		t.Fatalf("answer = %v, want 42", v)
	}
}

func TestBundleSyntaxLoweredRunsInGoja(t *testing.T) {
	b := buildModule(t, "gateway.mjs", map[string]string{"gateway.mjs": `
class Counter {
  count = 1;
  #secret = 41;
  static kind = "counter";
  static #made = 0;
  constructor() { Counter.#made++; }
  get value() { return this.#secret + this.count; }
  #hidden() { return "private method"; }
  reveal() { return this.#hidden(); }
  static made() { return Counter.#made; }
}

async function* countTo(n) {
  for (let i = 1; i <= n; i++) yield i;
}

export default async function register(gateway) {
  const c = new Counter();
  const o = { a: { b: null }, list: [1, 2] };
  const { list, ...rest } = { ...o, extra: true };
  let sum = 0;
  for await (const i of countTo(3)) sum += i;
  let maybe = null;
  maybe ??= "assigned";
  let caught = "";
  try { JSON.parse("{"); } catch { caught = "optional catch binding"; }
  const m = /(?<year>\d{4})-(?<month>\d{2})/.exec("2024-05");
  return {
    field: c.count,
    privateField: c.value,
    privateMethod: c.reveal(),
    staticField: Counter.kind,
    staticPrivate: Counter.made(),
    optionalChain: o?.a?.b?.c === undefined,
    optionalCall: o.missing?.() === undefined,
    nullish: o.a.b ?? "fallback",
    spread: Object.keys(rest).sort(),
    list,
    asyncIteration: sum,
    logicalAssign: maybe,
    exponent: 2 ** 10,
    numericSeparator: 1_000_000,
    bigint: (2n ** 64n).toString(),
    caught,
    namedGroups: m.groups.year + "/" + m.groups.month,
    flat: [[1], [2, [3]]].flat(2),
    fromEntries: Object.fromEntries([["k", "v"]]),
    className: Counter.name,
  };
}
`})
	rt, exports := evalBundle(t, b)
	got := jsonOf(t, callRegister(t, rt, exports))
	want := jsonOf(t, map[string]any{
		"field": 1, "privateField": 42, "privateMethod": "private method", "staticField": "counter",
		"staticPrivate": 1, "optionalChain": true, "optionalCall": true, "nullish": "fallback", "spread": []string{"a", "extra"}, "list": []int{1, 2},
		"asyncIteration": 6, "logicalAssign": "assigned", "exponent": 1024, "numericSeparator": 1000000,
		"bigint": "18446744073709551616", "caught": "optional catch binding", "namedGroups": "2024/05",
		"flat": []int{1, 2, 3}, "fromEntries": map[string]string{"k": "v"}, "className": "Counter",
	})
	if got != want {
		t.Fatalf("register() =\n%s\nwant\n%s", got, want)
	}
}

func TestBundleSmithersErrorImport(t *testing.T) {
	b := buildModule(t, "gateway.mjs", map[string]string{"gateway.mjs": `
import { SmithersError } from "smithers-orchestrator";
export default function register(gateway) {
  const err = new SmithersError("X", "m", { retryable: false });
  return {
    name: err.name, code: err.code, message: err.message, retryable: err.retryable,
    detailsUndefined: err.details === undefined,
    isError: err instanceof Error, isSmithersError: err instanceof SmithersError,
    sameClass: SmithersError === globalThis.__smithers_orchestrator.SmithersError,
  };
}
`})
	rt, exports := evalBundle(t, b)
	got := jsonOf(t, callRegister(t, rt, exports))
	want := `{"code":"X","detailsUndefined":true,"isError":true,"isSmithersError":true,"message":"m","name":"SmithersError","retryable":false,"sameClass":true}`
	if got != want {
		t.Fatalf("register() = %s, want %s", got, want)
	}
}

// assertUpstreamMessage checks the explanation that a module uses upstream-only Smithers APIs.
func assertUpstreamMessage(t *testing.T, msg, subject string) {
	t.Helper()
	for _, want := range []string{
		subject, "upstream Smithers API (JSX workflows)", "`async (ctx)` workflows",
		"`gateway.register(key, async (ctx) => ...)`",
	} {
		if !strings.Contains(msg, want) {
			t.Fatalf("message %q does not contain %q", msg, want)
		}
	}
}

func TestBuildBundleUpstreamAPIs(t *testing.T) {
	tests := []struct {
		name, entry, src string
		line, col        int
		subject          string
	}{
		{"createSmithers", "gateway.mjs",
			"// upstream style\n\nimport { createSmithers } from \"smithers-orchestrator\";\nexport default createSmithers;\n",
			3, 10, "`createSmithers`"},
		{"Workflow and Task", "gateway.ts",
			"import { SmithersError, Workflow, Task } from \"smithers-orchestrator\";\nexport default function register(g: unknown) { return [SmithersError, Workflow, Task]; }\n",
			1, 25, "`Workflow`"},
		{"namespace import", "gateway.mjs",
			"import * as smithers from \"smithers-orchestrator\";\nexport default function register(g) {\n  return smithers.createSmithers();\n}\n",
			3, 19, "`createSmithers`"},
		{"subpath", "gateway.mjs",
			"import { Workflow } from \"smithers-orchestrator/components\";\nexport default () => Workflow;\n",
			1, 26, "`smithers-orchestrator/components`"},
		{"react", "gateway.mjs",
			"const x = 1;\nimport React from \"react\";\nexport default () => React;\n",
			2, 19, "`react`"},
		{"react jsx-runtime", "gateway.mjs",
			"import { jsx } from \"react/jsx-runtime\";\nexport default () => jsx;\n",
			1, 21, "`react/jsx-runtime`"},
		{"react-dom", "gateway.mjs",
			"import { render } from 'react-dom';\nexport default () => render;\n",
			1, 24, "`react-dom`"},
		{"JSX in jsx", "gateway.jsx",
			"export default function register(gateway) {\n  return <Workflow name=\"x\" />;\n}\n",
			2, 10, "JSX needs React"},
		{"JSX in tsx", "gateway.tsx",
			"const a: number = 1;\nexport default () => <><Task id=\"t\" /></>;\n",
			2, 22, "JSX needs React"},
		{"JSX in js", "gateway.js",
			"export default function register(gateway) {\n  return <Workflow />;\n}\n",
			2, 10, "JSX needs React"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			le, dir := loadModuleError(t, tc.entry, map[string]string{tc.entry: tc.src})
			assertUpstreamMessage(t, le.Message, tc.subject)
			if want := filepath.Join(dir, tc.entry); le.File != want {
				t.Errorf("File = %q, want %q", le.File, want)
			}
			if le.Line != tc.line || le.Column != tc.col {
				t.Errorf("position %d:%d, want %d:%d (%s)", le.Line, le.Column, tc.line, tc.col, le)
			}
		})
	}
}

func TestBuildBundleDefaultImportOfVirtualModule(t *testing.T) {
	le, _ := loadModuleError(t, "gateway.mjs", map[string]string{
		"gateway.mjs": "import smithers from \"smithers-orchestrator\";\nexport default () => smithers;\n",
	})
	if !strings.Contains(le.Message, "no default export") || le.Line != 1 {
		t.Fatalf("got %v, want a missing default export at line 1", le)
	}
}

func TestBuildBundleNodeModules(t *testing.T) {
	const hint = " is not available: workflow modules run in the gateway's JavaScript runtime, not Node.js; use t.fetch / t.exec inside a task"
	tests := []struct {
		name, src, module string
		line, col         int
	}{
		{"node:fs", "import { readFileSync } from \"node:fs\";\nexport default () => readFileSync;\n", "node:fs", 1, 30},
		{"node:child_process", "\nimport cp from 'node:child_process';\nexport default () => cp;\n", "node:child_process", 2, 16},
		{"bare fs", "import fs from \"fs\";\nexport default () => fs;\n", "fs", 1, 16},
		{"bare path subpath", "import { join } from \"path/posix\";\nexport default () => join;\n", "path/posix", 1, 22},
		{"bare child_process", "import { spawn } from \"child_process\";\nexport default () => spawn;\n", "child_process", 1, 23},
		{"require", "const os = require(\"os\");\nexport default () => os;\n", "os", 1, 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			le, dir := loadModuleError(t, "gateway.mjs", map[string]string{"gateway.mjs": tc.src})
			if want := tc.module + hint; le.Message != want {
				t.Errorf("Message = %q, want %q", le.Message, want)
			}
			if le.File != filepath.Join(dir, "gateway.mjs") || le.Line != tc.line || le.Column != tc.col {
				t.Errorf("position %s:%d:%d, want gateway.mjs:%d:%d", le.File, le.Line, le.Column, tc.line, tc.col)
			}
		})
	}
}

func TestBuildBundleErrorInImportedFileNamesThatFile(t *testing.T) {
	dir := writeModuleFiles(t, map[string]string{
		"gateway.mjs":      "import { read } from './lib/io.mjs';\nexport default () => read;\n",
		"lib/io.mjs":       "// helpers\nimport { readFile } from 'node:fs/promises';\nexport const read = readFile;\n",
		"other/unused.mjs": "",
	})
	t.Chdir(dir)
	_, err := BuildBundle("gateway.mjs")
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("error %v, want *LoadError", err)
	}
	if want := filepath.Join("lib", "io.mjs") + ":2:26: node:fs/promises is not available"; !strings.HasPrefix(le.Error(), want) {
		t.Fatalf("Error() = %q, want prefix %q", le.Error(), want)
	}
}

func TestBuildBundleInstalledPolyfillOfBuiltinName(t *testing.T) {
	b := buildModule(t, "gateway.mjs", map[string]string{
		"gateway.mjs":                      "import { EventEmitter } from 'events';\nexport default () => new EventEmitter().kind;\n",
		"node_modules/events/package.json": `{"name": "events", "main": "events.js"}`,
		"node_modules/events/events.js":    "exports.EventEmitter = function EventEmitter() { this.kind = 'polyfill'; };\n",
	})
	rt, exports := evalBundle(t, b)
	if got := callRegister(t, rt, exports); got != "polyfill" {
		t.Fatalf("register() = %v, want polyfill", got)
	}
}

func TestBuildBundleUnresolvedPackage(t *testing.T) {
	le, dir := loadModuleError(t, "gateway.mjs", map[string]string{
		"gateway.mjs": "export const a = 1;\nimport _ from \"lodash\";\nexport default () => _;\n",
	})
	if !strings.Contains(le.Message, `"lodash"`) || le.Line != 2 || le.Column != 15 || le.File != filepath.Join(dir, "gateway.mjs") {
		t.Fatalf("got %v, want lodash unresolved at gateway.mjs:2:15", le)
	}
}

func TestBuildBundleTopLevelAwait(t *testing.T) {
	tests := []struct {
		name, src string
		line      int
	}{
		{"await", "const config = { a: 1 };\n\nconst data = await Promise.resolve(config);\nexport default () => data;\n", 3},
		{"for await", "const xs = [];\nfor await (const x of xs) {}\nexport default () => xs;\n", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			le, _ := loadModuleError(t, "gateway.mjs", map[string]string{"gateway.mjs": tc.src})
			want := "top-level await is not supported: move it into register(gateway), which may be async"
			if le.Message != want || le.Line != tc.line {
				t.Fatalf("got %v, want %q at line %d", le, want, tc.line)
			}
		})
	}
}

func TestBuildBundleSyntaxError(t *testing.T) {
	tests := []struct {
		name, entry, src string
		line, col        int
		msg              string
	}{
		{"missing expression", "gateway.mjs", "export default function register(gateway) {\n  const x = ;\n}\n", 2, 13, `Unexpected ";"`},
		{"column counts characters", "gateway.mjs", "export default function register(gateway) {\n  const s = \"héllo\" +;\n}\n", 2, 22, `Unexpected ";"`},
		{"typescript", "gateway.ts", "export default function register(gateway: ) {}\n", 1, 43, `Unexpected ")"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			le, dir := loadModuleError(t, tc.entry, map[string]string{tc.entry: tc.src})
			if le.Line != tc.line || le.Column != tc.col || !strings.Contains(le.Message, tc.msg) {
				t.Fatalf("got %v, want %q at %d:%d", le, tc.msg, tc.line, tc.col)
			}
			if le.File != filepath.Join(dir, tc.entry) {
				t.Fatalf("File = %q, want the entry", le.File)
			}
		})
	}
}

func TestBuildBundleCountsOtherErrors(t *testing.T) {
	le, _ := loadModuleError(t, "gateway.mjs", map[string]string{
		"gateway.mjs": "import a from './missing-a.mjs';\nimport b from './missing-b.mjs';\nimport c from './missing-c.mjs';\nexport default () => [a, b, c];\n",
	})
	if !strings.HasSuffix(le.Message, "(and 2 more errors)") || le.Line != 1 {
		t.Fatalf("got %v, want the first error at line 1 and a count of 2 more", le)
	}
}

func TestBuildBundleMissingFile(t *testing.T) {
	_, err := BuildBundle(filepath.Join(t.TempDir(), "gateway.mjs"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error %v, want fs.ErrNotExist", err)
	}
	var le *LoadError
	if errors.As(err, &le) {
		t.Fatalf("a missing file must not be a LoadError: %v", err)
	}
}

func TestBundleHashStable(t *testing.T) {
	files := map[string]string{
		"gateway.mjs": "import { v } from './lib/v.mjs';\nexport default function register(g) { return v; }\n",
		"lib/v.mjs":   "export const v = 'é';\n",
	}
	dir := writeModuleFiles(t, files)
	abs := filepath.Join(dir, "gateway.mjs")
	first, err := BuildBundle(abs)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Hash) != 64 || strings.ToLower(first.Hash) != first.Hash {
		t.Fatalf("Hash %q is not lower-case hex SHA-256", first.Hash)
	}
	second, err := BuildBundle(abs)
	if err != nil {
		t.Fatal(err)
	}
	inMemory, err := BuildBundleSource(abs, files["gateway.mjs"])
	if err != nil {
		t.Fatal(err)
	}
	// The module named relative to the working directory is the same code.
	t.Chdir(dir)
	relative, err := BuildBundle("gateway.mjs")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]*Bundle{"again": second, "in memory": inMemory, "relative path": relative} {
		if b.Code != first.Code || b.Hash != first.Hash {
			t.Errorf("%s: bundle differs from the first build", name)
		}
	}
	if relative.Path != "gateway.mjs" {
		t.Errorf("Path = %q, want the path as given", relative.Path)
	}
	changed, err := BuildBundleSource(abs, strings.Replace(files["gateway.mjs"], "return v", "return v + 1", 1))
	if err != nil {
		t.Fatal(err)
	}
	if changed.Hash == first.Hash {
		t.Error("a changed module has the same hash")
	}
}

func TestLoadErrorFormat(t *testing.T) {
	tests := []struct {
		err  LoadError
		want string
	}{
		{LoadError{File: "gateway.mjs", Line: 3, Column: 7, Message: "boom"}, "gateway.mjs:3:7: boom"},
		{LoadError{File: "gateway.mjs", Line: 3, Message: "boom"}, "gateway.mjs:3: boom"},
		{LoadError{File: "gateway.mjs", Message: "boom"}, "gateway.mjs: boom"},
		{LoadError{Message: "boom"}, "boom"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestMissingExportName(t *testing.T) {
	tests := map[string]string{
		`No matching export in "smithers-orchestrator:smithers-orchestrator" for import "createSmithers"`:                                 "createSmithers",
		`Import "Workflow" will always be undefined because there is no matching export in "smithers-orchestrator:smithers-orchestrator"`: "Workflow",
		`something else`: "",
	}
	for text, want := range tests {
		if got := missingExportName(text); got != want {
			t.Errorf("missingExportName(%q) = %q, want %q", text, got, want)
		}
	}
}
