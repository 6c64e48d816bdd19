package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// runColumns are qualified: getRunViewSQL joins nodes.
const runColumns = `runs.run_id, COALESCE(runs.parent_run_id, ''), runs.workflow_key,
	COALESCE(runs.workflow_path, ''), COALESCE(runs.workflow_hash, ''), runs.status, runs.created_at_ms,
	COALESCE(runs.started_at_ms, 0), COALESCE(runs.finished_at_ms, 0), COALESCE(runs.heartbeat_at_ms, 0),
	COALESCE(runs.runtime_owner_id, ''), COALESCE(runs.cancel_requested_at_ms, 0),
	COALESCE(runs.error_json, ''), COALESCE(runs.config_json, ''), COALESCE(runs.input_json, ''),
	COALESCE(runs.output_json, ''), COALESCE(runs.idempotency_key, ''), COALESCE(runs.deadline_at_ms, 0),
	runs.last_seq, runs.lease_epoch, runs.nodes_pending, runs.nodes_waiting_approval, runs.nodes_waiting_event,
	runs.nodes_waiting_timer, runs.nodes_in_progress, runs.nodes_finished, runs.nodes_failed, runs.nodes_cancelled,
	runs.nodes_skipped`

// runDest returns the scan destinations of runColumns in r.
func runDest(r *host.Run) []any {
	c := &r.NodeCounts
	return []any{&r.RunID, &r.ParentRunID, &r.WorkflowKey, &r.WorkflowPath, &r.WorkflowHash,
		&r.Status, &r.CreatedAtMs, &r.StartedAtMs, &r.FinishedAtMs, &r.HeartbeatAtMs,
		&r.RuntimeOwnerID, &r.CancelRequestedAtMs, &r.ErrorJSON, &r.ConfigJSON, &r.InputJSON,
		&r.OutputJSON, &r.IdempotencyKey, &r.DeadlineAtMs, &r.LastSeq, &r.LeaseEpoch,
		&c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6], &c[7], &c[8]}
}

func scanRun(sc scanner) (host.Run, error) {
	var r host.Run
	err := sc.Scan(runDest(&r)...)
	return r, err
}

// runArgs are r's columns in the order of insertRunSQL and updateRunSQL
// (run_id last), without last_seq.
func runArgs(r host.Run) []any {
	return []any{nullString(r.ParentRunID), r.WorkflowKey, nullString(r.WorkflowPath),
		nullString(r.WorkflowHash), string(r.Status), r.CreatedAtMs, nullInt(r.StartedAtMs),
		nullInt(r.FinishedAtMs), nullInt(r.HeartbeatAtMs), nullString(r.RuntimeOwnerID),
		nullInt(r.CancelRequestedAtMs), nullString(r.ErrorJSON), nullString(r.ConfigJSON),
		nullString(r.InputJSON), nullString(r.OutputJSON), nullString(r.IdempotencyKey),
		nullInt(r.DeadlineAtMs), r.LeaseEpoch, r.RunID}
}

// runKeyOf is the integer key of the run whose id is the next parameter.
// The tables of a run's parts are keyed by it first (migration 8), so that
// rows of runs launched together share pages; queries give the run id and
// SQLite looks the key up once per statement through runs' unique index.
const runKeyOf = `(SELECT run_key FROM runs WHERE run_id = ?)`

// runKeyOfFirst is runKeyOf for the first parameter, for an INSERT that
// stores both the key and the id (?1 again).
const runKeyOfFirst = `(SELECT run_key FROM runs WHERE run_id = ?1)`

const (
	getRunSQL = `SELECT ` + runColumns + ` FROM runs WHERE run_id = ?`

	// A new run has no events: last_seq starts at 0 whatever r.LastSeq says.
	insertRunSQL = `INSERT INTO runs (parent_run_id, workflow_key, workflow_path,
	workflow_hash, status, created_at_ms, started_at_ms, finished_at_ms, heartbeat_at_ms,
	runtime_owner_id, cancel_requested_at_ms, error_json, config_json, input_json,
	output_json, idempotency_key, deadline_at_ms, lease_epoch, run_id, last_seq)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`

	runByIdempotencySQL = `SELECT ` + runColumns + ` FROM runs
	WHERE workflow_key = ? AND idempotency_key = ?`
)

// GetRun reads one run.
func (t *tx) GetRun(runID string) (host.Run, bool, error) {
	r, ok, err := getOne(t.queryRow(getRunSQL, runID), scanRun)
	if err != nil {
		return r, false, fmt.Errorf("get run %s: %w", runID, err)
	}
	if ok {
		r = t.sawRun(r)
		t.knowRow(r)
	}
	return r, ok, nil
}

// InsertRun creates the run row; a run with the same id, or the same
// workflow key and idempotency key, is an error. LastSeq starts at 0.
func (t *tx) InsertRun(r host.Run) error {
	t.touch(r.RunID)
	if _, err := t.exec(insertRunSQL, runArgs(r)...); err != nil {
		return fmt.Errorf("insert run %s: %w", r.RunID, err)
	}
	t.seqs[r.RunID] = seqState{} // no events yet: its first AppendEvent need not read the row
	t.knowRow(r)
	return nil
}

// runUpdateColumns are the columns UpdateRun can set, in runArgs order
// (run_id follows them there).
var runUpdateColumns = []string{"parent_run_id", "workflow_key", "workflow_path",
	"workflow_hash", "status", "created_at_ms", "started_at_ms", "finished_at_ms",
	"heartbeat_at_ms", "runtime_owner_id", "cancel_requested_at_ms", "error_json",
	"config_json", "input_json", "output_json", "idempotency_key", "deadline_at_ms",
	"lease_epoch"}

// updateRunSQL sets every column of runUpdateColumns.
var updateRunSQL = updateRunQuery(runUpdateColumns)

// updateRunQuery is the UPDATE of cols of the run whose id is the last
// parameter.
func updateRunQuery(cols []string) string {
	return "UPDATE runs SET " + strings.Join(cols, " = ?, ") + " = ? WHERE run_id = ?"
}

// UpdateRun overwrites every column of the run except last_seq. Updating a
// run that does not exist is an error.
//
// When the function read or wrote the row before, only the columns that
// differ from it are written: SQLite rewrites the index entries of every
// column an UPDATE sets, changed or not, and a run's finish (status,
// times, output) would rewrite the entries of four indexes it leaves as
// they are, in pages each commit then writes.
func (t *tx) UpdateRun(r host.Run) error {
	t.touch(r.RunID)
	row := runArgs(r)
	query, args := updateRunSQL, row
	if prev, ok := t.rows[r.RunID]; ok {
		var cols []string
		args = nil
		for i, col := range runUpdateColumns {
			if row[i] != prev[i] {
				cols = append(cols, col)
				args = append(args, row[i])
			}
		}
		if len(cols) == 0 {
			return nil // the row is as r has it
		}
		query, args = updateRunQuery(cols), append(args, r.RunID)
	}
	res, err := t.exec(query, args...)
	if err != nil {
		return fmt.Errorf("update run %s: %w", r.RunID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("update run %s: %w", r.RunID, err)
	} else if n == 0 {
		return fmt.Errorf("update run %s: no such run", r.RunID)
	}
	t.know(r.RunID, row)
	return nil
}

// RunByIdempotencyKey finds the run of workflowKey launched with key. An
// empty key matches nothing.
func (t *tx) RunByIdempotencyKey(workflowKey, key string) (host.Run, bool, error) {
	if key == "" {
		return host.Run{}, false, nil
	}
	r, ok, err := getOne(t.queryRow(runByIdempotencySQL, workflowKey, key), scanRun)
	if err != nil {
		return r, false, fmt.Errorf("run by idempotency key %s/%s: %w", workflowKey, key, err)
	}
	if ok {
		r = t.sawRun(r)
		t.knowRow(r)
	}
	return r, ok, nil
}

// GetRun reads one committed run.
func (s *Store) GetRun(ctx context.Context, runID string) (host.Run, bool, error) {
	r, ok, err := getOne(s.rqueryRow(ctx, getRunSQL, runID), scanRun)
	if err != nil {
		return r, false, fmt.Errorf("get run %s: %w", runID, err)
	}
	return r, ok, nil
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
	LEFT JOIN nodes w ON w.run_key = runs.run_key
		AND runs.status IN ('waiting-approval', 'waiting-event', 'waiting-timer')
		AND (w.node_id, w.iteration) = (
			SELECT x.node_id, x.iteration FROM nodes x INDEXED BY nodes_waiting
			WHERE x.run_key = runs.run_key AND x.state = runs.status
				AND x.state IN ('waiting-approval', 'waiting-event', 'waiting-timer')
			ORDER BY CASE WHEN x.state = 'waiting-timer' THEN COALESCE(x.fires_at_ms, 0) END,
				COALESCE(x.created_at_ms, 0), x.node_id, x.iteration
			LIMIT 1)
	WHERE runs.run_id = ?`

// GetRunView reads one committed run with the node it waits on, from the
// view cache when no commit touched the run since it was last read.
func (s *Store) GetRunView(ctx context.Context, runID string) (host.RunView, bool, error) {
	v, gen, ok := s.views.get(runID)
	if ok {
		return v, true, nil
	}
	v, ok, err := s.readRunView(ctx, runID)
	if ok && err == nil {
		s.views.put(runID, v, gen)
	}
	return v, ok, err
}

// readRunView is GetRunView's read of the database.
func (s *Store) readRunView(ctx context.Context, runID string) (host.RunView, bool, error) {
	var (
		v       host.RunView
		waiting bool
		n       host.Node
	)
	dest := append(runDest(&v.Run), &waiting, &n.NodeID, &n.Iteration, &n.Kind, &n.State, &n.Label,
		&n.OutputJSON, &n.ErrorJSON, &n.MetaJSON, &n.Attempts, &n.CreatedAtMs, &n.UpdatedAtMs, &n.FiresAtMs)
	err := s.rqueryRow(ctx, getRunViewSQL, runID).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return host.RunView{}, false, nil
	}
	if err != nil {
		return host.RunView{}, false, fmt.Errorf("get run %s: %w", runID, err)
	}
	if waiting {
		n.RunID = v.Run.RunID
		v.WaitingOn = &n
	}
	return v, true, nil
}

// ListRuns returns the runs selected by f, newest first (createdAtMs, then
// runId, both descending).
func (s *Store) ListRuns(ctx context.Context, f host.RunFilter) ([]host.Run, error) {
	var (
		where []string
		args  []any
	)
	if len(f.Statuses) > 0 {
		marks := strings.Repeat(", ?", len(f.Statuses))[2:]
		where = append(where, "status IN ("+marks+")")
		for _, st := range f.Statuses {
			args = append(args, string(st))
		}
	}
	if f.WorkflowKey != "" {
		where = append(where, "workflow_key = ?")
		args = append(args, f.WorkflowKey)
	}
	if f.DeadlineBeforeMs > 0 {
		where = append(where, "deadline_at_ms > 0 AND deadline_at_ms <= ?")
		args = append(args, f.DeadlineBeforeMs)
	}
	if f.CreatedFromMs > 0 {
		where = append(where, "created_at_ms >= ?")
		args = append(args, f.CreatedFromMs)
	}
	if f.CreatedToMs > 0 {
		where = append(where, "created_at_ms < ?")
		args = append(args, f.CreatedToMs)
	}
	if f.CancelRequested {
		where = append(where, "cancel_requested_at_ms > 0")
	}
	if f.RunIDPrefix != "" {
		// A range on the primary key, not LIKE: the prefix is data, and
		// the range uses the index.
		where = append(where, "run_id >= ? AND run_id < ?")
		args = append(args, f.RunIDPrefix, f.RunIDPrefix+"\U0010FFFF")
	}
	if f.After != nil {
		// Keyset pagination in (created_at_ms DESC, run_id DESC) order:
		// each page costs the same however deep it is.
		where = append(where, "(created_at_ms < ? OR (created_at_ms = ? AND run_id < ?))")
		args = append(args, f.After.CreatedAtMs, f.After.CreatedAtMs, f.After.RunID)
	}
	var q strings.Builder
	q.WriteString("SELECT " + runColumns + " FROM runs")
	if f.CancelRequested {
		// Few runs have a cancel requested; without this the planner
		// walks every run of the statuses asked for.
		q.WriteString(" INDEXED BY runs_cancel_requested")
	}
	if len(where) > 0 {
		q.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	q.WriteString(" ORDER BY created_at_ms DESC, run_id DESC")
	if f.Limit > 0 {
		q.WriteString(" LIMIT ?")
		args = append(args, f.Limit)
	}
	rows, err := s.rquery(ctx, q.String(), args...)
	runs, err := collect(rows, err, scanRun)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return runs, nil
}

const (
	deleteRunSQL = `DELETE FROM runs WHERE run_id = ?`
	// Processes are not tied to the run by a foreign key (a group is
	// recorded before its attempt row exists); they go with the run too.
	deleteRunProcessesSQL = `DELETE FROM processes WHERE run_id = ?`

	listExpiredRunsSQL = `SELECT run_id FROM runs INDEXED BY runs_finished
	WHERE finished_at_ms IS NOT NULL AND finished_at_ms < ? AND status IN ('finished', 'failed', 'cancelled')
	ORDER BY finished_at_ms LIMIT ?`
)

// DeleteRun deletes the run; the foreign keys' ON DELETE CASCADE takes its
// nodes, attempts, approvals, signals, events and values with it.
func (t *tx) DeleteRun(runID string) (bool, error) {
	t.touch(runID)
	delete(t.seqs, runID)
	delete(t.rows, runID)
	// Events the function appended to the run go with it (they are
	// written at flush, after the run is gone).
	t.events = slices.DeleteFunc(t.events, func(e host.Event) bool { return e.RunID == runID })
	if _, err := t.exec(deleteRunProcessesSQL, runID); err != nil {
		return false, fmt.Errorf("delete processes of run %s: %w", runID, err)
	}
	res, err := t.exec(deleteRunSQL, runID)
	if err != nil {
		return false, fmt.Errorf("delete run %s: %w", runID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("delete run %s: %w", runID, err)
	}
	return n > 0, nil
}

// ListExpiredRuns returns up to limit terminal runs finished before
// finishedBeforeMs, oldest first.
func (s *Store) ListExpiredRuns(ctx context.Context, finishedBeforeMs int64, limit int) ([]string, error) {
	rows, err := s.rquery(ctx, listExpiredRunsSQL, finishedBeforeMs, limit)
	if err != nil {
		return nil, fmt.Errorf("list expired runs: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list expired runs: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list expired runs: %w", err)
	}
	return ids, nil
}

const runLeaseSQL = `SELECT status, COALESCE(runtime_owner_id, ''), lease_epoch, last_seq FROM runs WHERE run_id = ?`

// RunLease reads the run's status, owner and lease epoch. Every step commit
// starts with it and then appends events: it also reads last_seq for them
// (sawRun), which saves AppendEvent a read of the row.
func (t *tx) RunLease(runID string) (host.RunLease, bool, error) {
	var (
		l       host.RunLease
		lastSeq int64
	)
	err := t.queryRow(runLeaseSQL, runID).Scan(&l.Status, &l.RuntimeOwnerID, &l.LeaseEpoch, &lastSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return host.RunLease{}, false, nil
	}
	if err != nil {
		return host.RunLease{}, false, fmt.Errorf("run lease of %s: %w", runID, err)
	}
	t.sawRun(host.Run{RunID: runID, LastSeq: lastSeq})
	return l, true, nil
}
