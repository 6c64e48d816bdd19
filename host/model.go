package host

import "encoding/json"

// RunStatus is the stored status of a run (docs/rpc.md).
type RunStatus string

// Run statuses.
const (
	RunRunning         RunStatus = "running"
	RunWaitingApproval RunStatus = "waiting-approval"
	RunWaitingEvent    RunStatus = "waiting-event"
	RunWaitingTimer    RunStatus = "waiting-timer"
	RunFinished        RunStatus = "finished"
	RunContinued       RunStatus = "continued"
	RunFailed          RunStatus = "failed"
	RunCancelled       RunStatus = "cancelled"
)

// Terminal reports whether no further step can happen in a run with status s.
func (s RunStatus) Terminal() bool {
	return s == RunFinished || s == RunFailed || s == RunCancelled
}

// Waiting reports whether s is one of the parked statuses.
func (s RunStatus) Waiting() bool {
	return s == RunWaitingApproval || s == RunWaitingEvent || s == RunWaitingTimer
}

// NodeState is the state of one node of a run's journal.
type NodeState string

// Node states (the keys of getRun's summary).
const (
	NodePending         NodeState = "pending"
	NodeWaitingApproval NodeState = "waiting-approval"
	NodeWaitingEvent    NodeState = "waiting-event"
	NodeWaitingTimer    NodeState = "waiting-timer"
	NodeInProgress      NodeState = "in-progress"
	NodeFinished        NodeState = "finished"
	NodeFailed          NodeState = "failed"
	NodeCancelled       NodeState = "cancelled"
	NodeSkipped         NodeState = "skipped"
)

// NodeStates returns every node state, in the order of NodeCounts.
func NodeStates() []NodeState {
	return []NodeState{NodePending, NodeWaitingApproval, NodeWaitingEvent, NodeWaitingTimer, NodeInProgress,
		NodeFinished, NodeFailed, NodeCancelled, NodeSkipped}
}

// NodeCounts is how many of a run's nodes are in each state, in the order
// of NodeStates. The store keeps it on the run's row, changed in the
// transaction that writes the nodes, so getRun's summary costs no read of
// the nodes.
type NodeCounts [9]int

// index is s's position in NodeStates, or -1 for a state it does not know.
func (s NodeState) index() int {
	switch s {
	case NodePending:
		return 0
	case NodeWaitingApproval:
		return 1
	case NodeWaitingEvent:
		return 2
	case NodeWaitingTimer:
		return 3
	case NodeInProgress:
		return 4
	case NodeFinished:
		return 5
	case NodeFailed:
		return 6
	case NodeCancelled:
		return 7
	case NodeSkipped:
		return 8
	}
	return -1
}

// Of is the number of nodes in state s.
func (c NodeCounts) Of(s NodeState) int {
	if i := s.index(); i >= 0 {
		return c[i]
	}
	return 0
}

// Add counts delta more nodes in state s (a state NodeStates does not list
// is not counted).
func (c *NodeCounts) Add(s NodeState, delta int) {
	if i := s.index(); i >= 0 {
		c[i] += delta
	}
}

// Summary is getRun's summary: the count of each state that has nodes.
func (c NodeCounts) Summary() map[string]int {
	m := make(map[string]int, 4)
	for i, s := range NodeStates() {
		if c[i] > 0 {
			m[string(s)] = c[i]
		}
	}
	return m
}

// Settled reports whether a node in state s will not change any more.
func (s NodeState) Settled() bool {
	return s == NodeFinished || s == NodeFailed || s == NodeCancelled || s == NodeSkipped
}

// Waiting reports whether s is one of the parked node states.
func (s NodeState) Waiting() bool {
	return s == NodeWaitingApproval || s == NodeWaitingEvent || s == NodeWaitingTimer
}

// NodeKind says which ctx primitive created a node. Replaying a journaled id
// as another kind raises NONDETERMINISM.
type NodeKind string

// Node kinds.
const (
	KindTask     NodeKind = "task"
	KindApproval NodeKind = "approval"
	KindEvent    NodeKind = "event"
	KindTimer    NodeKind = "timer"
)

// Run is one row of the runs table. Times are Unix milliseconds; 0 means
// "not set" and is rendered as null on the wire. JSON columns hold JSON text
// ("" = null).
type Run struct {
	RunID               string
	ParentRunID         string
	WorkflowKey         string
	WorkflowPath        string
	WorkflowHash        string
	Status              RunStatus
	CreatedAtMs         int64
	StartedAtMs         int64
	FinishedAtMs        int64
	HeartbeatAtMs       int64
	RuntimeOwnerID      string
	CancelRequestedAtMs int64
	ErrorJSON           string
	ConfigJSON          string
	InputJSON           string
	// OutputJSON is the workflow's return value; "" until the run finishes
	// (and when it returned undefined).
	OutputJSON     string
	IdempotencyKey string
	// DeadlineAtMs is when the run's timeoutMs runs out (0: no timeout).
	DeadlineAtMs int64
	// LastSeq is the seq of the run's last persisted event (0 if none).
	LastSeq int64
	// LeaseEpoch is the fencing token of the run's activation: every claim
	// (a process starting or taking the run over) increments it, and every
	// step commits only while the row still carries the epoch the
	// activation claimed, so a process that lost the run (paused,
	// partitioned) can never commit a step of it.
	LeaseEpoch int64
	// NodeCounts counts the run's nodes by state. The store maintains it
	// as nodes are put and deleted; InsertRun and UpdateRun ignore it.
	NodeCounts NodeCounts
}

// Node is one journal entry, keyed (RunID, NodeID, Iteration).
type Node struct {
	RunID     string
	NodeID    string
	Iteration int
	Kind      NodeKind
	State     NodeState
	Label     string
	// OutputJSON is the settled value ("" = undefined).
	OutputJSON string
	// ErrorJSON is the terminal error: {"code","message","name",...}.
	ErrorJSON string
	// MetaJSON holds the options the node was created with (NodeMeta).
	MetaJSON    string
	Attempts    int
	CreatedAtMs int64
	UpdatedAtMs int64
	// FiresAtMs is when the node's timer (sleep, or an approval/event
	// timeout) comes due; 0 when it has none.
	FiresAtMs int64
}

// Attempt is one execution of a task node's body.
type Attempt struct {
	RunID             string
	NodeID            string
	Iteration         int
	Attempt           int
	State             string // in-progress, finished, failed, cancelled
	StartedAtMs       int64
	FinishedAtMs      int64
	HeartbeatAtMs     int64
	HeartbeatDataJSON string
	ErrorJSON         string
	MetaJSON          string
}

// Attempt states.
const (
	AttemptInProgress = "in-progress"
	AttemptFinished   = "finished"
	AttemptFailed     = "failed"
	AttemptCancelled  = "cancelled"
)

// ApprovalStatus is the state of an approval row.
type ApprovalStatus string

// Approval statuses.
const (
	ApprovalRequested ApprovalStatus = "requested"
	ApprovalApproved  ApprovalStatus = "approved"
	ApprovalDenied    ApprovalStatus = "denied"
)

// Approval is one approval row (docs/rpc.md).
type Approval struct {
	RunID         string
	NodeID        string
	Iteration     int
	Status        ApprovalStatus
	RequestedAtMs int64
	DecidedAtMs   int64
	Note          string
	DecidedBy     string
	RequestJSON   string
	DecisionJSON  string
	AutoApproved  bool
	// WorkflowKey is filled by queries that join the run.
	WorkflowKey string
}

// Signal is one signal row. Seq is per run and 0-based (docs/rpc.md).
type Signal struct {
	RunID         string
	Seq           int64
	Name          string
	CorrelationID *string
	PayloadJSON   string
	ReceivedAtMs  int64
	ReceivedBy    string
	// ConsumedBy is the node id of the wait the signal satisfied ("" while
	// buffered).
	ConsumedBy string
}

// Event is one persisted run event. Seq is the per-run sequence (gap-free,
// starting at 1); StateVersion is the event's position in the gateway-wide
// event log, so both keep increasing across restarts.
type Event struct {
	RunID        string
	Seq          int64
	StateVersion int64
	Name         string
	Payload      json.RawMessage
	AtMs         int64
}

// Cron is one cron row (docs/workflows.md).
type Cron struct {
	CronID       string
	Pattern      string
	WorkflowPath string
	WorkflowKey  string
	Enabled      bool
	CreatedAtMs  int64
	LastRunAtMs  int64
	NextRunAtMs  int64
	ErrorJSON    string
}

// Identity is the authenticated caller of a request, and the auth context
// stored with a run.
type Identity struct {
	Role    string
	Scopes  []string
	UserID  string
	TokenID string
}
