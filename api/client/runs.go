package client

import "encoding/json"

// Run is a run row as getRun and listRuns return it (the columns a client
// reads; getRun adds Summary and Output). Time fields are Unix ms and, like
// the strings, zero when the gateway sent null.
type Run struct {
	RunID        string `json:"runId"`
	WorkflowKey  string `json:"workflowKey"`
	WorkflowName string `json:"workflowName"`
	Status       string `json:"status"`
	CreatedAtMs  int64  `json:"createdAtMs"`
	StartedAtMs  int64  `json:"startedAtMs"`
	FinishedAtMs int64  `json:"finishedAtMs"`
	// ErrorJSON is the run's error as JSON text ({name, code, message,
	// ...}), "" when none.
	ErrorJSON string `json:"errorJson"`
	// Summary counts the run's nodes by state (getRun only).
	Summary map[string]int `json:"summary"`
	// Output is the workflow's return value once the run finished, null
	// before (getRun only; an extra field of this gateway).
	Output json.RawMessage `json:"output"`
	// RunState is the derived state (getRun only).
	RunState RunState `json:"runState"`
}

// RunState is getRun's runState: the derived state and, for a parked run,
// the step it waits on.
type RunState struct {
	State string `json:"state"`
	// Blocked is {kind: "approval"|"timer"|"event", nodeId, ...} for a
	// parked run (requestedAt, wakeAt or correlationKey), nil otherwise.
	Blocked map[string]any `json:"blocked"`
}

// Workflow returns the run's workflow key (workflowName for gateways that
// do not send workflowKey).
func (r Run) Workflow() string {
	if r.WorkflowKey != "" {
		return r.WorkflowKey
	}
	return r.WorkflowName
}

// Terminal reports whether the run's status is final (finished, failed or
// cancelled).
func (r Run) Terminal() bool {
	return r.Status == "finished" || r.Status == "failed" || r.Status == "cancelled"
}

// Attempt is an attempt row as attempts.list returns it.
type Attempt struct {
	RunID        string `json:"runId"`
	NodeID       string `json:"nodeId"`
	Iteration    int    `json:"iteration"`
	Attempt      int    `json:"attempt"`
	State        string `json:"state"`
	StartedAtMs  int64  `json:"startedAtMs"`
	FinishedAtMs int64  `json:"finishedAtMs"`
	// ErrorJSON is the attempt's error as JSON text, "" when none.
	ErrorJSON string `json:"errorJson"`
}

// ApprovalSummary is a pending approval as listApprovals returns it.
type ApprovalSummary struct {
	RunID          string  `json:"runId"`
	NodeID         string  `json:"nodeId"`
	WorkflowKey    string  `json:"workflowKey"`
	Iteration      int     `json:"iteration"`
	RequestTitle   string  `json:"requestTitle"`
	RequestSummary *string `json:"requestSummary"`
	RequestedAtMs  int64   `json:"requestedAtMs"`
	ApprovalMode   string  `json:"approvalMode"`
}

// ErrorInfo is the part of a stored error (a run's or attempt's errorJson,
// node.failed's and run.completed's error) a reader shows.
type ErrorInfo struct {
	Name    string `json:"name"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ParseErrorInfo reads a stored error given as JSON text or raw JSON; ok
// is false for "", null, or JSON that is not an object.
func ParseErrorInfo(raw []byte) (ErrorInfo, bool) {
	var e ErrorInfo
	if len(raw) == 0 || string(raw) == "null" || json.Unmarshal(raw, &e) != nil {
		return ErrorInfo{}, false
	}
	return e, e.Code != "" || e.Message != "" || e.Name != ""
}
