package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/smithers-orchestrator/smithers-go/host"
)

const (
	// maxRuns is how many times Update runs a function whose transaction
	// met a conflict (see conflict) before giving up.
	maxRuns = 6
	// commitTimeout bounds COMMIT, which runs whatever the caller's
	// context says: a commit interrupted by a cancellation would leave the
	// caller unsure whether it happened.
	commitTimeout = 30 * time.Second
	// updateTimeout bounds one run of a function and its statements, so
	// that a connection whose server vanished (a network partition) fails
	// the Update as a storage failure instead of hanging it.
	updateTimeout = time.Minute
)

// errUpdateTimeout is the cause of an Update that ran out of
// updateTimeout.
var errUpdateTimeout = errors.New("the database did not answer in time")

// eventsChannel is the notification channel on which every commit that
// appended events names them (see feed).
const eventsChannel = "smithers_events"

// Update runs fn in one READ COMMITTED transaction and returns the events
// fn appended once the transaction has committed. If fn returns an error
// (or panics), nothing is written and the error is returned (or the panic
// re-raised here).
//
// Several functions run at once, in this process and in others: Tx.GetRun,
// GetNode, GetCron and GetApproval lock the row they read until the
// transaction ends, so that functions that read a run, node or cron and
// write it back take turns. When the transaction meets a conflict (a
// deadlock, a serialization failure, a concurrent launch with the same
// idempotency key) fn is run again, in a fresh transaction, a few times
// with a jittered pause: fn must only assign variables it captured, so
// that its last run is what the caller sees.
//
// ctx bounds fn's statements; COMMIT itself runs to completion, so that a
// nil error always means committed. A failure of the storage is returned
// wrapping host.ErrStorageUnavailable. After Close, Update returns
// ErrClosed.
func (s *Store) Update(ctx context.Context, fn func(tx host.Tx) error) ([]host.Event, error) {
	for run := 1; ; run++ {
		if s.closed.Load() {
			return nil, fmt.Errorf("update: %w", ErrClosed)
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("update: %w", err)
		}
		events, xid, err := s.updateOnce(ctx, fn)
		if err == nil {
			s.noteHealth(nil, false)
			if s.feed != nil && len(events) > 0 {
				s.feed.local(events, xid)
			}
			return events, nil
		}
		if conflict(err) && run < maxRuns && ctx.Err() == nil {
			pause := time.Duration(1<<run)*time.Millisecond + rand.N(5*time.Millisecond)
			select {
			case <-time.After(pause):
				continue
			case <-ctx.Done():
			}
		}
		if contention(err) {
			// The database is too busy with conflicting writers to take
			// this one now: the engine holds the step and retries, as for
			// a storage failure (but health stays as it is).
			return nil, fmt.Errorf("%w: update: %d tries conflicted with other writers: %w", host.ErrStorageUnavailable, run, err)
		}
		err = storageError(err)
		s.noteHealth(err, false)
		return nil, err
	}
}

// updateOnce runs fn in one transaction. A panic of fn is re-raised after
// the rollback.
func (s *Store) updateOnce(ctx context.Context, fn func(host.Tx) error) (events []host.Event, xid uint64, err error) {
	ctx, cancel := context.WithTimeoutCause(ctx, updateTimeout, errUpdateTimeout)
	defer cancel()
	defer func() {
		if err != nil && errors.Is(context.Cause(ctx), errUpdateTimeout) {
			err = unavailable("update", errUpdateTimeout)
		}
	}()
	ptx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, 0, fmt.Errorf("update: begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
			_ = ptx.Rollback(rctx)
			cancel()
		}
	}()
	t := &tx{s: s, ctx: ctx, ptx: ptx}
	fnErr := fn(t) // a panic unwinds through the deferred rollback
	t.done = true
	switch {
	case fnErr != nil:
		// A statement error the function swallowed may be what decides a
		// retry (its own error may only say the transaction was aborted).
		if t.failed != nil && conflict(t.failed) && !conflict(fnErr) {
			return nil, 0, t.failed
		}
		return nil, 0, fnErr
	case t.failed != nil:
		// PostgreSQL aborted the transaction at the failed statement: the
		// function ignored an error and nothing of it can commit.
		return nil, 0, fmt.Errorf("update: a statement failed and the function went on: %w", t.failed)
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("update: %w", err)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err := ptx.Commit(cctx); err != nil {
		var pe *pgconn.PgError
		if !errors.As(err, &pe) {
			// The connection failed during COMMIT: the transaction may or
			// may not have committed. The caller's next step re-reads.
			return nil, 0, unavailable("update: commit (outcome unknown)", err)
		}
		return nil, 0, fmt.Errorf("update: commit: %w", err)
	}
	committed = true
	return t.events, t.xid, nil
}
