package host_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/host/postgres"
	"github.com/smithers-orchestrator/smithers-go/host/sqlite"
	"github.com/smithers-orchestrator/smithers-go/testkit"
)

// fakeExec is a host.Executor whose workflow is a Go function: it replays
// from the session's journal like real workflow code would. Activations run
// on their own goroutine; a delivery to an ended activation re-wakes the
// run, which replays the script.
type fakeExec struct {
	hash        string
	wfs         []host.WorkflowDef
	script      func(s *host.Session)
	activations atomic.Int64
}

func (f *fakeExec) Workflows() []host.WorkflowDef { return f.wfs }
func (f *fakeExec) BundleHash() string {
	if f.hash == "" {
		return "hash-1"
	}
	return f.hash
}
func (f *fakeExec) ModulePath() string { return "fake.mjs" }
func (f *fakeExec) Activate(s *host.Session) {
	f.activations.Add(1)
	go f.script(s)
}
func (f *fakeExec) Deliver(s *host.Session, _ host.Node) {
	go func() {
		if s.Ended() {
			s.Rewake()
		}
	}()
}
func (f *fakeExec) Detach(_ *host.Session, _ error, done func()) { go done() }
func (f *fakeExec) Close() error                                 { return nil }

// faultyStore is the real SQLite store whose writes can be made to fail the
// way a full disk makes them fail, and whose exclusivity can be denied (as
// a store shared by several gateway processes).
type faultyStore struct {
	host.Store
	full   atomic.Bool
	shared bool
}

var errDiskFull = fmt.Errorf("%w: database or disk is full (test)", host.ErrStorageUnavailable)

func (f *faultyStore) Update(ctx context.Context, fn func(tx host.Tx) error) ([]host.Event, error) {
	if f.full.Load() {
		return nil, errDiskFull
	}
	return f.Store.Update(ctx, fn)
}

func (f *faultyStore) Health() error {
	if f.full.Load() {
		return errDiskFull
	}
	return f.Store.Health()
}

func (f *faultyStore) Exclusive() bool { return !f.shared }

// engine is one gateway on a temporary database.
type engine struct {
	t       *testing.T
	commits *commitFanout
	store   *faultyStore
	exec    *fakeExec
	gw      *host.Gateway
	logs    *testkit.Buffer
}

type engineOpts struct {
	shared      bool
	lease       time.Duration
	heartbeat   time.Duration
	retention   time.Duration
	maxOutput   int
	hash        string
	strict      bool
	schedule    string
	concurrency *host.ConcurrencyLimit
	observer    host.Observer
	beforeBoot  func(st *faultyStore)
	now         func() time.Time
	// replicaOf, when set, makes this engine a second gateway process on
	// the first one's database (a shared store: not exclusive); instance
	// names the process.
	replicaOf *engine
	instance  string
	// pgURL, when set, puts the engine on that PostgreSQL database, with a
	// store of its own (as a separate gateway process has).
	pgURL string
}

func newEngine(t *testing.T, script func(s *host.Session), o engineOpts) *engine {
	t.Helper()
	ctx := context.Background()
	e := &engine{t: t, logs: &testkit.Buffer{}, commits: &commitFanout{}}
	var st host.Store
	owned := true
	switch {
	case o.pgURL != "":
		pst, err := postgres.Open(ctx, o.pgURL, postgres.Options{OnCommit: e.commits.publish})
		if err != nil {
			t.Fatal(err)
		}
		st, o.shared = pst, true
	case o.replicaOf != nil:
		st, e.commits, owned = o.replicaOf.store.Store, o.replicaOf.commits, false
		o.shared = true
	default:
		sst, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "smithers.db"), sqlite.Options{OnCommit: e.commits.publish})
		if err != nil {
			t.Fatal(err)
		}
		st = sst
	}
	e.store = &faultyStore{Store: st, shared: o.shared}
	if o.instance == "" {
		o.instance = "me"
	}
	policy := host.VersionReplay
	if o.strict {
		policy = host.VersionStrict
	}
	e.exec = &fakeExec{hash: o.hash, script: script, wfs: []host.WorkflowDef{{Key: "wf", VersionPolicy: policy, Schedule: o.schedule, Concurrency: o.concurrency}}}
	if o.beforeBoot != nil {
		o.beforeBoot(e.store)
	}
	var err error
	e.gw, err = host.New(host.Config{Store: e.store, Executor: e.exec, InstanceID: o.instance,
		Logger:   slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Observer: o.observer, HeartbeatInterval: o.heartbeat, OwnerLease: o.lease, Retention: o.retention, MaxOutputBytes: o.maxOutput, Now: o.now})
	if err != nil {
		t.Fatal(err)
	}
	e.commits.add(e.gw)
	if err := e.gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.store.full.Store(false)
		_ = e.gw.Close()
		if owned {
			_ = st.Close()
		}
	})
	return e
}

// commitFanout hands every committed event to every gateway on the store,
// as the store's commit hook does in a real process.
type commitFanout struct {
	mu  sync.Mutex
	gws []*host.Gateway
}

func (c *commitFanout) add(g *host.Gateway) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gws = append(c.gws, g)
}

func (c *commitFanout) publish(events []host.Event) {
	c.mu.Lock()
	gws := append([]*host.Gateway(nil), c.gws...)
	c.mu.Unlock()
	for _, g := range gws {
		g.Committed(events)
	}
}

func (e *engine) run(id string) host.Run {
	e.t.Helper()
	r, ok, err := e.store.GetRun(context.Background(), id)
	if err != nil || !ok {
		e.t.Fatalf("run %s: ok %v err %v", id, ok, err)
	}
	return r
}

func (e *engine) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s\nlogs:\n%s", what, e.logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *engine) waitStatus(id string, want host.RunStatus) host.Run {
	e.t.Helper()
	var r host.Run
	e.waitFor(fmt.Sprintf("run %s to be %s", id, want), func() bool { r = e.run(id); return r.Status == want })
	return r
}

// insertRun writes a run row directly, as a previous process left it.
func insertRun(t *testing.T, st host.Store, r host.Run) {
	t.Helper()
	if r.WorkflowKey == "" {
		r.WorkflowKey = "wf"
	}
	if r.InputJSON == "" {
		r.InputJSON = "{}"
	}
	if _, err := st.Update(context.Background(), func(tx host.Tx) error { return tx.InsertRun(r) }); err != nil {
		t.Fatal(err)
	}
}

// oneTask is a workflow of one task "a" whose body is gate (nil: returns
// at once), then output {"ok":true}.
func oneTask(gate <-chan struct{}) func(s *host.Session) {
	return func(s *host.Session) {
		if n, ok := s.Lookup("a", 0); !ok || n.State != host.NodeFinished {
			_, attempt, err := s.BeginTask("a", 0, "", "")
			if err != nil {
				return
			}
			if gate != nil {
				<-gate
			}
			if _, err := s.FinishTask("a", 0, attempt, `1`); err != nil {
				return
			}
		}
		s.Complete(`{"ok":true}`)
	}
}

func TestStorageFailureHoldsTheRunUntilWritesSucceed(t *testing.T) {
	gate := make(chan struct{})
	e := newEngine(t, oneTask(gate), engineOpts{})
	ctx := context.Background()
	r, _, err := e.gw.LaunchRun(ctx, host.LaunchInput{Workflow: "wf"})
	if err != nil {
		t.Fatal(err)
	}
	e.waitFor("task a to start", func() bool {
		nodes, _ := e.store.ListNodes(ctx, r.RunID)
		return len(nodes) == 1 && nodes[0].State == host.NodeInProgress
	})
	e.store.full.Store(true)
	close(gate) // the body returns while the disk is full
	if _, _, err := e.gw.LaunchRun(ctx, host.LaunchInput{Workflow: "wf"}); !errors.Is(err, host.ErrStorageUnavailable) {
		t.Fatalf("LaunchRun on a full disk = %v, want ErrStorageUnavailable", err)
	}
	if err := e.gw.Health(); !errors.Is(err, host.ErrStorageUnavailable) {
		t.Fatalf("Health on a full disk = %v", err)
	}
	e.waitFor("the held write to be logged", func() bool { return strings.Contains(e.logs.String(), "holding the run") })
	// Held, not failed: the workflow never saw the storage error.
	if got := e.run(r.RunID); got.Status != host.RunRunning {
		t.Fatalf("run during the outage is %s (%s), want it held running", got.Status, got.ErrorJSON)
	}
	e.store.full.Store(false)
	done := e.waitStatus(r.RunID, host.RunFinished)
	if done.OutputJSON != `{"ok":true}` {
		t.Fatalf("output %q", done.OutputJSON)
	}
	atts, _ := e.store.ListAttempts(ctx, r.RunID, "a", 0)
	if len(atts) != 1 || atts[0].State != host.AttemptFinished {
		t.Fatalf("attempts of a = %+v, want one finished attempt", atts)
	}
}

func TestRunOwnedByALiveProcessIsNotTakenOver(t *testing.T) {
	now := time.Now().UnixMilli()
	boot := func(st *faultyStore) {
		insertRun(t, st, host.Run{RunID: "fresh", Status: host.RunRunning, CreatedAtMs: now, StartedAtMs: now,
			RuntimeOwnerID: "other:42", HeartbeatAtMs: now})
		insertRun(t, st, host.Run{RunID: "stale", Status: host.RunRunning, CreatedAtMs: now, StartedAtMs: now,
			RuntimeOwnerID: "other:42", HeartbeatAtMs: now - int64(2*time.Hour/time.Millisecond)})
	}
	t.Run("shared store", func(t *testing.T) {
		e := newEngine(t, oneTask(nil), engineOpts{shared: true, lease: time.Hour, beforeBoot: boot})
		e.waitStatus("stale", host.RunFinished)
		// The stale run finished; the fresh one still belongs to its owner.
		time.Sleep(100 * time.Millisecond)
		if r := e.run("fresh"); r.Status != host.RunRunning || r.RuntimeOwnerID != "other:42" {
			t.Fatalf("run owned by a live process: status %s owner %s, want it left alone", r.Status, r.RuntimeOwnerID)
		}
		if !strings.Contains(e.logs.String(), "owned by another live gateway process") {
			t.Errorf("no log line says why the run was left alone:\n%s", e.logs.String())
		}
	})
	t.Run("exclusive store", func(t *testing.T) {
		e := newEngine(t, oneTask(nil), engineOpts{lease: time.Hour, beforeBoot: boot})
		e.waitStatus("fresh", host.RunFinished)
		e.waitStatus("stale", host.RunFinished)
	})
}

func TestCancelRequestedBeforeACrashIsFinishedAtStart(t *testing.T) {
	now := time.Now().UnixMilli()
	e := newEngine(t, oneTask(nil), engineOpts{beforeBoot: func(st *faultyStore) {
		// cancelRun's first commit landed, the process died before the
		// second: a parked run with a cancel request.
		insertRun(t, st, host.Run{RunID: "parked", Status: host.RunWaitingApproval, CreatedAtMs: now, StartedAtMs: now,
			CancelRequestedAtMs: now})
	}})
	r := e.waitStatus("parked", host.RunCancelled)
	if host.ErrorCodeOfJSON(r.ErrorJSON) != host.CodeCancelled {
		t.Fatalf("cancelled run errorJson %s", r.ErrorJSON)
	}
}

func TestRunHeldByStrictVersionIsNotReactivatedForEver(t *testing.T) {
	now := time.Now().UnixMilli()
	e := newEngine(t, oneTask(nil), engineOpts{strict: true, hash: "hash-2", heartbeat: 10 * time.Millisecond,
		beforeBoot: func(st *faultyStore) {
			insertRun(t, st, host.Run{RunID: "old", Status: host.RunRunning, CreatedAtMs: now, StartedAtMs: now,
				WorkflowHash: "hash-1", RuntimeOwnerID: "me", HeartbeatAtMs: now})
		}})
	e.waitFor("the run to be held", func() bool { return host.ErrorCodeOfJSON(e.run("old").ErrorJSON) == host.CodeVersionMismatch })
	// Reconcile runs every three heartbeats (30 ms here): give it ten.
	time.Sleep(300 * time.Millisecond)
	if n := strings.Count(e.logs.String(), "version mismatch"); n != 1 {
		t.Fatalf("the held run was activated %d times, want once (at start)", n)
	}
}

func TestOversizedWorkflowOutputFailsTheRun(t *testing.T) {
	e := newEngine(t, func(s *host.Session) { s.Complete(`"` + strings.Repeat("x", 2000) + `"`) }, engineOpts{maxOutput: 1000})
	r, _, err := e.gw.LaunchRun(context.Background(), host.LaunchInput{Workflow: "wf"})
	if err != nil {
		t.Fatal(err)
	}
	got := e.waitStatus(r.RunID, host.RunFailed)
	if host.ErrorCodeOfJSON(got.ErrorJSON) != host.CodeOutputTooLarge || got.OutputJSON != "" {
		t.Fatalf("run with a 2002-byte output under a 1000-byte cap: error %s output %d bytes", got.ErrorJSON, len(got.OutputJSON))
	}
}

func TestSignalRules(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, func(s *host.Session) { _, _, _ = s.Park(nil) }, engineOpts{maxOutput: 100})
	now := time.Now().UnixMilli()
	insertRun(t, e.store, host.Run{RunID: "done", Status: host.RunFinished, CreatedAtMs: now, FinishedAtMs: now})
	insertRun(t, e.store, host.Run{RunID: "live", Status: host.RunWaitingEvent, CreatedAtMs: now})
	code := func(err error) string { return host.ErrorCode(err) }
	if _, err := e.gw.SubmitSignal(ctx, host.SignalInput{RunID: "done", Name: "x"}); code(err) != host.CodeRunNotActive {
		t.Errorf("signal to a finished run: %v, want RUN_NOT_ACTIVE", err)
	}
	if sigs, _ := e.store.ListSignals(ctx, "done"); len(sigs) != 0 {
		t.Errorf("a signal to a finished run was stored: %+v", sigs)
	}
	if _, err := e.gw.SubmitSignal(ctx, host.SignalInput{RunID: "live", Name: "x", PayloadJSON: `"` + strings.Repeat("y", 200) + `"`}); code(err) != host.CodeOutputTooLarge {
		t.Errorf("200-byte payload under a 100-byte cap: %v, want OUTPUT_TOO_LARGE", err)
	}
	for i := 0; i < host.MaxBufferedSignals; i++ {
		if _, err := e.gw.SubmitSignal(ctx, host.SignalInput{RunID: "live", Name: "x"}); err != nil {
			t.Fatalf("signal %d: %v", i, err)
		}
	}
	if _, err := e.gw.SubmitSignal(ctx, host.SignalInput{RunID: "live", Name: "x"}); code(err) != host.CodeSignalBufferFull {
		t.Fatalf("signal past the buffer cap: %v, want SIGNAL_BUFFER_FULL", err)
	}
	if sigs, _ := e.store.ListSignals(ctx, "live"); len(sigs) != host.MaxBufferedSignals {
		t.Fatalf("%d signals stored, want the cap %d", len(sigs), host.MaxBufferedSignals)
	}
}

func TestRetentionDeletesOldTerminalRuns(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UnixMilli()
	hour := int64(time.Hour / time.Millisecond)
	e := newEngine(t, oneTask(nil), engineOpts{retention: 24 * time.Hour, beforeBoot: func(st *faultyStore) {
		for i := 0; i < 25; i++ { // more than one sweep batch
			id := fmt.Sprintf("old-%02d", i)
			insertRun(t, st, host.Run{RunID: id, Status: host.RunFinished, CreatedAtMs: now - 50*hour, FinishedAtMs: now - 48*hour})
			if _, err := st.Update(ctx, func(tx host.Tx) error {
				if err := tx.PutNode(host.Node{RunID: id, NodeID: "a", Kind: host.KindTask, State: host.NodeFinished}); err != nil {
					return err
				}
				err := tx.AppendEvent(id, host.EventRunCompleted, json.RawMessage(`{}`), now-48*hour)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		insertRun(t, st, host.Run{RunID: "recent", Status: host.RunFailed, CreatedAtMs: now - 2*hour, FinishedAtMs: now - hour})
		insertRun(t, st, host.Run{RunID: "old-but-parked", Status: host.RunWaitingApproval, CreatedAtMs: now - 50*hour})
	}})
	e.waitFor("old runs to be deleted", func() bool {
		runs, _ := e.store.ListRuns(ctx, host.RunFilter{})
		return len(runs) == 2
	})
	for _, id := range []string{"recent", "old-but-parked"} {
		if _, ok, _ := e.store.GetRun(ctx, id); !ok {
			t.Errorf("run %s was deleted", id)
		}
	}
	if evs, _ := e.store.ListEvents(ctx, "old-00", 0, 0); len(evs) != 0 {
		t.Errorf("events of a deleted run remain: %d", len(evs))
	}
	if nodes, _ := e.store.ListNodes(ctx, "old-00"); len(nodes) != 0 {
		t.Errorf("nodes of a deleted run remain: %d", len(nodes))
	}
}

func TestNULInStoredTextIsRefused(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, func(s *host.Session) { _, _, _ = s.Park(nil) }, engineOpts{})
	now := time.Now().UnixMilli()
	insertRun(t, e.store, host.Run{RunID: "live", Status: host.RunWaitingEvent, CreatedAtMs: now})
	for name, err := range map[string]error{
		"signal name": func() error {
			_, err := e.gw.SubmitSignal(ctx, host.SignalInput{RunID: "live", Name: "a\x00b"})
			return err
		}(),
		"note": e.gw.SubmitApproval(ctx, host.DecisionInput{RunID: "live", NodeID: "x", Approved: true, Note: "\x00"}),
		"idempotency key": func() error {
			_, _, err := e.gw.LaunchRun(ctx, host.LaunchInput{Workflow: "wf", IdempotencyKey: "k\x00"})
			return err
		}(),
	} {
		if host.ErrorCode(err) != host.CodeInvalidInput {
			t.Errorf("%s with a NUL: %v, want INVALID_INPUT", name, err)
		}
	}
}
