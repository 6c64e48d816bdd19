package host_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// approvalFlow is a workflow that runs task "prep" (its body waits for
// gate, when set) and then asks approval "ship" with the spec spec gives,
// and outputs the approval's result.
func approvalFlow(gate <-chan struct{}, spec func(s *host.Session) host.ApprovalSpec) func(s *host.Session) {
	return func(s *host.Session) {
		if n, ok := s.Lookup("prep", 0); !ok || n.State != host.NodeFinished {
			_, attempt, err := s.BeginTask("prep", 0, "", "")
			if err != nil {
				return
			}
			if gate != nil {
				<-gate
			}
			if _, err := s.FinishTask("prep", 0, attempt, `1`); err != nil {
				return
			}
		}
		if _, ok := s.Lookup("ship", 0); !ok {
			if _, err := s.RequestApproval("ship", 0, spec(s)); err != nil {
				return
			}
		}
		for {
			n, _ := s.Lookup("ship", 0)
			if n.State.Settled() {
				s.Complete(n.OutputJSON)
				return
			}
			// Park fails when a decision is on its way: look again.
			if parked, _, err := s.Park(nil); parked || err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
}

func gateSpec(req string) func(*host.Session) host.ApprovalSpec {
	return func(*host.Session) host.ApprovalSpec { return host.ApprovalSpec{RequestJSON: req, OnDeny: "fail"} }
}

func TestApprovalRestrictionsHoldAgainstARacingCaller(t *testing.T) {
	gate := make(chan struct{})
	e := newEngine(t, approvalFlow(gate, gateSpec(`{"mode":"gate","allowedUsers":["alice"],"allowedScopes":["approve"]}`)), engineOpts{})
	ctx := context.Background()
	r, _, err := e.gw.LaunchRun(ctx, host.LaunchInput{Workflow: "wf"})
	if err != nil {
		t.Fatal(err)
	}
	// Mallory decides as fast as she can from before the approval exists
	// until well after; so does a caller with alice's id but no scope.
	stop := make(chan struct{})
	var decidedByIntruder atomic.Bool
	var tries atomic.Int64
	var wg sync.WaitGroup
	for _, who := range []host.DecisionInput{
		{By: host.Identity{UserID: "mallory", Scopes: []string{"*"}}, ScopesAllow: func([]string) bool { return true }},
		{By: host.Identity{UserID: "alice", Scopes: []string{"run:read"}}, ScopesAllow: func([]string) bool { return false }},
	} {
		wg.Add(1)
		go func(in host.DecisionInput) {
			defer wg.Done()
			in.RunID, in.NodeID, in.Approved = r.RunID, "ship", true
			for {
				select {
				case <-stop:
					return
				default:
				}
				tries.Add(1)
				if err := e.gw.SubmitApproval(ctx, in); err == nil {
					decidedByIntruder.Store(true)
					return
				}
			}
		}(who)
	}
	for tries.Load() < 200 {
		time.Sleep(time.Millisecond)
	}
	close(gate)
	e.waitStatus(r.RunID, host.RunWaitingApproval)
	before := tries.Load()
	for tries.Load() < before+200 {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if decidedByIntruder.Load() {
		t.Fatal("a caller outside allowedUsers/allowedScopes decided the approval")
	}
	err = e.gw.SubmitApproval(ctx, host.DecisionInput{RunID: r.RunID, NodeID: "ship", Approved: true,
		By: host.Identity{UserID: "alice", Scopes: []string{"approval:submit"}}, ScopesAllow: func([]string) bool { return true }})
	if err != nil {
		t.Fatalf("alice's decision: %v", err)
	}
	e.waitStatus(r.RunID, host.RunFinished)
	as, _ := e.store.ListApprovals(ctx, host.ApprovalFilter{RunID: r.RunID})
	if len(as) != 1 || as[0].DecidedBy != "alice" {
		t.Fatalf("approval after the race = %+v, want decided by alice", as)
	}
}

func TestAutoApproveAfterManualApprovals(t *testing.T) {
	ctx := context.Background()
	// The run input says whether the condition holds.
	spec := func(s *host.Session) host.ApprovalSpec {
		var in struct {
			Cond *bool `json:"cond"`
		}
		_ = json.Unmarshal([]byte(s.Run().InputJSON), &in)
		cond := in.Cond == nil || *in.Cond
		return host.ApprovalSpec{OnDeny: "continue", RequestJSON: `{"mode":"select","options":[{"key":"blue","label":"Blue"},{"key":"green","label":"Green"}]}`,
			AutoApprove: &host.AutoApprove{After: 2, Condition: cond}}
	}
	e := newEngine(t, approvalFlow(nil, spec), engineOpts{})
	launch := func(input string) string {
		r, _, err := e.gw.LaunchRun(ctx, host.LaunchInput{Workflow: "wf", InputJSON: input})
		if err != nil {
			t.Fatal(err)
		}
		return r.RunID
	}
	decide := func(runID string, approved bool) {
		e.waitStatus(runID, host.RunWaitingApproval)
		err := e.gw.SubmitApproval(ctx, host.DecisionInput{RunID: runID, NodeID: "ship", Approved: approved,
			Decision: json.RawMessage(`{"approved":` + fmt.Sprint(approved) + `,"selected":"green"}`), By: host.Identity{UserID: "bob"}})
		if err != nil {
			t.Fatal(err)
		}
		e.waitStatus(runID, host.RunFinished)
	}
	approval := func(runID string) host.Approval {
		as, _ := e.store.ListApprovals(ctx, host.ApprovalFilter{RunID: runID})
		if len(as) != 1 {
			t.Fatalf("run %s has %d approvals", runID, len(as))
		}
		return as[0]
	}
	autoApproved := func(runID string) {
		t.Helper()
		r := e.waitStatus(runID, host.RunFinished)
		a := approval(runID)
		if !a.AutoApproved || a.DecidedBy != host.AutoDecidedBy || a.Note != "Auto-approved" {
			t.Fatalf("run %s approval = %+v, want auto-approved by smithers:auto", runID, a)
		}
		var out struct {
			Approved bool            `json:"approved"`
			Value    json.RawMessage `json:"value"`
		}
		_ = json.Unmarshal([]byte(r.OutputJSON), &out)
		if !out.Approved || string(out.Value) != `{"selected":"blue"}` {
			t.Fatalf("auto-approved select resolves to %s, want approved with the first option", r.OutputJSON)
		}
		evs, _ := e.store.ListEvents(ctx, runID, 0, 0)
		found := false
		for _, ev := range evs {
			found = found || ev.Name == host.EventApprovalAutoApproved
		}
		if !found {
			t.Fatalf("run %s has no approval.auto_approved event", runID)
		}
	}
	decide(launch(`{}`), true) // no history: asks
	decide(launch(`{}`), true) // one manual approval: asks
	autoApproved(launch(`{}`)) // two manual approvals: approves
	autoApproved(launch(`{}`)) // auto-approvals do not count against it
	decide(launch(`{"cond":false}`), false)
	// The denial resets the count: the next one asks again.
	next := launch(`{}`)
	e.waitStatus(next, host.RunWaitingApproval)
	if a := approval(next); a.Status != host.ApprovalRequested {
		t.Fatalf("after a denial the approval is %s, want it requested", a.Status)
	}
}
