package host

import (
	"context"
	"errors"
	"time"
)

// errAbandoned is returned by updateHeld when the caller gave up waiting
// for the storage (its activation ended, or the gateway is stopping).
var errAbandoned = errors.New("storage unavailable and the write was abandoned")

// Storage retry backoff: the first retry after holdBackoffMin, doubling up
// to holdBackoffMax.
const (
	holdBackoffMin = 50 * time.Millisecond
	holdBackoffMax = 5 * time.Second
)

// updateHeld is update for the engine's own writes (a run's steps, its
// completion, a claim): a storage failure (disk full, I/O error) is the
// gateway's problem, never the workflow's, so the write is held and retried
// with backoff until it commits, instead of failing the run. abandon, polled
// between tries, and the gateway stopping end the wait with errAbandoned
// (the run stays as the store has it and resumes later). Any other error
// is returned at once.
func (g *Gateway) updateHeld(runID string, abandon func() bool, fn func(tx Tx) error) error {
	wait := holdBackoffMin
	held := false
	for {
		err := g.update(context.Background(), fn)
		if err == nil || !errors.Is(err, ErrStorageUnavailable) {
			if held && err == nil {
				g.log.Info("storage available again: run continues", "runId", runID)
			}
			return err
		}
		if !held {
			held = true
			g.log.Warn("storage unavailable: holding the run until its write succeeds", "runId", runID, "err", err)
		}
		if abandon != nil && abandon() {
			return errAbandoned
		}
		select {
		case <-g.stop:
			return errAbandoned
		case <-time.After(wait):
		}
		wait = min(2*wait, holdBackoffMax)
	}
}

// errStaleJournal is returned by a step commit that would start a task
// whose node the store already has settled: the activation replays from a
// journal that is out of date.
var errStaleJournal = errors.New("the activation's journal is older than the store")

// errLeaseLost is returned by a step commit whose run is no longer this
// activation's: its row names another owner or a newer lease epoch.
var errLeaseLost = errors.New("the run's lease is held by another gateway process")
