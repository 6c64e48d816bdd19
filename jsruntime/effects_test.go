package jsruntime_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
)

func TestExecResultFailureAndOutputEvents(t *testing.T) {
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    const ok = await ctx.task("ok", (t) => t.exec("sh", ["-c", "echo out; echo err >&2; echo -n \"$FOO:$SECRET\""], { env: { FOO: "bar" } }));
    const soft = await ctx.task("soft", (t) => t.exec("sh", ["-c", "exit 3"], { allowFailure: true }));
    const input = await ctx.task("input", (t) => t.exec("cat", [], { input: "piped" }));
    let failed;
    try {
      await ctx.task("hard", (t) => t.exec("sh", ["-c", "echo bad >&2; exit 2"]), { retries: 0 });
    } catch (e) { failed = { code: e.code, details: e.details }; }
    let timedOut;
    try {
      await ctx.task("slow", (t) => t.exec("sleep", ["5"], { timeoutMs: 50 }), { retries: 0 });
    } catch (e) { timedOut = e.code; }
    return { ok, soft: soft.code, input: input.stdout, failed, timedOut };
  });
}`)
	t.Setenv("SECRET", "leaked")
	id := h.launch("wf", nil)
	out := h.output(id).(map[string]any)
	ok := out["ok"].(map[string]any)
	if ok["code"] != float64(0) || ok["stdout"] != "out\nbar:" || ok["stderr"] != "err\n" {
		t.Fatalf("exec result %v (the child must get only PATH, HOME and env)", ok)
	}
	if out["soft"] != float64(3) || out["input"] != "piped" || out["timedOut"] != "EXEC_FAILED" {
		t.Fatalf("out %v", out)
	}
	failed := out["failed"].(map[string]any)
	if failed["code"] != "EXEC_FAILED" {
		t.Fatalf("failed %v", failed)
	}
	cause := failed["details"].(map[string]any)["causeDetails"].(map[string]any)
	if cause["code"] != float64(2) || cause["stderr"] != "bad\n" {
		t.Fatalf("EXEC_FAILED details %v", failed)
	}
	var streamed []string
	for _, e := range h.events(id) {
		if e.Name != "task.output" {
			continue
		}
		var p struct{ NodeID, Output, Stream string }
		_ = json.Unmarshal(e.Payload, &p)
		if p.NodeID == "ok" {
			streamed = append(streamed, p.Stream+":"+p.Output)
		}
	}
	joined := strings.Join(streamed, "|")
	if !strings.Contains(joined, "stdout:out\n") || !strings.Contains(joined, "stderr:err\n") {
		t.Fatalf("task.output events %q", joined)
	}
}

// TestExecProcessGroupKilledOnCancel checks that cancelling a run kills the
// whole process group of its t.exec child, grandchildren included.
func TestExecProcessGroupKilledOnCancel(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    await ctx.task("bg", (t) => t.exec("sh", ["-c", "sleep 30 & echo $! > `+pidFile+`; wait"]));
  });
}`)
	id := h.launch("wf", nil)
	var pid int
	eventually(t, "grandchild started", func() bool {
		b, err := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	if err := h.gw.CancelRun(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if r := h.finish(id); r.Status != host.RunCancelled {
		t.Fatalf("status %s", r.Status)
	}
	eventually(t, "grandchild killed", func() bool { return syscall.Kill(pid, 0) != nil || isZombie(pid) })
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && len(b) > i+2 && b[i+2] == 'Z'
}

func TestFetchEnvHeartbeatEmit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Echo", r.Header.Get("X-In"))
		w.WriteHeader(201)
		fmt.Fprintf(w, `{"method":%q,"body":%q}`, r.Method, readAll(r))
	}))
	defer srv.Close()
	h := newHarnessOpts(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    return await ctx.task("call", async (t) => {
      t.heartbeat({ progress: 1 });
      t.emit("working\n");
      t.emit("careful\n", "stderr");
      const res = await t.fetch(ctx.input.url, { method: "POST", headers: { "X-In": "hi" }, body: JSON.stringify({ a: 1 }) });
      const body = await res.json();
      let denied;
      try { t.env("NOT_ALLOWED"); } catch (e) { denied = e.name; }
      return { status: res.status, ok: res.ok, echo: res.headers.get("x-echo"), body, token: t.env("API_TOKEN"), denied, aborted: t.signal.aborted };
    });
  }, { env: ["API_TOKEN"] });
}`, harnessOpts{env: map[string]string{"API_TOKEN": "s3cret", "NOT_ALLOWED": "x"}})
	id := h.launch("wf", map[string]any{"url": srv.URL})
	jsonEqual(t, h.output(id), `{"status":201,"ok":true,"echo":"hi","body":{"method":"POST","body":"{\"a\":1}"},"token":"s3cret","denied":"TypeError","aborted":false}`)
	names := strings.Join(h.eventNames(id), " ")
	if !strings.Contains(names, "task.heartbeat:call") || strings.Count(names, "task.output:call") != 2 {
		t.Fatalf("events %s", names)
	}
}

func readAll(r *http.Request) string {
	b := make([]byte, 1024)
	n, _ := r.Body.Read(b)
	return string(b[:n])
}

// TestFetchNetworkErrorIsTypeError: a network failure rejects t.fetch with
// a TypeError, as in browsers, with the detail in cause and marked
// retryable.
func TestFetchNetworkErrorIsTypeError(t *testing.T) {
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => ctx.task("t", async (t) => {
    try { await t.fetch(ctx.input.url); } catch (e) {
      return [e.name, e instanceof TypeError, e.retryable, e.cause.code, e.message.startsWith("fetch failed: ")];
    }
  }));
}`)
	jsonEqual(t, h.output(h.launch("wf", map[string]any{"url": refusedURL(t)})), `["TypeError",true,true,"ECONNREFUSED",true]`)
}

// refusedURL is an http URL on a loopback port nothing listens on.
func refusedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/"
}

// TestFetchNetworkFailuresAreRetried: a t.fetch that fails on the network
// is retried like any task failure (a refused port with retries: 2 makes 3
// attempts); a request that can never succeed as made, and a TypeError the
// body throws itself, are not.
func TestFetchNetworkFailuresAreRetried(t *testing.T) {
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    await ctx.task("call", async (t) => {
      const res = await t.fetch(ctx.input.url);
      return res.status;
    }, { retries: 2, backoffMs: 1 });
  });
  gateway.register("own", async (ctx) => {
    await ctx.task("call", async (t) => {
      try { await t.fetch(ctx.input.url); } catch (e) { throw new TypeError("bad input"); }
    }, { retries: 2, backoffMs: 1 });
  });
}`)
	for _, tc := range []struct {
		workflow, url string
		attempts      int
		message       string
	}{
		{"wf", refusedURL(t), 3, "TypeError: fetch failed: "},
		{"wf", "ftp://127.0.0.1/x", 1, "unsupported protocol scheme"},
		{"own", refusedURL(t), 1, "TypeError: bad input"},
	} {
		id := h.launch(tc.workflow, map[string]any{"url": tc.url})
		e := h.errorOf(id)
		if e["code"] != "TASK_FAILED" || !strings.Contains(e["message"].(string), tc.message) {
			t.Fatalf("%s %s: error %v, want TASK_FAILED with %q", tc.workflow, tc.url, e, tc.message)
		}
		if n := h.nodes(id)["call"]; n.Attempts != tc.attempts {
			t.Fatalf("%s %s: %d attempts, want %d", tc.workflow, tc.url, n.Attempts, tc.attempts)
		}
	}
}

// TestRunawayTurnIsInterrupted: an infinite loop fails its run with
// JS_INTERRUPTED within the turn budget; other runs on the same worker
// finish, also one that was mid-flight.
func TestRunawayTurnIsInterrupted(t *testing.T) {
	h := newHarnessOpts(t, `
export default function (gateway) {
  gateway.register("spin", async (ctx) => { await ctx.task("t", () => { for (;;) {} }); });
  gateway.register("recurse", async (ctx) => { const f = (n) => f(n + 1) + 1; return f(0); });
  gateway.register("ok", async (ctx) => {
    const a = await ctx.task("a", () => new Promise((res) => setTimeout(() => res(1), 300)));
    await ctx.approval("gate", {});
    return a + 1;
  });
}`, harnessOpts{turnBudget: 200 * time.Millisecond, workers: 1})
	other := h.launch("ok", nil)
	eventually(t, "other run's task started", func() bool { return h.nodes(other)["a"].State == host.NodeInProgress })
	start := time.Now()
	spin := h.launch("spin", nil)
	if e := h.errorOf(spin); e["code"] != "JS_INTERRUPTED" {
		t.Fatalf("spin error %v", e)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("interrupt took %s", d)
	}
	if e := h.errorOf(h.launch("recurse", nil)); e["code"] != "JS_INTERRUPTED" && e["code"] != "WORKFLOW_FAILED" {
		t.Fatalf("recursion error %v", e)
	}
	h.waitStatus(other, host.RunWaitingApproval)
	if err := h.approve(other, "gate", true, nil); err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, h.output(other), `2`)
	// The other run's task body in flight during a rebuild (there may be
	// two: the recursion rebuilds too) was not moved: each such attempt is
	// recorded abandoned and the task ran again.
	attempts, err := h.store.ListAttempts(context.Background(), other, "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	last := len(attempts) - 1
	if last < 1 || attempts[last].State != host.AttemptFinished {
		t.Fatalf("attempts of the other run's task %+v, want abandoned ones then a finished one", attempts)
	}
	for _, at := range attempts[:last] {
		if !strings.Contains(at.ErrorJSON, host.CodeAttemptAbandoned) {
			t.Fatalf("attempt %d of the other run's task: %s, want ATTEMPT_ABANDONED", at.Attempt, at.ErrorJSON)
		}
	}
}

func TestRunTimeout(t *testing.T) {
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => { await ctx.approval("never", {}); }, { timeoutMs: 100 });
}`)
	if e := h.errorOf(h.launch("wf", nil)); e["code"] != "RUN_TIMEOUT" {
		t.Fatalf("error %v", e)
	}
}

func TestMaxConcurrencyBoundsParallelTasks(t *testing.T) {
	h := newHarness(t, `
let running = 0, peak = 0;
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    const body = async () => { running++; peak = Math.max(peak, running); await new Promise((r) => setTimeout(r, 20)); running--; return peak; };
    const all = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => ctx.task("t" + i, body)));
    return Math.max(...all);
  }, { maxConcurrency: 2 });
}`)
	jsonEqual(t, h.output(h.launch("wf", nil)), `2`)
}

func TestVersionPolicyStrictParksUntilForced(t *testing.T) {
	src := func(v string) string {
		return `
export default function (gateway) {
  gateway.register("wf", async (ctx) => { await ctx.approval("gate", {}); return "` + v + `"; }, { versionPolicy: "strict" });
}`
	}
	h := newHarness(t, src("v1"))
	id := h.launch("wf", nil)
	h.waitStatus(id, host.RunWaitingApproval)
	h.src = src("v2")
	h.restart()
	if err := h.approve(id, "gate", true, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "VERSION_MISMATCH recorded", func() bool { return strings.Contains(h.run(id).ErrorJSON, "VERSION_MISMATCH") })
	if st := h.run(id).Status; st.Terminal() {
		t.Fatalf("strict run ran under new code: %s", st)
	}
	// A resume without force is refused with the reason, and the run
	// stays held.
	if _, err := h.gw.ResumeRun(context.Background(), id, false); host.ErrorCode(err) != host.CodeVersionMismatch || !strings.Contains(err.Error(), "options.force") {
		t.Fatalf("resume without force: %v, want VERSION_MISMATCH naming options.force", err)
	}
	if st := h.run(id).Status; st.Terminal() {
		t.Fatalf("a refused resume ran the held run: %s", st)
	}
	if _, err := h.gw.ResumeRun(context.Background(), id, true); err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, h.output(id), `"v2"`)
}

func TestReplayDoesNotRerunFinishedTasks(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "side-effects")
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    await ctx.task("one", (t) => t.exec("sh", ["-c", "echo one >> `+log+`"]));
    await ctx.approval("gate", {});
    await ctx.task("two", (t) => t.exec("sh", ["-c", "echo two >> `+log+`"]));
    return "done";
  });
}`)
	id := h.launch("wf", nil)
	h.waitStatus(id, host.RunWaitingApproval)
	h.restart()
	if err := h.approve(id, "gate", true, nil); err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, h.output(id), `"done"`)
	b, _ := os.ReadFile(log)
	if string(b) != "one\ntwo\n" {
		t.Fatalf("side effects %q, want each task once", b)
	}
	// Replay never re-publishes events of journaled steps.
	seen := map[string]int{}
	for _, n := range h.eventNames(id) {
		seen[n]++
	}
	for n, c := range seen {
		if c > 1 {
			t.Fatalf("event %s published %d times", n, c)
		}
	}
}

// TestHeapWatchdogInterruptsRunawayAllocation: a turn that allocates past
// the heap limit fails its run with JS_INTERRUPTED, long before its turn
// budget, and the gateway keeps running other runs.
func TestHeapWatchdogInterruptsRunawayAllocation(t *testing.T) {
	h := newHarnessOpts(t, `
export default function (gateway) {
  gateway.register("hog", async (ctx) => { const keep = []; for (let i = 0; ; i++) keep.push("x".repeat(1 << 20) + i); });
  gateway.register("ok", async (ctx) => ctx.task("t", () => "fine"));
}`, harnessOpts{turnBudget: 60 * time.Second, maxHeap: currentHeap() + 48<<20})
	id := h.launch("hog", nil)
	e := h.errorOf(id)
	if e["code"] != "JS_INTERRUPTED" || !strings.Contains(e["message"].(string), "heap") {
		t.Fatalf("error %v", e)
	}
	jsonEqual(t, h.output(h.launch("ok", nil)), `"fine"`)
}

// TestHeapWatchdogSparesGarbage: a turn that churns through far more than
// the heap limit in short-lived garbage, with little of it live, is not
// interrupted. A live ballast makes Go let garbage grow past the limit
// before collecting it (the next GC is due at twice the live heap), so the
// heap's sampled figure passes the limit while the live heap stays under.
func TestHeapWatchdogSparesGarbage(t *testing.T) {
	ballast := make([]byte, 64<<20)
	h := newHarnessOpts(t, `
export default function (gateway) {
  gateway.register("churn", async (ctx) => {
    const until = Date.now() + 1500;
    let n = 0;
    while (Date.now() < until) n += ("x".repeat(1 << 20) + n).length;
    return n > 0;
  });
}`, harnessOpts{turnBudget: 60 * time.Second, maxHeap: currentHeap() + 32<<20})
	jsonEqual(t, h.output(h.launch("churn", nil)), `true`)
	runtime.KeepAlive(ballast)
}

// currentHeap is the live heap now, so a test's limit sits just above it.
func currentHeap() int64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// TestChattyChildIsBoundedAndCoalesced: a child writing far more than
// MaxOutputBytes keeps at most that much, streams it as a bounded number of
// coalesced task.output events ending with a truncation marker, and the
// run's own node events survive in its event window.
func TestChattyChildIsBoundedAndCoalesced(t *testing.T) {
	h := newHarnessOpts(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    // The result keeps the last MaxOutputBytes of stdout, after a note:
    // more than a task may return, so the body returns what it needs.
    return await ctx.task("chatty", async (t) => {
      const r = await t.exec("sh", ["-c", "yes 0123456789abcdef | head -c 20000000"]);
      return { kept: r.stdout.length, note: r.stdout.slice(0, r.stdout.indexOf("\n") + 1) };
    });
  });
}`, harnessOpts{maxOutput: 1 << 20})
	id := h.launch("wf", nil)
	jsonEqual(t, h.output(id), `{"kept":1048601,"note":"[… 18951424 bytes cut …]\n"}`)
	var outputs, streamed int
	var last string
	for _, e := range h.events(id) {
		if e.Name != "task.output" {
			continue
		}
		var p struct{ Output string }
		_ = json.Unmarshal(e.Payload, &p)
		outputs++
		streamed += len(p.Output)
		last = p.Output
	}
	if streamed > 1<<20+200 || !strings.Contains(last, "output truncated") {
		t.Fatalf("streamed %d bytes in %d events, last %q", streamed, outputs, last[max(0, len(last)-80):])
	}
	if outputs > 200 {
		t.Fatalf("%d task.output events for 1 MiB: output is not coalesced", outputs)
	}
	names := strings.Join(h.eventNames(id), " ")
	if !strings.Contains(names, "node.pending:chatty") || !strings.Contains(names, "node.finished:chatty") {
		t.Fatalf("node events lost: %.300s", names)
	}
}

// TestAsyncRegisterSurvivesWorkerRebuild: after a runaway turn rebuilds a
// worker whose module registers asynchronously, the runs restarted on it
// wait for the registration instead of failing.
func TestAsyncRegisterSurvivesWorkerRebuild(t *testing.T) {
	h := newHarnessOpts(t, `
export default async function (gateway) {
  await new Promise((r) => setTimeout(r, 100));
  gateway.register("spin", async (ctx) => { await ctx.task("t", () => { for (;;) {} }); });
  gateway.register("ok", async (ctx) => {
    const a = await ctx.task("a", () => new Promise((res) => setTimeout(() => res(1), 400)));
    return a + 1;
  });
}`, harnessOpts{turnBudget: 200 * time.Millisecond, workers: 1})
	other := h.launch("ok", nil)
	eventually(t, "other run's task started", func() bool { return h.nodes(other)["a"].State == host.NodeInProgress })
	if e := h.errorOf(h.launch("spin", nil)); e["code"] != "JS_INTERRUPTED" {
		t.Fatalf("spin %v", e)
	}
	jsonEqual(t, h.output(other), `2`)
}

// TestWorkerThatCannotRebuildIsRetired: when a worker's runtime cannot be
// rebuilt after a runaway turn (here register(gateway) itself runs away
// once the clock passes a mark), the worker takes no more runs: new runs
// go to the other worker and finish.
func TestWorkerThatCannotRebuildIsRetired(t *testing.T) {
	mark := time.Now().Add(2 * time.Second).UnixMilli()
	h := newHarnessOpts(t, `
const mark = `+strconv.FormatInt(mark, 10)+`;
export default function (gateway) {
  if (Date.now() > mark) { for (let n = 0; ; n++) { gateway[n % 2] = n; } }
  gateway.register("spin", async (ctx) => { await ctx.task("t", () => { for (;;) {} }); });
  gateway.register("ok", async (ctx) => await ctx.task("a", () => 1));
}`, harnessOpts{turnBudget: 200 * time.Millisecond, workers: 2})
	time.Sleep(time.Until(time.UnixMilli(mark)))
	// Both workers start at load 0: the runaway run lands on one, whose
	// rebuilds then run away too.
	if e := h.errorOf(h.launch("spin", nil)); e["code"] != "JS_INTERRUPTED" {
		t.Fatalf("spin error %v", e)
	}
	for i := 0; i < 4; i++ {
		jsonEqual(t, h.output(h.launch("ok", nil)), `1`)
	}
}
