package jsruntime_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// autoApproveModule's workflow asks approval "ship" with the autoApprove
// option built from its input (condition from input.condition through a
// function); with input.later it then waits on approval "later". It
// returns the decision and how often this process called condition.
const autoApproveModule = `
let conditionCalls = 0;
export default function (gateway) {
  gateway.register("auto", async (ctx) => {
    const inp = ctx.input;
    const autoApprove = {};
    if (inp.after !== undefined) autoApprove.after = inp.after;
    if (inp.revertOn !== undefined) autoApprove.revertOn = inp.revertOn;
    if (inp.condition !== undefined) autoApprove.condition = () => { conditionCalls++; return inp.condition; };
    const d = await ctx.approval("ship", { mode: inp.mode, options: inp.options, autoApprove });
    if (inp.later) await ctx.approval("later", {});
    return { d, conditionCalls };
  });
}`

type approvalOutput struct {
	D struct {
		Approved  bool            `json:"approved"`
		Note      string          `json:"note"`
		DecidedBy string          `json:"decidedBy"`
		Value     json.RawMessage `json:"value"`
	} `json:"d"`
	ConditionCalls int `json:"conditionCalls"`
}

func (h *harness) approvalOutput(id string) approvalOutput {
	h.t.Helper()
	b, _ := json.Marshal(h.output(id))
	var out approvalOutput
	if err := json.Unmarshal(b, &out); err != nil {
		h.t.Fatal(err)
	}
	return out
}

func (h *harness) approvalRow(id, node string) host.Approval {
	h.t.Helper()
	as, err := h.store.ListApprovals(context.Background(), host.ApprovalFilter{RunID: id})
	if err != nil {
		h.t.Fatal(err)
	}
	for _, a := range as {
		if a.NodeID == node {
			return a
		}
	}
	h.t.Fatalf("run %s has no approval %s", id, node)
	return host.Approval{}
}

// assertAutoApproved checks what a user sees of an auto-approval: the
// decision ctx.approval returned, the approval row, the event.
func assertAutoApproved(t *testing.T, h *harness, id string) approvalOutput {
	t.Helper()
	out := h.approvalOutput(id)
	if !out.D.Approved || out.D.DecidedBy != "smithers:auto" || out.D.Note != "Auto-approved" {
		t.Fatalf("run %s decision %+v, want auto-approved", id, out.D)
	}
	if a := h.approvalRow(id, "ship"); !a.AutoApproved || a.Status != host.ApprovalApproved || a.DecidedBy != "smithers:auto" {
		t.Fatalf("run %s approval row %+v, want auto-approved", id, a)
	}
	if names := h.eventNames(id); !slices.Contains(names, "approval.auto_approved:ship") {
		t.Fatalf("run %s events %v lack approval.auto_approved", id, names)
	}
	return out
}

// assertWaits checks that the run waits for a manual decision on "ship".
func assertWaits(t *testing.T, h *harness, id string) {
	t.Helper()
	h.waitStatus(id, host.RunWaitingApproval)
	if a := h.approvalRow(id, "ship"); a.Status != host.ApprovalRequested || a.AutoApproved {
		t.Fatalf("run %s approval row %+v, want requested", id, a)
	}
	if names := h.eventNames(id); slices.Contains(names, "approval.auto_approved:ship") {
		t.Fatalf("run %s events %v: auto-approved", id, names)
	}
}

func TestAutoApproveAfterManualApprovals(t *testing.T) {
	h := newHarness(t, autoApproveModule)
	in := map[string]any{"after": 2, "condition": true}
	for range 2 {
		id := h.launch("auto", in)
		assertWaits(t, h, id)
		// The stored request shows the option with the condition's result.
		var req struct {
			AutoApprove map[string]any `json:"autoApprove"`
		}
		if err := json.Unmarshal([]byte(h.approvalRow(id, "ship").RequestJSON), &req); err != nil {
			t.Fatal(err)
		}
		jsonEqual(t, req.AutoApprove, `{"after":2,"condition":true}`)
		if err := h.approve(id, "ship", true, nil); err != nil {
			t.Fatal(err)
		}
		if out := h.approvalOutput(id); out.D.DecidedBy != "alice" {
			t.Fatalf("manual decision %+v", out.D)
		}
	}
	assertAutoApproved(t, h, h.launch("auto", in))
}

func TestAutoApproveRule(t *testing.T) {
	h := newHarness(t, autoApproveModule)
	// after absent: approved at once.
	if out := assertAutoApproved(t, h, h.launch("auto", map[string]any{})); string(out.D.Value) != "null" || out.ConditionCalls != 0 {
		t.Fatalf("gate auto-approval %+v", out)
	}
	assertAutoApproved(t, h, h.launch("auto", map[string]any{"after": 0, "condition": true}))
	// A condition function returning false, or revertOn true, prevents it.
	assertWaits(t, h, h.launch("auto", map[string]any{"condition": false}))
	assertWaits(t, h, h.launch("auto", map[string]any{"revertOn": true}))
	// select takes the first option, rank the options in their order.
	options := []map[string]any{{"key": "blue", "label": "Blue"}, {"key": "green", "label": "Green"}}
	out := assertAutoApproved(t, h, h.launch("auto", map[string]any{"mode": "select", "options": options}))
	jsonEqual(t, out.D.Value, `{"selected":"blue"}`)
	out = assertAutoApproved(t, h, h.launch("auto", map[string]any{"mode": "rank", "options": options}))
	jsonEqual(t, out.D.Value, `{"ranked":["blue","green"]}`)
}

// TestAutoApproveIsNotEvaluatedOnReplay: a replay of an auto-approved run
// takes the decision from the journal without calling condition again.
func TestAutoApproveIsNotEvaluatedOnReplay(t *testing.T) {
	h := newHarness(t, autoApproveModule)
	id := h.launch("auto", map[string]any{"condition": true, "later": true})
	h.waitStatus(id, host.RunWaitingApproval)
	if n := h.nodes(id)["ship"]; n.State != host.NodeFinished {
		t.Fatalf("ship is %s, want auto-approved before the run waits on later", n.State)
	}
	h.restart()
	if err := h.approve(id, "later", true, nil); err != nil {
		t.Fatal(err)
	}
	if out := assertAutoApproved(t, h, id); out.ConditionCalls != 0 {
		t.Fatalf("the restarted gateway called condition %d times replaying the run", out.ConditionCalls)
	}
}

func TestAutoApproveMistakes(t *testing.T) {
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("bad", async (ctx) => {
    const autoApprove = {
      throws: { condition: () => { throw new Error("no config"); } },
      string: { revertOn: () => "yes" },
      async: { condition: async () => true },
      notFn: { condition: "yes" },
      after: { after: 1.5 },
    }[ctx.input.kind];
    await ctx.approval("ship", { autoApprove });
  });
}`)
	for kind, want := range map[string]string{
		"throws": `ctx.approval("ship") options.autoApprove.condition threw: Error: no config`,
		"string": `ctx.approval("ship") options.autoApprove.revertOn must return a boolean, got string "yes"`,
		"async":  `ctx.approval("ship") options.autoApprove.condition must return a boolean, got a Promise (it is called synchronously: not an async function)`,
		"notFn":  `ctx.approval("ship") options.autoApprove.condition must be a boolean or a function returning one, got string "yes"`,
		"after":  `ctx.approval("ship") options.autoApprove.after must be a whole number of earlier approvals, got 1.5`,
	} {
		id := h.launch("bad", map[string]any{"kind": kind})
		e := h.errorOf(id)
		if e["name"] != "TypeError" || !strings.Contains(e["message"].(string), want) {
			t.Fatalf("%s: error %v, want a TypeError with %q", kind, e, want)
		}
	}
}
