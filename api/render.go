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

// runRowJSON is the runs-table row of docs/rpc.md plus workflowKey. Its
// fields are in the order of their names, as encoding/json wrote the map
// this row used to be. Unset times and texts are nil pointers, rendered
// null like upstream's NULL columns; pointers rather than types with a
// MarshalJSON method, which encoding/json calls and then re-validates field
// by field.
type runRowJSON struct {
	CancelRequestedAtMs *int64  `json:"cancelRequestedAtMs"`
	ConfigJSON          *string `json:"configJson"`
	CreatedAtMs         int64   `json:"createdAtMs"`
	ErrorJSON           *string `json:"errorJson"`
	FinishedAtMs        *int64  `json:"finishedAtMs"`
	HeartbeatAtMs       *int64  `json:"heartbeatAtMs"`
	HijackRequestedAtMs *int64  `json:"hijackRequestedAtMs"`
	HijackTarget        *int64  `json:"hijackTarget"`
	ParentRunID         *string `json:"parentRunId"`
	RunID               string  `json:"runId"`
	RuntimeOwnerID      *string `json:"runtimeOwnerId"`
	StartedAtMs         *int64  `json:"startedAtMs"`
	Status              string  `json:"status"`
	VCSRevision         *int64  `json:"vcsRevision"`
	VCSRoot             *int64  `json:"vcsRoot"`
	VCSType             *int64  `json:"vcsType"`
	WorkflowHash        *string `json:"workflowHash"`
	WorkflowKey         string  `json:"workflowKey"`
	WorkflowName        string  `json:"workflowName"`
	WorkflowPath        *string `json:"workflowPath"`
}

// orNil points at v, or is nil for v's zero value.
func orNil[T comparable](v *T) *T {
	var zero T
	if *v == zero {
		return nil
	}
	return v
}

// runRow renders a run as the runs-table row of docs/rpc.md plus
// workflowKey.
func runRow(run host.Run) runRowJSON {
	r := &run // the row points into this copy
	return runRowJSON{
		CancelRequestedAtMs: orNil(&r.CancelRequestedAtMs), ConfigJSON: orNil(&r.ConfigJSON), CreatedAtMs: r.CreatedAtMs,
		ErrorJSON: orNil(&r.ErrorJSON), FinishedAtMs: orNil(&r.FinishedAtMs), HeartbeatAtMs: orNil(&r.HeartbeatAtMs),
		ParentRunID: orNil(&r.ParentRunID), RunID: r.RunID, RuntimeOwnerID: orNil(&r.RuntimeOwnerID),
		StartedAtMs: orNil(&r.StartedAtMs), Status: string(r.Status), WorkflowHash: orNil(&r.WorkflowHash),
		WorkflowKey: r.WorkflowKey, WorkflowName: r.WorkflowKey, WorkflowPath: orNil(&r.WorkflowPath),
	}
}

// runDetailJSON is getRun's payload: the row with summary, runState, output
// and input, in name order as runRowJSON. input (the run's input object)
// goes beyond upstream; the console shows it.
type runDetailJSON struct {
	CancelRequestedAtMs *int64          `json:"cancelRequestedAtMs"`
	ConfigJSON          *string         `json:"configJson"`
	CreatedAtMs         int64           `json:"createdAtMs"`
	ErrorJSON           *string         `json:"errorJson"`
	FinishedAtMs        *int64          `json:"finishedAtMs"`
	HeartbeatAtMs       *int64          `json:"heartbeatAtMs"`
	HijackRequestedAtMs *int64          `json:"hijackRequestedAtMs"`
	HijackTarget        *int64          `json:"hijackTarget"`
	Input               json.RawMessage `json:"input"`
	Output              json.RawMessage `json:"output"`
	ParentRunID         *string         `json:"parentRunId"`
	RunID               string          `json:"runId"`
	RunState            runStateJSON    `json:"runState"`
	RuntimeOwnerID      *string         `json:"runtimeOwnerId"`
	StartedAtMs         *int64          `json:"startedAtMs"`
	Status              string          `json:"status"`
	Summary             summaryJSON     `json:"summary"`
	VCSRevision         *int64          `json:"vcsRevision"`
	VCSRoot             *int64          `json:"vcsRoot"`
	VCSType             *int64          `json:"vcsType"`
	WorkflowHash        *string         `json:"workflowHash"`
	WorkflowKey         string          `json:"workflowKey"`
	WorkflowName        string          `json:"workflowName"`
	WorkflowPath        *string         `json:"workflowPath"`
}

// runDetail renders getRun's payload.
func runDetail(d host.RunDetail) runDetailJSON {
	r := &d.Run // the payload points into this copy
	out := runDetailJSON{
		CancelRequestedAtMs: orNil(&r.CancelRequestedAtMs), ConfigJSON: orNil(&r.ConfigJSON), CreatedAtMs: r.CreatedAtMs,
		ErrorJSON: orNil(&r.ErrorJSON), FinishedAtMs: orNil(&r.FinishedAtMs), HeartbeatAtMs: orNil(&r.HeartbeatAtMs),
		ParentRunID: orNil(&r.ParentRunID), RunID: r.RunID, RunState: runStateView(d.State), RuntimeOwnerID: orNil(&r.RuntimeOwnerID),
		StartedAtMs: orNil(&r.StartedAtMs), Status: string(r.Status), Summary: summary(r.NodeCounts), WorkflowHash: orNil(&r.WorkflowHash),
		WorkflowKey: r.WorkflowKey, WorkflowName: r.WorkflowKey, WorkflowPath: orNil(&r.WorkflowPath),
	}
	// A nil RawMessage renders as null.
	if r.OutputJSON != "" {
		out.Output = json.RawMessage(r.OutputJSON)
	}
	if r.InputJSON != "" {
		out.Input = json.RawMessage(r.InputJSON)
	}
	return out
}

// runStateJSON is the RunStateView of docs/rpc.md; blocked and unhealthy
// only when present.
type runStateJSON struct {
	Blocked    *blockedJSON   `json:"blocked,omitempty"`
	ComputedAt string         `json:"computedAt"`
	RunID      string         `json:"runId"`
	State      string         `json:"state"`
	Unhealthy  *unhealthyJSON `json:"unhealthy,omitempty"`
}

// blockedJSON is runState.blocked: {kind, nodeId} with requestedAt (an
// approval), wakeAt (a timer) or correlationKey (an event).
type blockedJSON struct {
	CorrelationKey *string `json:"correlationKey,omitempty"`
	Kind           string  `json:"kind"`
	NodeID         string  `json:"nodeId"`
	RequestedAt    string  `json:"requestedAt,omitempty"`
	WakeAt         string  `json:"wakeAt,omitempty"`
}

// unhealthyJSON is runState.unhealthy.
type unhealthyJSON struct {
	Kind            string `json:"kind"`
	LastHeartbeatAt string `json:"lastHeartbeatAt"`
}

func runStateView(v host.RunStateView) runStateJSON {
	out := runStateJSON{ComputedAt: v.ComputedAt.UTC().Format("2006-01-02T15:04:05.000Z"), RunID: v.RunID, State: v.State}
	if b := v.Blocked; b != nil {
		out.Blocked = &blockedJSON{Kind: b.Kind, NodeID: b.NodeID, RequestedAt: b.RequestedAt, WakeAt: b.WakeAt}
		if b.Kind == "event" {
			out.Blocked.CorrelationKey = &b.CorrelationKey
		}
	}
	if u := v.Unhealthy; u != nil {
		out.Unhealthy = &unhealthyJSON{Kind: u.Kind, LastHeartbeatAt: u.LastHeartbeatAt}
	}
	return out
}

// summaryJSON is getRun's summary: the count of each node state that has
// nodes, keys in name order.
type summaryJSON struct {
	Cancelled       int `json:"cancelled,omitempty"`
	Failed          int `json:"failed,omitempty"`
	Finished        int `json:"finished,omitempty"`
	InProgress      int `json:"in-progress,omitempty"`
	Pending         int `json:"pending,omitempty"`
	Skipped         int `json:"skipped,omitempty"`
	WaitingApproval int `json:"waiting-approval,omitempty"`
	WaitingEvent    int `json:"waiting-event,omitempty"`
	WaitingTimer    int `json:"waiting-timer,omitempty"`
}

func summary(c host.NodeCounts) summaryJSON {
	return summaryJSON{Cancelled: c.Of(host.NodeCancelled), Failed: c.Of(host.NodeFailed), Finished: c.Of(host.NodeFinished),
		InProgress: c.Of(host.NodeInProgress), Pending: c.Of(host.NodePending), Skipped: c.Of(host.NodeSkipped),
		WaitingApproval: c.Of(host.NodeWaitingApproval), WaitingEvent: c.Of(host.NodeWaitingEvent), WaitingTimer: c.Of(host.NodeWaitingTimer)}
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
