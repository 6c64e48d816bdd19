package host

import "encoding/json"

// Run event names: every event the engine appends to a run's stream, in one
// place. Clients (the official client, dashboards) match on these strings.
const (
	EventNodePending         = "node.pending"
	EventNodeStarted         = "node.started"
	EventNodeFinished        = "node.finished"
	EventNodeFailed          = "node.failed"
	EventNodeWaitingApproval = "node.waiting_approval"
	EventApprovalRequested   = "approval.requested"
	EventApprovalDecided     = "approval.decided"
	EventTaskOutput          = "task.output"
	EventTaskHeartbeat       = "task.heartbeat"
	EventRunCompleted        = "run.completed"
	// EventNodeRetrying is ours: an attempt failed and the task will be
	// tried again. Upstream has no such event; clients that do not know it
	// pass it by, as they do any unknown event.
	EventNodeRetrying = "node.retrying"
)

// The payloads of those events. Field order is the wire order.

// nodePayload is the payload of node.* events; Error is set on node.failed.
type nodePayload struct {
	RunID  string          `json:"runId"`
	NodeID string          `json:"nodeId"`
	State  NodeState       `json:"state"`
	Error  json.RawMessage `json:"error,omitempty"`
}

// approvalPayload is the payload of approval.requested (Approved nil) and
// approval.decided.
type approvalPayload struct {
	RunID     string `json:"runId"`
	NodeID    string `json:"nodeId"`
	Iteration int    `json:"iteration"`
	Approved  *bool  `json:"approved,omitempty"`
}

// taskOutputPayload is the payload of task.output.
type taskOutputPayload struct {
	RunID  string `json:"runId"`
	NodeID string `json:"nodeId"`
	Output string `json:"output"`
	Stream string `json:"stream"`
}

// taskHeartbeatPayload is the payload of task.heartbeat.
type taskHeartbeatPayload struct {
	RunID     string `json:"runId"`
	NodeID    string `json:"nodeId"`
	Iteration int    `json:"iteration"`
	Attempt   int    `json:"attempt"`
}

// nodeRetryingPayload is the payload of node.retrying: the attempt that
// failed and its error.
type nodeRetryingPayload struct {
	RunID     string          `json:"runId"`
	NodeID    string          `json:"nodeId"`
	Iteration int             `json:"iteration"`
	Attempt   int             `json:"attempt"`
	Error     json.RawMessage `json:"error"`
}

// runCompletedPayload is the payload of run.completed; Error is set when
// the run did not finish.
type runCompletedPayload struct {
	RunID  string          `json:"runId"`
	Status RunStatus       `json:"status"`
	Error  json.RawMessage `json:"error,omitempty"`
}

// appendEvent appends one event with a payload built above.
func appendEvent(tx Tx, runID, name string, payload any, at int64) error {
	return tx.AppendEvent(runID, name, mustJSON(payload), at)
}

// nodeEvent appends the node.* event name for n in its current state.
func nodeEvent(tx Tx, name string, n Node, at int64) error {
	return appendEvent(tx, n.RunID, name, nodePayload{RunID: n.RunID, NodeID: n.NodeID, State: n.State}, at)
}

// nodeFailedEvent appends node.failed carrying the node's error.
func nodeFailedEvent(tx Tx, n Node, errJSON string, at int64) error {
	return appendEvent(tx, n.RunID, EventNodeFailed, nodePayload{RunID: n.RunID, NodeID: n.NodeID, State: n.State, Error: json.RawMessage(orNull(errJSON))}, at)
}
