package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// followTimeout bounds how long `smithers runs follow` may take to exit
// after the run it follows completed.
const followTimeout = 15 * time.Second

// cli runs `smithers runs args...` against g (with --url and --token) in a
// fresh directory, and returns its exit status and output.
func (g *Gateway) cli(args ...string) (code int, stdout, stderr string) {
	g.t.Helper()
	dir := g.t.TempDir()
	return runToExit(g.t, dir, baseEnv(dir), append(append([]string{"runs"}, args...), "--url", g.URL, "--token", g.Token)...)
}

// cliOK is cli that fails the test unless the command exited 0.
func (g *Gateway) cliOK(args ...string) string {
	g.t.Helper()
	code, out, errOut := g.cli(args...)
	if code != 0 {
		g.t.Fatalf("smithers runs %s exited %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// hasRow reports whether text has a line with all the words, in order.
func hasRow(text string, words ...string) bool {
	for _, line := range strings.Split(text, "\n") {
		rest, ok := line, true
		for _, w := range words {
			i := strings.Index(rest, w)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(w):]
		}
		if ok {
			return true
		}
	}
	return false
}

// TestRunsCLIQuickstart walks the quickstart from a terminal: launch, list,
// show, approve, while `runs follow` prints the events live and exits when
// the run completes; --json output parses.
func TestRunsCLIQuickstart(t *testing.T) {
	t.Parallel()
	g := startGateway(t, exampleModule("quickstart"))

	out := g.cliOK("launch", "quickstart", `{"name":"cli"}`)
	runID := strings.TrimSpace(out)
	if !regexp.MustCompile(`^[a-z0-9_-]{1,64}$`).MatchString(runID) {
		t.Fatalf("runs launch printed %q, want the run id alone", out)
	}

	// follow from the start, in the background, until the run completes.
	followDir := t.TempDir()
	follow, err := spawn(followDir, baseEnv(followDir), "runs", "follow", runID, "--url", g.URL, "--token", g.Token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(follow.kill)
	if _, ok := follow.stdout.waitLine(followTimeout, follow.done, func(l string) bool { return hasRow(l, "node.waiting_approval", "ship") }); !ok {
		t.Fatalf("runs follow did not print node.waiting_approval for ship\nstdout:\n%s\nstderr:\n%s", follow.stdout.String(), follow.stderr.String())
	}
	g.waitStatus(runID, "waiting-approval")

	out = g.cliOK("list")
	if !hasRow(out, runID, "quickstart", "waiting-approval") {
		t.Fatalf("runs list does not show the run waiting:\n%s", out)
	}
	out = g.cliOK("list", "--status", "finished", "--workflow", "quickstart")
	if strings.Contains(out, runID) {
		t.Fatalf("runs list --status finished shows the waiting run:\n%s", out)
	}
	var rows []struct {
		RunID  string `json:"runId"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(g.cliOK("list", "--json", "--workflow", "quickstart")), &rows); err != nil || len(rows) != 1 || rows[0].RunID != runID {
		t.Fatalf("runs list --json = %+v (%v), want the one run", rows, err)
	}

	out = g.cliOK("show", runID)
	for _, row := range [][]string{
		{"Status:", "waiting-approval"},
		{"draft", "task", "finished", "1"},
		{"ship", "approval", "waiting-approval", `asks: Ship "Hello, cli!"?`},
		{"draft", "1", "finished"},
	} {
		if !hasRow(out, row...) {
			t.Errorf("runs show lacks a row with %q:\n%s", row, out)
		}
	}

	out = g.cliOK("approve", runID, "ship", "--note", "ship it")
	if !strings.Contains(out, "approved ship of run "+runID) {
		t.Fatalf("runs approve printed %q", out)
	}
	select {
	case <-follow.done:
	case <-time.After(followTimeout):
		t.Fatalf("runs follow did not exit within %v of the run's completion\nstdout:\n%s", followTimeout, follow.stdout.String())
	}
	if code := follow.exitCode(); code != 0 {
		t.Fatalf("runs follow exited %d\nstderr:\n%s", code, follow.stderr.String())
	}
	lines := follow.stdout.Lines()
	if len(lines) == 0 || !hasRow(lines[len(lines)-1], "run.completed", "finished") {
		t.Fatalf("runs follow's last line is not run.completed finished:\n%s", follow.stdout.String())
	}
	for _, row := range [][]string{{"#1", "node.pending", "draft"}, {"node.started", "draft", "in-progress"}, {"task.output", "publish", "stdout: publishing Hello, cli!"}, {"approval.decided", "ship", "approved"}} {
		if !hasRow(follow.stdout.String(), row...) {
			t.Errorf("runs follow printed no line with %q:\n%s", row, follow.stdout.String())
		}
	}

	out = g.cliOK("show", runID)
	if !hasRow(out, "Status:", "finished") || !hasRow(out, "ship", "approval", "finished", "approved") || !strings.Contains(out, `"shipped": true`) {
		t.Fatalf("runs show of the finished run lacks its status, decision or output:\n%s", out)
	}
	var shown struct {
		Run struct {
			Status string          `json:"status"`
			Output json.RawMessage `json:"output"`
		} `json:"run"`
		Nodes []struct {
			NodeID string `json:"nodeId"`
			State  string `json:"state"`
		} `json:"nodes"`
		Attempts []struct {
			NodeID string `json:"nodeId"`
		} `json:"attempts"`
	}
	if err := json.Unmarshal([]byte(g.cliOK("show", runID, "--json")), &shown); err != nil {
		t.Fatalf("runs show --json: %v", err)
	}
	if shown.Run.Status != "finished" || len(shown.Nodes) != 3 || len(shown.Attempts) != 2 {
		t.Fatalf("runs show --json = %+v, want the finished run with 3 nodes and 2 attempts", shown)
	}
	assertJSON(t, "output", shown.Run.Output, `{"shipped":true,"greeting":"Hello, cli!","publishedBy":"`+approverID+`","key":"`+runID+`:publish:0"}`)

	// Following a completed run prints its history and exits; --json
	// prints one event object per line.
	out = g.cliOK("follow", runID, "--json")
	jsonLines := strings.Split(strings.TrimSpace(out), "\n")
	var last struct {
		Event   string `json:"event"`
		Seq     int64  `json:"seq"`
		Payload struct {
			Status string `json:"status"`
		} `json:"payload"`
	}
	for i, l := range jsonLines {
		if err := json.Unmarshal([]byte(l), &last); err != nil || last.Seq != int64(i+1) {
			t.Fatalf("runs follow --json line %d %q: %v, want the event of seq %d", i, l, err, i+1)
		}
	}
	if last.Event != "run.completed" || last.Payload.Status != "finished" {
		t.Fatalf("runs follow --json ends with %+v, want run.completed finished", last)
	}
}

// flakyModule fails its task's first attempt, then waits for a signal.
const flakyModule = `
export default function register(gateway) {
  gateway.register("flaky", async (ctx) => {
    const r = await ctx.task("fetch", async (t) => {
      if (t.attempt === 1) throw new Error("flaky upstream");
      return { attempt: t.attempt };
    }, { backoffMs: 1 });
    const go = await ctx.signal("go", { correlationId: ctx.input.key });
    return { attempt: r.attempt, go };
  });
}
`

// TestRunsCLISignalCancelResume: runs show lists a failed attempt with its
// error and the waiting signal; runs signal wakes the run; runs cancel
// cancels a waiting one; runs resume reports a finished run as terminal.
func TestRunsCLISignalCancelResume(t *testing.T) {
	t.Parallel()
	g := startGateway(t, writeModule(t, flakyModule))

	runID := strings.TrimSpace(g.cliOK("launch", "flaky", `{"key":"k1"}`))
	g.waitStatus(runID, "waiting-event")
	out := g.cliOK("show", runID)
	for _, row := range [][]string{
		{"fetch", "task", "finished", "2"},
		{"go", "event", "waiting-event"},
		{"fetch", "1", "failed", "flaky upstream"},
		{"fetch", "2", "finished"},
	} {
		if !hasRow(out, row...) {
			t.Errorf("runs show lacks a row with %q:\n%s", row, out)
		}
	}

	out = g.cliOK("signal", runID, "go", `{"x":1}`, "--correlation-id", "k1")
	if !strings.Contains(out, "sent signal go to run "+runID) {
		t.Fatalf("runs signal printed %q", out)
	}
	r := g.waitStatus(runID, "finished")
	assertJSON(t, "output", r.Output, `{"attempt":2,"go":{"x":1}}`)
	if out := g.cliOK("resume", runID); !strings.Contains(out, "already_terminal") {
		t.Fatalf("runs resume of a finished run printed %q, want already_terminal", out)
	}

	other := strings.TrimSpace(g.cliOK("launch", "flaky", `{"key":"k2"}`))
	g.waitStatus(other, "waiting-event")
	if out := g.cliOK("cancel", other); !strings.Contains(out, "cancelling run "+other) {
		t.Fatalf("runs cancel printed %q", out)
	}
	g.waitStatus(other, "cancelled")
}

// TestRunsCLIErrorsAndDefaults: usage mistakes exit 2, errors the gateway
// answers exit 1 with their code, and without --url and --token the CLI
// uses SMITHERS_URL and the dev token file of its directory.
func TestRunsCLIErrorsAndDefaults(t *testing.T) {
	t.Parallel()
	g := startGateway(t, exampleModule("quickstart"))
	dir := t.TempDir()
	for _, args := range [][]string{
		{"runs"},
		{"runs", "nope"},
		{"runs", "show"},
		{"runs", "show", "a", "b"},
		{"runs", "list", "--no-such-flag"},
		{"runs", "launch", "quickstart", "not json"},
		{"runs", "launch", "quickstart", "[1]"},
		{"runs", "approve", "r1", "ship", "--decision", "[]"},
	} {
		code, _, errOut := runToExit(t, dir, baseEnv(dir), args...)
		if code != 2 || errOut == "" {
			t.Errorf("smithers %s exited %d with stderr %q, want 2 and a message", strings.Join(args, " "), code, errOut)
		}
	}

	code, _, errOut := g.cli("show", "no-such-run")
	if code != 1 || !strings.Contains(errOut, "NOT_FOUND") {
		t.Errorf("runs show of an unknown run exited %d, stderr %q; want 1 with NOT_FOUND", code, errOut)
	}
	code, _, errOut = runToExit(t, dir, baseEnv(dir), "runs", "list", "--url", g.URL, "--token", "smithers_wrong")
	if code != 1 || !strings.Contains(errOut, "UNAUTHORIZED") || !strings.Contains(errOut, "--token") {
		t.Errorf("runs list with a bad token exited %d, stderr %q; want 1 with UNAUTHORIZED naming --token", code, errOut)
	}

	runID := g.launch("quickstart", map[string]any{"name": "defaults"})
	if err := os.MkdirAll(filepath.Join(dir, ".smithers"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".smithers", "dev-token"), []byte(g.Token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runToExit(t, dir, append(baseEnv(dir), "SMITHERS_URL="+g.URL), "runs", "list")
	if code != 0 || !strings.Contains(out, runID) {
		t.Fatalf("runs list with SMITHERS_URL and .smithers/dev-token exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	other := t.TempDir()
	code, out, errOut = runToExit(t, other, append(baseEnv(other), "SMITHERS_URL="+g.URL, "SMITHERS_TOKEN="+g.Token), "runs", "show", runID)
	if code != 0 || !strings.Contains(out, runID) {
		t.Fatalf("runs show with SMITHERS_URL and SMITHERS_TOKEN exited %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}
