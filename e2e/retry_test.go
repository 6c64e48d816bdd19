package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// retryModule's first task records each time its body runs; its second
// task fails until a flag file exists.
const retryModule = `
export default function register(gateway) {
  gateway.register("deploy", async (ctx) => {
    const build = await ctx.task("build", async (t) => {
      await t.exec("sh", ["-c", 'echo build >> "$1"', "sh", ctx.input.log]);
      return { artifact: "app-1.tgz" };
    });
    const shipped = await ctx.task("ship", async (t) => {
      const r = await t.exec("sh", ["-c", '[ -f "$1" ] && echo ok', "sh", ctx.input.flag], { allowFailure: true });
      if (r.code !== 0) throw new Error("target down");
      return true;
    }, { retries: 0 });
    return { artifact: build.artifact, shipped };
  });
}
`

// TestRetryFailedRunFromTheFailedStep fails a run in its second task, fixes
// the cause, and retries it with resumeRun's retryFailed option: the run
// finishes, and the first task is not run again.
func TestRetryFailedRunFromTheFailedStep(t *testing.T) {
	t.Parallel()
	g := startGateway(t, writeModule(t, retryModule))
	dir := t.TempDir()
	log, flag := filepath.Join(dir, "bodies.log"), filepath.Join(dir, "target-up")
	runID := g.launch("deploy", map[string]any{"log": log, "flag": flag})
	g.waitStatus(runID, "failed")

	var plain struct {
		Status string `json:"status"`
	}
	decode(t, g.rpc("resumeRun", map[string]any{"runId": runID}), &plain)
	if plain.Status != "already_terminal" {
		t.Fatalf("resumeRun without retryFailed answered %q, want already_terminal", plain.Status)
	}

	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var retried struct {
		Status string `json:"status"`
	}
	decode(t, g.rpc("resumeRun", map[string]any{"runId": runID, "options": map[string]any{"retryFailed": true}}), &retried)
	if retried.Status != "resume_requested" {
		t.Fatalf("resumeRun with retryFailed answered %q", retried.Status)
	}
	r := g.waitStatus(runID, "finished")
	assertJSON(t, "output", r.Output, `{"artifact":"app-1.tgz","shipped":true}`)
	if r.ErrorJSON != nil {
		t.Errorf("errorJson after the retry = %s, want null", *r.ErrorJSON)
	}
	b, _ := os.ReadFile(log)
	if n := strings.Count(string(b), "build"); n != 1 {
		t.Errorf("the first task ran %d times, want once", n)
	}
}
