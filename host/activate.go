package host

import (
	"context"
	"errors"
	"fmt"
)

// wake makes sure the run makes progress: a live activation gets node n
// delivered (when n is non-nil); a parked or interrupted run is activated
// and replays its journal. A wake that meets an activation which is ending
// (parking, finishing, detaching) is remembered and replayed by release.
func (g *Gateway) wake(runID string, n *Node) { g.wakeWith(runID, n, nil) }

// wakeNew activates a run this process has just created (its row is fresh,
// its journal empty), without reading either back from the store.
func (g *Gateway) wakeNew(run Run) { g.wakeWith(run.RunID, nil, &run) }

func (g *Gateway) wakeWith(runID string, n *Node, fresh *Run) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	if s := g.active[runID]; s != nil {
		s.mu.Lock()
		if s.ended {
			s.rewake = true
			s.mu.Unlock()
			g.mu.Unlock()
			return
		}
		if n != nil {
			s.journal[nodeKey{n.NodeID, n.Iteration}] = *n
		}
		if !s.started {
			if n != nil {
				s.queued = append(s.queued, *n)
			}
			s.mu.Unlock()
			g.mu.Unlock()
			return
		}
		s.mu.Unlock()
		g.mu.Unlock()
		if n != nil {
			g.exec.Deliver(s, *n)
		}
		return
	}
	if g.draining {
		// Shutting down: the run is left as the store has it ("running"
		// runs resume at the next start).
		g.mu.Unlock()
		return
	}
	s := newSession(g, runID)
	if n != nil {
		s.wokenBy = n.NodeID
	}
	s.fresh = fresh
	g.active[runID] = s
	g.wg.Add(1)
	g.mu.Unlock()
	go func() {
		defer g.wg.Done()
		g.activate(s)
	}()
}

// release ends s and removes it from the active table; a wake that arrived
// while it was ending activates the run again.
func (g *Gateway) release(s *Session) {
	s.releaseSlots()
	g.mu.Lock()
	if g.active[s.runID] == s {
		delete(g.active, s.runID)
	}
	s.mu.Lock()
	s.ended = true
	rewake := s.rewake
	s.rewake = false
	s.mu.Unlock()
	g.mu.Unlock()
	if rewake {
		g.wake(s.runID, nil)
	}
}

// activate loads the run and its journal and hands the session to the
// executor; a run that must not run now (cancel requested, workflow not
// registered, held by versionPolicy strict, owned by a live process) is
// released instead.
func (g *Gateway) activate(s *Session) {
	ctx := context.Background()
	var (
		run Run
		ok  bool
		err error
	)
	if s.fresh != nil {
		// Just created here: the row as committed, and no journal yet.
		// A cancel that lands meanwhile finds this session and detaches
		// it; its steps' commits check the lease.
		run, ok = *s.fresh, true
	} else {
		run, ok, err = g.store.GetRun(ctx, s.runID)
	}
	if err != nil || !ok || run.Status.Terminal() {
		if err != nil {
			g.log.Error("activate run: load", "runId", s.runID, "err", err)
		}
		g.release(s)
		return
	}
	if run.CancelRequestedAtMs > 0 {
		g.release(s)
		g.finishRun(s.runID, finishGuard{}, RunCancelled, "", cancelledErrorJSON())
		return
	}
	if g.ownedElsewhere(run, g.nowMs()) {
		// Another live process runs it (a decision or timer handled here
		// woke it): that process hears of the settle through the commit
		// feed. Nothing to do, and nothing to stamp on its run.
		g.log.Debug("run is owned by another live gateway process; leaving it to it", "runId", run.RunID, "owner", run.RuntimeOwnerID)
		g.release(s)
		return
	}
	wf, ok := g.workflows[run.WorkflowKey]
	if !ok {
		g.log.Error("run's workflow is not registered by the current module; leaving it until the module registers it again",
			"runId", run.RunID, "workflow", run.WorkflowKey)
		g.stampRunError(run, CodeWorkflowMissing, fmt.Sprintf("workflow %q is not registered by the gateway's module; the run continues when a module registering it is loaded", run.WorkflowKey))
		g.release(s)
		return
	}
	if wf.VersionPolicy == VersionStrict && run.WorkflowHash != g.exec.BundleHash() {
		g.log.Warn("run left parked: version mismatch", "runId", run.RunID, "workflow", run.WorkflowKey)
		g.stampRunError(run, CodeVersionMismatch, fmt.Sprintf("module changed since the run started (versionPolicy strict): stored bundle %s, current %s; resume with options.force to replay under the new code", short(run.WorkflowHash), short(g.exec.BundleHash())))
		g.release(s)
		return
	}
	run, err = g.claim(s, run)
	if err != nil {
		if errors.Is(err, errOwnedElsewhere) {
			g.log.Warn("run is owned by another live gateway process; not taking it over", "runId", run.RunID, "owner", run.RuntimeOwnerID)
		} else if !errors.Is(err, ErrRunTerminal) && !errors.Is(err, errAbandoned) {
			g.log.Error("activate run: mark running", "runId", run.RunID, "err", err)
		}
		g.release(s)
		return
	}
	// The journal is read after the claim: from then on no other process
	// can commit a step of the run (its epoch is stale), so what is read
	// is what the replay must follow. Read before, a step the previous
	// owner finished in between would be run again.
	var nodes []Node
	if s.fresh == nil {
		nodes, err = g.store.ListNodes(ctx, run.RunID)
		if err == nil {
			s.values, err = g.store.ListValues(ctx, run.RunID)
		}
	}
	if err != nil {
		g.log.Error("activate run: load journal", "runId", run.RunID, "err", err)
		g.release(s)
		return
	}
	triggeredBy := runTrigger(run.ConfigJSON)
	if g.observer != nil {
		g.observer.RunStarted(run.WorkflowKey, sourceOf(triggeredBy), len(nodes) > 0)
	}
	switch log := g.log.With("runId", run.RunID, "workflow", run.WorkflowKey); {
	case s.wokenBy != "":
		log.Info("run woken", "by", s.wokenBy)
	case len(nodes) == 0:
		log.Info("run started", "triggeredBy", triggeredBy)
	default:
		log.Info("run resumed", "journaledNodes", len(nodes))
	}
	s.load(run, wf, nodes)
	s.mu.Lock()
	if s.ended { // cancelled or shut down while activating
		s.mu.Unlock()
		g.release(s)
		return
	}
	s.started = true
	queued := s.queued
	s.queued = nil
	s.mu.Unlock()
	g.exec.Activate(s)
	for _, n := range queued {
		g.exec.Deliver(s, n)
	}
}

// ownedElsewhere reports whether another live gateway process runs the run:
// it is running under another owner whose lease is fresh, on a store shared
// by several processes.
func (g *Gateway) ownedElsewhere(r Run, now int64) bool {
	return !g.store.Exclusive() && r.Status == RunRunning && r.RuntimeOwnerID != "" && r.RuntimeOwnerID != g.instance &&
		now-r.HeartbeatAtMs < g.ownerLease.Milliseconds()
}

// errOwnedElsewhere: the run is marked running by another gateway process
// whose heartbeat is fresh; taking it over would run its tasks twice.
var errOwnedElsewhere = errors.New("run is owned by another live gateway process")

// claim marks the run running under this process (owner id, fresh
// heartbeat), unless this process launched or woke it moments ago and the
// row already says so. A run owned by another process is taken over only
// when that process is known to be dead: the store is this process's alone
// (Store.Exclusive: SQLite's owner lock), or the owner's heartbeat is older
// than the owner lease.
func (g *Gateway) claim(s *Session, run Run) (Run, error) {
	now := g.nowMs()
	if run.Status == RunRunning && run.RuntimeOwnerID == g.instance && run.StartedAtMs != 0 &&
		now-run.HeartbeatAtMs < g.heartbeat.Milliseconds() && run.ErrorJSON == "" {
		return run, nil
	}
	err := g.updateHeld(run.RunID, s.isEnded, func(tx Tx) error {
		r, ok, err := tx.GetRun(run.RunID)
		if err != nil {
			return err
		}
		if !ok || r.Status.Terminal() {
			return ErrRunTerminal
		}
		if g.ownedElsewhere(r, now) {
			run = r
			return errOwnedElsewhere
		}
		if r.StartedAtMs == 0 {
			r.StartedAtMs = now
		}
		r.Status = RunRunning
		r.HeartbeatAtMs = now
		r.RuntimeOwnerID = g.instance
		r.LeaseEpoch++
		if c := ErrorCodeOfJSON(r.ErrorJSON); c == CodeVersionMismatch || c == CodeWorkflowMissing {
			r.ErrorJSON = ""
		}
		run = r
		return tx.UpdateRun(r)
	})
	return run, err
}

// stampRunError records on a live run why it cannot run now (errorJson with
// code and message), once: the status is left as it is.
func (g *Gateway) stampRunError(run Run, code, msg string) {
	if ErrorCodeOfJSON(run.ErrorJSON) == code {
		return
	}
	err := g.update(context.Background(), func(tx Tx) error {
		r, ok, err := tx.GetRun(run.RunID)
		if err != nil || !ok || r.Status.Terminal() {
			return err
		}
		r.ErrorJSON = errorJSON(code, msg)
		return tx.UpdateRun(r)
	})
	if err != nil {
		g.log.Error("record why the run cannot run", "runId", run.RunID, "code", code, "err", err)
	}
}

// markRunning sets a parked run back to running in the transaction that
// wakes it (a decision, a signal, a timer), so its activation need not write.
func (g *Gateway) markRunning(tx Tx, runID string, now int64) error {
	r, ok, err := tx.GetRun(runID)
	if err != nil || !ok || !r.Status.Waiting() {
		return err
	}
	r.Status = RunRunning
	r.HeartbeatAtMs = now
	r.RuntimeOwnerID = g.instance
	r.LeaseEpoch++
	return tx.UpdateRun(r)
}

// detach abandons a live session and then calls then (in a goroutine of the
// executor). It returns nil if the run has no live session, else a channel
// closed after then returned.
func (g *Gateway) detach(runID string, reason error, then func()) <-chan struct{} {
	g.mu.Lock()
	s := g.active[runID]
	g.mu.Unlock()
	if s == nil {
		return nil
	}
	return g.detachSession(s, reason, then)
}

// detachSession abandons session s (and no successor activation of its
// run) and then calls then; nil when s had already ended or the gateway
// has closed.
func (g *Gateway) detachSession(s *Session, reason error, then func()) <-chan struct{} {
	if !g.owned() {
		return nil
	}
	if !s.markDetaching() {
		g.wg.Done()
		return nil
	}
	done := make(chan struct{})
	g.exec.Detach(s, reason, func() {
		defer g.wg.Done()
		defer close(done)
		then()
		g.release(s)
	})
	return done
}

// owned counts one more piece of work in flight (g.wg) unless the gateway
// has closed; the caller calls g.wg.Done when it ends. Work started after
// Close would touch a closed store and executor.
func (g *Gateway) owned() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

// loseLease abandons an activation whose run another process claimed: its
// JavaScript state is dropped and its in-flight task bodies are aborted,
// without writing anything (the new owner replays the run).
func (g *Gateway) loseLease(s *Session) {
	if g.detachSession(s, Errorf(CodeCancelled, "run taken over by another gateway process"), func() {}) != nil {
		g.log.Warn("run taken over by another gateway process; dropping this activation", "runId", s.runID)
	}
}

// endFinished abandons a live activation of a run that has ended
// elsewhere (cancelled, timed out or finished by another process): its task
// bodies stop at once.
func (g *Gateway) endFinished(s *Session) {
	if g.detachSession(s, Errorf(CodeCancelled, "the run ended"), func() {}) != nil {
		g.log.Info("run ended by another gateway process; stopping its activation here", "runId", s.runID)
	}
}

// replayAfresh drops an activation whose journal turned out to be older
// than the store and activates the run again, from the store's journal.
func (g *Gateway) replayAfresh(s *Session) {
	g.log.Warn("a step was already settled in the store; replaying the run from its journal", "runId", s.runID)
	g.detachSession(s, Errorf(CodeCancelled, "replaying from the stored journal"), func() {
		s.mu.Lock()
		s.rewake = true
		s.mu.Unlock()
	})
}
