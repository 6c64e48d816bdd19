package runs

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/api/client"
)

func ev(seq int64, name, payload string) client.RunEvent {
	return client.RunEvent{Seq: seq, Event: name, Payload: json.RawMessage(payload)}
}

// TestNodes: the nodes of a run that retried a task, waits on an approval
// and an event, and slept, from its events, attempts and approvals.
func TestNodes(t *testing.T) {
	events := []client.RunEvent{
		ev(1, "node.pending", `{"runId":"r","nodeId":"build","state":"pending"}`),
		ev(2, "node.started", `{"runId":"r","nodeId":"build","state":"in-progress"}`),
		ev(3, "node.retrying", `{"runId":"r","nodeId":"build","iteration":0,"attempt":1,"error":{"name":"Error","message":"flaky"}}`),
		ev(4, "node.started", `{"runId":"r","nodeId":"build","state":"in-progress"}`),
		ev(5, "node.finished", `{"runId":"r","nodeId":"build","state":"finished"}`),
		ev(6, "node.pending", `{"runId":"r","nodeId":"ship","state":"waiting-approval"}`),
		ev(7, "approval.requested", `{"runId":"r","nodeId":"ship","iteration":0}`),
		ev(8, "node.waiting_approval", `{"runId":"r","nodeId":"ship","state":"waiting-approval"}`),
		ev(9, "node.pending", `{"runId":"r","nodeId":"nap","state":"pending"}`),
		ev(10, "node.finished", `{"runId":"r","nodeId":"nap","state":"finished"}`),
		ev(11, "node.pending", `{"runId":"r","nodeId":"test","state":"pending"}`),
		ev(12, "node.failed", `{"runId":"r","nodeId":"test","state":"failed","error":{"name":"SmithersError","code":"TASK_FAILED","message":"Task test failed after 1 attempt(s): boom"}}`),
		ev(13, "node.pending", `{"runId":"r","nodeId":"paid","state":"pending"}`),
		ev(14, "run.completed", `{"runId":"r","status":"failed"}`),
	}
	attempts := []client.Attempt{
		{NodeID: "build", Attempt: 2, State: "finished"},
		{NodeID: "build", Attempt: 1, State: "failed", ErrorJSON: `{"message":"flaky"}`},
		{NodeID: "test", Attempt: 1, State: "failed"},
		// A node whose events the gateway no longer keeps.
		{NodeID: "old", Attempt: 1, State: "finished"},
	}
	approvals := []client.ApprovalSummary{{NodeID: "ship", RequestTitle: "Ship it?"}}
	got := Nodes(NodeSources{Events: events, Attempts: attempts, Approvals: approvals,
		Blocked: map[string]any{"kind": "event", "nodeId": "paid", "correlationKey": "o-1"}})
	want := []string{
		"build task finished 2 ",
		"ship approval waiting-approval 0 asks: Ship it?",
		"nap  finished 0 ",
		"test task failed 1 ",
		"paid event waiting-event 0 waits for o-1",
		"old task finished 1 ",
	}
	if len(got) != len(want) {
		t.Fatalf("nodes %+v, want %d", got, len(want))
	}
	for i, n := range got {
		if s := fmt.Sprintf("%s %s %s %d %s", n.NodeID, n.Kind, n.State, n.Attempts, n.Detail); s != want[i] {
			t.Errorf("node %d = %q, want %q", i, s, want[i])
		}
	}
	if s := errorSummary(got[3].Error, 0); s != "TASK_FAILED: Task test failed after 1 attempt(s): boom" {
		t.Errorf("error of test = %q", s)
	}
}

func TestEventLine(t *testing.T) {
	c := &CLI{Location: time.UTC}
	at := time.Date(2026, 1, 2, 15, 4, 5, 123e6, time.UTC)
	for _, tc := range []struct {
		e    client.RunEvent
		want string
	}{
		{ev(3, "node.started", `{"runId":"r","nodeId":"draft","state":"in-progress"}`),
			"15:04:05.123  #3    node.started             draft            in-progress"},
		{ev(4, "task.output", `{"runId":"r","nodeId":"draft","output":"line one\nline two\n","stream":"stdout"}`),
			"15:04:05.123  #4    task.output              draft            stdout: line one⏎line two"},
		{ev(5, "node.retrying", `{"runId":"r","nodeId":"draft","iteration":0,"attempt":1,"error":{"name":"TypeError","message":"fetch failed"}}`),
			"15:04:05.123  #5    node.retrying            draft            attempt 1 failed, will retry: TypeError: fetch failed"},
		{ev(6, "approval.decided", `{"runId":"r","nodeId":"ship","iteration":0,"approved":false}`),
			"15:04:05.123  #6    approval.decided         ship             denied"},
		{ev(7, "approval.requested", `{"runId":"r","nodeId":"ship","iteration":0}`),
			"15:04:05.123  #7    approval.requested       ship"},
		{ev(12, "run.completed", `{"runId":"r","status":"failed","error":{"code":"APPROVAL_DENIED","message":"Approval ship was denied"}}`),
			"15:04:05.123  #12   run.completed                             failed: APPROVAL_DENIED: Approval ship was denied"},
		{ev(13, "cron.whatever", `{"runId":"r","x":1}`),
			`15:04:05.123  #13   cron.whatever                             {"runId":"r","x":1}`},
	} {
		if got := c.EventLine(tc.e, at); got != tc.want {
			t.Errorf("EventLine(%s)\n got %q\nwant %q", tc.e.Event, got, tc.want)
		}
	}
}

func TestCut(t *testing.T) {
	for _, tc := range []struct {
		in    string
		width int
		want  string
	}{
		{"short", 10, "short"},
		{"a\nb\n", 10, "a⏎b"},
		{"héllo wörld", 6, "héllo…"},
		{"exactly", 7, "exactly"},
	} {
		if got := cut(tc.in, tc.width); got != tc.want {
			t.Errorf("cut(%q, %d) = %q, want %q", tc.in, tc.width, got, tc.want)
		}
	}
}
