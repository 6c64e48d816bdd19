package host

import (
	"context"
	"encoding/json"
)

// Store is the gateway's durable state. host/sqlite implements it on one
// file for one gateway process; host/postgres on one database shared by
// several (multi-replica deployments). host/storetest is the contract both
// pass.
//
// Writes go through Update only: fn runs inside one transaction, and the
// events it appended are returned, with their seq and stateVersion, only
// after the transaction committed (publish after commit). If fn returns an
// error nothing is written and no event is returned. fn may run
// concurrently with reads. A function that reads a run, node, cron,
// approval or webhook delivery through Tx and writes it back never loses a
// concurrent update: SQLite runs one fn at a time; PostgreSQL locks what Tx
// read until the commit, and runs fn again in a fresh transaction after a
// conflict (a deadlock, a concurrent launch with the same idempotency key).
// So fn must only assign variables it captured: what its last run assigned
// is what committed.
//
// Read methods never see uncommitted writes. All methods are safe for
// concurrent use.
type Store interface {
	Update(ctx context.Context, fn func(tx Tx) error) ([]Event, error)

	GetRun(ctx context.Context, runID string) (Run, bool, error)
	// GetRunView reads a run and, while it waits, the node it waits on, in
	// one consistent read (getRun's hot path).
	GetRunView(ctx context.Context, runID string) (RunView, bool, error)
	// ListRuns returns runs newest first (createdAtMs, then runId).
	ListRuns(ctx context.Context, f RunFilter) ([]Run, error)
	ListNodes(ctx context.Context, runID string) ([]Node, error)
	// ListNodeIterations reads the iterations of one node of a run, in
	// iteration order (a settled wait delivered to its activation: one
	// node, not the run's whole journal).
	ListNodeIterations(ctx context.Context, runID, nodeID string) ([]Node, error)
	ListAttempts(ctx context.Context, runID, nodeID string, iteration int) ([]Attempt, error)
	// ListApprovals returns approvals ordered by requestedAtMs ascending, with
	// WorkflowKey filled from the run.
	ListApprovals(ctx context.Context, f ApprovalFilter) ([]Approval, error)
	ListSignals(ctx context.Context, runID string) ([]Signal, error)
	// ListEvents returns the run's retained events with seq > afterSeq in seq
	// order, at most limit of them (limit <= 0: all).
	ListEvents(ctx context.Context, runID string, afterSeq int64, limit int) ([]Event, error)
	// FirstEventSeq is the seq of the oldest retained event of the run (0 if
	// the run has none).
	FirstEventSeq(ctx context.Context, runID string) (int64, error)
	// StateVersion is the stateVersion of the newest event (0 if none).
	StateVersion(ctx context.Context) (int64, error)
	// ListDueNodes returns every node of a non-terminal run that is waiting
	// with a FiresAtMs > 0 (sleeps and approval/event timeouts), for the timer
	// wheel to re-arm at start.
	// With beforeMs > 0, only nodes that fire at or before it.
	ListDueNodes(ctx context.Context, beforeMs int64) ([]Node, error)
	// ListValues returns the journaled ctx.now/random/uuid values of a run in
	// call order.
	ListValues(ctx context.Context, runID string) ([]string, error)
	ListCrons(ctx context.Context) ([]Cron, error)
	// ListExpiredRuns returns the ids of up to limit terminal runs that
	// finished before finishedBeforeMs, oldest first (retention).
	ListExpiredRuns(ctx context.Context, finishedBeforeMs int64, limit int) ([]string, error)
	ListProcesses(ctx context.Context) ([]Process, error)

	// Health is nil while the store can commit, else why it cannot (the
	// disk is full, the database file was deleted or replaced), wrapping
	// ErrStorageUnavailable. A transient failure clears with the next
	// successful commit.
	Health() error

	// Exclusive reports whether this process is the store's only user (an
	// SQLite file under its owner lock): a run marked as owned by another
	// process then belongs to a dead one and is taken over at once.
	// Otherwise a run is taken over only once its owner's heartbeat is
	// older than the owner lease.
	Exclusive() bool

	Close() error
}

// Tx is the write side of one Update transaction. Methods return errors only
// for storage failures; "not found" is the bool result.
type Tx interface {
	GetRun(runID string) (Run, bool, error)
	// RunLease reads what a step commit checks of its run (status, owner,
	// lease epoch), as GetRun would and with the same lock, without the
	// rest of the row.
	RunLease(runID string) (RunLease, bool, error)
	InsertRun(r Run) error
	// DeleteRun deletes the run with everything that belongs to it (nodes,
	// attempts, approvals, signals, events, values); false if unknown.
	DeleteRun(runID string) (bool, error)
	// UpdateRun overwrites every column of the run row except LastSeq, which
	// only AppendEvent moves.
	UpdateRun(r Run) error
	RunByIdempotencyKey(workflowKey, key string) (Run, bool, error)

	GetNode(runID, nodeID string, iteration int) (Node, bool, error)
	ListNodes(runID string) ([]Node, error)
	// ListWaitingNodes returns the run's nodes in state, one of the
	// waiting states (waiting-approval, waiting-event, waiting-timer),
	// oldest first (CreatedAtMs, then node id and iteration), without
	// reading its other nodes: a signal to a run with thousands of
	// finished steps reads only its waits.
	ListWaitingNodes(runID string, state NodeState) ([]Node, error)
	PutNode(n Node) error
	// InsertNode writes a node the journal does not have yet; false
	// means it has one of that key (nothing was written).
	InsertNode(n Node) (bool, error)
	// DeleteNode removes a node from the journal (retry from the failed
	// step re-creates it); attempts stay.
	DeleteNode(runID, nodeID string, iteration int) error
	PutAttempt(a Attempt) error
	GetAttempt(runID, nodeID string, iteration, attempt int) (Attempt, bool, error)
	// SettleAttempt sets the state, finish time and error of an attempt
	// and leaves the rest of it as it is, in one write; false means there
	// is no such attempt (nothing was written).
	SettleAttempt(runID, nodeID string, iteration, attempt int, state, errorJSON string, finishedAtMs int64) (bool, error)

	GetApproval(runID, nodeID string, iteration int) (Approval, bool, error)
	// RecentManualDecisions returns the newest limit approvals of nodeID
	// decided by a person (not auto-approved) in runs of workflowKey other
	// than exceptRunID, newest first (autoApprove's history rule).
	RecentManualDecisions(workflowKey, nodeID, exceptRunID string, limit int) ([]Approval, error)
	PutApproval(a Approval) error

	// InsertSignal stores s with the next per-run seq (0-based) and returns it.
	InsertSignal(s Signal) (Signal, error)
	// OldestUnconsumedSignal finds the oldest buffered signal of the run with
	// that name and correlation id (nil matches only nil).
	OldestUnconsumedSignal(runID, name string, correlationID *string) (Signal, bool, error)
	ConsumeSignal(runID string, seq int64, nodeID string) error
	// CountBufferedSignals counts the run's signals no wait has consumed.
	CountBufferedSignals(runID string) (int, error)

	// AppendEvent persists one run event with the run's next seq and the next
	// global stateVersion and trims the run's window. The events Update
	// returns carry their seq and stateVersion; a store may write them
	// when the function returns (an error then fails the function).
	AppendEvent(runID, name string, payload json.RawMessage, atMs int64) error

	PutValue(runID string, index int, valueJSON string) error

	GetCron(cronID string) (Cron, bool, error)
	PutCron(c Cron) error
	DeleteCron(cronID string) (bool, error)

	InsertProcess(p Process) error
	// DeleteProcess forgets the group pgid recorded by owner (a pgid is
	// only unique on one host).
	DeleteProcess(owner string, pgid int) error

	// Webhook deliveries. WaitingEventNodes returns the waiting-event
	// nodes of the newest limit runs whose status is waiting-event, newest
	// run first and each run's nodes in creation order (the runs a webhook
	// signal may go to).
	WaitingEventNodes(limit int) ([]Node, error)
	// WebhookDelivery returns the response recorded for a delivery id of a
	// workflow's webhook, if it was received at or after sinceMs.
	WebhookDelivery(workflowKey, deliveryID string, sinceMs int64) (string, bool, error)
	// PutWebhookDelivery records the response of a delivery, replacing an
	// expired record of the same id.
	PutWebhookDelivery(workflowKey, deliveryID, responseJSON string, receivedAtMs int64) error
	// DeleteWebhookDeliveries deletes up to limit delivery records
	// received before beforeMs, oldest first, and returns how many.
	DeleteWebhookDeliveries(beforeMs int64, limit int) (int, error)
}

// RunView is a run as getRun shows it.
type RunView struct {
	Run Run
	// WaitingOn is nil unless the run's status is waiting-approval,
	// waiting-event or waiting-timer; then it is the run's first node in
	// the state of that name (nil if none is): the soonest to fire
	// (FiresAtMs) for waiting-timer, else the oldest (CreatedAtMs); ties go
	// to the older node, then the lower node id, then the lower iteration.
	WaitingOn *Node
}

// RunLease is the part of a run's row that says who may commit its steps.
type RunLease struct {
	Status         RunStatus
	RuntimeOwnerID string
	LeaseEpoch     int64
}

// RunFilter selects runs for ListRuns. Zero values select everything;
// Limit <= 0 means no limit.
type RunFilter struct {
	Statuses    []RunStatus
	WorkflowKey string
	// DeadlineBeforeMs, when set, keeps runs whose timeoutMs deadline is
	// set and at or before it.
	DeadlineBeforeMs int64
	// CreatedFromMs and CreatedToMs bound createdAtMs (from inclusive, to
	// exclusive); 0 leaves a side open.
	CreatedFromMs, CreatedToMs int64
	// RunIDPrefix keeps runs whose id starts with it (search by run id).
	RunIDPrefix string
	// CancelRequested keeps runs whose cancel was requested
	// (CancelRequestedAtMs set).
	CancelRequested bool
	// After, when set, keeps runs strictly after it in the newest-first
	// order: the cursor of the next page is the last run of this one.
	After *RunCursor
	Limit int
}

// RunCursor is a position in ListRuns' newest-first order.
type RunCursor struct {
	CreatedAtMs int64
	RunID       string
}

// ApprovalFilter selects approvals for ListApprovals.
type ApprovalFilter struct {
	RunID       string
	WorkflowKey string
	Status      ApprovalStatus
	Limit       int
}

// Process records a t.exec child's process group so that a gateway killed
// with SIGKILL can kill the group at its next start. StartTime is the
// child's start time in clock ticks since boot (/proc/<pid>/stat field 22),
// which tells a live group from a recycled pid.
type Process struct {
	PGID        int
	StartTime   uint64
	RunID       string
	NodeID      string
	Attempt     int
	StartedAtMs int64
	// Owner is the instance id of the gateway process that started the
	// child ("host:pid:random"): only that host may kill the group, and
	// only once that process is gone.
	Owner string
}
