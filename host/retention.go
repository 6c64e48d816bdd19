package host

import (
	"context"
	"errors"
	"time"
)

// Retention sweep sizes: runsPerSweepBatch runs are deleted per
// transaction, so that a sweep never holds the single writer for long (a
// run may carry thousands of events); sweepPause separates batches so that
// steps of live runs commit in between.
const (
	runsPerSweepBatch = 10
	sweepPause        = 10 * time.Millisecond
	sweepEveryMax     = time.Minute
)

// retentionLoop deletes terminal runs older than the retention period: once
// at start, then every minute, or every retention period when that is
// shorter. The freed pages are reused by new rows.
func (g *Gateway) retentionLoop() {
	defer g.wg.Done()
	every := min(g.retention, sweepEveryMax)
	for {
		if n, err := g.sweepExpiredRuns(); err != nil {
			if !errors.Is(err, ErrStorageUnavailable) {
				g.log.Error("retention sweep", "deleted", n, "err", err)
			}
		} else if n > 0 {
			g.log.Info("retention: deleted terminal runs", "count", n, "olderThan", g.retention.String())
		}
		select {
		case <-g.stop:
			return
		case <-time.After(every):
		}
	}
}

// sweepExpiredRuns deletes, batch by batch, every terminal run that
// finished more than the retention period ago, with everything that belongs
// to it; it returns how many it deleted.
func (g *Gateway) sweepExpiredRuns() (int, error) {
	ctx := context.Background()
	deleted := 0
	for {
		cutoff := g.nowMs() - g.retention.Milliseconds()
		ids, err := g.store.ListExpiredRuns(ctx, cutoff, runsPerSweepBatch)
		if err != nil || len(ids) == 0 {
			return deleted, err
		}
		batch := 0 // counted per run of fn: it may run again
		err = g.update(ctx, func(tx Tx) error {
			batch = 0
			for _, id := range ids {
				// Re-read inside the transaction: only a run that is still
				// terminal and expired goes.
				r, ok, err := tx.GetRun(id)
				if err != nil {
					return err
				}
				if !ok || !r.Status.Terminal() || r.FinishedAtMs == 0 || r.FinishedAtMs >= cutoff {
					continue
				}
				if _, err := tx.DeleteRun(id); err != nil {
					return err
				}
				batch++
			}
			return nil
		})
		if err != nil {
			return deleted, err
		}
		deleted += batch
		select {
		case <-g.stop:
			return deleted, nil
		case <-time.After(sweepPause):
		}
	}
}
