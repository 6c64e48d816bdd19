package jsruntime_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/jsruntime"
)

// TestLoadFailuresNameFileAndLine covers the start-up failures of docs/architecture.md
// §2: each must be a *LoadError pointing at the user's file:line.
func TestLoadFailuresNameFileAndLine(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		line      int
		contains  string
	}{
		{"syntax", "export default function (g) {\n  g.register(\"a\", async (ctx) => {\n    return {;\n  });\n}\n", 3, ""},
		{"register throws", "export default function (g) {\n\n  throw new Error(\"nope\");\n}\n", 3, "nope"},
		{"duplicate key", "export default function (g) {\n  g.register(\"a\", async () => 1);\n  g.register(\"a\", async () => 2);\n}\n", 3, "already registered"},
		{"bad key", "export default function (g) {\n  g.register(\"has space\", async () => 1);\n}\n", 2, "workflow key"},
		{"bad option", "export default function (g) {\n  g.register(\"a\", async () => 1, { schedule: \"not a cron\" });\n}\n", 2, "schedule"},
		{"duration option", "export default function (g) {\n  g.register(\"a\", async () => 1, { timeoutMs: 1e13 });\n}\n", 2,
			`gateway.register("a") option timeoutMs: duration 10000000000000 ms is above the maximum of 3153600000000 ms (100 years)`},
		{"negative duration option", "export default function (g) {\n  g.register(\"a\", async () => 1, { timeoutMs: -5 });\n}\n", 2,
			`gateway.register("a") option timeoutMs: duration -5 ms is negative`},
		{"top-level await", "const x = 1;\nawait Promise.resolve(x);\nexport default function (g) {}\n", 2, "top-level await"},
		{"node import", "import fs from \"node:fs\";\nexport default function (g) {}\n", 1, "node:fs"},
		{"upstream api", "import { createSmithers } from \"smithers-orchestrator\";\nexport default function (g) {}\n", 1, "async (ctx)"},
		{"async register rejects", "export default async function (g) {\n  await null;\n  throw new Error(\"later\");\n}\n", 3, "later"},
		// Runaway code at start-up is interrupted by the turn budget and
		// the call-depth limit like a run's, and named like any failure.
		{"top-level loop", "let i = 0;\nwhile (true) { i++; }\nexport default function (g) {}\n", 2, "turn budget"},
		{"register loops", "export default function (g) {\n  g.register(\"a\", async () => 1);\n  for (let n = 0; ; n++) { g[n % 2] = n; }\n}\n", 3, "turn budget"},
		{"async register loops", "export default async function (g) {\n  await null;\n  for (let n = 0; ; n++) { g[n % 2] = n; }\n}\n", 3, "turn budget"},
		{"register loops after a timer", "export default async function (g) {\n  await new Promise((r) => setTimeout(r, 10));\n  for (let n = 0; ; n++) { g[n % 2] = n; }\n}\n", 3, "turn budget"},
		{"register recursion", "function down(n) {\n  return down(n + 1) + 1;\n}\nexport default function (g) {\n  down(0);\n}\n", 2, "call stack"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "gateway.mjs")
			if err := os.WriteFile(path, []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			ex, err := jsruntime.Load(jsruntime.Options{ModulePath: path, Workers: 1, Logger: testLogger(), TurnBudget: 200 * time.Millisecond})
			if err == nil {
				ex.Close()
				t.Fatal("module loaded; want a load error")
			}
			var le *jsruntime.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %T %v is not a *LoadError", err, err)
			}
			if !strings.HasSuffix(le.File, "gateway.mjs") || le.Line != tc.line {
				t.Fatalf("location %s:%d, want gateway.mjs:%d (%v)", le.File, le.Line, tc.line, err)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("message %q lacks %q", err.Error(), tc.contains)
			}
		})
	}
}

func TestMissingModuleStartsWithNoWorkflows(t *testing.T) {
	ex, err := jsruntime.Load(jsruntime.Options{ModulePath: filepath.Join(t.TempDir(), "absent.mjs"), Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	if n := len(ex.Workflows()); n != 0 {
		t.Fatalf("%d workflows", n)
	}
}

func TestRegisterOptionsAndTypeScript(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "lib.ts"), []byte("export const name: string = \"typed\";\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := `import { name } from "./lib";
export async function register(gateway: any) {
  await Promise.resolve();
  gateway.register(name, async (ctx: any) => 1, { readableName: "Typed", description: "d", schedule: "0 8 * * 1-5",
    maxConcurrency: 2, timeoutMs: 1000, env: ["HOME"], versionPolicy: "strict",
    webhook: { secret: "s", signal: { name: "push", correlationIdPath: "a.b" }, run: { enabled: false } } });
}`
	path := filepath.Join(dir, "gateway.ts")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	ex, err := jsruntime.Load(jsruntime.Options{ModulePath: path, Workers: 2, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	wfs := ex.Workflows()
	if len(wfs) != 1 {
		t.Fatalf("workflows %v", wfs)
	}
	wf := wfs[0]
	if wf.Key != "typed" || wf.ReadableName != "Typed" || wf.Schedule != "0 8 * * 1-5" || wf.MaxConcurrency != 2 || wf.TimeoutMs != 1000 ||
		wf.VersionPolicy != "strict" || wf.Webhook == nil || wf.Webhook.Signal.Name != "push" || *wf.Webhook.Run.Enabled {
		t.Fatalf("options %+v", wf)
	}
}

// TestUnknownRegisterOptionWarns: an option gateway.register does not know
// (a typo, most likely) is ignored with one warning naming it.
func TestUnknownRegisterOptionWarns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.mjs")
	src := "export default function (g) {\n  g.register(\"a\", async () => 1, { readableNam: \"A\", timeoutMs: 5 });\n}\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	ex, err := jsruntime.Load(jsruntime.Options{ModulePath: path, Workers: 2, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ex.Close()
	if n := strings.Count(logs.String(), "option=readableNam "); n != 1 {
		t.Fatalf("%d warnings naming readableNam, want 1:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "option=timeoutMs") {
		t.Fatalf("a known option was reported:\n%s", logs.String())
	}
}

// TestWebhookSecretFromTheEnvironment: webhook.secretEnv reads the secret
// from the gateway's environment at start, so it stays out of the module;
// an unset or blank variable, or both forms at once, stop start-up.
func TestWebhookSecretFromTheEnvironment(t *testing.T) {
	env := map[string]string{"GH_SECRET": "s3cret", "BLANK": "  "}
	load := func(opts string) (*jsruntime.Executor, error) {
		path := filepath.Join(t.TempDir(), "gateway.mjs")
		src := "export default function (g) {\n  g.register(\"ci\", async () => 1, { webhook: " + opts + " });\n}\n"
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return jsruntime.Load(jsruntime.Options{ModulePath: path, Logger: testLogger(),
			LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	}
	ex, err := load(`{ secretEnv: "GH_SECRET", signal: { name: "push" } }`)
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	if wf := ex.Workflows()[0]; wf.Webhook == nil || wf.Webhook.Secret != "s3cret" {
		t.Fatalf("webhook %+v, want the secret read from GH_SECRET", wf.Webhook)
	}
	for opts, want := range map[string]string{
		`{ secretEnv: "NOPE", signal: { name: "push" } }`:                   "NOPE, which is not set",
		`{ secretEnv: "BLANK", signal: { name: "push" } }`:                  "BLANK, which is not set",
		`{ secret: "x", secretEnv: "GH_SECRET", signal: { name: "push" } }`: "both set",
	} {
		if _, err := load(opts); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("webhook %s: %v, want an error saying %q", opts, err, want)
		}
	}
}
