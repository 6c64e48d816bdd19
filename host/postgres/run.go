package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/smithers-orchestrator/smithers-go/host"
)

// runColumns are qualified: getRunViewSQL joins nodes.
const runColumns = `runs.run_id, runs.parent_run_id, runs.workflow_key, runs.workflow_path,
	runs.workflow_hash, runs.status, runs.created_at_ms, runs.started_at_ms, runs.finished_at_ms,
	runs.heartbeat_at_ms, runs.runtime_owner_id, runs.cancel_requested_at_ms, runs.error_json,
	runs.config_json, runs.input_json, runs.output_json, runs.idempotency_key, runs.deadline_at_ms,
	runs.last_seq, runs.lease_epoch, runs.nodes_pending, runs.nodes_waiting_approval,
	runs.nodes_waiting_event, runs.nodes_waiting_timer, runs.nodes_in_progress, runs.nodes_finished,
	runs.nodes_failed, runs.nodes_cancelled, runs.nodes_skipped`

// runDest returns the scan destinations of runColumns in r; the status is
// scanned into *status.
func runDest(r *host.Run, status *string) []any {
	c := &r.NodeCounts
	return []any{&r.RunID, &r.ParentRunID, &r.WorkflowKey, &r.WorkflowPath, &r.WorkflowHash,
		status, &r.CreatedAtMs, &r.StartedAtMs, &r.FinishedAtMs, &r.HeartbeatAtMs,
		&r.RuntimeOwnerID, &r.CancelRequestedAtMs, &r.ErrorJSON, &r.ConfigJSON, &r.InputJSON,
		&r.OutputJSON, &r.IdempotencyKey, &r.DeadlineAtMs, &r.LastSeq, &r.LeaseEpoch,
		&c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6], &c[7], &c[8]}
}

func scanRun(row pgx.Row) (host.Run, error) {
	var (
		r      host.Run
		status string
	)
	err := row.Scan(runDest(&r, &status)...)
	r.Status = host.RunStatus(status)
	return r, err
}

// getRunViewSQL reads a run and the node it waits on in one statement: the
// run's row, then (all NULL unless the run is waiting) that node, found
// through the small nodes_waiting index among the run's nodes in the state
// its status names.
const getRunViewSQL = `SELECT ` + runColumns + `, w.node_id IS NOT NULL,
	COALESCE(w.node_id, ''), COALESCE(w.iteration, 0), COALESCE(w.kind, ''), COALESCE(w.state, ''),
	COALESCE(w.label, ''), COALESCE(w.output_json, ''), COALESCE(w.error_json, ''),
	COALESCE(w.meta_json, ''), COALESCE(w.attempts, 0), COALESCE(w.created_at_ms, 0),
	COALESCE(w.updated_at_ms, 0), COALESCE(w.fires_at_ms, 0)
	FROM runs
	LEFT JOIN LATERAL (
		SELECT x.* FROM nodes x
		WHERE x.run_id = runs.run_id AND x.state = runs.status
			AND x.state IN ('waiting-approval', 'waiting-event', 'waiting-timer')
		ORDER BY CASE WHEN x.state = 'waiting-timer' THEN x.fires_at_ms END,
			x.created_at_ms, x.node_id, x.iteration
		LIMIT 1) w ON true
	WHERE runs.run_id = $1`

// GetRunView reads one committed run with the node it waits on.
func (s *Store) GetRunView(ctx context.Context, runID string) (host.RunView, bool, error) {
	var (
		v            host.RunView
		status       string
		waiting      bool
		n            host.Node
		kind, nstate string
	)
	dest := append(runDest(&v.Run, &status), &waiting, &n.NodeID, &n.Iteration, &kind, &nstate, &n.Label,
		&n.OutputJSON, &n.ErrorJSON, &n.MetaJSON, &n.Attempts, &n.CreatedAtMs, &n.UpdatedAtMs, &n.FiresAtMs)
	err := s.pool.QueryRow(ctx, getRunViewSQL, runID).Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return host.RunView{}, false, nil
	}
	if err != nil {
		return host.RunView{}, false, fmt.Errorf("get run %s: %w", runID, s.readError(err))
	}
	v.Run.Status = host.RunStatus(status)
	if waiting {
		n.RunID, n.Kind, n.State = v.Run.RunID, host.NodeKind(kind), host.NodeState(nstate)
		v.WaitingOn = &n
	}
	return v, true, nil
}

// runArgs are r's columns in the order of insertRunSQL and updateRunSQL
// ($1 is run_id), without last_seq.
func runArgs(r host.Run) []any {
	return []any{r.RunID, r.ParentRunID, r.WorkflowKey, r.WorkflowPath, r.WorkflowHash,
		string(r.Status), r.CreatedAtMs, r.StartedAtMs, r.FinishedAtMs, r.HeartbeatAtMs,
		r.RuntimeOwnerID, r.CancelRequestedAtMs, r.ErrorJSON, r.ConfigJSON, r.InputJSON,
		r.OutputJSON, r.IdempotencyKey, r.DeadlineAtMs, r.LeaseEpoch}
}

const (
	getRunSQL = `SELECT ` + runColumns + ` FROM runs WHERE run_id = $1`

	// lockRunSQL reads the run for an update of it: FOR NO KEY UPDATE
	// makes the writers of one run take turns (AppendEvent's UPDATE takes
	// the same lock) without blocking the inserts of its nodes and events,
	// whose foreign keys only share the key.
	lockRunSQL = getRunSQL + ` FOR NO KEY UPDATE`

	// A new run has no events: last_seq starts at 0 whatever r.LastSeq says.
	insertRunSQL = `INSERT INTO runs (run_id, parent_run_id, workflow_key, workflow_path,
	workflow_hash, status, created_at_ms, started_at_ms, finished_at_ms, heartbeat_at_ms,
	runtime_owner_id, cancel_requested_at_ms, error_json, config_json, input_json,
	output_json, idempotency_key, deadline_at_ms, lease_epoch, last_seq)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, 0)`

	updateRunSQL = `UPDATE runs SET parent_run_id = $2, workflow_key = $3, workflow_path = $4,
	workflow_hash = $5, status = $6, created_at_ms = $7, started_at_ms = $8, finished_at_ms = $9,
	heartbeat_at_ms = $10, runtime_owner_id = $11, cancel_requested_at_ms = $12, error_json = $13,
	config_json = $14, input_json = $15, output_json = $16, idempotency_key = $17,
	deadline_at_ms = $18, lease_epoch = $19
	WHERE run_id = $1`

	runByIdempotencySQL = `SELECT ` + runColumns + ` FROM runs
	WHERE workflow_key = $1 AND idempotency_key = $2 AND idempotency_key <> ''`
)

// GetRun reads one run and locks it until the transaction ends: another
// transaction's GetRun, UpdateRun or AppendEvent of the run waits.
func (t *tx) GetRun(runID string) (host.Run, bool, error) {
	r, ok, err := queryRow(t, scanRun, lockRunSQL, runID)
	if err != nil {
		return r, false, fmt.Errorf("get run %s: %w", runID, err)
	}
	return r, ok, nil
}

// InsertRun creates the run row; a run with the same id, or the same
// workflow key and idempotency key, is an error (for a concurrent launch
// with the same key, Update runs the function again, which then finds the
// other run). LastSeq starts at 0.
func (t *tx) InsertRun(r host.Run) error {
	if _, err := t.exec(insertRunSQL, runArgs(r)...); err != nil {
		return fmt.Errorf("insert run %s: %w", r.RunID, err)
	}
	return nil
}

// UpdateRun overwrites every column of the run except last_seq. Updating a
// run that does not exist is an error.
func (t *tx) UpdateRun(r host.Run) error {
	tag, err := t.exec(updateRunSQL, runArgs(r)...)
	if err != nil {
		return fmt.Errorf("update run %s: %w", r.RunID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("update run %s: no such run", r.RunID)
	}
	return nil
}

// RunByIdempotencyKey finds the run of workflowKey launched with key. An
// empty key matches nothing.
func (t *tx) RunByIdempotencyKey(workflowKey, key string) (host.Run, bool, error) {
	if key == "" {
		return host.Run{}, false, nil
	}
	r, ok, err := queryRow(t, scanRun, runByIdempotencySQL, workflowKey, key)
	if err != nil {
		return r, false, fmt.Errorf("run by idempotency key %s/%s: %w", workflowKey, key, err)
	}
	return r, ok, nil
}

// GetRun reads one committed run.
func (s *Store) GetRun(ctx context.Context, runID string) (host.Run, bool, error) {
	r, ok, err := readOne(ctx, s, scanRun, getRunSQL, runID)
	if err != nil {
		return r, false, fmt.Errorf("get run %s: %w", runID, err)
	}
	return r, ok, nil
}

// ListRuns returns the committed runs selected by f, newest first
// (createdAtMs, then runId, both descending).
func (s *Store) ListRuns(ctx context.Context, f host.RunFilter) ([]host.Run, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if len(f.Statuses) > 0 {
		statuses := make([]string, len(f.Statuses))
		for i, st := range f.Statuses {
			statuses[i] = string(st)
		}
		where = append(where, "status = ANY("+arg(statuses)+"::text[])")
	}
	if f.WorkflowKey != "" {
		where = append(where, "workflow_key = "+arg(f.WorkflowKey))
	}
	if f.DeadlineBeforeMs > 0 {
		where = append(where, "deadline_at_ms > 0 AND deadline_at_ms <= "+arg(f.DeadlineBeforeMs))
	}
	if f.CreatedFromMs > 0 {
		where = append(where, "created_at_ms >= "+arg(f.CreatedFromMs))
	}
	if f.CreatedToMs > 0 {
		where = append(where, "created_at_ms < "+arg(f.CreatedToMs))
	}
	if f.CancelRequested {
		where = append(where, "cancel_requested_at_ms > 0")
	}
	if f.RunIDPrefix != "" {
		// A range on the primary key (byte order: the column's collation
		// is "C"), not LIKE: the prefix is data, and the range uses the
		// index.
		where = append(where, "run_id >= "+arg(f.RunIDPrefix)+" AND run_id < "+arg(f.RunIDPrefix+"\U0010FFFF"))
	}
	if f.After != nil {
		// Keyset pagination in (created_at_ms DESC, run_id DESC) order:
		// each page costs the same however deep it is.
		where = append(where, "(created_at_ms, run_id) < ("+arg(f.After.CreatedAtMs)+"::bigint, "+arg(f.After.RunID)+"::text)")
	}
	var q strings.Builder
	q.WriteString("SELECT " + runColumns + " FROM runs")
	if len(where) > 0 {
		q.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	q.WriteString(" ORDER BY created_at_ms DESC, run_id DESC")
	if f.Limit > 0 {
		q.WriteString(" LIMIT " + arg(f.Limit))
	}
	runs, err := read(ctx, s, scanRun, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return runs, nil
}

const (
	// Processes are not tied to the run by a foreign key (a group is
	// recorded before its attempt row exists); they go with the run too.
	deleteRunProcessesSQL = `DELETE FROM processes WHERE run_id = $1`

	// raiseFloorSQL keeps StateVersion from going back when the run with
	// the newest event is deleted. It locks the floor row only when it
	// raises it: deleting old runs (retention) never contends on it.
	raiseFloorSQL = `UPDATE state_version_floor SET version = e.id
	FROM (SELECT id FROM events WHERE run_id = $1 ORDER BY seq DESC LIMIT 1) e
	WHERE state_version_floor.version < e.id`

	deleteRunSQL = `DELETE FROM runs WHERE run_id = $1`

	listExpiredRunsSQL = `SELECT run_id FROM runs
	WHERE finished_at_ms > 0 AND finished_at_ms < $1 AND status IN ('finished', 'failed', 'cancelled')
	ORDER BY finished_at_ms, run_id LIMIT $2`
)

// DeleteRun deletes the run; the foreign keys' ON DELETE CASCADE takes its
// nodes, attempts, approvals, signals, events and values with it.
func (t *tx) DeleteRun(runID string) (bool, error) {
	// Events the function appended to the run go with it: nobody hears
	// of a run that is gone.
	t.events = slices.DeleteFunc(t.events, func(e host.Event) bool { return e.RunID == runID })
	if _, err := t.exec(deleteRunProcessesSQL, runID); err != nil {
		return false, fmt.Errorf("delete processes of run %s: %w", runID, err)
	}
	if _, err := t.exec(raiseFloorSQL, runID); err != nil {
		return false, fmt.Errorf("delete run %s: keep the state version: %w", runID, err)
	}
	tag, err := t.exec(deleteRunSQL, runID)
	if err != nil {
		return false, fmt.Errorf("delete run %s: %w", runID, err)
	}
	return tag.RowsAffected() > 0, nil
}

// ListExpiredRuns returns up to limit terminal runs finished before
// finishedBeforeMs, oldest first.
func (s *Store) ListExpiredRuns(ctx context.Context, finishedBeforeMs int64, limit int) ([]string, error) {
	ids, err := read(ctx, s, scanString, listExpiredRunsSQL, finishedBeforeMs, limit)
	if err != nil {
		return nil, fmt.Errorf("list expired runs: %w", err)
	}
	return ids, nil
}

// runLeaseSQL locks the run as lockRunSQL does.
const runLeaseSQL = `SELECT status, runtime_owner_id, lease_epoch FROM runs WHERE run_id = $1 FOR NO KEY UPDATE`

// RunLease reads the run's status, owner and lease epoch, and locks the run
// until the transaction ends, as GetRun does.
func (t *tx) RunLease(runID string) (host.RunLease, bool, error) {
	l, ok, err := queryRow(t, func(row pgx.Row) (host.RunLease, error) {
		var (
			l      host.RunLease
			status string
		)
		err := row.Scan(&status, &l.RuntimeOwnerID, &l.LeaseEpoch)
		l.Status = host.RunStatus(status)
		return l, err
	}, runLeaseSQL, runID)
	if err != nil {
		return l, false, fmt.Errorf("run lease of %s: %w", runID, err)
	}
	return l, ok, nil
}
