package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/smithers-orchestrator/smithers-go/host"
)

const approvalColumns = `a.run_id, a.node_id, a.iteration, a.status, a.requested_at_ms,
	a.decided_at_ms, a.note, a.decided_by, a.request_json, a.decision_json, a.auto_approved,
	COALESCE(r.workflow_key, '')`

// approvalFrom joins the run for Approval.WorkflowKey.
const approvalFrom = ` FROM approvals a LEFT JOIN runs r ON r.run_id = a.run_id`

func scanApproval(row pgx.Row) (host.Approval, error) {
	var (
		a      host.Approval
		status string
	)
	err := row.Scan(&a.RunID, &a.NodeID, &a.Iteration, &status,
		&a.RequestedAtMs, &a.DecidedAtMs, &a.Note,
		&a.DecidedBy, &a.RequestJSON, &a.DecisionJSON,
		&a.AutoApproved, &a.WorkflowKey)
	a.Status = host.ApprovalStatus(status)
	return a, err
}

const (
	// getApprovalSQL locks the approval (not the run) until the
	// transaction ends: two decisions of one approval take turns.
	getApprovalSQL = `SELECT ` + approvalColumns + approvalFrom + `
	WHERE a.run_id = $1 AND a.node_id = $2 AND a.iteration = $3 FOR UPDATE OF a`

	putApprovalSQL = `INSERT INTO approvals (run_id, node_id, iteration, status,
	requested_at_ms, decided_at_ms, note, decided_by, request_json, decision_json, auto_approved)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
	ON CONFLICT (run_id, node_id, iteration) DO UPDATE SET status = excluded.status,
	requested_at_ms = excluded.requested_at_ms, decided_at_ms = excluded.decided_at_ms,
	note = excluded.note, decided_by = excluded.decided_by,
	request_json = excluded.request_json, decision_json = excluded.decision_json,
	auto_approved = excluded.auto_approved`

	recentManualDecisionsSQL = `SELECT ` + approvalColumns + approvalFrom + `
	WHERE a.node_id = $1 AND r.workflow_key = $2 AND a.run_id <> $3
	AND a.status IN ('approved', 'denied') AND NOT a.auto_approved
	ORDER BY a.decided_at_ms DESC LIMIT $4`
)

// RecentManualDecisions returns the newest manual decisions of nodeID in
// other runs of the workflow.
func (t *tx) RecentManualDecisions(workflowKey, nodeID, exceptRunID string, limit int) ([]host.Approval, error) {
	out, err := queryRows(t, scanApproval, recentManualDecisionsSQL, nodeID, workflowKey, exceptRunID, limit)
	if err != nil {
		return nil, fmt.Errorf("recent decisions of %s/%s: %w", workflowKey, nodeID, err)
	}
	return out, nil
}

// GetApproval reads one approval, with WorkflowKey filled from its run, and
// locks it until the transaction ends.
func (t *tx) GetApproval(runID, nodeID string, iteration int) (host.Approval, bool, error) {
	a, ok, err := queryRow(t, scanApproval, getApprovalSQL, runID, nodeID, iteration)
	if err != nil {
		return a, false, fmt.Errorf("get approval %s/%s#%d: %w", runID, nodeID, iteration, err)
	}
	return a, ok, nil
}

// PutApproval inserts or overwrites the approval (a.WorkflowKey is not
// stored: it comes from the run). The run must exist.
func (t *tx) PutApproval(a host.Approval) error {
	_, err := t.exec(putApprovalSQL, a.RunID, a.NodeID, a.Iteration, string(a.Status),
		a.RequestedAtMs, a.DecidedAtMs, a.Note, a.DecidedBy, a.RequestJSON, a.DecisionJSON,
		a.AutoApproved)
	if err != nil {
		return fmt.Errorf("put approval %s/%s#%d: %w", a.RunID, a.NodeID, a.Iteration, err)
	}
	return nil
}

// ListApprovals returns the committed approvals selected by f, oldest
// request first, with WorkflowKey filled from the run.
func (s *Store) ListApprovals(ctx context.Context, f host.ApprovalFilter) ([]host.Approval, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.RunID != "" {
		where = append(where, "a.run_id = "+arg(f.RunID))
	}
	if f.WorkflowKey != "" {
		where = append(where, "r.workflow_key = "+arg(f.WorkflowKey))
	}
	if f.Status != "" {
		where = append(where, "a.status = "+arg(string(f.Status)))
	}
	var q strings.Builder
	q.WriteString("SELECT " + approvalColumns + approvalFrom)
	if len(where) > 0 {
		q.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	q.WriteString(" ORDER BY a.requested_at_ms, a.run_id, a.node_id, a.iteration")
	if f.Limit > 0 {
		q.WriteString(" LIMIT " + arg(f.Limit))
	}
	approvals, err := read(ctx, s, scanApproval, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("list approvals: %w", err)
	}
	return approvals, nil
}
