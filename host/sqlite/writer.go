package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// maxBatch bounds how many Update requests one group commit takes.
const maxBatch = 64

// request is one Update call waiting for the writer.
type request struct {
	ctx  context.Context
	fn   func(host.Tx) error
	done chan result // buffered (1): the writer never blocks answering
}

// result is the writer's answer to one request.
type result struct {
	events []host.Event
	err    error
	// panicked is set when fn panicked; Update re-panics with panicVal on
	// the caller's goroutine, after the fn's writes were rolled back.
	panicked bool
	panicVal any
}

// Update runs fn on the writer goroutine inside a transaction shared with
// the other requests of its group commit, and returns the events fn appended
// once that transaction has committed. If fn returns an error (or panics),
// its writes alone are rolled back and the error is returned (or the panic
// re-raised here). ctx is honoured until the writer picks the request up,
// and checked once more just before fn runs; after that Update waits for the
// outcome, so that a nil error always means committed. After Close, Update
// returns ErrClosed.
func (s *Store) Update(ctx context.Context, fn func(tx host.Tx) error) ([]host.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	select {
	case <-s.quit:
		return nil, fmt.Errorf("update: %w", ErrClosed)
	default:
	}
	r := &request{ctx: ctx, fn: fn, done: make(chan result, 1)}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		return nil, fmt.Errorf("update: %w", ctx.Err())
	case <-s.quit:
		return nil, fmt.Errorf("update: %w", ErrClosed)
	}
	res := <-r.done
	if res.panicked {
		panic(res.panicVal)
	}
	return res.events, storageError(res.err)
}

// writeLoop is the writer goroutine: it takes the first queued request,
// drains whatever else is queued (up to maxBatch) and commits them together.
// The request channel is unbuffered, so once quit is closed no request can
// be left behind unanswered.
func (s *Store) writeLoop() {
	defer close(s.stopped)
	batch := make([]*request, 0, maxBatch)
	results := make([]result, maxBatch)
	for {
		// Prefer quit over queued requests so that Close is prompt under load.
		select {
		case <-s.quit:
			return
		default:
		}
		select {
		case <-s.quit:
			return
		case r := <-s.reqs:
			batch = append(batch[:0], r)
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		res := results[:len(batch)]
		s.commitBatch(batch, res)
		for i, r := range batch {
			r.done <- res[i]
			res[i] = result{}
			batch[i] = nil
		}
	}
}

// commitBatch runs the batch's functions in one transaction, each inside its
// own savepoint, and fills res. SQL runs with a context that is never
// cancelled (see wexec and tx.exec): an interrupted write statement would make
// SQLite roll back the whole transaction, that is the other callers' work
// too.
func (s *Store) commitBatch(batch []*request, res []result) {
	if first, err := s.health.checkFile(false); err != nil {
		if first {
			s.log.Error("database file lost: refusing writes", "err", err)
		}
		failBatch(res, err)
		return
	}
	err := s.runBatch(batch, res)
	if s.health.committed(storageError(err)) {
		if err != nil {
			s.log.Error("storage unavailable: commits fail and are retried", "err", err)
		} else {
			s.log.Info("storage available again: commits succeed")
		}
	}
}

// runBatch is commitBatch's transaction; it returns the error that failed
// the whole batch, if any. The batch's functions first run one after the
// other in one transaction without savepoints; only when one of them fails
// is the batch run again with a savepoint around each function, so that
// the failing one's writes alone are undone. Most batches fail nowhere,
// and a savepoint and its release are two statements of a step's nine,
// plus a copy of each page a function first touches. The Store contract
// allows the second run: a function may run again, and what its last run
// assigned is what committed (PostgreSQL re-runs functions after a
// conflict too).
func (s *Store) runBatch(batch []*request, res []result) error {
	again, err := s.runPass(batch, res, false)
	if !again {
		return err
	}
	clear(res)
	_, err = s.runPass(batch, res, true)
	return err
}

// runPass runs the batch's functions in one transaction, each inside its
// own savepoint when isolated. Not isolated, a function that fails (or
// under which SQLite lost the transaction) rolls everything back: again
// then asks for an isolated pass, except for a lone function, whose
// failure is final.
func (s *Store) runPass(batch []*request, res []result, isolated bool) (again bool, err error) {
	if err := s.wexec("BEGIN IMMEDIATE"); err != nil {
		err = fmt.Errorf("update: begin: %w", err)
		failBatch(res, err)
		return false, err
	}
	s.txLost.Store(false)
	var storageErr error
	touched := map[string]struct{}{}
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			res[i].err = fmt.Errorf("update: %w", err)
			continue
		}
		if isolated {
			if err := s.wexec("SAVEPOINT fn"); err != nil {
				return false, s.abort(res, fmt.Errorf("update: savepoint: %w", err))
			}
		}
		t := &tx{s: s, touched: touched, seqs: map[string]seqState{}}
		out := callFn(r.fn, t)
		if out.err == nil && !out.panicked {
			out.err = t.flush()
		}
		t.done = true
		failed := out.err != nil || out.panicked
		if !isolated && (failed || s.txLost.Load()) {
			// A function ignored a statement whose failure made SQLite
			// roll back (txLost): the isolated pass finds out whose.
			if rbErr := s.wexec("ROLLBACK"); rbErr != nil && !strings.Contains(rbErr.Error(), "no transaction is active") {
				res[i] = out
				err := fmt.Errorf("update: roll back failed function: %w", rbErr)
				failBatch(res, err)
				return false, err
			}
			if !failed || len(batch) > 1 {
				return true, nil
			}
			res[i] = out
			if isStorage(out.err) {
				return false, out.err
			}
			return false, nil
		}
		if failed {
			res[i] = out
			if rbErr := s.wexec("ROLLBACK TO fn", "RELEASE fn"); rbErr != nil {
				// SQLite rolls the whole transaction back by itself on
				// some failures (a full disk): the batch fails with the
				// function's error as its cause.
				if out.err != nil {
					return false, s.abort(res, fmt.Errorf("update: %w (and the transaction was lost: %v)", out.err, rbErr))
				}
				return false, s.abort(res, fmt.Errorf("update: roll back failed function: %w", rbErr))
			}
			if isStorage(out.err) {
				// The function met a storage failure (an INSERT on a
				// full disk): the batch's health is that failure even if
				// the others commit.
				storageErr = out.err
			}
			continue
		}
		if isolated {
			if err := s.wexec("RELEASE fn"); err != nil {
				// SQLite rolled the whole transaction back (disk full,
				// I/O error...) under a function that ignored the error.
				return false, s.abort(res, fmt.Errorf("update: release savepoint: %w", err))
			}
		}
		res[i].events = t.events
	}
	if err := s.wexec("COMMIT"); err != nil {
		return false, s.abort(res, fmt.Errorf("update: commit: %w", err))
	}
	s.published(touched, res)
	return false, storageErr
}

// published tells of a commit: it drops the cached views of the runs it
// touched, then hands its events to the commit hook.
func (s *Store) published(touched map[string]struct{}, res []result) {
	// Before anyone hears of the commit: a caller or a client told of it
	// must read what it wrote, not a cached view from before.
	if len(touched) > 0 {
		s.views.invalidate(touched)
	}
	if s.onCommit != nil {
		var all []host.Event
		for i := range res {
			all = append(all, res[i].events...)
		}
		if len(all) > 0 {
			s.onCommit(all)
		}
	}
}

// abort rolls the open transaction back and gives err to every request of
// the batch that had not already failed on its own.
func (s *Store) abort(res []result, err error) error {
	rbErr := s.wexec("ROLLBACK")
	// SQLite may already have rolled back on its own (disk full, I/O
	// error); any other rollback failure is worth reporting too.
	if rbErr != nil && !strings.Contains(rbErr.Error(), "no transaction is active") {
		err = errors.Join(err, fmt.Errorf("update: rollback: %w", rbErr))
	}
	failBatch(res, err)
	return err
}

// failBatch sets err on every result that does not already carry the
// failure of its own function, and drops their events.
func failBatch(res []result, err error) {
	for i := range res {
		if res[i].err == nil && !res[i].panicked {
			res[i] = result{err: err}
		}
	}
}

// callFn runs fn and returns its error, or its panic as a value that Update
// re-raises on the caller's goroutine.
func callFn(fn func(host.Tx) error, t *tx) (out result) {
	defer func() {
		if p := recover(); p != nil {
			out = result{panicked: true, panicVal: p}
		}
	}()
	return result{err: fn(t)}
}

// wexec runs transaction-control statements on the writer's connection
// through its statement cache, with a context that is never cancelled.
func (s *Store) wexec(queries ...string) error {
	for _, q := range queries {
		st, err := s.stmt(q)
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(context.Background()); err != nil {
			return err
		}
	}
	return nil
}
