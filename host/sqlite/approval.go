package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/smithers-orchestrator/smithers-go/host"
)

const approvalColumns = `a.run_id, a.node_id, a.iteration, a.status,
	COALESCE(a.requested_at_ms, 0), COALESCE(a.decided_at_ms, 0), COALESCE(a.note, ''),
	COALESCE(a.decided_by, ''), COALESCE(a.request_json, ''), COALESCE(a.decision_json, ''),
	a.auto_approved, COALESCE(r.workflow_key, '')`

// approvalFrom joins the run for Approval.WorkflowKey.
const approvalFrom = ` FROM approvals a LEFT JOIN runs r ON r.run_key = a.run_key`

func scanApproval(sc scanner) (host.Approval, error) {
	var a host.Approval
	err := sc.Scan(&a.RunID, &a.NodeID, &a.Iteration, &a.Status,
		&a.RequestedAtMs, &a.DecidedAtMs, &a.Note,
		&a.DecidedBy, &a.RequestJSON, &a.DecisionJSON,
		&a.AutoApproved, &a.WorkflowKey)
	return a, err
}

const (
	getApprovalSQL = `SELECT ` + approvalColumns + approvalFrom + `
	WHERE a.run_key = ` + runKeyOf + ` AND a.node_id = ? AND a.iteration = ?`

	putApprovalSQL = `INSERT INTO approvals (run_key, run_id, node_id, iteration, status,
	requested_at_ms, decided_at_ms, note, decided_by, request_json, decision_json, auto_approved)
	VALUES (` + runKeyOfFirst + `, ?1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (run_key, node_id, iteration) DO UPDATE SET status = excluded.status,
	requested_at_ms = excluded.requested_at_ms, decided_at_ms = excluded.decided_at_ms,
	note = excluded.note, decided_by = excluded.decided_by,
	request_json = excluded.request_json, decision_json = excluded.decision_json,
	auto_approved = excluded.auto_approved`
)

const recentManualDecisionsSQL = `SELECT ` + approvalColumns + approvalFrom + `
	WHERE a.node_id = ? AND r.workflow_key = ? AND a.run_id <> ?
	AND a.status IN ('approved', 'denied') AND a.auto_approved = 0
	ORDER BY a.decided_at_ms DESC LIMIT ?`

// RecentManualDecisions returns the newest manual decisions of nodeID in
// other runs of the workflow.
func (t *tx) RecentManualDecisions(workflowKey, nodeID, exceptRunID string, limit int) ([]host.Approval, error) {
	rows, err := t.query(recentManualDecisionsSQL, nodeID, workflowKey, exceptRunID, limit)
	if err != nil {
		return nil, fmt.Errorf("recent decisions of %s/%s: %w", workflowKey, nodeID, err)
	}
	defer rows.Close()
	var out []host.Approval
	for rows.Next() {
		a, err := scanApproval(rows)
		if err != nil {
			return nil, fmt.Errorf("recent decisions of %s/%s: %w", workflowKey, nodeID, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recent decisions of %s/%s: %w", workflowKey, nodeID, err)
	}
	return out, nil
}

// GetApproval reads one approval, with WorkflowKey filled from its run.
func (t *tx) GetApproval(runID, nodeID string, iteration int) (host.Approval, bool, error) {
	a, ok, err := getOne(t.queryRow(getApprovalSQL, runID, nodeID, iteration), scanApproval)
	if err != nil {
		return a, false, fmt.Errorf("get approval %s/%s#%d: %w", runID, nodeID, iteration, err)
	}
	return a, ok, nil
}

// PutApproval inserts or overwrites the approval (a.WorkflowKey is not
// stored: it comes from the run). The run must exist.
func (t *tx) PutApproval(a host.Approval) error {
	_, err := t.exec(putApprovalSQL, a.RunID, a.NodeID, a.Iteration, string(a.Status),
		nullInt(a.RequestedAtMs), nullInt(a.DecidedAtMs), nullString(a.Note),
		nullString(a.DecidedBy), nullString(a.RequestJSON), nullString(a.DecisionJSON),
		boolInt(a.AutoApproved))
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
	if f.RunID != "" {
		where = append(where, "a.run_key = "+runKeyOf)
		args = append(args, f.RunID)
	}
	if f.WorkflowKey != "" {
		where = append(where, "r.workflow_key = ?")
		args = append(args, f.WorkflowKey)
	}
	if f.Status != "" {
		where = append(where, "a.status = ?")
		args = append(args, string(f.Status))
	}
	var q strings.Builder
	q.WriteString("SELECT " + approvalColumns + approvalFrom)
	if len(where) > 0 {
		q.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	q.WriteString(" ORDER BY a.requested_at_ms, a.run_id, a.node_id, a.iteration")
	if f.Limit > 0 {
		q.WriteString(" LIMIT ?")
		args = append(args, f.Limit)
	}
	rows, err := s.rquery(ctx, q.String(), args...)
	approvals, err := collect(rows, err, scanApproval)
	if err != nil {
		return nil, fmt.Errorf("list approvals: %w", err)
	}
	return approvals, nil
}
