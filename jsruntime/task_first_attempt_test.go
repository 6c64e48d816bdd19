package jsruntime_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// commitLog records the committed batches of events, each as the names
// (name:nodeId) of its events, for tests of what one commit holds.
type commitLog struct {
	mu      sync.Mutex
	batches [][]string
}

func (c *commitLog) onCommit(evs []host.Event) {
	var names []string
	for _, e := range evs {
		var p struct {
			NodeID string `json:"nodeId"`
		}
		_ = json.Unmarshal(e.Payload, &p)
		names = append(names, strings.TrimSuffix(e.Name+":"+p.NodeID, ":"))
	}
	c.mu.Lock()
	c.batches = append(c.batches, names)
	c.mu.Unlock()
}

// batchOf returns the batch that holds event, nil if none does.
func (c *commitLog) batchOf(event string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.batches {
		for _, n := range b {
			if n == event {
				return b
			}
		}
	}
	return nil
}

// TestTaskSettledInItsTurnIsOneCommit: a body that awaits nothing is
// journaled pending, started and finished in one commit with its attempt
// (a commit less than one for its start and one for its result), and the
// journal reads as it always did.
func TestTaskSettledInItsTurnIsOneCommit(t *testing.T) {
	var log commitLog
	h := newHarnessOpts(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    const a = await ctx.task("a", () => 1);
    const b = await ctx.task("b", async () => a + 1);
    return { a, b };
  });
}`, harnessOpts{onCommit: log.onCommit})
	id := h.launch("wf", nil)
	jsonEqual(t, h.output(id), `{"a":1,"b":2}`)
	for _, node := range []string{"a", "b"} {
		want := []string{"node.pending:" + node, "node.started:" + node, "node.finished:" + node}
		if got := log.batchOf("node.finished:" + node); !reflect.DeepEqual(got, want) {
			t.Fatalf("the commit of %s's result holds %v, want %v", node, got, want)
		}
		atts, err := h.store.ListAttempts(t.Context(), id, node, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(atts) != 1 || atts[0].State != host.AttemptFinished || atts[0].StartedAtMs == 0 || atts[0].StartedAtMs > atts[0].FinishedAtMs {
			t.Fatalf("attempts of %s: %+v", node, atts)
		}
	}
}

// TestTaskStartJournaledBeforeItWaits: a body still running when its turn
// ends has its start journaled then, in a commit of its own, so that the
// node shows in progress while the body waits.
func TestTaskStartJournaledBeforeItWaits(t *testing.T) {
	var log commitLog
	h := newHarnessOpts(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    return await ctx.task("slow", async () => {
      await new Promise((r) => setTimeout(r, 1500));
      return "done";
    });
  });
}`, harnessOpts{onCommit: log.onCommit})
	id := h.launch("wf", nil)
	eventually(t, "slow in progress", func() bool { return h.nodes(id)["slow"].State == host.NodeInProgress })
	if h.run(id).Status.Terminal() {
		t.Fatal("the run ended before its task's wait did")
	}
	jsonEqual(t, h.output(id), `"done"`)
	if got, want := log.batchOf("node.started:slow"), []string{"node.pending:slow", "node.started:slow"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("the start's commit holds %v, want %v", got, want)
	}
}

// TestTaskBodyRunsAfterTheCallingTurn: ctx.task returns before its body
// runs, as when the start was committed first: code after the call, up to
// the caller's first await, runs before the body.
func TestTaskBodyRunsAfterTheCallingTurn(t *testing.T) {
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    let seen = "before";
    const p = ctx.task("a", () => seen);
    seen = "after";
    return await p;
  });
}`)
	id := h.launch("wf", nil)
	jsonEqual(t, h.output(id), `"after"`)
}

// TestTaskEffectsOfAnUnjournaledBodyFollowItsStart: output, a heartbeat or
// a failure of a body that has not had its start journaled yet journal the
// start first, so the run's events keep their order.
func TestTaskEffectsOfAnUnjournaledBodyFollowItsStart(t *testing.T) {
	h := newHarness(t, `
let tries = 0;
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    const e = await ctx.task("emits", (t) => { t.emit("hello\n"); return 1; });
    const b = await ctx.task("beats", (t) => { t.heartbeat({ step: 1 }); return 2; });
    const f = await ctx.task("throws", () => { if (++tries < 2) throw new Error("once"); return 3; }, { retries: 1, backoffMs: 1 });
    let big;
    try { await ctx.task("bigint", () => 1n, { retries: 0 }); } catch (err) { big = err.code; }
    return { e, b, f, big };
  });
}`)
	id := h.launch("wf", nil)
	jsonEqual(t, h.output(id), `{"e":1,"b":2,"f":3,"big":"TASK_FAILED"}`)
	want := []string{
		"node.pending:emits", "node.started:emits", "task.output:emits", "node.finished:emits",
		"node.pending:beats", "node.started:beats", "task.heartbeat:beats", "node.finished:beats",
		"node.pending:throws", "node.started:throws", "node.retrying:throws", "node.started:throws", "node.finished:throws",
		"node.pending:bigint", "node.started:bigint", "node.failed:bigint",
		"run.completed"}
	if got := h.eventNames(id); !reflect.DeepEqual(got, want) {
		t.Fatalf("events %v\nwant %v", got, want)
	}
	atts, err := h.store.ListAttempts(t.Context(), id, "throws", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != 2 || atts[0].State != host.AttemptFailed || atts[1].State != host.AttemptFinished {
		t.Fatalf("attempts of throws: %+v", atts)
	}
	beats, err := h.store.ListAttempts(t.Context(), id, "beats", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(beats) != 1 || !strings.Contains(beats[0].HeartbeatDataJSON, `"step":1`) {
		t.Fatalf("attempts of beats: %+v", beats)
	}
}

// TestTaskOfACancelledRunDoesNotFinish: a run cancelled while a body that
// awaits nothing is queued to run has no finished node for it.
func TestTaskOfACancelledRunDoesNotFinish(t *testing.T) {
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    await ctx.task("first", async () => { await new Promise((r) => setTimeout(r, 300)); return 1; });
    return await ctx.task("second", () => 2);
  });
}`)
	id := h.launch("wf", nil)
	eventually(t, "first in progress", func() bool { return h.nodes(id)["first"].State == host.NodeInProgress })
	if err := h.gw.CancelRun(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	r := h.finish(id)
	if r.Status != host.RunCancelled {
		t.Fatalf("status %s", r.Status)
	}
	time.Sleep(500 * time.Millisecond) // past the first body's wait
	if n, ok := h.nodes(id)["second"]; ok {
		t.Fatalf("second journaled in a cancelled run: %+v", n)
	}
}

// TestTaskSignalReadAfterItsAbort: t.signal is made when a body first
// reads it; read after the attempt timed out, it is aborted with the
// timeout as its reason, and it is the same object at every read.
func TestTaskSignalReadAfterItsAbort(t *testing.T) {
	h := newHarness(t, `
let seen = null;
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    const code = await ctx.task("slow", async (t) => {
      await new Promise((r) => setTimeout(r, 300));
      const s = t.signal;
      seen = { aborted: s.aborted, reason: s.reason && s.reason.code, same: s === t.signal };
    }, { timeoutMs: 50, retries: 0 }).then(() => "resolved", (e) => e.code);
    await new Promise((r) => setTimeout(r, 500));
    return { code, seen };
  });
}`)
	id := h.launch("wf", nil)
	jsonEqual(t, h.output(id), `{"code":"TASK_TIMEOUT","seen":{"aborted":true,"reason":"TASK_TIMEOUT","same":true}}`)
}

// TestTaskResultGettersRunOnce: a first attempt's result is inspected
// without running its code (getters run once, when it is stored), and a
// getter that throws fails the task like any unstorable value, not the
// worker.
func TestTaskResultGettersRunOnce(t *testing.T) {
	h := newHarness(t, `
let reads = 0;
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    const ok = await ctx.task("counted", () => ({ get x() { reads++; return 1; } }));
    const codes = [];
    for (const [id, body] of [
      ["throws", () => ({ get x() { throw new Error("boom"); } })],
      ["then", () => ({ get then() { throw new Error("boom"); } })],
    ]) {
      try { await ctx.task(id, body, { retries: 0 }); codes.push("resolved"); } catch (e) { codes.push(e.code); }
    }
    return { ok, reads, codes };
  });
}`)
	id := h.launch("wf", nil)
	jsonEqual(t, h.output(id), `{"ok":{"x":1},"reads":1,"codes":["TASK_FAILED","TASK_FAILED"]}`)
}

// TestInterruptedFirstAttemptNamesItsTask: a first attempt whose body
// runs away is interrupted before its node is journaled; the run's error
// says which task it was.
func TestInterruptedFirstAttemptNamesItsTask(t *testing.T) {
	h := newHarnessOpts(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    await ctx.task("spin", () => { for (;;) {} });
  });
}`, harnessOpts{turnBudget: 200 * time.Millisecond})
	id := h.launch("wf", nil)
	e := h.errorOf(id)
	if e["code"] != "JS_INTERRUPTED" || !strings.Contains(fmt.Sprint(e["message"]), `task "spin"`) {
		t.Fatalf("error %v, want JS_INTERRUPTED naming task spin", e)
	}
}

// TestRunawayAroundAFirstAttemptNamesTheRightCode: a turn interrupted in
// a first attempt's result (its "then" getter, its toJSON) names the task;
// a workflow continuation that runs away, run from inside a body's call,
// does not.
func TestRunawayAroundAFirstAttemptNamesTheRightCode(t *testing.T) {
	for name, c := range map[string]struct {
		workflow string
		named    bool
	}{
		"then getter": {`await ctx.task("spin", () => ({ get then() { for (;;) {} } }));`, true},
		"toJSON":      {`await ctx.task("spin", () => ({ toJSON() { for (;;) {} } }));`, true},
		"continuation": {`let go; const p = new Promise((r) => { go = r; });
    p.then(() => { for (;;) {} });
    await ctx.task("spin", () => { go(); return 1; });`, false},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarnessOpts(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    `+c.workflow+`
  });
}`, harnessOpts{turnBudget: 200 * time.Millisecond})
			id := h.launch("wf", nil)
			e := h.errorOf(id)
			msg := fmt.Sprint(e["message"])
			if e["code"] != "JS_INTERRUPTED" || strings.Contains(msg, "panic") || strings.Contains(msg, `task "spin"`) != c.named {
				t.Fatalf("error %v; want JS_INTERRUPTED, naming task spin: %v", e, c.named)
			}
		})
	}
}

// TestHeartbeatInAResultsGetterFollowsTheStart: code of a first attempt's
// result that reaches the journal (a heartbeat from its "then" getter)
// comes after the node's start.
func TestHeartbeatInAResultsGetterFollowsTheStart(t *testing.T) {
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    return await ctx.task("a", (t) => ({ n: 1, get then() { t.heartbeat({ from: "then" }); return undefined; } }));
  });
}`)
	id := h.launch("wf", nil)
	h.finish(id)
	var names []string
	for _, n := range h.eventNames(id) {
		if n != "task.heartbeat:a" || len(names) == 0 || names[len(names)-1] != n {
			names = append(names, n)
		}
	}
	want := []string{"node.pending:a", "node.started:a", "task.heartbeat:a", "node.finished:a", "run.completed"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("events %v, want %v", h.eventNames(id), want)
	}
}

// TestRefusedStartAbortsTheBody: a first attempt still running when its
// start is refused (the run ended meanwhile) hears it on t.signal.
func TestRefusedStartAbortsTheBody(t *testing.T) {
	h := newHarness(t, `
let heard = "no";
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    await new Promise((r) => setTimeout(r, 500));
    await ctx.task("listens", (t) => new Promise((r) => {
      t.signal.addEventListener("abort", () => { heard = "yes"; r(1); });
      setTimeout(r, 60000);
    }));
  });
  gateway.register("probe", async () => heard);
}`)
	id := h.launch("wf", nil)
	time.Sleep(100 * time.Millisecond)
	// The run ends behind the activation's back (as another process or a
	// deadline would), before the task's start is journaled.
	if _, err := h.store.Update(t.Context(), func(tx host.Tx) error {
		r, _, err := tx.GetRun(id)
		if err != nil {
			return err
		}
		r.Status, r.FinishedAtMs = host.RunFailed, time.Now().UnixMilli()
		return tx.UpdateRun(r)
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the body to hear the abort", func() bool {
		probe := h.launch("probe", nil)
		return h.output(probe) == "yes"
	})
}
