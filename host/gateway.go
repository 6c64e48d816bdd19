package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config holds what the engine needs; cmd builds it.
type Config struct {
	Store    Store
	Executor Executor
	Logger   *slog.Logger
	// Observer, when set, is told about run starts and completions.
	Observer Observer
	// Now is the clock (default time.Now).
	Now func() time.Time
	// InstanceID names this process (stored as runtimeOwnerId).
	InstanceID string
	// HeartbeatInterval is how often heartbeatAtMs of active runs is
	// refreshed (default 10 s).
	HeartbeatInterval time.Duration
	// ShutdownGrace is how long Close lets live runs finish or park before
	// it abandons them (default 2 s).
	ShutdownGrace time.Duration
	// MaxOutputBytes caps a signal payload and a run's output (default
	// DefaultMaxOutputBytes); over it: OUTPUT_TOO_LARGE.
	MaxOutputBytes int
	// Retention, when positive, is how long terminal runs are kept: older
	// ones are deleted with everything that belongs to them.
	Retention time.Duration
}

// Gateway is the engine: it launches runs, activates them on the executor,
// commits their steps, parks and wakes them, and answers the run methods of
// the API. Create it with New, then Start it; Close stops it.
type Gateway struct {
	store     Store
	exec      Executor
	observer  Observer
	log       *slog.Logger
	now       func() time.Time
	instance  string
	heartbeat time.Duration
	workflows map[string]WorkflowDef
	startedAt time.Time

	timers *timerWheel

	stateVersion atomic.Int64 // stateVersion of the newest committed event

	grace time.Duration

	mu       sync.Mutex
	active   map[string]*Session // runId -> live (or activating/detaching) session
	draining bool                // Close began: no new activations
	closed   bool

	stop chan struct{}
	wg   sync.WaitGroup // background goroutines and activations in flight
}

// New builds a Gateway from cfg. It does not touch the store; Start does.
func New(cfg Config) (*Gateway, error) {
	if cfg.Store == nil || cfg.Executor == nil {
		return nil, errors.New("host: Config.Store and Config.Executor are required")
	}
	g := &Gateway{
		store:     cfg.Store,
		exec:      cfg.Executor,
		observer:  cfg.Observer,
		log:       cfg.Logger,
		now:       cfg.Now,
		instance:  cfg.InstanceID,
		heartbeat: cfg.HeartbeatInterval,
		workflows: map[string]WorkflowDef{},
		active:    map[string]*Session{},
		stop:      make(chan struct{}),
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.heartbeat <= 0 {
		g.heartbeat = 10 * time.Second
	}
	g.grace = cfg.ShutdownGrace
	if g.grace <= 0 {
		g.grace = 2 * time.Second
	}
	for _, wf := range cfg.Executor.Workflows() {
		g.workflows[wf.Key] = wf
	}
	g.startedAt = g.now()
	g.timers = newTimerWheel(g.now, g.onTimer)
	return g, nil
}

// Start kills process groups left by a killed gateway, re-arms durable
// timers, resumes the runs that were running when the previous process
// died, and starts the heartbeat. It returns once that work is scheduled.
func (g *Gateway) Start(ctx context.Context) error {
	sv, err := g.store.StateVersion(ctx)
	if err != nil {
		return fmt.Errorf("load stateVersion: %w", err)
	}
	g.stateVersion.Store(sv)
	killOrphanProcesses(ctx, g.store, g.log)
	due, err := g.store.ListDueNodes(ctx)
	if err != nil {
		return fmt.Errorf("load timers: %w", err)
	}
	for _, n := range due {
		g.timers.arm(timerEntry{at: n.FiresAtMs, runID: n.RunID, nodeID: n.NodeID, iteration: n.Iteration})
	}
	live, err := g.store.ListRuns(ctx, RunFilter{Statuses: []RunStatus{RunRunning, RunWaitingApproval, RunWaitingEvent, RunWaitingTimer}})
	if err != nil {
		return fmt.Errorf("load live runs: %w", err)
	}
	resumed := 0
	for _, r := range live {
		if r.DeadlineAtMs > 0 {
			g.timers.arm(timerEntry{at: r.DeadlineAtMs, runID: r.RunID, deadline: true})
		}
		if r.Status == RunRunning {
			resumed++
			g.wake(r.RunID, nil)
		}
	}
	if resumed > 0 {
		g.log.Info("resuming runs interrupted by the previous process", "count", resumed)
	}
	g.timers.start()
	g.wg.Add(1)
	go g.heartbeatLoop()
	return nil
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

// Workflows returns the registered workflows sorted by key.
func (g *Gateway) Workflows() []WorkflowDef {
	out := make([]WorkflowDef, 0, len(g.workflows))
	for _, wf := range g.workflows {
		out = append(out, wf)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Workflow looks a registered workflow up by key.
func (g *Gateway) Workflow(key string) (WorkflowDef, bool) {
	wf, ok := g.workflows[key]
	return wf, ok
}

// StartedAt is when the gateway was created (for uptimeMs).
func (g *Gateway) StartedAt() time.Time { return g.startedAt }

// StateVersion is the gateway-global position of the newest committed event;
// it keeps increasing across restarts.
func (g *Gateway) StateVersion() int64 { return g.stateVersion.Load() }

// Health is nil while the gateway can make progress, else the reason it
// cannot (its storage is unavailable); /health reports it.
func (g *Gateway) Health() error { return g.store.Health() }

// Store exposes the store for read-only queries of the API.
func (g *Gateway) Store() Store { return g.store }

// ActiveRuns is the number of runs live in the executor.
func (g *Gateway) ActiveRuns() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.active)
}

func (g *Gateway) nowMs() int64 { return g.now().UnixMilli() }

// update runs fn in one transaction and advances StateVersion past the
// events it appended. Streams receive the events from the store's commit
// hook (sqlite.Options.OnCommit), which sees commits in their true order.
func (g *Gateway) update(ctx context.Context, fn func(tx Tx) error) error {
	events, err := g.store.Update(ctx, fn)
	if err != nil {
		return err
	}
	if len(events) > 0 {
		for _, e := range events {
			for {
				cur := g.stateVersion.Load()
				if e.StateVersion <= cur || g.stateVersion.CompareAndSwap(cur, e.StateVersion) {
					break
				}
			}
		}
	}
	return nil
}

// wake makes sure the run makes progress: a live activation gets node n
// delivered (when n is non-nil); a parked or interrupted run is activated
// and replays its journal. A wake that meets an activation which is ending
// (parking, finishing, detaching) is remembered and replayed by release.
func (g *Gateway) wake(runID string, n *Node) {
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
// executor.
func (g *Gateway) activate(s *Session) {
	ctx := context.Background()
	run, ok, err := g.store.GetRun(ctx, s.runID)
	if err != nil || !ok || run.Status.Terminal() {
		if err != nil {
			g.log.Error("activate run: load", "runId", s.runID, "err", err)
		}
		g.release(s)
		return
	}
	if run.CancelRequestedAtMs > 0 {
		g.release(s)
		g.finishRun(s.runID, RunCancelled, "", cancelledErrorJSON())
		return
	}
	wf, ok := g.workflows[run.WorkflowKey]
	if !ok {
		g.log.Error("run's workflow is not registered by the current module; leaving it until the module registers it again",
			"runId", run.RunID, "workflow", run.WorkflowKey)
		if ErrorCodeOfJSON(run.ErrorJSON) != CodeWorkflowMissing {
			msg := fmt.Sprintf("workflow %q is not registered by the gateway's module; the run continues when a module registering it is loaded", run.WorkflowKey)
			if err := g.update(ctx, func(tx Tx) error {
				r, ok, err := tx.GetRun(run.RunID)
				if err != nil || !ok || r.Status.Terminal() {
					return err
				}
				r.ErrorJSON = errorJSON(CodeWorkflowMissing, msg)
				return tx.UpdateRun(r)
			}); err != nil {
				g.log.Error("record unregistered workflow", "runId", run.RunID, "err", err)
			}
		}
		g.release(s)
		return
	}
	if wf.VersionPolicy == VersionStrict && run.WorkflowHash != g.exec.BundleHash() {
		msg := fmt.Sprintf("module changed since the run started (versionPolicy strict): stored bundle %s, current %s; resume with options.force to replay under the new code", short(run.WorkflowHash), short(g.exec.BundleHash()))
		err := g.update(ctx, func(tx Tx) error {
			r, ok, err := tx.GetRun(run.RunID)
			if err != nil || !ok || r.Status.Terminal() {
				return err
			}
			r.ErrorJSON = errorJSON(CodeVersionMismatch, msg)
			return tx.UpdateRun(r)
		})
		if err != nil {
			g.log.Error("record version mismatch", "runId", run.RunID, "err", err)
		}
		g.log.Warn("run left parked: version mismatch", "runId", run.RunID, "workflow", run.WorkflowKey)
		g.release(s)
		return
	}
	nodes, err := g.store.ListNodes(ctx, run.RunID)
	if err == nil {
		s.values, err = g.store.ListValues(ctx, run.RunID)
	}
	if err != nil {
		g.log.Error("activate run: load journal", "runId", run.RunID, "err", err)
		g.release(s)
		return
	}
	now := g.nowMs()
	resumed := len(nodes) > 0
	// A run this process launched or woke is already marked running with
	// our owner id and a fresh heartbeat (LaunchRun, decisions, signals and
	// timers set them in their own transaction): no write needed.
	fresh := run.Status == RunRunning && run.RuntimeOwnerID == g.instance && run.StartedAtMs != 0 &&
		now-run.HeartbeatAtMs < g.heartbeat.Milliseconds() && run.ErrorJSON == ""
	if !fresh {
		err = g.update(ctx, func(tx Tx) error {
			r, ok, err := tx.GetRun(run.RunID)
			if err != nil {
				return err
			}
			if !ok || r.Status.Terminal() {
				return ErrRunTerminal
			}
			if r.StartedAtMs == 0 {
				r.StartedAtMs = now
			}
			r.Status = RunRunning
			r.HeartbeatAtMs = now
			r.RuntimeOwnerID = g.instance
			if c := ErrorCodeOfJSON(r.ErrorJSON); c == CodeVersionMismatch || c == CodeWorkflowMissing {
				r.ErrorJSON = ""
			}
			run = r
			return tx.UpdateRun(r)
		})
		if err != nil {
			if !errors.Is(err, ErrRunTerminal) {
				g.log.Error("activate run: mark running", "runId", run.RunID, "err", err)
			}
			g.release(s)
			return
		}
	}
	if g.observer != nil {
		g.observer.RunStarted(run.WorkflowKey, runSource(run.ConfigJSON), resumed)
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

// finishRun commits a terminal status for the run (when it is not terminal
// yet): settles the nodes still unsettled as cancelled, and appends
// run.completed, the run's last event.
func (g *Gateway) finishRun(runID string, status RunStatus, outputJSON, errJSON string) {
	now := g.nowMs()
	workflow := ""
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(100<<(2*attempt)) * time.Millisecond) // 400 ms, 1.6 s, 6.4 s
		}
		if err = g.commitFinish(runID, status, outputJSON, errJSON, now, &workflow); err == nil {
			break
		}
		g.log.Error("finish run", "runId", runID, "status", status, "attempt", attempt+1, "err", err)
	}
	if err != nil {
		// The run stays "running" without a session; the reconciler
		// replays it, which finishes it again.
		return
	}
	if workflow != "" && g.observer != nil {
		g.observer.RunCompleted(workflow, status)
	}
}

// commitFinish is finishRun's transaction.
func (g *Gateway) commitFinish(runID string, status RunStatus, outputJSON, errJSON string, now int64, workflow *string) error {
	return g.update(context.Background(), func(tx Tx) error {
		r, ok, err := tx.GetRun(runID)
		if err != nil || !ok || r.Status.Terminal() {
			return err
		}
		*workflow = r.WorkflowKey
		r.Status = status
		r.FinishedAtMs = now
		r.OutputJSON = outputJSON
		r.ErrorJSON = errJSON
		if err := tx.UpdateRun(r); err != nil {
			return err
		}
		// Waits nothing will settle any more (a cancelled or failed run, or
		// a wait the workflow abandoned, e.g. the loser of a Promise.race)
		// are closed so that listApprovals no longer offers them.
		{
			nodes, err := tx.ListNodes(runID)
			if err != nil {
				return err
			}
			for _, n := range nodes {
				if n.State.Settled() {
					continue
				}
				n.State = NodeCancelled
				n.UpdatedAtMs = now
				if err := tx.PutNode(n); err != nil {
					return err
				}
				if n.Kind == KindApproval {
					a, ok, err := tx.GetApproval(runID, n.NodeID, n.Iteration)
					if err != nil {
						return err
					}
					if ok && a.Status == ApprovalRequested {
						a.Status = ApprovalDenied
						a.DecidedAtMs = now
						a.Note = "run " + string(status)
						if err := tx.PutApproval(a); err != nil {
							return err
						}
					}
				}
			}
		}
		payload := map[string]any{"runId": runID, "status": string(status)}
		if errJSON != "" && status != RunFinished {
			payload["error"] = json.RawMessage(errJSON)
		}
		_, err = tx.AppendEvent(runID, "run.completed", mustJSON(payload), now)
		return err
	})
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
	return tx.UpdateRun(r)
}

// runSource classifies a run's trigger for metrics (CONTRACT.md §6.2).
func runSource(configJSON string) string {
	var cfg struct {
		TriggeredBy string `json:"gatewayTriggeredBy"`
	}
	_ = json.Unmarshal([]byte(configJSON), &cfg)
	switch {
	case strings.HasPrefix(cfg.TriggeredBy, "cron:"):
		return "cron"
	case strings.HasPrefix(cfg.TriggeredBy, "webhook:"):
		return "webhook"
	case cfg.TriggeredBy == "gateway":
		return "gateway"
	}
	return "user"
}

// detach abandons a live session and then calls then (in a goroutine of the
// executor). It returns nil if the run has no live session, else a channel
// closed after then returned.
func (g *Gateway) detach(runID string, reason error, then func()) <-chan struct{} {
	g.mu.Lock()
	s := g.active[runID]
	g.mu.Unlock()
	if s == nil || !s.markDetaching() {
		return nil
	}
	done := make(chan struct{})
	g.wg.Add(1)
	g.exec.Detach(s, reason, func() {
		defer g.wg.Done()
		defer close(done)
		then()
		g.release(s)
	})
	return done
}

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
		if ticks%3 == 0 {
			g.reconcile()
		}
		g.mu.Lock()
		ids := make([]string, 0, len(g.active))
		for id := range g.active {
			ids = append(ids, id)
		}
		g.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		now := g.nowMs()
		err := g.update(context.Background(), func(tx Tx) error {
			for _, id := range ids {
				r, ok, err := tx.GetRun(id)
				if err != nil {
					return err
				}
				if !ok || r.Status != RunRunning {
					continue
				}
				r.HeartbeatAtMs = now
				if err := tx.UpdateRun(r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			g.log.Error("refresh run heartbeats", "err", err)
		}
	}
}

// reconcile activates "running" runs that have no session: a store error
// ended their activation early (it could not load, or could not commit
// its completion). Replaying them from the journal is always safe.
func (g *Gateway) reconcile() {
	runs, err := g.store.ListRuns(context.Background(), RunFilter{Statuses: []RunStatus{RunRunning}, Limit: 1000})
	if err != nil {
		g.log.Error("reconcile running runs", "err", err)
		return
	}
	for _, r := range runs {
		if _, ok := g.workflows[r.WorkflowKey]; !ok {
			continue
		}
		g.mu.Lock()
		_, live := g.active[r.RunID]
		g.mu.Unlock()
		if !live {
			g.log.Warn("reactivating a running run that had no activation", "runId", r.RunID)
			g.wake(r.RunID, nil)
		}
	}
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
