package host_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/testkit"
)

// logLines returns the engine's log records with that message.
func (e *engine) logLines(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(e.logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func TestRunLifecycleIsLoggedAndRetriesReachTheStream(t *testing.T) {
	ctx := context.Background()
	var tries atomic.Int32
	e := newEngine(t, func(s *host.Session) {
		n, found := s.Lookup("flaky", 0)
		if !found || n.State != host.NodeFinished {
			var attempt int
			var err error
			if found {
				_, attempt, err = s.StartAttempt("flaky", 0)
			} else {
				_, attempt, err = s.BeginTask("flaky", 0, "", "")
			}
			if err != nil {
				return
			}
			if tries.Add(1) == 1 {
				_, _ = s.FailAttempt("flaky", 0, attempt, `{"name":"Error","code":"TASK_FAILED","message":"connection reset"}`, false)
				_, attempt, err = s.StartAttempt("flaky", 0)
				if err != nil {
					return
				}
			}
			if _, err := s.FinishTask("flaky", 0, attempt, `1`); err != nil {
				return
			}
		}
		if _, ok := s.Lookup("ok", 0); !ok {
			if _, err := s.RequestApproval("ok", 0, host.ApprovalSpec{RequestJSON: `{"mode":"gate"}`, OnDeny: "fail"}); err != nil {
				return
			}
		}
		if n, _ := s.Lookup("ok", 0); !n.State.Settled() {
			_, _, _ = s.Park(nil)
			return
		}
		s.Complete(`"done"`)
	}, engineOpts{})
	r, _, err := e.gw.LaunchRun(ctx, host.LaunchInput{Workflow: "wf"})
	if err != nil {
		t.Fatal(err)
	}
	e.waitStatus(r.RunID, host.RunWaitingApproval)
	if err := e.gw.SubmitApproval(ctx, host.DecisionInput{RunID: r.RunID, NodeID: "ok", Approved: true}); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(r.RunID, host.RunFinished)
	// The finish is logged after its commit, which the status read above
	// may see first.
	testkit.Eventually(t, 5*time.Second, "the run finished log line", func() bool { return len(e.logLines("run finished")) > 0 })
	for _, msg := range []string{"run started", "task attempt failed; it will be retried", "run parked", "run woken", "run finished"} {
		lines := e.logLines(msg)
		if len(lines) != 1 || lines[0]["runId"] != r.RunID || lines[0]["workflow"] != "wf" {
			t.Errorf("log %q: %v, want one line with the run id and workflow", msg, lines)
		}
	}
	evs, _ := e.store.ListEvents(ctx, r.RunID, 0, 0)
	var retrying *host.Event
	for i := range evs {
		if evs[i].Name == host.EventNodeRetrying {
			retrying = &evs[i]
		}
	}
	if retrying == nil || !strings.Contains(string(retrying.Payload), "connection reset") {
		t.Fatalf("no node.retrying event carrying the attempt's error in %v", evs)
	}
}

func TestCancelledRunSettlesItsRunningAttempt(t *testing.T) {
	gate := make(chan struct{})
	defer close(gate)
	e := newEngine(t, oneTask(gate), engineOpts{})
	ctx := context.Background()
	r, _, err := e.gw.LaunchRun(ctx, host.LaunchInput{Workflow: "wf"})
	if err != nil {
		t.Fatal(err)
	}
	e.waitFor("the attempt to start", func() bool { a, _ := e.store.ListAttempts(ctx, r.RunID, "a", 0); return len(a) == 1 })
	if err := e.gw.CancelRun(ctx, r.RunID); err != nil {
		t.Fatal(err)
	}
	e.waitStatus(r.RunID, host.RunCancelled)
	atts, _ := e.store.ListAttempts(ctx, r.RunID, "a", 0)
	if len(atts) != 1 || atts[0].State != host.AttemptFailed || atts[0].FinishedAtMs == 0 || host.ErrorCodeOfJSON(atts[0].ErrorJSON) != host.CodeCancelled {
		t.Fatalf("attempt of a cancelled run = %+v, want it failed with CANCELLED and a finish time", atts)
	}
}
