package sqlite

import (
	"context"
	"fmt"

	"github.com/smithers-orchestrator/smithers-go/host"
)

const attemptColumns = `run_id, node_id, iteration, attempt, state,
	COALESCE(started_at_ms, 0), COALESCE(finished_at_ms, 0), COALESCE(heartbeat_at_ms, 0),
	COALESCE(heartbeat_data_json, ''), COALESCE(error_json, ''), COALESCE(meta_json, '')`

func scanAttempt(sc scanner) (host.Attempt, error) {
	var a host.Attempt
	err := sc.Scan(&a.RunID, &a.NodeID, &a.Iteration, &a.Attempt, &a.State,
		&a.StartedAtMs, &a.FinishedAtMs, &a.HeartbeatAtMs,
		&a.HeartbeatDataJSON, &a.ErrorJSON, &a.MetaJSON)
	return a, err
}

const (
	getAttemptSQL = `SELECT ` + attemptColumns + ` FROM attempts
	WHERE run_key = ` + runKeyOf + ` AND node_id = ? AND iteration = ? AND attempt = ?`

	listAttemptsSQL = `SELECT ` + attemptColumns + ` FROM attempts
	WHERE run_key = ` + runKeyOf + ` AND node_id = ? AND iteration = ? ORDER BY attempt`

	putAttemptSQL = `INSERT INTO attempts (run_key, run_id, node_id, iteration, attempt, state,
	started_at_ms, finished_at_ms, heartbeat_at_ms, heartbeat_data_json, error_json, meta_json)
	VALUES (` + runKeyOfFirst + `, ?1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (run_key, node_id, iteration, attempt) DO UPDATE SET state = excluded.state,
	started_at_ms = excluded.started_at_ms, finished_at_ms = excluded.finished_at_ms,
	heartbeat_at_ms = excluded.heartbeat_at_ms,
	heartbeat_data_json = excluded.heartbeat_data_json, error_json = excluded.error_json,
	meta_json = excluded.meta_json`
)

const settleAttemptSQL = `UPDATE attempts SET state = ?, error_json = ?, finished_at_ms = ?
	WHERE run_key = ` + runKeyOf + ` AND node_id = ? AND iteration = ? AND attempt = ?`

// SettleAttempt sets the attempt's state, error and finish time.
func (t *tx) SettleAttempt(runID, nodeID string, iteration, attempt int, state, errorJSON string, finishedAtMs int64) (bool, error) {
	res, err := t.exec(settleAttemptSQL, state, nullString(errorJSON), nullInt(finishedAtMs), runID, nodeID, iteration, attempt)
	if err != nil {
		return false, fmt.Errorf("settle attempt %s/%s#%d/%d: %w", runID, nodeID, iteration, attempt, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("settle attempt %s/%s#%d/%d: %w", runID, nodeID, iteration, attempt, err)
	}
	return n > 0, nil
}

// PutAttempt inserts or overwrites the attempt. The run must exist.
func (t *tx) PutAttempt(a host.Attempt) error {
	_, err := t.exec(putAttemptSQL, a.RunID, a.NodeID, a.Iteration, a.Attempt, a.State,
		nullInt(a.StartedAtMs), nullInt(a.FinishedAtMs), nullInt(a.HeartbeatAtMs),
		nullString(a.HeartbeatDataJSON), nullString(a.ErrorJSON), nullString(a.MetaJSON))
	if err != nil {
		return fmt.Errorf("put attempt %s/%s#%d/%d: %w", a.RunID, a.NodeID, a.Iteration, a.Attempt, err)
	}
	return nil
}

// GetAttempt reads one attempt.
func (t *tx) GetAttempt(runID, nodeID string, iteration, attempt int) (host.Attempt, bool, error) {
	a, ok, err := getOne(t.queryRow(getAttemptSQL, runID, nodeID, iteration, attempt), scanAttempt)
	if err != nil {
		return a, false, fmt.Errorf("get attempt %s/%s#%d/%d: %w", runID, nodeID, iteration, attempt, err)
	}
	return a, ok, nil
}

// ListAttempts reads the committed attempts of one node, in attempt order.
func (s *Store) ListAttempts(ctx context.Context, runID, nodeID string, iteration int) ([]host.Attempt, error) {
	rows, err := s.rquery(ctx, listAttemptsSQL, runID, nodeID, iteration)
	attempts, err := collect(rows, err, scanAttempt)
	if err != nil {
		return nil, fmt.Errorf("list attempts of %s/%s#%d: %w", runID, nodeID, iteration, err)
	}
	return attempts, nil
}
