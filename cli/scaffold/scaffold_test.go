package scaffold

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/types"
)

func TestWriteJavaScriptProject(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "project")
	res, err := Write(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"gateway.mjs", "types/smithers-orchestrator.d.ts", "jsconfig.json"}
	if len(res.Written) != len(want) || len(res.Unchanged) != 0 {
		t.Fatalf("written %v, unchanged %v; want %v", res.Written, res.Unchanged, want)
	}
	for i, rel := range want {
		path := filepath.Join(dir, filepath.FromSlash(rel))
		if res.Written[i] != path {
			t.Errorf("written[%d] = %s, want %s", i, res.Written[i], path)
		}
		if _, err := os.Stat(path); err != nil {
			t.Errorf("%s: %v", rel, err)
		}
	}
	dts, _ := os.ReadFile(filepath.Join(dir, "types", "smithers-orchestrator.d.ts"))
	if string(dts) != types.Declarations {
		t.Error("types/smithers-orchestrator.d.ts differs from the embedded declarations")
	}
	mod, _ := os.ReadFile(filepath.Join(dir, "gateway.mjs"))
	for _, s := range []string{"// @ts-check", `import("smithers-orchestrator").Gateway`, "ctx.task(", "ctx.approval("} {
		if !strings.Contains(string(mod), s) {
			t.Errorf("gateway.mjs lacks %q", s)
		}
	}
	if got := ModuleFile(Options{Dir: dir}); got != filepath.Join(dir, "gateway.mjs") {
		t.Errorf("ModuleFile = %s", got)
	}
}

func TestWriteTypeScriptProject(t *testing.T) {
	dir := t.TempDir()
	res, err := Write(Options{Dir: dir, TypeScript: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"gateway.ts", "types/smithers-orchestrator.d.ts", "tsconfig.json"} {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(rel))); err != nil {
			t.Errorf("%s: %v", rel, err)
		}
	}
	for _, rel := range []string{"gateway.mjs", "jsconfig.json"} {
		if _, err := os.Stat(filepath.Join(dir, rel)); err == nil {
			t.Errorf("--ts wrote %s too", rel)
		}
	}
	if len(res.Written) != 3 {
		t.Errorf("written %v", res.Written)
	}
}

// TestWriteRefusesToOverwrite: a file with other content stops the whole
// init before anything is written; the same content is no conflict; Force
// overwrites.
func TestWriteRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	mine := filepath.Join(dir, "gateway.mjs")
	if err := os.WriteFile(mine, []byte("// my module\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Write(Options{Dir: dir})
	var ee *ExistsError
	if !errors.As(err, &ee) || len(ee.Paths) != 1 || ee.Paths[0] != mine || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("err = %v; want an *ExistsError naming %s and --force", err, mine)
	}
	if b, _ := os.ReadFile(mine); string(b) != "// my module\n" {
		t.Fatal("the existing module was changed")
	}
	for _, rel := range []string{"jsconfig.json", "types"} {
		if _, err := os.Stat(filepath.Join(dir, rel)); err == nil {
			t.Errorf("a refused init wrote %s", rel)
		}
	}

	if _, err := Write(Options{Dir: dir, Force: true}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(mine); string(b) == "// my module\n" {
		t.Fatal("--force did not overwrite the module")
	}
	res, err := Write(Options{Dir: dir})
	if err != nil {
		t.Fatalf("init over its own files: %v", err)
	}
	if len(res.Written) != 0 || len(res.Unchanged) != 3 {
		t.Fatalf("init over its own files: written %v, unchanged %v; want all 3 unchanged", res.Written, res.Unchanged)
	}
}
