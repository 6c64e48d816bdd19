package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/smithers-orchestrator/smithers-go/host"
)

const attemptColumns = `run_id, node_id, iteration, attempt, state, started_at_ms, finished_at_ms,
	heartbeat_at_ms, heartbeat_data_json, error_json, meta_json`

func scanAttempt(row pgx.Row) (host.Attempt, error) {
	var a host.Attempt
	err := row.Scan(&a.RunID, &a.NodeID, &a.Iteration, &a.Attempt, &a.State,
		&a.StartedAtMs, &a.FinishedAtMs, &a.HeartbeatAtMs,
		&a.HeartbeatDataJSON, &a.ErrorJSON, &a.MetaJSON)
	return a, err
}

const (
	getAttemptSQL = `SELECT ` + attemptColumns + ` FROM attempts
	WHERE run_id = $1 AND node_id = $2 AND iteration = $3 AND attempt = $4`

	listAttemptsSQL = `SELECT ` + attemptColumns + ` FROM attempts
	WHERE run_id = $1 AND node_id = $2 AND iteration = $3 ORDER BY attempt`

	putAttemptSQL = `INSERT INTO attempts (run_id, node_id, iteration, attempt, state,
	started_at_ms, finished_at_ms, heartbeat_at_ms, heartbeat_data_json, error_json, meta_json)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
	ON CONFLICT (run_id, node_id, iteration, attempt) DO UPDATE SET state = excluded.state,
	started_at_ms = excluded.started_at_ms, finished_at_ms = excluded.finished_at_ms,
	heartbeat_at_ms = excluded.heartbeat_at_ms,
	heartbeat_data_json = excluded.heartbeat_data_json, error_json = excluded.error_json,
	meta_json = excluded.meta_json`
)

// PutAttempt inserts or overwrites the attempt. The run must exist.
func (t *tx) PutAttempt(a host.Attempt) error {
	_, err := t.exec(putAttemptSQL, a.RunID, a.NodeID, a.Iteration, a.Attempt, a.State,
		a.StartedAtMs, a.FinishedAtMs, a.HeartbeatAtMs, a.HeartbeatDataJSON, a.ErrorJSON, a.MetaJSON)
	if err != nil {
		return fmt.Errorf("put attempt %s/%s#%d/%d: %w", a.RunID, a.NodeID, a.Iteration, a.Attempt, err)
	}
	return nil
}

const settleAttemptSQL = `UPDATE attempts SET state = $5, error_json = $6, finished_at_ms = $7
	WHERE run_id = $1 AND node_id = $2 AND iteration = $3 AND attempt = $4`

// SettleAttempt sets the attempt's state, error and finish time.
func (t *tx) SettleAttempt(runID, nodeID string, iteration, attempt int, state, errorJSON string, finishedAtMs int64) (bool, error) {
	tag, err := t.exec(settleAttemptSQL, runID, nodeID, iteration, attempt, state, errorJSON, finishedAtMs)
	if err != nil {
		return false, fmt.Errorf("settle attempt %s/%s#%d/%d: %w", runID, nodeID, iteration, attempt, err)
	}
	return tag.RowsAffected() > 0, nil
}

// GetAttempt reads one attempt. It does not lock: attempts belong to the
// run's activation, whose run row the engine locks first.
func (t *tx) GetAttempt(runID, nodeID string, iteration, attempt int) (host.Attempt, bool, error) {
	a, ok, err := queryRow(t, scanAttempt, getAttemptSQL, runID, nodeID, iteration, attempt)
	if err != nil {
		return a, false, fmt.Errorf("get attempt %s/%s#%d/%d: %w", runID, nodeID, iteration, attempt, err)
	}
	return a, ok, nil
}

// ListAttempts reads the committed attempts of one node, in attempt order.
func (s *Store) ListAttempts(ctx context.Context, runID, nodeID string, iteration int) ([]host.Attempt, error) {
	attempts, err := read(ctx, s, scanAttempt, listAttemptsSQL, runID, nodeID, iteration)
	if err != nil {
		return nil, fmt.Errorf("list attempts of %s/%s#%d: %w", runID, nodeID, iteration, err)
	}
	return attempts, nil
}
