package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/smithers-orchestrator/smithers-go/host"
)

// errTxDone is returned by a tx used after its Update function returned.
var errTxDone = errors.New("tx used after its Update function returned")

// tx is the host.Tx given to one run of an Update function: one PostgreSQL
// transaction on one pooled connection.
type tx struct {
	s   *Store
	ctx context.Context
	ptx pgx.Tx
	// events are the events appended by this run of the function,
	// returned by Update after commit; xid is the transaction's id, read
	// back with the first of them (the commit feed needs it).
	events []host.Event
	xid    uint64
	// failed is the first statement error: PostgreSQL refuses every later
	// statement of the transaction, so it cannot commit.
	failed error
	// done is set when the function returned; later calls fail.
	done bool
}

// note records the first statement error.
func (t *tx) note(err error) error {
	if err != nil && t.failed == nil && !errors.Is(err, errTxDone) {
		t.failed = err
	}
	return err
}

func (t *tx) exec(sql string, args ...any) (pgconn.CommandTag, error) {
	if t.done {
		return pgconn.CommandTag{}, errTxDone
	}
	tag, err := t.ptx.Exec(t.ctx, sql, args...)
	return tag, t.note(err)
}

// queryRow runs a single-row query and scans it, mapping "no row" to false.
func queryRow[T any](t *tx, scan func(pgx.Row) (T, error), sql string, args ...any) (T, bool, error) {
	var zero T
	if t.done {
		return zero, false, errTxDone
	}
	v, err := scan(t.ptx.QueryRow(t.ctx, sql, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return zero, false, nil
	}
	if err != nil {
		return zero, false, t.note(err)
	}
	return v, true, nil
}

// queryRows runs a query in the transaction and scans every row.
func queryRows[T any](t *tx, scan func(pgx.Row) (T, error), sql string, args ...any) ([]T, error) {
	if t.done {
		return nil, errTxDone
	}
	rows, err := t.ptx.Query(t.ctx, sql, args...)
	out, err := collect(rows, err, scan)
	return out, t.note(err)
}

// read runs a query on the pool (outside any transaction) and scans every
// row; a failure of the storage is wrapped and recorded for Health.
func read[T any](ctx context.Context, s *Store, scan func(pgx.Row) (T, error), sql string, args ...any) ([]T, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	out, err := collect(rows, err, scan)
	return out, s.readError(err)
}

// readOne runs a single-row query on the pool, mapping "no row" to false.
func readOne[T any](ctx context.Context, s *Store, scan func(pgx.Row) (T, error), sql string, args ...any) (T, bool, error) {
	v, err := scan(s.pool.QueryRow(ctx, sql, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		var zero T
		return zero, false, nil
	}
	if err != nil {
		var zero T
		return zero, false, s.readError(err)
	}
	return v, true, nil
}

// readError wraps a storage failure of a read; one that says the server
// cannot be reached is Health's fault too.
func (s *Store) readError(err error) error {
	err = storageError(err)
	if err != nil && errors.Is(err, host.ErrStorageUnavailable) && isConnection(err) {
		s.noteHealth(err, true)
	}
	return err
}

// collect scans every row of rows and closes it.
func collect[T any](rows pgx.Rows, err error, scan func(pgx.Row) (T, error)) ([]T, error) {
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

// scanString scans a one-column string row.
func scanString(r pgx.Row) (string, error) {
	var s string
	err := r.Scan(&s)
	return s, err
}
