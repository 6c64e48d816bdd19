package sqlite

import (
	"context"
	"fmt"

	"github.com/smithers-orchestrator/smithers-go/host"
)

const (
	// A pgid can be recycled after a crash: the newer record replaces the
	// stale one.
	insertProcessSQL = `INSERT OR REPLACE INTO processes (pgid, start_time, run_id, node_id,
	attempt, started_at_ms, owner) VALUES (?, ?, ?, ?, ?, ?, ?)`

	// One SQLite file has one gateway on one host: the pgid names the
	// group whatever the owner.
	deleteProcessSQL = `DELETE FROM processes WHERE pgid = ?`

	listProcessesSQL = `SELECT pgid, start_time, COALESCE(run_id, ''), COALESCE(node_id, ''),
	attempt, COALESCE(started_at_ms, 0), COALESCE(owner, '') FROM processes ORDER BY pgid`
)

// InsertProcess records a t.exec child's process group, replacing a record
// of the same pgid.
func (t *tx) InsertProcess(p host.Process) error {
	// start_time is clock ticks since boot: far below 2^63, so the int64
	// conversion is lossless.
	_, err := t.exec(insertProcessSQL, p.PGID, int64(p.StartTime), nullString(p.RunID),
		nullString(p.NodeID), p.Attempt, nullInt(p.StartedAtMs), nullString(p.Owner))
	if err != nil {
		return fmt.Errorf("insert process %d: %w", p.PGID, err)
	}
	return nil
}

// DeleteProcess forgets the process group; forgetting an unknown one is not
// an error.
func (t *tx) DeleteProcess(_ string, pgid int) error {
	if _, err := t.exec(deleteProcessSQL, pgid); err != nil {
		return fmt.Errorf("delete process %d: %w", pgid, err)
	}
	return nil
}

// ListProcesses returns every recorded process group ordered by pgid.
func (s *Store) ListProcesses(ctx context.Context) ([]host.Process, error) {
	rows, err := s.rquery(ctx, listProcessesSQL)
	procs, err := collect(rows, err, func(sc scanner) (host.Process, error) {
		var (
			p     host.Process
			start int64
		)
		err := sc.Scan(&p.PGID, &start, &p.RunID, &p.NodeID, &p.Attempt, &p.StartedAtMs, &p.Owner)
		p.StartTime = uint64(start)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	return procs, nil
}
