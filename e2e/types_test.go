package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// typescriptPackage is the package.json of the TypeScript compiler the
// declarations are checked with (the cache of npmInstall is keyed by it).
const typescriptPackage = `{"private": true, "dependencies": {"typescript": "5.9.3"}}`

// tscTimeout bounds one tsc run.
const tscTimeout = 2 * time.Minute

var (
	tscOnce sync.Once
	tscDir  string
	tscErr  error
)

// prepareTSC returns the node binary and the path of tsc, installed once
// per test binary run (cached across runs). Without node or npm, or when
// npm cannot reach the registry, the test is skipped with one line saying
// what it needs, except with CI=true, where it fails.
func prepareTSC(t *testing.T) (node, tsc string) {
	t.Helper()
	const install = "install Node.js 20+ and npm (Debian: apt-get install nodejs npm) to type-check the workflow module declarations"
	node = needTool(t, "node", install)
	npm := needTool(t, "npm", install)
	tscOnce.Do(func() {
		tscDir, tscErr = npmInstall(npm, "typescript", []byte(typescriptPackage), "node_modules/typescript/bin/tsc")
	})
	if tscErr != nil {
		msg := "npm could not install typescript (is the npm registry reachable?): " + npmFailure(tscErr)
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: required)\n%v", msg, tscErr)
		}
		t.Skip(msg)
	}
	return node, filepath.Join(tscDir, "node_modules", "typescript", "bin", "tsc")
}

// npmFailure says in one line why npmInstall failed: its first line and
// npm's error code line ("npm error code ENOTFOUND"), when there is one.
func npmFailure(err error) string {
	lines := strings.Split(err.Error(), "\n")
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "npm error code ") || strings.HasPrefix(l, "npm ERR! code ") {
			return lines[0] + " (" + l + ")"
		}
	}
	return lines[0]
}

// runTSC runs `tsc -p project` and returns its exit status and output.
func runTSC(t *testing.T, node, tsc, project string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), tscTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, tsc, "-p", project, "--pretty", "false")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("tsc -p %s did not finish within %v:\n%s", project, tscTimeout, out)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("tsc -p %s: %v\n%s", project, err, out)
	}
	return 0, string(out)
}

// checkedCompilerOptions are the options `smithers init` writes into
// jsconfig.json, with which the examples are checked too.
var checkedCompilerOptions = map[string]any{
	"allowJs": true, "checkJs": true, "strict": true, "noEmit": true, "target": "ES2022", "lib": []string{"ES2022"},
	"types": []string{}, "module": "ESNext", "moduleResolution": "Bundler",
}

// TestExamplesTypeCheck type-checks every examples/*/gateway.mjs against
// types/smithers-orchestrator.d.ts with tsc: the examples use the module
// API as declared, and the declarations describe what the examples use.
func TestExamplesTypeCheck(t *testing.T) {
	t.Parallel()
	node, tsc := prepareTSC(t)
	examples, err := filepath.Glob(filepath.Join(moduleRoot, "examples", "*", "gateway.mjs"))
	if err != nil || len(examples) == 0 {
		t.Fatalf("no examples/*/gateway.mjs found (%v)", err)
	}
	for _, ex := range examples {
		src, err := os.ReadFile(ex)
		if err != nil {
			t.Fatal(err)
		}
		// Editors check a file on its own only with this line.
		if !strings.HasPrefix(string(src), "// @ts-check\n") {
			t.Errorf("%s does not start with // @ts-check", ex)
		}
	}
	files := append([]string{filepath.Join(moduleRoot, "types", "smithers-orchestrator.d.ts")}, examples...)
	project := writeJSON(t, filepath.Join(t.TempDir(), "tsconfig.json"), map[string]any{"compilerOptions": checkedCompilerOptions, "files": files})
	if code, out := runTSC(t, node, tsc, project); code != 0 {
		t.Fatalf("tsc found errors in the examples (exit %d):\n%s", code, out)
	}
}

// TestInitOutputTypeChecks runs `smithers init` and `smithers init --ts`
// and type-checks what they wrote with the config they wrote, as VS Code
// would; a mistake in the starter module is then reported, so the check
// is not vacuous.
func TestInitOutputTypeChecks(t *testing.T) {
	t.Parallel()
	node, tsc := prepareTSC(t)
	for _, tc := range []struct {
		name, flag, module, config string
	}{
		{"javascript", "", "gateway.mjs", "jsconfig.json"},
		{"typescript", "--ts", "gateway.ts", "tsconfig.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			work := t.TempDir()
			args := []string{"init", "proj"}
			if tc.flag != "" {
				args = append(args, tc.flag)
			}
			if code, out, errOut := runToExit(t, work, baseEnv(work), args...); code != 0 {
				t.Fatalf("smithers %s exited %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
			}
			dir := filepath.Join(work, "proj")
			project := filepath.Join(dir, tc.config)
			if code, out := runTSC(t, node, tsc, project); code != 0 {
				t.Fatalf("tsc found errors in the output of smithers init %s (exit %d):\n%s", tc.flag, code, out)
			}

			module := filepath.Join(dir, tc.module)
			src, err := os.ReadFile(module)
			if err != nil {
				t.Fatal(err)
			}
			broken := strings.Replace(string(src), "t.emit(", "t.emitt(", 1)
			if broken == string(src) {
				t.Fatalf("%s has no t.emit( call to break", tc.module)
			}
			if err := os.WriteFile(module, []byte(broken), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out := runTSC(t, node, tsc, project)
			if code == 0 || !strings.Contains(out, "emitt") {
				t.Fatalf("tsc accepted t.emitt in %s (exit %d):\n%s", tc.module, code, out)
			}
		})
	}
}

// writeJSON writes v as JSON to path and returns path.
func writeJSON(t *testing.T, path string, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
