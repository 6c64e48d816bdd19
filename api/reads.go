package api

import (
	"context"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// RunReader is the read side of the gateway's storage that the API serves
// from: run rows, nodes, attempts, approvals and the persisted event log
// (replay). host.Store implements it; cmd passes the store as
// Config.Reads. Reads never see uncommitted writes, and every method is
// safe for concurrent use.
type RunReader interface {
	GetRun(ctx context.Context, runID string) (host.Run, bool, error)
	// ListRuns returns runs newest first.
	ListRuns(ctx context.Context, f host.RunFilter) ([]host.Run, error)
	ListNodes(ctx context.Context, runID string) ([]host.Node, error)
	ListAttempts(ctx context.Context, runID, nodeID string, iteration int) ([]host.Attempt, error)
	// ListApprovals returns approvals oldest request first.
	ListApprovals(ctx context.Context, f host.ApprovalFilter) ([]host.Approval, error)
	// ListEvents returns the run's retained events with seq > afterSeq in
	// seq order, at most limit of them.
	ListEvents(ctx context.Context, runID string, afterSeq int64, limit int) ([]host.Event, error)
	// FirstEventSeq is the seq of the run's oldest retained event (0 if
	// none).
	FirstEventSeq(ctx context.Context, runID string) (int64, error)
}

var _ RunReader = host.Store(nil)
