package jsruntime_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
)

const approvalModule = `
export default function (gateway) {
  gateway.register("gate", async (ctx) => {
    const d = await ctx.approval("ok", { request: { title: "Ship?" }, onDeny: ctx.input.onDeny });
    return { d: d === undefined ? "undefined" : d };
  });
}`

func TestApprovalApproveParksAndResumes(t *testing.T) {
	h := newHarness(t, approvalModule)
	id := h.launch("gate", map[string]any{})
	h.waitStatus(id, host.RunWaitingApproval)
	eventually(t, "run leaves the executor", func() bool { return h.gw.ActiveRuns() == 0 })
	if err := h.approve(id, "ok", true, map[string]any{"approved": true, "value": map[string]any{"x": 1}}); err != nil {
		t.Fatal(err)
	}
	out := h.output(id).(map[string]any)["d"].(map[string]any)
	if out["approved"] != true || out["decidedBy"] != "alice" || !reflect.DeepEqual(out["value"], map[string]any{"x": float64(1)}) || out["decidedAtMs"] == nil {
		t.Fatalf("decision %v", out)
	}
	want := []string{"node.pending:ok", "approval.requested:ok", "node.waiting_approval:ok", "approval.decided:ok", "node.finished:ok", "run.completed"}
	if got := h.eventNames(id); !reflect.DeepEqual(got, want) {
		t.Fatalf("events %v\nwant %v", got, want)
	}
	// Deciding again is AlreadyDecided.
	if err := h.approve(id, "ok", true, nil); host.ErrorCode(err) != host.CodeAlreadyDecided {
		t.Fatalf("second decision: %v", err)
	}
}

func TestApprovalDenyPolicies(t *testing.T) {
	h := newHarness(t, approvalModule)
	for _, tc := range []struct {
		onDeny string
		status host.RunStatus
		state  host.NodeState
	}{
		{"fail", host.RunFailed, host.NodeFailed},
		{"continue", host.RunFinished, host.NodeFinished},
		{"skip", host.RunFinished, host.NodeSkipped},
	} {
		id := h.launch("gate", map[string]any{"onDeny": tc.onDeny})
		h.waitStatus(id, host.RunWaitingApproval)
		if err := h.approve(id, "ok", false, nil); err != nil {
			t.Fatal(err)
		}
		r := h.finish(id)
		if r.Status != tc.status || h.nodes(id)["ok"].State != tc.state {
			t.Fatalf("onDeny %s: run %s node %s", tc.onDeny, r.Status, h.nodes(id)["ok"].State)
		}
		switch tc.onDeny {
		case "fail":
			e := h.errorOf(id)
			if e["code"] != "APPROVAL_DENIED" {
				t.Fatalf("deny fail error %v", e)
			}
			// The stack names the workflow's lines, not the gateway's Go.
			if st, _ := e["stack"].(string); !strings.Contains(st, ".mjs:") || strings.Contains(st, "smithers-go/") {
				t.Fatalf("deny fail stack %q", st)
			}
		case "continue":
			if d := h.output(id).(map[string]any)["d"].(map[string]any); d["approved"] != false {
				t.Fatalf("deny continue %v", d)
			}
		case "skip":
			jsonEqual(t, h.output(id), `{"d":"undefined"}`)
		}
	}
}

func TestApprovalNotWaitingIsInvalidInput(t *testing.T) {
	h := newHarness(t, approvalModule)
	id := h.launch("gate", map[string]any{})
	h.waitStatus(id, host.RunWaitingApproval)
	if err := h.approve(id, "nope", true, nil); host.ErrorCode(err) != host.CodeInvalidInput {
		t.Fatalf("unknown node: %v", err)
	}
	if err := h.approve("no-such-run", "ok", true, nil); host.ErrorCode(err) != host.CodeNotFound {
		t.Fatalf("unknown run: %v", err)
	}
}

func TestApprovalTimeoutCountsAsDenied(t *testing.T) {
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => ctx.approval("ok", { timeoutMs: 50, onDeny: "continue" }));
}`)
	id := h.launch("wf", nil)
	out := h.output(id).(map[string]any)
	if out["approved"] != false || out["note"] != "timeout" {
		t.Fatalf("timed-out approval: %v", out)
	}
}

const signalModule = `
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    await ctx.task("first", () => 1);
    const a = await ctx.waitForEvent("w1", { event: "pay", correlationId: "o-1" });
    const b = await ctx.signal("ping");
    return { a, b };
  });
  gateway.register("timeout", async (ctx) => {
    const v = await ctx.waitForEvent("w", { event: "never", timeoutMs: 30, onTimeout: ctx.input.onTimeout });
    return { v: v === undefined ? "undefined" : v };
  });
}`

func TestSignalsMatchByNameAndCorrelation(t *testing.T) {
	h := newHarness(t, signalModule)
	id := h.launch("wf", nil)
	h.waitStatus(id, host.RunWaitingEvent)
	h.signal(id, "pay", strp("o-2"), map[string]any{"wrong": true}) // other correlation id: buffered
	h.signal(id, "pay", nil, map[string]any{"wrong": true})         // null matches only null
	if h.run(id).Status != host.RunWaitingEvent {
		t.Fatal("a non-matching signal woke the run")
	}
	h.signal(id, "pay", strp("o-1"), map[string]any{"amount": 3})
	h.signal(id, "ping", nil, "pong")
	jsonEqual(t, h.output(id), `{"a":{"amount":3},"b":"pong"}`)
}

func TestSignalSentBeforeWaitIsBuffered(t *testing.T) {
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    await ctx.approval("gate", {});
    const x = await ctx.signal("go");
    const y = await ctx.signal("go2", { event: "go" });
    return { x, y };
  });
}`)
	id := h.launch("wf", nil)
	h.waitStatus(id, host.RunWaitingApproval)
	h.signal(id, "go", nil, 1)
	h.signal(id, "go", nil, 2)
	if err := h.approve(id, "gate", true, nil); err != nil {
		t.Fatal(err)
	}
	// Oldest first, and one signal satisfies one wait.
	jsonEqual(t, h.output(id), `{"x":1,"y":2}`)
}

func TestEventTimeoutPolicies(t *testing.T) {
	h := newHarness(t, signalModule)
	if e := h.errorOf(h.launch("timeout", map[string]any{})); e["code"] != "EVENT_TIMEOUT" {
		t.Fatalf("fail: %v", e)
	}
	jsonEqual(t, h.output(h.launch("timeout", map[string]any{"onTimeout": "continue"})), `{"v":null}`)
	jsonEqual(t, h.output(h.launch("timeout", map[string]any{"onTimeout": "skip"})), `{"v":"undefined"}`)
}

func TestSleepAndTimer(t *testing.T) {
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    const start = ctx.now();
    await ctx.sleep("nap", 1000);
    await ctx.timer("until", { untilMs: start + 1100 });
    await ctx.timer("zero", { durationMs: 0 });
    return { waited: ctx.now() - start };
  });
}`)
	id := h.launch("wf", nil)
	// The nap is long enough for a loaded CI machine to see the run parked.
	h.waitStatus(id, host.RunWaitingTimer)
	out := h.output(id).(map[string]any)
	if out["waited"].(float64) < 1100 {
		t.Fatalf("waited %v, want >= 1100", out["waited"])
	}
}

func TestTimerDueWhileDownFiresAfterRestart(t *testing.T) {
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => { await ctx.sleep("nap", 1000); return "woke"; });
}`)
	id := h.launch("wf", nil)
	h.waitStatus(id, host.RunWaitingTimer)
	h.stop()
	time.Sleep(1100 * time.Millisecond) // the timer comes due while the gateway is down
	h.start()
	jsonEqual(t, h.output(id), `"woke"`)
}

func TestParallelAndPromiseAll(t *testing.T) {
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    const p = await ctx.parallel([1, 2, 3].map((i) => () => ctx.task("p" + i, () => i * 10)), { maxConcurrency: 2 });
    const [a, b] = await Promise.all([ctx.task("x", () => "x"), ctx.approval("gate", {})]);
    return { p, a, b: b.approved };
  });
}`)
	id := h.launch("wf", nil)
	h.waitStatus(id, host.RunWaitingApproval)
	if err := h.approve(id, "gate", true, nil); err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, h.output(id), `{"p":[10,20,30],"a":"x","b":true}`)
}

func TestDeterministicValuesStableAcrossReplay(t *testing.T) {
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    const v = { now: ctx.now(), random: ctx.random(), uuid: ctx.uuid() };
    const first = await ctx.task("capture", () => v);
    await ctx.approval("gate", {});
    return { first, again: v };
  });
}`)
	id := h.launch("wf", nil)
	h.waitStatus(id, host.RunWaitingApproval)
	h.restart() // the run is replayed from the journal
	if err := h.approve(id, "gate", true, nil); err != nil {
		t.Fatal(err)
	}
	out := h.output(id).(map[string]any)
	if !reflectEqualJSON(out["first"], out["again"]) {
		t.Fatalf("values changed across replay: %v", out)
	}
}

func reflectEqualJSON(a, b any) bool { return reflect.DeepEqual(a, b) }

func TestDuplicateIDAndNondeterminism(t *testing.T) {
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("dup", async (ctx) => {
    await ctx.task("a", () => 1);
    try { await ctx.task("a", () => 2); } catch (e) { return e.code; }
  });
  gateway.register("nd", async (ctx) => {
    if (ctx.input.phase === 1) { await ctx.approval("x", {}); return "approval"; }
    await ctx.approval("gate", {});
    try { await ctx.task("gate", () => 1); } catch (e) { return e.code; }
  });
  gateway.register("badid", async (ctx) => {
    try { ctx.task("has space", () => 1); } catch (e) { return e.name; }
  });
}`)
	jsonEqual(t, h.output(h.launch("dup", nil)), `"DUPLICATE_ID"`)
	jsonEqual(t, h.output(h.launch("badid", nil)), `"TypeError"`)
	id := h.launch("nd", map[string]any{})
	h.waitStatus(id, host.RunWaitingApproval)
	if err := h.approve(id, "gate", true, nil); err != nil {
		t.Fatal(err)
	}
	// "gate" is used twice in one pass: the second use is a duplicate.
	jsonEqual(t, h.output(id), `"DUPLICATE_ID"`)
}

func TestCancelParkedAndActiveRuns(t *testing.T) {
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("parked", async (ctx) => { await ctx.approval("gate", {}); });
  gateway.register("busy", async (ctx) => { await ctx.task("long", (t) => new Promise((res) => {
    t.signal.addEventListener("abort", () => { heard.push(t.signal.reason.code + ": " + t.signal.reason.message); res(); });
    setTimeout(res, 20000);
  })); });
  gateway.register("heard", async (ctx) => heard);
}
const heard = [];`)
	ctx := context.Background()
	id := h.launch("parked", nil)
	h.waitStatus(id, host.RunWaitingApproval)
	if err := h.gw.CancelRun(ctx, id); err != nil {
		t.Fatal(err)
	}
	if r := h.run(id); r.Status != host.RunCancelled {
		t.Fatalf("parked run after cancel: %s", r.Status)
	}
	if err := h.gw.CancelRun(ctx, id); host.ErrorCode(err) != host.CodeRunNotActive {
		t.Fatalf("cancel of a terminal run: %v", err)
	}
	if err := h.gw.CancelRun(ctx, "nope"); host.ErrorCode(err) != host.CodeNotFound {
		t.Fatalf("cancel of an unknown run: %v", err)
	}
	id = h.launch("busy", nil)
	eventually(t, "task started", func() bool { return h.nodes(id)["long"].State == host.NodeInProgress })
	if err := h.gw.CancelRun(ctx, id); err != nil {
		t.Fatal(err)
	}
	if r := h.finish(id); r.Status != host.RunCancelled {
		t.Fatalf("active run after cancel: %s", r.Status)
	}
	// The task body heard the cancel on t.signal.
	jsonEqual(t, h.output(h.launch("heard", nil)), `["CANCELLED: Run was cancelled"]`)
	names := h.eventNames(id)
	if names[len(names)-1] != "run.completed" {
		t.Fatalf("last event %v", names)
	}
	n := 0
	for _, e := range names {
		if e == "run.completed" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("run.completed %d times", n)
	}
}

// TestApprovalRequestThatJSONCannotCarryIsRefused: an approval whose
// request metadata is a function must fail the call, never be stored
// without its title, mode and restrictions.
func TestApprovalRequestThatJSONCannotCarryIsRefused(t *testing.T) {
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("gate", async (ctx) => {
    try {
      await ctx.approval("ok", { request: { title: "Ship?", metadata: () => 1 }, allowedUsers: ["alice"] });
      return "requested";
    } catch (e) {
      return e.name + ": " + e.message;
    }
  });
}`)
	id := h.launch("gate", map[string]any{})
	out, _ := h.output(id).(string)
	if !strings.HasPrefix(out, "TypeError: ") || !strings.Contains(out, "metadata") {
		t.Fatalf("ctx.approval with function metadata resolved to %q, want a TypeError naming metadata", out)
	}
	if as, _ := h.store.ListApprovals(context.Background(), host.ApprovalFilter{RunID: id}); len(as) != 0 {
		t.Fatalf("an approval was stored: %+v", as)
	}
}
