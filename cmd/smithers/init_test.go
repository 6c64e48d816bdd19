package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/jsruntime"
)

func runInitCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(append([]string{"init"}, args...), func(string) string { return "" }, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestInitWritesAStarterThatLoads: `smithers init` writes the module, the
// declarations and the editor config, says what to run next, and the
// module it wrote registers its workflow in the real runtime.
func TestInitWritesAStarterThatLoads(t *testing.T) {
	for _, tc := range []struct {
		name   string
		flags  []string
		module string
		config string
	}{
		{"javascript", nil, "gateway.mjs", "jsconfig.json"},
		{"typescript", []string{"--ts"}, "gateway.ts", "tsconfig.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "wf")
			code, out, errOut := runInitCmd(t, append([]string{dir}, tc.flags...)...)
			if code != 0 {
				t.Fatalf("init exited %d: %s", code, errOut)
			}
			module := filepath.Join(dir, tc.module)
			for _, p := range []string{module, filepath.Join(dir, "types", "smithers-orchestrator.d.ts"), filepath.Join(dir, tc.config)} {
				if _, err := os.Stat(p); err != nil {
					t.Errorf("%s was not written: %v", p, err)
				}
				if !strings.Contains(out, "wrote "+p) {
					t.Errorf("output does not say it wrote %s:\n%s", p, out)
				}
			}
			if !strings.Contains(out, "smithers dev --module "+module) {
				t.Errorf("output does not give the next command `smithers dev --module %s`:\n%s", module, out)
			}

			ex, err := jsruntime.Load(jsruntime.Options{ModulePath: module, Workers: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatalf("the starter module does not load: %v", err)
			}
			defer ex.Close()
			wfs := ex.Workflows()
			if len(wfs) != 1 || wfs[0].Key != "hello" {
				t.Fatalf("the starter module registers %+v, want the workflow hello", wfs)
			}
		})
	}
}

// TestInitRefusesToOverwrite: an existing module is kept and init exits 1
// naming it, unless --force.
func TestInitRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	module := filepath.Join(dir, "gateway.mjs")
	if err := os.WriteFile(module, []byte("// mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runInitCmd(t, dir)
	if code != 1 || !strings.Contains(errOut, module) || !strings.Contains(errOut, "--force") {
		t.Fatalf("init over an existing module: exit %d, stderr %q; want 1 naming %s and --force", code, errOut, module)
	}
	if b, _ := os.ReadFile(module); string(b) != "// mine\n" {
		t.Fatal("the existing module was overwritten")
	}
	if code, _, errOut := runInitCmd(t, "--force", dir); code != 0 {
		t.Fatalf("init --force exited %d: %s", code, errOut)
	}
	if b, _ := os.ReadFile(module); string(b) == "// mine\n" {
		t.Fatal("init --force kept the old module")
	}
}

func TestInitUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"a", "b"}, {"--no-such-flag"}} {
		if code, _, _ := runInitCmd(t, args...); code != 2 {
			t.Errorf("init %q exited %d, want 2", args, code)
		}
	}
}
