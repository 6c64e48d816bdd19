package api

import (
	"encoding/json"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
)

func nullInt(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// runRow renders a run as the runs-table row of docs/rpc.md plus
// workflowKey.
func runRow(r host.Run) map[string]any {
	return map[string]any{
		"runId":               r.RunID,
		"parentRunId":         nullString(r.ParentRunID),
		"workflowName":        r.WorkflowKey,
		"workflowPath":        nullString(r.WorkflowPath),
		"workflowHash":        nullString(r.WorkflowHash),
		"status":              string(r.Status),
		"createdAtMs":         r.CreatedAtMs,
		"startedAtMs":         nullInt(r.StartedAtMs),
		"finishedAtMs":        nullInt(r.FinishedAtMs),
		"heartbeatAtMs":       nullInt(r.HeartbeatAtMs),
		"runtimeOwnerId":      nullString(r.RuntimeOwnerID),
		"cancelRequestedAtMs": nullInt(r.CancelRequestedAtMs),
		"hijackRequestedAtMs": nil,
		"hijackTarget":        nil,
		"vcsType":             nil,
		"vcsRoot":             nil,
		"vcsRevision":         nil,
		"errorJson":           nullString(r.ErrorJSON),
		"configJson":          nullString(r.ConfigJSON),
		"workflowKey":         r.WorkflowKey,
	}
}

// runDetail renders getRun's payload: the row, summary, runState, output
// and input. input (the run's input object) goes beyond upstream; the
// console shows it.
func runDetail(d host.RunDetail) map[string]any {
	row := runRow(d.Run)
	row["summary"] = d.Summary
	row["runState"] = runStateView(d.State)
	var out, in any
	if d.Run.OutputJSON != "" {
		out = json.RawMessage(d.Run.OutputJSON)
	}
	if d.Run.InputJSON != "" {
		in = json.RawMessage(d.Run.InputJSON)
	}
	row["output"] = out
	row["input"] = in
	return row
}

func runStateView(v host.RunStateView) map[string]any {
	m := map[string]any{"runId": v.RunID, "state": v.State, "computedAt": v.ComputedAt.UTC().Format("2006-01-02T15:04:05.000Z")}
	if v.Blocked != nil {
		m["blocked"] = v.Blocked
	}
	if v.Unhealthy != nil {
		m["unhealthy"] = v.Unhealthy
	}
	return m
}

// approvalSummary renders a pending approval as GatewayApprovalSummary
// (docs/rpc.md).
func approvalSummary(a host.Approval) map[string]any {
	var req struct {
		Title         any               `json:"title"`
		Summary       any               `json:"summary"`
		Mode          string            `json:"mode"`
		Options       []json.RawMessage `json:"options"`
		AllowedScopes []any             `json:"allowedScopes"`
		AllowedUsers  []any             `json:"allowedUsers"`
		AutoApprove   json.RawMessage   `json:"autoApprove"`
	}
	_ = json.Unmarshal([]byte(a.RequestJSON), &req)
	title, _ := req.Title.(string)
	if title == "" {
		title = a.NodeID
	}
	summary, _ := req.Summary.(string)
	mode := req.Mode
	if mode != "select" && mode != "rank" && mode != "decision" {
		mode = "gate"
	}
	options := []map[string]any{}
	for _, raw := range req.Options {
		var o map[string]any
		if json.Unmarshal(raw, &o) != nil {
			continue
		}
		k, kok := o["key"].(string)
		l, lok := o["label"].(string)
		if !kok || !lok {
			continue
		}
		opt := map[string]any{"key": k, "label": l}
		if s, ok := o["summary"].(string); ok {
			opt["summary"] = s
		}
		options = append(options, opt)
	}
	strs := func(in []any) []string {
		out := []string{}
		for _, v := range in {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	var auto any
	if len(req.AutoApprove) > 0 && string(req.AutoApprove) != "null" && req.AutoApprove[0] == '{' {
		auto = req.AutoApprove
	}
	return map[string]any{
		"runId": a.RunID, "nodeId": a.NodeID, "workflowKey": a.WorkflowKey, "iteration": a.Iteration,
		"requestTitle": title, "requestSummary": nullString(summary), "requestedAtMs": nullInt(a.RequestedAtMs),
		"approvalMode": mode, "options": options, "allowedScopes": strs(req.AllowedScopes), "allowedUsers": strs(req.AllowedUsers),
		"autoApprove": auto,
	}
}

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
