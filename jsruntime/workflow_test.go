package jsruntime_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

func TestTaskReturnsOutputAndEventsInOrder(t *testing.T) {
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    const a = await ctx.task("a", () => ({ n: ctx.input.n + 1 }));
    const b = await ctx.task("b", async (t) => ({ n: a.n * 2, key: t.idempotencyKey, attempt: t.attempt }));
    const s = await ctx.task("static", { fixed: true });
    return { a, b, s, runId: ctx.runId, workflow: ctx.workflow };
  });
}`)
	id := h.launch("wf", map[string]any{"n": 1})
	jsonEqual(t, h.output(id), `{"a":{"n":2},"b":{"n":4,"key":"`+id+`:b:0","attempt":1},"s":{"fixed":true},"runId":"`+id+`","workflow":"wf"}`)
	want := []string{"node.pending:a", "node.started:a", "node.finished:a", "node.pending:b", "node.started:b", "node.finished:b",
		"node.pending:static", "node.started:static", "node.finished:static", "run.completed"}
	if got := h.eventNames(id); !reflect.DeepEqual(got, want) {
		t.Fatalf("events %v\nwant %v", got, want)
	}
	for i, e := range h.events(id) {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
	}
}

func TestTaskRetriesThenSucceeds(t *testing.T) {
	h := newHarness(t, `
let calls = 0;
export function register(gateway) {
  gateway.register("wf", async (ctx) => {
    return await ctx.task("flaky", (t) => {
      calls++;
      if (t.attempt < 3) throw new Error("boom " + t.attempt);
      return { attempt: t.attempt };
    }, { retries: 3, backoffMs: 5 });
  });
}`)
	id := h.launch("wf", nil)
	jsonEqual(t, h.output(id), `{"attempt":3}`)
	if n := h.nodes(id)["flaky"]; n.Attempts != 3 {
		t.Fatalf("attempts %d, want 3", n.Attempts)
	}
}

func TestTaskFailureCodesAndRetryRules(t *testing.T) {
	h := newHarness(t, `
import { SmithersError } from "smithers-orchestrator";
export default function (gateway) {
  gateway.register("typeerror", async (ctx) => {
    try {
      await ctx.task("t", () => { null.x; }, { retries: 5, backoffMs: 1 });
    } catch (e) { return { code: e.code, name: e.name, isSE: e instanceof SmithersError, msg: e.message }; }
  });
  gateway.register("exhausted", async (ctx) => {
    await ctx.task("t", () => { throw new Error("always"); }, { retries: 2, backoffMs: 1 });
  });
  gateway.register("nonretryable", async (ctx) => {
    await ctx.task("t", () => { throw new SmithersError("BAD_INPUT", "no", { retryable: false }); }, { retries: 5, backoffMs: 1 });
  });
  gateway.register("continue", async (ctx) => {
    const v = await ctx.task("t", () => { throw new Error("x"); }, { retries: 0, continueOnFail: true });
    const after = await ctx.task("after", () => "ran");
    return { v: v === undefined ? "undefined" : v, after };
  });
  gateway.register("timeout", async (ctx) => {
    try {
      await ctx.task("slow", (t) => new Promise((res) => setTimeout(res, 5000)), { timeoutMs: 30, retries: 1, backoffMs: 1 });
    } catch (e) { return { code: e.code }; }
  });
}`)
	out := h.output(h.launch("typeerror", nil)).(map[string]any)
	if out["code"] != "TASK_FAILED" || out["name"] != "SmithersError" || out["isSE"] != true || !strings.Contains(out["msg"].(string), "TypeError") {
		t.Fatalf("typeerror: %v", out)
	}
	id := h.launch("exhausted", nil)
	e := h.errorOf(id)
	if e["code"] != "TASK_FAILED" {
		t.Fatalf("exhausted: %v", e)
	}
	if n := h.nodes(id)["t"]; n.Attempts != 3 || n.State != host.NodeFailed {
		t.Fatalf("exhausted node: attempts %d state %s, want 3 failed", n.Attempts, n.State)
	}
	id = h.launch("nonretryable", nil)
	if e := h.errorOf(id); e["code"] != "BAD_INPUT" {
		t.Fatalf("nonretryable: %v", e)
	}
	if n := h.nodes(id)["t"]; n.Attempts != 1 {
		t.Fatalf("nonretryable attempts %d", n.Attempts)
	}
	id = h.launch("continue", nil)
	jsonEqual(t, h.output(id), `{"v":"undefined","after":"ran"}`)
	if n := h.nodes(id)["t"]; n.State != host.NodeFailed {
		t.Fatalf("continueOnFail node state %s, want failed", n.State)
	}
	id = h.launch("timeout", nil)
	jsonEqual(t, h.output(id), `{"code":"TASK_TIMEOUT"}`)
	if n := h.nodes(id)["slow"]; n.Attempts != 2 {
		t.Fatalf("timeout attempts %d, want 2 (timed-out attempts are retried)", n.Attempts)
	}
}

func TestTypeErrorNotRetried(t *testing.T) {
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => { await ctx.task("t", () => { undefinedVariable.x; }, { retries: 5, backoffMs: 1 }); });
}`)
	id := h.launch("wf", nil)
	h.errorOf(id)
	if n := h.nodes(id)["t"]; n.Attempts != 1 {
		t.Fatalf("ReferenceError attempts %d, want 1", n.Attempts)
	}
}

// TestCtxInputAndAuthReadAsData: ctx.input and ctx.auth are parsed when
// first read, and read as the plain properties they were: the same value
// at every read, listed by Object.keys, copied by spread and destructuring,
// written by JSON.stringify, and replaced by an assignment.
func TestCtxInputAndAuthReadAsData(t *testing.T) {
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    "use strict";
    const same = ctx.input === ctx.input && ctx.auth === ctx.auth;
    const keys = Object.keys(ctx).filter((k) => k === "input" || k === "auth").sort();
    const { input } = ctx;
    const copy = { ...ctx };
    const text = JSON.stringify({ input: ctx.input });
    const role = typeof ctx.auth.role;
    const derived = Object.create(ctx);
    derived.input = "mine";
    const untouched = ctx.input === input;
    ctx.input = { replaced: true };
    return { same, keys, n: input.n, copied: copy.input === input, text, role, derived: derived.input, untouched, after: ctx.input };
  });
}`)
	id := h.launch("wf", map[string]any{"n": 1})
	jsonEqual(t, h.output(id), `{"same":true,"keys":["auth","input"],"n":1,"copied":true,"text":"{\"input\":{\"n\":1}}","role":"string","derived":"mine","untouched":true,"after":{"replaced":true}}`)
}

// TestCtxInputAndAuthAreDeepFrozen: a workflow cannot change its input or
// auth, at any depth (a replay must see what the first pass saw).
func TestCtxInputAndAuthAreDeepFrozen(t *testing.T) {
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    "use strict";
    const tries = {};
    for (const [name, f] of Object.entries({
      top: () => { ctx.input.n = 2; },
      nested: () => { ctx.input.deep.list.push(4); },
      added: () => { ctx.input.deep.extra = true; },
      auth: () => { ctx.auth.role = "admin"; },
    })) {
      try { f(); tries[name] = "changed"; } catch (e) { tries[name] = e instanceof TypeError ? "refused" : String(e); }
    }
    return { tries, frozen: Object.isFrozen(ctx.input) && Object.isFrozen(ctx.input.deep.list) && Object.isFrozen(ctx.auth), input: ctx.input };
  });
}`)
	id := h.launch("wf", map[string]any{"n": 1, "deep": map[string]any{"list": []int{1, 2, 3}}})
	jsonEqual(t, h.output(id), `{"tries":{"top":"refused","nested":"refused","added":"refused","auth":"refused"},"frozen":true,"input":{"n":1,"deep":{"list":[1,2,3]}}}`)
}
