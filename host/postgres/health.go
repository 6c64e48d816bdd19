package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/smithers-orchestrator/smithers-go/host"
)

// pingEvery is how long Health trusts its last ping.
const pingEvery = time.Second

// pingTimeout bounds Health's ping.
const pingTimeout = 2 * time.Second

// health tracks why the store cannot commit: the last storage failure of a
// commit, a read or a ping. A failure to reach the server clears with the
// next successful ping or commit; a failure of the server to write (disk
// full, I/O error, a read-only standby) only with the next successful
// commit.
type health struct {
	mu        sync.Mutex
	fault     error // wraps host.ErrStorageUnavailable; nil when healthy
	reachable bool  // the fault is one a successful ping clears
	pingedAt  time.Time
	pinging   bool
}

// err is the current fault.
func (h *health) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fault
}

// record notes the outcome of a commit (or, with ping, of a ping or a
// read): a storage failure sets the fault, a success clears it. It returns
// true when the state changed, for the caller to log.
func (h *health) record(err error, ping bool) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	was := h.fault != nil
	switch {
	case err != nil && errors.Is(err, host.ErrStorageUnavailable):
		h.fault, h.reachable = err, isConnection(err)
		return !was
	case err != nil:
		return false
	case ping && !h.reachable:
		return false // the server answers, but could not write
	default:
		h.fault = nil
		return was
	}
}

// Health pings the server at most once per pingEvery (callers in between
// get the last answer) and reports the store's fault, wrapping
// host.ErrStorageUnavailable, or nil.
func (s *Store) Health() error {
	h := &s.health
	h.mu.Lock()
	if h.pinging || time.Since(h.pingedAt) < pingEvery {
		defer h.mu.Unlock()
		return h.fault
	}
	h.pinging = true
	h.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	err := s.pool.Ping(ctx)
	cancel()
	if err != nil {
		err = unavailable("ping", err)
	}
	s.noteHealth(err, true)

	h.mu.Lock()
	defer h.mu.Unlock()
	h.pinging, h.pingedAt = false, time.Now()
	return h.fault
}

// noteHealth records an outcome and logs a change.
func (s *Store) noteHealth(err error, ping bool) {
	if !s.health.record(err, ping) {
		return
	}
	if err != nil {
		s.log.Error("storage unavailable: commits fail and are retried", "err", err)
	} else {
		s.log.Info("storage available again: commits succeed")
	}
}

// unavailable wraps err, a failure of the storage itself, with
// host.ErrStorageUnavailable.
func unavailable(step string, err error) error {
	return fmt.Errorf("%w: %s: %w", host.ErrStorageUnavailable, step, err)
}

// storageError wraps err with host.ErrStorageUnavailable when the storage
// failed rather than the statement (the server is unreachable, shutting
// down, out of disk or connections), so that the engine holds the step and
// the API answers 503 instead of failing the workflow. The caller's own
// cancellation is returned as it is.
func storageError(err error) error {
	if err == nil || errors.Is(err, host.ErrStorageUnavailable) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if isStorage(err) {
		return fmt.Errorf("%w: %w", host.ErrStorageUnavailable, err)
	}
	return err
}

// isStorage reports whether err is a failure of the storage (see
// storageError).
func isStorage(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch class(pe.Code) {
		case "08", // connection exception
			"53", // insufficient resources: disk full, out of memory, too many connections
			"58", // system error: I/O error
			"XX": // internal error, data corrupted
			return true
		}
		switch pe.Code {
		case "57P01", "57P02", "57P03", // admin shutdown, crash shutdown, cannot connect now
			"57014",          // query cancelled by statement_timeout
			"25006",          // read-only transaction: a standby after a failover
			"3D000",          // the database does not exist (any more)
			"28000", "28P01": // the credentials are refused
			return true
		}
		return false
	}
	return isConnection(err)
}

// isConnection reports whether err says the server could not be reached or
// the connection broke, as opposed to an answer of the server.
func isConnection(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		c := pe.Code
		return class(c) == "08" || c == "57P01" || c == "57P02" || c == "57P03" || c == "53300" || c == "3D000"
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// class is the class of an SQLSTATE code (its first two characters).
func class(code string) string {
	if len(code) < 2 {
		return code
	}
	return code[:2]
}

// Retryable PostgreSQL errors: Update runs the function again in a fresh
// transaction.
const (
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeUniqueViolation      = "23505"
)

// conflict reports whether err is a conflict with a concurrent transaction
// that a fresh run of the function resolves: a serialization failure, a
// deadlock, or a concurrent launch with the same idempotency key (the next
// run finds the run the other one created).
func conflict(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case codeSerializationFailure, codeDeadlockDetected:
		return true
	case codeUniqueViolation:
		return pe.ConstraintName == "runs_idempotency"
	}
	return false
}

// contention reports whether err is a serialization failure or a deadlock:
// when retries run out, the store is too contended to commit now, which
// the engine treats like a storage failure (hold the step, retry).
func contention(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == codeSerializationFailure || pe.Code == codeDeadlockDetected)
}
