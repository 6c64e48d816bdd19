package jsruntime_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/jsruntime"
)

// loadModule loads src as the workflow module and returns the executor's
// workflows, or the load error.
func loadModule(t *testing.T, src string, log *slog.Logger) ([]host.WorkflowDef, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gateway.mjs")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if log == nil {
		log = testLogger()
	}
	ex, err := jsruntime.Load(jsruntime.Options{ModulePath: path, Workers: 2, Logger: log})
	if err != nil {
		return nil, err
	}
	defer ex.Close()
	return ex.Workflows(), nil
}

func TestRegisterConcurrencyOption(t *testing.T) {
	var logs bytes.Buffer
	wfs, err := loadModule(t, `export default function (g) {
  g.register("a", async () => 1, { concurrency: { limit: 2 } });
  g.register("b", async () => 1, { concurrency: { limit: 1, key: "customer.id", limt: 3 } });
}`, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(wfs) != 2 || wfs[0].Concurrency == nil || *wfs[0].Concurrency != (host.ConcurrencyLimit{Limit: 2}) ||
		wfs[1].Concurrency == nil || *wfs[1].Concurrency != (host.ConcurrencyLimit{Limit: 1, Key: "customer.id"}) {
		t.Fatalf("workflows %+v", wfs)
	}
	if n := strings.Count(logs.String(), "option=concurrency.limt "); n != 1 {
		t.Fatalf("%d warnings naming concurrency.limt, want 1:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "option=concurrency ") {
		t.Fatalf("concurrency was reported as unknown:\n%s", logs.String())
	}
}

// TestRegisterConcurrencyMistakes: a concurrency option the gateway cannot
// apply stops start-up at the register call's line.
func TestRegisterConcurrencyMistakes(t *testing.T) {
	for _, tc := range []struct{ opt, contains string }{
		{`5`, `option concurrency must be an object, got number 5`},
		{`{}`, `option concurrency: limit is required`},
		{`{ limit: 0 }`, `option concurrency.limit must be greater than 0`},
		{`{ limit: 1.5 }`, `option concurrency.limit must be a non-negative integer`},
		{`{ limit: -1 }`, `option concurrency.limit must be a non-negative integer`},
		{`{ limit: "2" }`, `option concurrency.limit must be a number, got string "2"`},
		{`{ limit: 2, key: "" }`, `option concurrency.key must be a dotted path into the run input`},
		{`{ limit: 2, key: "a..b" }`, `option concurrency.key must be a dotted path into the run input`},
		{`{ limit: 2, key: 7 }`, `option concurrency.key must be a dotted path into the run input such as "tenant" or "customer.id", got number 7`},
	} {
		t.Run(tc.opt, func(t *testing.T) {
			_, err := loadModule(t, "export default function (g) {\n\n  g.register(\"a\", async () => 1, { concurrency: "+tc.opt+" });\n}\n", nil)
			var le *jsruntime.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %T %v, want a *LoadError", err, err)
			}
			if !strings.HasSuffix(le.File, "gateway.mjs") || le.Line != 3 {
				t.Fatalf("location %s:%d, want gateway.mjs:3 (%v)", le.File, le.Line, err)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("message %q lacks %q", err.Error(), tc.contains)
			}
		})
	}
}
