package host

import (
	"context"
	"errors"
	"log/slog"
	"sort"
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
	// OwnerLease is how old a run's heartbeat must be before another
	// process may take the run over (default three heartbeats).
	OwnerLease time.Duration
	// Retention, when positive, is how long terminal runs are kept: older
	// ones are deleted with everything that belongs to them.
	Retention time.Duration
}

// Gateway is the engine: it launches runs, activates them on the executor,
// commits their steps, parks and wakes them, and answers the run methods of
// the API. Create it with New, then Start it; Close stops it.
type Gateway struct {
	store      Store
	exec       Executor
	observer   Observer
	log        *slog.Logger
	now        func() time.Time
	instance   string
	heartbeat  time.Duration
	ownerLease time.Duration
	maxOutput  int
	retention  time.Duration
	workflows  map[string]WorkflowDef
	startedAt  time.Time

	timers *timerWheel
	slots  slots

	stateVersion atomic.Int64 // stateVersion of the newest committed event

	grace time.Duration

	mu       sync.Mutex
	active   map[string]*Session // runId -> live (or activating/detaching) session
	draining bool                // Close began: no new activations
	closed   bool

	stop     chan struct{}
	cronKick chan struct{}  // the cron table changed
	wg       sync.WaitGroup // background goroutines and activations in flight
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
		cronKick:  make(chan struct{}, 1),
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
	g.ownerLease = cfg.OwnerLease
	if g.ownerLease <= 0 {
		g.ownerLease = 3 * g.heartbeat
	}
	g.maxOutput = cfg.MaxOutputBytes
	if g.maxOutput <= 0 {
		g.maxOutput = DefaultMaxOutputBytes
	}
	g.retention = cfg.Retention
	g.grace = cfg.ShutdownGrace
	if g.grace <= 0 {
		g.grace = 2 * time.Second
	}
	for _, wf := range cfg.Executor.Workflows() {
		g.workflows[wf.Key] = wf
	}
	if err := checkWebhooks(g.Workflows()); err != nil {
		return nil, err
	}
	g.startedAt = g.now()
	g.timers = newTimerWheel(g.now, g.onTimer)
	g.slots = slots{pools: map[slotKey]*slotPool{}, onWaiting: func(workflow string, n int) {
		if g.observer != nil {
			g.observer.TasksWaiting(workflow, n)
		}
	}}
	return g, nil
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

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
