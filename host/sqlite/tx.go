package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// errTxDone is returned by a tx used after its Update function returned.
var errTxDone = errors.New("tx used after its Update function returned")

// errTxLost is returned by a statement of a function whose transaction
// SQLite already rolled back under an earlier failed statement that the
// function did not stop at: run outside a transaction, it would commit on
// its own.
var errTxLost = errors.New("the transaction was rolled back under a failed statement")

// tx is the host.Tx given to one Update function. It runs on the writer
// goroutine, on the writer's connection, inside the batch transaction and
// the function's savepoint.
type tx struct {
	s *Store
	// events are the events appended by this function, returned by Update
	// after commit.
	events []host.Event
	// done is set when the function returned; later calls fail.
	done bool
	// touched collects the runs whose row or nodes the function wrote
	// (shared by the batch), whose cached views the commit invalidates.
	touched map[string]struct{}
	// seqs holds the last_seq of the runs the function read or appended
	// events to; dirty ones are written by flush.
	seqs map[string]seqState
	// rows holds the columns (runArgs) of the run rows the function read
	// or wrote, as they now are: UpdateRun writes only what differs.
	rows map[string][]any
}

// knowRow records r's row as the function last read or wrote it.
func (t *tx) knowRow(r host.Run) { t.know(r.RunID, runArgs(r)) }

// know records a run's row (runArgs) as the function last read or wrote it.
func (t *tx) know(runID string, row []any) {
	if t.rows == nil {
		t.rows = map[string][]any{}
	}
	t.rows[runID] = row
}

// seqState is a run's last_seq as the function sees it.
type seqState struct {
	seq   int64
	dirty bool // moved by AppendEvent, not yet written
}

// sawRun records the last_seq of a run read from its row, and returns the
// row with the last_seq the function's own appends moved it to.
func (t *tx) sawRun(r host.Run) host.Run {
	if st, ok := t.seqs[r.RunID]; ok {
		r.LastSeq = st.seq
		return r
	}
	t.seqs[r.RunID] = seqState{seq: r.LastSeq}
	return r
}

// flush writes the events the function appended, trims the windows of
// their runs, and writes the last_seq of every run it appended to. The
// writer calls it when the function returned without error, inside its
// savepoint.
func (t *tx) flush() error {
	if err := t.writeEvents(); err != nil {
		return err
	}
	for runID, st := range t.seqs {
		if !st.dirty {
			continue
		}
		if st.seq > t.s.window {
			if _, err := t.exec(trimEventsSQL, runID, st.seq-t.s.window); err != nil {
				return fmt.Errorf("trim the event window of %s: %w", runID, err)
			}
		}
		if _, err := t.exec(setLastSeqSQL, st.seq, runID); err != nil {
			return fmt.Errorf("set last seq of %s: %w", runID, err)
		}
	}
	return nil
}

// touch records that the function writes the run's row or nodes.
func (t *tx) touch(runID string) { t.touched[runID] = struct{}{} }

// scanner is *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// errRow is a scanner that fails with err, for a statement that could not
// be prepared.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// usable reports why the function may no longer run statements, if so.
func (t *tx) usable() error {
	if t.done {
		return errTxDone
	}
	if t.s.txLost.Load() {
		return errTxLost
	}
	return nil
}

func (t *tx) exec(query string, args ...any) (sql.Result, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	st, err := t.s.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(context.Background(), args...)
}

func (t *tx) query(query string, args ...any) (*sql.Rows, error) {
	if err := t.usable(); err != nil {
		return nil, err
	}
	st, err := t.s.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(context.Background(), args...)
}

func (t *tx) queryRow(query string, args ...any) scanner {
	if err := t.usable(); err != nil {
		return errRow{err}
	}
	st, err := t.s.stmt(query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(context.Background(), args...)
}

// getOne scans the single row of a lookup, mapping "no row" to false.
func getOne[T any](sc scanner, scan func(scanner) (T, error)) (T, bool, error) {
	v, err := scan(sc)
	if errors.Is(err, sql.ErrNoRows) {
		var zero T
		return zero, false, nil
	}
	if err != nil {
		var zero T
		return zero, false, err
	}
	return v, true, nil
}

// collect scans every row of rows and closes it.
func collect[T any](rows *sql.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// nullString stores "" as NULL; such columns are read back through COALESCE.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullInt stores 0 as NULL; columns read back with COALESCE(col, 0).
func nullInt(n int64) any {
	if n == 0 {
		return nil
	}
	return n
}

// boolInt stores a boolean as 0 or 1.
func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
