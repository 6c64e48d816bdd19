package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sideEffectModule records each task's effect as a line in ctx.input.file,
// around an approval.
const sideEffectModule = `
export default function register(gateway) {
  gateway.register("side-effects", async (ctx) => {
    const file = ctx.input.file;
    const draft = await ctx.task("draft", async (t) => {
      await t.exec("sh", ["-c", 'echo draft >> "$1"', "sh", file]);
      return { text: "draft of " + ctx.input.name };
    });
    const decision = await ctx.approval("ship", { request: { title: "Ship " + draft.text + "?" } });
    const published = await ctx.task("publish", async (t) => {
      await t.exec("sh", ["-c", 'echo publish >> "$1"', "sh", file]);
      return { by: decision.decidedBy, key: t.idempotencyKey };
    });
    return { draft: draft.text, approved: decision.approved, published };
  });
}
`

// TestKillDuringApprovalWait SIGKILLs the gateway while a run waits for an
// approval: after a restart the approval is still pending, approving it
// finishes the run, and no task ran twice.
func TestKillDuringApprovalWait(t *testing.T) {
	t.Parallel()
	g := startGateway(t, writeModule(t, sideEffectModule))
	file := filepath.Join(t.TempDir(), "effects")

	runID := g.launch("side-effects", map[string]any{"file": file, "name": "e2e"})
	g.waitStatus(runID, "waiting-approval")
	if n := countLines(t, file, "draft"); n != 1 {
		t.Fatalf("draft ran %d times before the kill, want 1", n)
	}

	g.kill9()
	g.restart()

	g.waitStatus(runID, "waiting-approval")
	listed := false
	for _, a := range g.listApprovals() {
		listed = listed || (a.RunID == runID && a.NodeID == "ship")
	}
	if !listed {
		t.Fatalf("after the restart listApprovals does not list run %s node ship: %+v", runID, g.listApprovals())
	}
	g.approve(runID, "ship")
	r := g.waitStatus(runID, "finished")
	assertJSON(t, "output", r.Output,
		`{"draft":"draft of e2e","approved":true,"published":{"by":"`+approverID+`","key":"`+runID+`:publish:0"}}`)
	if n := countLines(t, file, "draft"); n != 1 {
		t.Errorf("draft ran %d times, want exactly 1 (a finished task is never re-run)", n)
	}
	if n := countLines(t, file, "publish"); n != 1 {
		t.Errorf("publish ran %d times, want exactly 1", n)
	}
}

// blockingModule: "before" finishes, then "work" records its start and the
// pid of its shell, blocks until the gate file exists, and records its end.
// A shell also gives up when the test's temp dir is gone, so that no test
// leaves a polling shell behind.
const blockingModule = `
export default function register(gateway) {
  gateway.register("blocking", async (ctx) => {
    const { file, gate, pids } = ctx.input;
    const before = await ctx.task("before", async (t) => {
      await t.exec("sh", ["-c", 'echo before >> "$1"', "sh", file]);
      return "done";
    });
    const work = await ctx.task("work", async (t) => {
      await t.exec("sh", ["-c",
        'echo start >> "$1"; echo $$ >> "$3"; while [ ! -f "$2" ]; do [ -d "${2%/*}" ] || exit 1; sleep 0.05; done',
        "sh", file, gate, pids]);
      await t.exec("sh", ["-c", 'echo end >> "$1"', "sh", file]);
      return { before, key: t.idempotencyKey };
    });
    return { work, finished: true };
  });
}
`

// TestKillWhileTaskRuns SIGKILLs the gateway while a task body is blocked
// in a child process: after a restart the run resumes and re-runs the
// interrupted task (at least once), never the finished one, and the
// orphaned child's process group is killed.
func TestKillWhileTaskRuns(t *testing.T) {
	t.Parallel()
	g := startGateway(t, writeModule(t, blockingModule))
	dir := t.TempDir()
	file, gate, pids := filepath.Join(dir, "effects"), filepath.Join(dir, "gate"), filepath.Join(dir, "pids")
	t.Cleanup(func() { openGate(t, gate) }) // whatever happened, no shell keeps polling

	runID := g.launch("blocking", map[string]any{"file": file, "gate": gate, "pids": pids})
	var orphan int
	eventually(t, runTimeout, "the work task to start its shell", func() bool {
		orphan = firstPID(t, pids)
		return orphan > 0 && countLines(t, file, "start") == 1
	})
	if !processAlive(orphan) {
		t.Fatalf("the task's shell (pid %d) is not running before the kill", orphan)
	}

	g.kill9()
	g.restart()

	eventually(t, 5*time.Second, "the killed gateway's shell (pid "+strconv.Itoa(orphan)+") to be killed at start-up", func() bool {
		return !processAlive(orphan)
	})
	eventually(t, runTimeout, "the interrupted task to run again", func() bool {
		return countLines(t, file, "start") == 2
	})
	if s := g.getRun(runID).Status; s != "running" {
		t.Fatalf("resumed run is %s while its task is blocked, want running", s)
	}
	openGate(t, gate)
	r := g.waitStatus(runID, "finished")
	assertJSON(t, "output", r.Output, `{"work":{"before":"done","key":"`+runID+`:work:0"},"finished":true}`)
	for word, want := range map[string]int{"before": 1, "start": 2, "end": 1} {
		if n := countLines(t, file, word); n != want {
			t.Errorf("%q recorded %d times, want %d", word, n, want)
		}
	}
}

// openGate creates the gate file that releases the blocked shells.
func openGate(t *testing.T, gate string) {
	t.Helper()
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Error(err)
	}
}

// firstPID reads the first pid recorded in path (0 if none yet).
func firstPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	line, _, complete := strings.Cut(string(b), "\n")
	if !complete {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// processAlive reports whether pid exists and is not a zombie (a killed
// orphan may stay a zombie when PID 1 does not reap).
func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	state := s[i+2]
	return state != 'Z' && state != 'X'
}

// TestTimerFiresAfterRestart parks examples/timer in waiting-timer, kills
// the gateway, lets the timer fall due while it is down, and restarts: the
// timer fires late rather than never.
func TestTimerFiresAfterRestart(t *testing.T) {
	t.Parallel()
	g := startGateway(t, exampleModule("timer"))
	const delayMs = 1500

	runID := g.launch("reminder", map[string]any{"delayMs": delayMs, "message": "stand up"})
	g.waitStatus(runID, "waiting-timer")
	// The sleep started before waiting-timer was observed, so it is due by
	// now+delay.
	due := time.Now().Add(delayMs * time.Millisecond)
	g.kill9()
	time.Sleep(time.Until(due) + 100*time.Millisecond) // not synchronisation: the timer must fall due while down
	g.restart()

	r := g.waitStatus(runID, "finished")
	var out struct {
		Message  string  `json:"message"`
		DelayMs  float64 `json:"delayMs"`
		WaitedMs float64 `json:"waitedMs"`
	}
	if err := json.Unmarshal(r.Output, &out); err != nil || out.Message != "stand up" || out.DelayMs != delayMs || out.WaitedMs < delayMs {
		t.Fatalf("output %s: want the message and a measured wait of at least %d ms", r.Output, delayMs)
	}
	if r.FinishedAtMs == nil || *r.FinishedAtMs-r.CreatedAtMs < delayMs {
		t.Errorf("run finished at %v, created at %d: less than the %d ms timer", r.FinishedAtMs, r.CreatedAtMs, delayMs)
	}
}

// TestSigtermKeepsWaitingRun: SIGTERM (docker stop, systemd) and SIGINT
// (Ctrl-C) end the gateway with status 0, and a run parked on an approval
// is still there after a restart and can be approved.
func TestSigtermKeepsWaitingRun(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			stopKeepsWaitingRun(t, sig)
		})
	}
}

func stopKeepsWaitingRun(t *testing.T, sig syscall.Signal) {
	g := startGateway(t, exampleModule("quickstart"))

	runID := g.launch("quickstart", map[string]any{"name": "term"})
	g.waitStatus(runID, "waiting-approval")

	start := time.Now()
	if code := g.stopWith(sig); code != 0 {
		t.Fatalf("gateway exited %d on %v, want 0", code, sig)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gateway took %v to exit on %v", d, sig)
	}

	g.restart()
	if s := g.getRun(runID).Status; s != "waiting-approval" {
		t.Fatalf("after a graceful restart the run is %s, want waiting-approval", s)
	}
	g.approve(runID, "ship")
	r := g.waitStatus(runID, "finished")
	assertJSON(t, "output", r.Output,
		`{"shipped":true,"greeting":"Hello, term!","publishedBy":"`+approverID+`","key":"`+runID+`:publish:0"}`)
}

// TestSigtermDuringTask: SIGTERM while a task body is blocked in a child
// process still exits 0 within a few seconds, kills the child's process
// group (gateway exit), and the run resumes after a restart.
func TestSigtermDuringTask(t *testing.T) {
	t.Parallel()
	g := startGateway(t, writeModule(t, blockingModule))
	dir := t.TempDir()
	file, gate, pids := filepath.Join(dir, "effects"), filepath.Join(dir, "gate"), filepath.Join(dir, "pids")
	t.Cleanup(func() { openGate(t, gate) })

	runID := g.launch("blocking", map[string]any{"file": file, "gate": gate, "pids": pids})
	var child int
	eventually(t, runTimeout, "the work task to start its shell", func() bool {
		child = firstPID(t, pids)
		return child > 0
	})

	start := time.Now()
	if code := g.terminate(); code != 0 {
		t.Fatalf("gateway exited %d on SIGTERM during a task, want 0", code)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gateway took %v to exit on SIGTERM during a task", d)
	}
	eventually(t, 2*time.Second, "the task's shell to be killed with the gateway", func() bool {
		return !processAlive(child)
	})

	g.restart()
	eventually(t, runTimeout, "the interrupted task to run again", func() bool {
		return countLines(t, file, "start") == 2
	})
	openGate(t, gate)
	r := g.waitStatus(runID, "finished")
	assertJSON(t, "output", r.Output, `{"work":{"before":"done","key":"`+runID+`:work:0"},"finished":true}`)
	for word, want := range map[string]int{"before": 1, "start": 2, "end": 1} {
		if n := countLines(t, file, word); n != want {
			t.Errorf("%q recorded %d times, want %d", word, n, want)
		}
	}
}
