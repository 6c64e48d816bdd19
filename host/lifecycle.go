package host

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// Start kills process groups left by a killed gateway, re-arms durable
// timers, resumes the runs that were running when the previous process
// died, and starts the heartbeat. It returns once that work is scheduled.
func (g *Gateway) Start(ctx context.Context) error {
	sv, err := g.store.StateVersion(ctx)
	if err != nil {
		return fmt.Errorf("load stateVersion: %w", err)
	}
	g.stateVersion.Store(sv)
	g.killOrphanProcesses(ctx)
	due, err := g.store.ListDueNodes(ctx, 0)
	if err != nil {
		return fmt.Errorf("load timers: %w", err)
	}
	for _, n := range due {
		g.timers.arm(timerEntry{at: n.FiresAtMs, runID: n.RunID, nodeID: n.NodeID, iteration: n.Iteration})
	}
	live, err := g.liveRunsToStart(ctx)
	if err != nil {
		return fmt.Errorf("load live runs: %w", err)
	}
	// Runs of workflows with a concurrency limit that resume now ask for
	// their slots in whatever order their replays get there: the limit's
	// queues wait for them (at most settleTimeout) so that launch order
	// holds across the restart.
	settling := map[string][]string{}
	for _, r := range live {
		if wf, ok := g.workflows[r.WorkflowKey]; ok && wf.Concurrency != nil && r.Status == RunRunning {
			settling[wf.Key] = append(settling[wf.Key], r.RunID)
		}
	}
	for wf, ids := range settling {
		g.slots.settle(wf, ids)
	}
	if len(settling) > 0 {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			select {
			case <-g.stop:
			case <-time.After(settleTimeout):
			}
			g.slots.endSettling()
		}()
	}
	resumed := 0
	for _, r := range live {
		if r.DeadlineAtMs > 0 {
			g.timers.arm(timerEntry{at: r.DeadlineAtMs, runID: r.RunID, deadline: true})
		}
		// A cancel whose second commit a crash prevented is finished
		// now, parked run or not.
		if r.Status == RunRunning || r.CancelRequestedAtMs > 0 {
			resumed++
			g.wake(r.RunID, nil)
		}
	}
	if resumed > 0 {
		g.log.Info("resuming runs interrupted by the previous process", "count", resumed)
	}
	if err := g.syncSchedules(ctx); err != nil {
		return fmt.Errorf("schedule crons: %w", err)
	}
	g.timers.start()
	g.wg.Add(2)
	go g.heartbeatLoop()
	go g.cronLoop()
	if g.retention > 0 {
		g.wg.Add(1)
		go g.retentionLoop()
	}
	return nil
}

// liveRunsToStart returns the live runs Start acts on: the running ones
// (resumed), and the parked ones with a deadline (armed) or a cancel a
// crash interrupted (finished). A parked run with neither needs nothing
// until something wakes it, so thousands of them cost no read at start.
func (g *Gateway) liveRunsToStart(ctx context.Context) ([]Run, error) {
	parked := []RunStatus{RunWaitingApproval, RunWaitingEvent, RunWaitingTimer}
	seen := map[string]bool{}
	var out []Run
	for _, f := range []RunFilter{
		{Statuses: []RunStatus{RunRunning}},
		{Statuses: parked, DeadlineBeforeMs: math.MaxInt64},
		{Statuses: parked, CancelRequested: true},
	} {
		runs, err := g.store.ListRuns(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, r := range runs {
			if !seen[r.RunID] {
				seen[r.RunID] = true
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// Close stops timers and the heartbeat, lets live runs finish or park for
// up to ShutdownGrace (deliveries still reach them; nothing new starts),
// then abandons the rest: their runs stay "running" and resume at the next
// start. It does not close the store or the executor: their owner (cmd)
// does, after Close.
func (g *Gateway) Close() error {
	g.mu.Lock()
	if g.closed || g.draining {
		g.mu.Unlock()
		return nil
	}
	g.draining = true
	g.mu.Unlock()
	close(g.stop)
	g.timers.close()
	deadline := time.Now().Add(g.grace)
	for g.ActiveRuns() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	g.mu.Lock()
	g.closed = true
	sessions := make([]*Session, 0, len(g.active))
	for _, s := range g.active {
		sessions = append(sessions, s)
	}
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range sessions {
		if !s.markDetaching() {
			continue
		}
		wg.Add(1)
		g.exec.Detach(s, errors.New("gateway shutting down"), wg.Done)
	}
	waitTimeout(&wg, 10*time.Second)
	g.wg.Wait()
	return nil
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// heartbeatLoop refreshes the heartbeat (the lease) of the runs active
// here, drops activations whose run another process has claimed, and
// looks for work that nobody is doing: every heartbeat on a store shared
// with other gateway processes, every third one otherwise.
func (g *Gateway) heartbeatLoop() {
	defer g.wg.Done()
	t := time.NewTicker(g.heartbeat)
	defer t.Stop()
	ticks := 0
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
		ticks++
		if !g.store.Exclusive() || ticks%3 == 0 {
			g.reconcile()
		}
		if !g.store.Exclusive() {
			g.armDueWork()
		}
		g.refreshLeases()
	}
}

// refreshLeases writes a fresh heartbeat on every running run active here
// that this process still owns; an activation whose run now names another
// owner or epoch lost its lease and is dropped.
func (g *Gateway) refreshLeases() {
	g.mu.Lock()
	sessions := make([]*Session, 0, len(g.active))
	for _, s := range g.active {
		sessions = append(sessions, s)
	}
	g.mu.Unlock()
	if len(sessions) == 0 {
		return
	}
	now := g.nowMs()
	var lost, ended []*Session
	err := g.update(context.Background(), func(tx Tx) error {
		lost, ended = lost[:0], ended[:0]
		for _, s := range sessions {
			// Only a started activation has claimed the run; one that has
			// ended (parked, finished, detached) may already have a
			// successor, which is not this check's to judge.
			started, epoch := s.claimed()
			if !started || s.isEnded() {
				continue
			}
			r, ok, err := tx.GetRun(s.runID)
			if err != nil {
				return err
			}
			if !ok || r.Status.Terminal() {
				ended = append(ended, s)
				continue
			}
			if r.Status != RunRunning {
				continue
			}
			if r.RuntimeOwnerID != g.instance {
				lost = append(lost, s)
				continue
			}
			if r.LeaseEpoch != epoch {
				// Claimed again by this process (woken just as this
				// activation parked): a successor's, not a loss.
				continue
			}
			r.HeartbeatAtMs = now
			if err := tx.UpdateRun(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrStorageUnavailable) { // the store logs storage failures
		g.log.Error("refresh run heartbeats", "err", err)
	}
	for _, s := range lost {
		g.loseLease(s)
	}
	for _, s := range ended {
		g.endFinished(s)
	}
}

// reconcile activates "running" runs that no live process is running: a
// store error ended their activation early here, or (on a shared store)
// the process that ran them died and its lease ran out. Replaying them
// from the journal is always safe; claim checks the lease again in the
// transaction that takes the run.
func (g *Gateway) reconcile() {
	// Every running run, page by page: an old run whose owner died must be
	// reached however many newer ones run.
	f := RunFilter{Statuses: []RunStatus{RunRunning}, Limit: reconcilePageSize}
	for {
		runs, err := g.store.ListRuns(context.Background(), f)
		if err != nil {
			g.log.Error("reconcile running runs", "err", err)
			return
		}
		g.reconcilePage(runs)
		if len(runs) < reconcilePageSize {
			return
		}
		last := runs[len(runs)-1]
		f.After = &RunCursor{CreatedAtMs: last.CreatedAtMs, RunID: last.RunID}
	}
}

// reconcilePageSize is how many running runs reconcile reads at a time.
const reconcilePageSize = 500

// reconcilePage wakes the runs of one page that need it.
func (g *Gateway) reconcilePage(runs []Run) {
	now := g.nowMs()
	for _, r := range runs {
		if _, ok := g.workflows[r.WorkflowKey]; !ok {
			continue
		}
		// A run held by versionPolicy "strict" waits for resumeRun with
		// force; re-activating it would only stamp it again.
		if ErrorCodeOfJSON(r.ErrorJSON) == CodeVersionMismatch && r.WorkflowHash != g.exec.BundleHash() {
			continue
		}
		// Another live process's run is its own.
		if g.ownedElsewhere(r, now) {
			continue
		}
		g.mu.Lock()
		_, live := g.active[r.RunID]
		g.mu.Unlock()
		if !live {
			if r.RuntimeOwnerID != g.instance && r.RuntimeOwnerID != "" {
				g.log.Warn("taking over a run whose gateway process stopped renewing its lease", "runId", r.RunID, "owner", r.RuntimeOwnerID)
			} else {
				g.log.Warn("reactivating a running run that had no activation", "runId", r.RunID)
			}
			g.wake(r.RunID, nil)
		}
	}
}
