package jsruntime_test

import (
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/testkit"
)

// TestLogsCarryRunAndAreMutedDuringReplay: ctx.log.* and console.* reach the
// gateway's structured log with the run id, and lines of journaled steps are
// not logged again when the run replays after a restart.
func TestLogsCarryRunAndAreMutedDuringReplay(t *testing.T) {
	logs := &testkit.Buffer{}
	h := newHarnessOpts(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    ctx.log.info("before approval", { step: 1 });
    console.log("console line", { n: 2 });
    await ctx.approval("gate", {});
    ctx.log.warn("after approval");
    return "ok";
  });
}`, harnessOpts{logs: logs})
	id := h.launch("wf", nil)
	h.waitStatus(id, host.RunWaitingApproval)
	h.restart()
	if err := h.approve(id, "gate", true, nil); err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, h.output(id), `"ok"`)
	count := map[string]int{}
	for _, l := range logs.JSONLines() {
		msg, _ := l["msg"].(string)
		switch msg {
		case "before approval", "after approval", `console line {"n":2}`:
			if l["runId"] != id {
				t.Fatalf("log line without the run id: %v", l)
			}
			count[msg]++
			if msg == "before approval" && l["step"] != float64(1) {
				t.Fatalf("fields lost: %v", l)
			}
			if msg == "after approval" && l["level"] != "WARN" {
				t.Fatalf("level: %v", l)
			}
		}
	}
	for _, m := range []string{"before approval", "after approval", `console line {"n":2}`} {
		if count[m] != 1 {
			t.Fatalf("%q logged %d times, want once (muted while replaying): %v", m, count[m], count)
		}
	}
}

// TestUnhandledRejectionsAreLogged: a promise of module code rejected with
// nothing awaiting it, in the workflow function or in a task body (also
// after an await), is logged once as a warning with the run id, the
// workflow and, in a task body, the node id; rejections that are handled,
// late in the same turn included, are not.
func TestUnhandledRejectionsAreLogged(t *testing.T) {
	logs := &testkit.Buffer{}
	h := newHarnessOpts(t, `
export default function (gateway) {
  gateway.register("wf", async (ctx) => {
    Promise.reject(new Error("lost in workflow"));
    const handled = Promise.reject(new Error("handled later"));
    handled.catch(() => {});
    await ctx.task("body", async (t) => {
      Promise.reject(new Error("lost in body"));
      await new Promise((r) => setTimeout(r, 10));
      Promise.reject(new Error("lost after await"));
      return 1;
    });
    try { await ctx.task("caught", () => { throw new Error("caught"); }, { retries: 0 }); } catch (e) {}
    return "done";
  });
}`, harnessOpts{logs: logs})
	id := h.launch("wf", nil)
	jsonEqual(t, h.output(id), `"done"`)
	want := map[string]string{"Error: lost in workflow": "", "Error: lost in body": "body", "Error: lost after await": "body"}
	seen := map[string]int{}
	for _, l := range logs.JSONLines() {
		if l["source"] != "unhandledRejection" {
			continue
		}
		e, _ := l["err"].(string)
		node, known := want[e]
		if !known {
			t.Fatalf("logged a rejection that was handled or is not the module's: %v", l)
		}
		seen[e]++
		if l["runId"] != id || l["workflow"] != "wf" || l["level"] != "WARN" {
			t.Fatalf("rejection logged without run, workflow or warning level: %v", l)
		}
		if got, _ := l["nodeId"].(string); got != node {
			t.Fatalf("%s logged with nodeId %q, want %q", e, got, node)
		}
	}
	for e := range want {
		if seen[e] != 1 {
			t.Fatalf("%q logged %d times, want once: %v", e, seen[e], seen)
		}
	}
}
