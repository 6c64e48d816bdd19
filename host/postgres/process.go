package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/smithers-orchestrator/smithers-go/host"
)

const (
	// A group is named by its owner (the gateway process, on one host) and
	// its pgid; a pgid recycled after a crash replaces the stale record.
	insertProcessSQL = `INSERT INTO processes (owner, pgid, start_time, run_id, node_id,
	attempt, started_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)
	ON CONFLICT (owner, pgid) DO UPDATE SET start_time = excluded.start_time,
	run_id = excluded.run_id, node_id = excluded.node_id, attempt = excluded.attempt,
	started_at_ms = excluded.started_at_ms`

	deleteProcessSQL = `DELETE FROM processes WHERE owner = $1 AND pgid = $2`

	listProcessesSQL = `SELECT pgid, start_time, run_id, node_id, attempt, started_at_ms, owner
	FROM processes ORDER BY pgid, owner`
)

// InsertProcess records a t.exec child's process group, replacing a record
// of the same owner and pgid.
func (t *tx) InsertProcess(p host.Process) error {
	// start_time is clock ticks since boot: far below 2^63, so the int64
	// conversion is lossless.
	_, err := t.exec(insertProcessSQL, p.Owner, p.PGID, int64(p.StartTime), p.RunID, p.NodeID,
		p.Attempt, p.StartedAtMs)
	if err != nil {
		return fmt.Errorf("insert process %d: %w", p.PGID, err)
	}
	return nil
}

// DeleteProcess forgets the process group pgid recorded by owner;
// forgetting an unknown one is not an error.
func (t *tx) DeleteProcess(owner string, pgid int) error {
	if _, err := t.exec(deleteProcessSQL, owner, pgid); err != nil {
		return fmt.Errorf("delete process %d: %w", pgid, err)
	}
	return nil
}

// ListProcesses returns every recorded process group ordered by pgid.
func (s *Store) ListProcesses(ctx context.Context) ([]host.Process, error) {
	procs, err := read(ctx, s, func(row pgx.Row) (host.Process, error) {
		var (
			p     host.Process
			start int64
		)
		err := row.Scan(&p.PGID, &start, &p.RunID, &p.NodeID, &p.Attempt, &p.StartedAtMs, &p.Owner)
		p.StartTime = uint64(start)
		return p, err
	}, listProcessesSQL)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	return procs, nil
}
