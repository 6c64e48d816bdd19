package api

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// mapRunRow is the runs-table row as a map, as the API rendered it before
// rows were typed: the typed rows must encode to the same bytes.
func mapRunRow(r host.Run) map[string]any {
	return map[string]any{
		"runId": r.RunID, "parentRunId": nullString(r.ParentRunID), "workflowName": r.WorkflowKey,
		"workflowPath": nullString(r.WorkflowPath), "workflowHash": nullString(r.WorkflowHash), "status": string(r.Status),
		"createdAtMs": r.CreatedAtMs, "startedAtMs": nullInt(r.StartedAtMs), "finishedAtMs": nullInt(r.FinishedAtMs),
		"heartbeatAtMs": nullInt(r.HeartbeatAtMs), "runtimeOwnerId": nullString(r.RuntimeOwnerID),
		"cancelRequestedAtMs": nullInt(r.CancelRequestedAtMs), "hijackRequestedAtMs": nil, "hijackTarget": nil,
		"vcsType": nil, "vcsRoot": nil, "vcsRevision": nil, "errorJson": nullString(r.ErrorJSON),
		"configJson": nullString(r.ConfigJSON), "workflowKey": r.WorkflowKey,
	}
}

func mapRunDetail(d host.RunDetail) map[string]any {
	row := mapRunRow(d.Run)
	row["summary"] = d.Run.NodeCounts.Summary()
	st := map[string]any{"runId": d.State.RunID, "state": d.State.State, "computedAt": isoTime(d.State.ComputedAt)}
	if b := d.State.Blocked; b != nil {
		m := map[string]any{"kind": b.Kind, "nodeId": b.NodeID}
		switch b.Kind {
		case "approval":
			m["requestedAt"] = b.RequestedAt
		case "timer":
			m["wakeAt"] = b.WakeAt
		case "event":
			m["correlationKey"] = b.CorrelationKey
		}
		st["blocked"] = m
	}
	if u := d.State.Unhealthy; u != nil {
		st["unhealthy"] = map[string]any{"kind": u.Kind, "lastHeartbeatAt": u.LastHeartbeatAt}
	}
	row["runState"] = st
	var out, in any
	if d.Run.OutputJSON != "" {
		out = json.RawMessage(d.Run.OutputJSON)
	}
	if d.Run.InputJSON != "" {
		in = json.RawMessage(d.Run.InputJSON)
	}
	row["output"], row["input"] = out, in
	return row
}

// TestTypedRunRenderingMatchesTheMaps: getRun's payload and a listRuns row
// encode byte for byte as the maps they replaced, null columns, escaped
// texts, counts and every kind of blocked included.
func TestTypedRunRenderingMatchesTheMaps(t *testing.T) {
	full := host.Run{RunID: "r1", ParentRunID: "p<1>", WorkflowKey: "deploy", WorkflowPath: "/w/gateway.mjs", WorkflowHash: "abc",
		Status: host.RunWaitingApproval, CreatedAtMs: 1, StartedAtMs: 2, FinishedAtMs: 3, HeartbeatAtMs: 4, RuntimeOwnerID: "me",
		CancelRequestedAtMs: 5, ErrorJSON: `{"code":"X","message":"a & b"}`, ConfigJSON: `{"k":"\u2028"}`, InputJSON: `{"a":1}`,
		OutputJSON: `[1,2]`, LeaseEpoch: 3}
	full.NodeCounts.Add(host.NodeFinished, 2)
	full.NodeCounts.Add(host.NodeWaitingApproval, 1)
	full.NodeCounts.Add(host.NodeInProgress, 1)
	now := time.UnixMilli(1_700_000_000_123)
	for _, d := range []host.RunDetail{
		{Run: full, State: host.RunStateView{RunID: "r1", State: "waiting-approval", ComputedAt: now,
			Blocked: &host.RunBlocked{Kind: "approval", NodeID: "ship", RequestedAt: "2026-01-01T00:00:00.000Z"}}},
		{Run: host.Run{RunID: "r2", WorkflowKey: "w", Status: host.RunRunning, CreatedAtMs: 9}, State: host.RunStateView{RunID: "r2", State: "stale", ComputedAt: now,
			Unhealthy: &host.RunUnhealthy{Kind: "engine-heartbeat-stale", LastHeartbeatAt: "2026-01-01T00:00:00.000Z"}}},
		{Run: full, State: host.RunStateView{RunID: "r1", State: "waiting-timer", ComputedAt: now,
			Blocked: &host.RunBlocked{Kind: "timer", NodeID: "nap", WakeAt: "2026-01-01T00:00:00.000Z"}}},
		{Run: full, State: host.RunStateView{RunID: "r1", State: "waiting-event", ComputedAt: now,
			Blocked: &host.RunBlocked{Kind: "event", NodeID: "pay", CorrelationKey: ""}}},
		{Run: full, State: host.RunStateView{RunID: "r1", State: "waiting-event", ComputedAt: now,
			Blocked: &host.RunBlocked{Kind: "event", NodeID: "pay", CorrelationKey: "o-1"}}},
	} {
		got, err := json.Marshal(okFrame("id", runDetail(d)))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(map[string]any{"type": "res", "id": "id", "ok": true, "apiVersion": "v1", "payload": mapRunDetail(d)})
		if string(got) != string(want) {
			t.Errorf("getRun payload\n got %s\nwant %s", got, want)
		}
		if viaAppend := appendOKFrame(nil, "id", runDetail(d)); string(viaAppend) != string(want) {
			t.Errorf("appended getRun payload\n got %s\nwant %s", viaAppend, want)
		}
		got, _ = json.Marshal(runRow(d.Run))
		want, _ = json.Marshal(mapRunRow(d.Run))
		if string(got) != string(want) {
			t.Errorf("run row\n got %s\nwant %s", got, want)
		}
	}
	gotErr, _ := json.Marshal(func() any { f, _ := errorFrame("id", host.Errorf(host.CodeNotFound, "Run not found: x")); return f }())
	wantErr, _ := json.Marshal(map[string]any{"type": "res", "id": "id", "ok": false, "apiVersion": "v1",
		"error": map[string]any{"version": "v1", "code": host.CodeNotFound, "message": "Run not found: x"}})
	if string(gotErr) != string(wantErr) {
		t.Errorf("error frame\n got %s\nwant %s", gotErr, wantErr)
	}
}

// FuzzAppendJSON: the appended encodings of a string and of stored JSON
// text are encoding/json's, for any input.
func FuzzAppendJSON(f *testing.F) {
	for _, s := range []string{"", "plain", `quote " and \\ back`, "<tag> & co", "ctl \x00\x01\b\f\n\r\t\x1f\x7f",
		"bad \xff utf8 \xe2\x80", "sep \u2028 \u2029 €", `{"a": [1, 2], "b": "<x>"}`, " [ true , null ] ", `"\u2028"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("string %q: got %s, want %s", s, got, want)
		}
		if s == "" || !json.Valid([]byte(s)) {
			return
		}
		want, err := json.Marshal(json.RawMessage(s))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendRawJSON(nil, s); string(got) != string(want) {
			t.Fatalf("raw %q: got %s, want %s", s, got, want)
		}
	})
}
