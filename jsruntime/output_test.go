package jsruntime_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// TestOutputsOverTheCapFail: with MaxOutputBytes at 64 KiB, a task's
// return value, the workflow's, a static task value, one t.emit text and one
// t.heartbeat payload larger than that fail their step with OUTPUT_TOO_LARGE
// (a SmithersError that is not retried) instead of reaching the journal.
func TestOutputsOverTheCapFail(t *testing.T) {
	h := newHarnessOpts(t, `
const big = "x".repeat(100000);
const caught = (e) => ({ name: e.name, code: e.code, retryable: e.retryable, message: e.message });
export default function (gateway) {
  gateway.register("task", async (ctx) => {
    try { await ctx.task("big", () => big, { retries: 3, backoffMs: 1 }); } catch (e) { return caught(e); }
  });
  gateway.register("static", async (ctx) => {
    try { await ctx.task("big", { big }); } catch (e) { return caught(e); }
  });
  gateway.register("emit", async (ctx) => ctx.task("say", (t) => {
    try { t.emit(big); } catch (e) { return caught(e); }
  }));
  gateway.register("heartbeat", async (ctx) => ctx.task("beat", (t) => {
    try { t.heartbeat({ big }); } catch (e) { return caught(e); }
  }));
  gateway.register("workflow", async (ctx) => big);
  gateway.register("within", async (ctx) => {
    const v = await ctx.task("fits", (t) => { t.emit("x".repeat(60000)); return "y".repeat(60000); });
    return v.length;
  });
}`, harnessOpts{maxOutput: 64 << 10})
	const capNote = "over the gateway's limit of 65536 (SMITHERS_GATEWAY_MAX_OUTPUT_BYTES)"
	for _, tc := range []struct {
		workflow, message string
	}{
		{"task", "Task big failed after 1 attempt(s): its return value is 100002 bytes of JSON, " + capNote},
		{"static", `ctx.task("big", value): the static value is 100010 bytes of JSON, ` + capNote},
		{"emit", "t.emit(text): text is 100000 bytes, " + capNote},
		{"heartbeat", "t.heartbeat(data): data is 100010 bytes of JSON, " + capNote},
	} {
		id := h.launch(tc.workflow, nil)
		out, ok := h.output(id).(map[string]any)
		if !ok || out["name"] != "SmithersError" || out["code"] != host.CodeOutputTooLarge || !strings.HasPrefix(out["message"].(string), tc.message) {
			t.Fatalf("%s: caught %v\nwant a SmithersError OUTPUT_TOO_LARGE starting %q", tc.workflow, out, tc.message)
		}
		if n, ok := h.nodes(id)["big"]; ok && n.Attempts != 1 {
			t.Fatalf("%s: %d attempts; an output over the cap is not retried", tc.workflow, n.Attempts)
		}
	}
	e := h.errorOf(h.launch("workflow", nil))
	if e["code"] != host.CodeOutputTooLarge || !strings.HasPrefix(e["message"].(string), "the workflow's return value is 100002 bytes of JSON, "+capNote) {
		t.Fatalf("workflow output over the cap: error %v", e)
	}
	jsonEqual(t, h.output(h.launch("within", nil)), `60000`)
}

// TestValuesJSONCannotCarryAreErrors: a task's or the workflow's return
// value that JSON cannot carry fails its step with a message naming the
// step and where the value sits, never a silent null or a dropped field.
func TestValuesJSONCannotCarryAreErrors(t *testing.T) {
	h := newHarness(t, `
const values = {
  fn: () => ({ ok: 1, cleanup: () => {} }),
  hole: () => [1, undefined],
  symbol: () => ({ nested: { s: Symbol("x") } }),
  bigint: () => ({ n: 10n }),
  cycle: () => { const o = {}; o.self = o; return o; },
  topfn: () => () => 1,
  fine: () => ({ a: undefined, b: [1, null], c: "ok" }),
  none: () => undefined,
};
export default function (gateway) {
  gateway.register("task", async (ctx) => {
    try {
      const v = await ctx.task("value", values[ctx.input.kind], { retries: 3, backoffMs: 1 });
      return v === undefined ? "undefined" : v;
    } catch (e) { return { code: e.code, message: e.message }; }
  });
  gateway.register("workflow", async (ctx) => ({ a: [() => 1] }));
}`)
	for _, tc := range []struct{ kind, want string }{
		{"fn", "a function at .cleanup"},
		{"hole", "undefined at [1]"},
		{"symbol", "a symbol at .nested.s"},
		{"bigint", "BigInt"},
		{"cycle", "circular"},
		{"topfn", "cannot be stored as JSON: a function ("},
	} {
		id := h.launch("task", map[string]any{"kind": tc.kind})
		out := h.output(id).(map[string]any)
		msg, _ := out["message"].(string)
		if out["code"] != host.CodeTaskFailed || !strings.HasPrefix(msg, "Task value failed after 1 attempt(s): TypeError: its return value cannot be stored as JSON: ") || !strings.Contains(msg, tc.want) {
			t.Fatalf("%s: %v, want TASK_FAILED naming the step and %q", tc.kind, out, tc.want)
		}
		if n := h.nodes(id)["value"]; n.Attempts != 1 {
			t.Fatalf("%s: %d attempts, want 1", tc.kind, n.Attempts)
		}
	}
	jsonEqual(t, h.output(h.launch("task", map[string]any{"kind": "fine"})), `{"b":[1,null],"c":"ok"}`)
	jsonEqual(t, h.output(h.launch("task", map[string]any{"kind": "none"})), `"undefined"`)
	e := h.errorOf(h.launch("workflow", nil))
	if e["code"] != host.CodeWorkflowFailed || !strings.HasPrefix(e["message"].(string), "the workflow's return value cannot be stored as JSON: a function at .a[0]") {
		t.Fatalf("workflow: error %v", e)
	}
}

// TestExecOutputKeepsTheTail: a child writing far more than the cap leaves
// the last MaxOutputBytes of its output in the result and the last
// host.MaxErrorOutputBytes in EXEC_FAILED, each after a note saying how much
// was cut; the failed node, its attempt, node.failed, run.completed and the
// run's error stay small.
func TestExecOutputKeepsTheTail(t *testing.T) {
	h := newHarnessOpts(t, `
const cmd = ["-c", "head -c 1048576 /dev/zero | tr '\\0' a; printf END; head -c 300000 /dev/zero | tr '\\0' b >&2; exit 3"];
export default function (gateway) {
  gateway.register("soft", async (ctx) => {
    const r = await ctx.task("soft", async (t) => {
      const r = await t.exec("sh", cmd, { allowFailure: true });
      const note = (s) => s.slice(0, s.indexOf("\n") + 1);
      return { code: r.code, len: r.stdout.length, note: note(r.stdout), tail: r.stdout.slice(-4), errNote: note(r.stderr), errLen: r.stderr.length };
    });
    return r;
  });
  gateway.register("hard", async (ctx) => {
    let caught;
    await ctx.task("hard", async (t) => {
      try { await t.exec("sh", cmd); } catch (e) {
        caught = { len: e.stdout.length, head: e.stdout.slice(0, 40), detailsSame: e.details.stdout === e.stdout, errHead: e.stderr.slice(0, 40) };
        throw e;
      }
    }, { retries: 0 });
    return caught;
  });
}`, harnessOpts{maxOutput: 256 << 10})
	note := func(cut int) string { return "[… " + itoa(cut) + " bytes cut …]\n" }
	// JavaScript counts the note's "…" as one.
	jsLen := func(s string) int { return len([]rune(s)) }
	out := h.output(h.launch("soft", nil))
	jsonEqual(t, out, `{"code":3,"len":`+itoa(262144+jsLen(note(1048579-262144)))+`,"note":"`+strings.TrimSuffix(note(1048579-262144), "\n")+`\n","tail":"aEND",`+
		`"errNote":"`+strings.TrimSuffix(note(300000-262144), "\n")+`\n","errLen":`+itoa(262144+jsLen(note(300000-262144)))+`}`)
	id := h.launch("hard", nil)
	e := h.errorOf(id)
	if e["code"] != host.CodeExecFailed {
		t.Fatalf("error %v", e)
	}
	var cause struct {
		Details struct {
			CauseDetails struct{ Stdout, Stderr string }
		}
	}
	r := h.run(id)
	if err := json.Unmarshal([]byte(r.ErrorJSON), &cause); err != nil {
		t.Fatal(err)
	}
	stdout := cause.Details.CauseDetails.Stdout
	if want := note(1048579-host.MaxErrorOutputBytes) + strings.Repeat("a", host.MaxErrorOutputBytes-3) + "END"; stdout != want {
		t.Fatalf("EXEC_FAILED stdout: %d bytes starting %.60q, want the last %d bytes after a note", len(stdout), stdout, host.MaxErrorOutputBytes)
	}
	if !strings.HasPrefix(cause.Details.CauseDetails.Stderr, note(300000-host.MaxErrorOutputBytes)) {
		t.Fatalf("EXEC_FAILED stderr starts %.60q", cause.Details.CauseDetails.Stderr)
	}
	const small = 4 * host.MaxErrorOutputBytes
	if n := h.nodes(id)["hard"]; len(r.ErrorJSON) > small || len(n.ErrorJSON) > small {
		t.Fatalf("run error %d bytes, node error %d bytes: over %d", len(r.ErrorJSON), len(n.ErrorJSON), small)
	}
	for _, ev := range h.events(id) {
		if len(ev.Payload) > small {
			t.Fatalf("event %s carries %d bytes", ev.Name, len(ev.Payload))
		}
	}
}

// TestHugeThrownErrorIsBounded: an error with a huge message is stored with
// its first host.MaxErrorOutputBytes and a note, not in full.
func TestHugeThrownErrorIsBounded(t *testing.T) {
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => { await ctx.task("t", () => { throw new Error("y".repeat(4 << 20)); }, { retries: 0 }); });
}`)
	id := h.launch("wf", nil)
	e := h.errorOf(id)
	if msg := e["message"].(string); !strings.Contains(msg, " bytes cut …]") || len(h.run(id).ErrorJSON) > 4*host.MaxErrorOutputBytes {
		t.Fatalf("run error %d bytes, message %.80q...", len(h.run(id).ErrorJSON), msg)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
