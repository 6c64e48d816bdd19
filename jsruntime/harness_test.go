package jsruntime_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/host/sqlite"
	"github.com/smithers-orchestrator/smithers-go/jsruntime"
	"github.com/smithers-orchestrator/smithers-go/testkit"
)

// harness runs a workflow module on the real engine and a temp SQLite store.
type harness struct {
	t     testing.TB
	dir   string
	store *sqlite.Store
	exec  *jsruntime.Executor
	gw    *host.Gateway
	opts  harnessOpts
	src   string
}

type harnessOpts struct {
	turnBudget time.Duration
	workers    int
	env        map[string]string
	maxHeap    int64
	maxOutput  int
	// logs, when set, receives the engine's and the module's log lines as
	// JSON.
	logs io.Writer
	// onCommit, when set, sees every committed batch of events (the
	// store's commit hook).
	onCommit func([]host.Event)
}

func newHarness(t *testing.T, src string) *harness {
	return newHarnessOpts(t, src, harnessOpts{})
}

// newHarnessTB is newHarness for benchmarks.
func newHarnessTB(t testing.TB, src string) *harness {
	return newHarnessOpts(t, src, harnessOpts{})
}

func newHarnessOpts(t testing.TB, src string, o harnessOpts) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), opts: o, src: src}
	h.start()
	t.Cleanup(h.stop)
	return h
}

func testLogger() *slog.Logger {
	if os.Getenv("SMITHERS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// start (re)opens store, executor and engine on the harness directory, as a
// gateway process starting on the same data would.
func (h *harness) start() {
	t := h.t
	t.Helper()
	ctx := context.Background()
	modPath := filepath.Join(h.dir, "gateway.mjs")
	if err := os.WriteFile(modPath, []byte(h.src), 0o644); err != nil {
		t.Fatal(err)
	}
	log := testLogger()
	if h.opts.logs != nil {
		log = slog.New(slog.NewJSONHandler(h.opts.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	var err error
	h.exec, err = jsruntime.Load(jsruntime.Options{ModulePath: modPath, Workers: h.opts.workers, TurnBudget: h.opts.turnBudget, Logger: log, MaxHeapBytes: h.opts.maxHeap, MaxOutputBytes: h.opts.maxOutput,
		LookupEnv: func(k string) (string, bool) { v, ok := h.opts.env[k]; return v, ok }})
	if err != nil {
		t.Fatalf("load module: %v", err)
	}
	h.store, err = sqlite.Open(ctx, filepath.Join(h.dir, "smithers.db"), sqlite.Options{Logger: log, OnCommit: h.opts.onCommit})
	if err != nil {
		t.Fatal(err)
	}
	h.gw, err = host.New(host.Config{Store: h.store, Executor: h.exec, Logger: log, InstanceID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) stop() {
	if h.gw == nil {
		return
	}
	h.gw.Close()
	h.exec.Close()
	h.store.Close()
	h.gw = nil
}

// restart simulates a gateway restart on the same data.
func (h *harness) restart() {
	h.stop()
	h.start()
}

func (h *harness) launch(workflow string, input any) string {
	h.t.Helper()
	b, _ := json.Marshal(input)
	if input == nil {
		b = nil
	}
	r, _, err := h.gw.LaunchRun(context.Background(), host.LaunchInput{Workflow: workflow, InputJSON: string(b), Auth: host.Identity{Role: "operator", Scopes: []string{"*"}, UserID: "tester"}})
	if err != nil {
		h.t.Fatalf("launch %s: %v", workflow, err)
	}
	return r.RunID
}

func (h *harness) run(id string) host.Run {
	h.t.Helper()
	r, ok, err := h.store.GetRun(context.Background(), id)
	if err != nil || !ok {
		h.t.Fatalf("get run %s: ok=%v err=%v", id, ok, err)
	}
	return r
}

// waitStatus polls until the run has one of the statuses.
func (h *harness) waitStatus(id string, statuses ...host.RunStatus) host.Run {
	h.t.Helper()
	// Generous: under -race on a loaded 2-core machine a worker rebuild
	// (after an interrupted turn) can take seconds.
	deadline := time.Now().Add(45 * time.Second)
	var r host.Run
	for time.Now().Before(deadline) {
		r = h.run(id)
		for _, s := range statuses {
			if r.Status == s {
				return r
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.t.Fatalf("run %s: status %s, want one of %v (error %s)", id, r.Status, statuses, r.ErrorJSON)
	return r
}

// finish waits for a terminal status and returns the run.
func (h *harness) finish(id string) host.Run {
	h.t.Helper()
	return h.waitStatus(id, host.RunFinished, host.RunFailed, host.RunCancelled)
}

// output decodes the finished run's output.
func (h *harness) output(id string) any {
	h.t.Helper()
	r := h.finish(id)
	if r.Status != host.RunFinished {
		h.t.Fatalf("run %s %s: %s", id, r.Status, r.ErrorJSON)
	}
	var v any
	if r.OutputJSON != "" {
		if err := json.Unmarshal([]byte(r.OutputJSON), &v); err != nil {
			h.t.Fatal(err)
		}
	}
	return v
}

// errorOf returns the failed run's error object.
func (h *harness) errorOf(id string) map[string]any {
	h.t.Helper()
	r := h.finish(id)
	if r.Status != host.RunFailed {
		h.t.Fatalf("run %s: status %s, want failed (output %s)", id, r.Status, r.OutputJSON)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.ErrorJSON), &m); err != nil {
		h.t.Fatalf("error json %q: %v", r.ErrorJSON, err)
	}
	return m
}

func (h *harness) events(id string) []host.Event {
	h.t.Helper()
	ev, err := h.store.ListEvents(context.Background(), id, 0, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	return ev
}

func (h *harness) eventNames(id string) []string {
	var out []string
	for _, e := range h.events(id) {
		var p struct {
			NodeID string `json:"nodeId"`
		}
		_ = json.Unmarshal(e.Payload, &p)
		if p.NodeID != "" {
			out = append(out, e.Name+":"+p.NodeID)
		} else {
			out = append(out, e.Name)
		}
	}
	return out
}

func (h *harness) nodes(id string) map[string]host.Node {
	h.t.Helper()
	ns, err := h.store.ListNodes(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	m := map[string]host.Node{}
	for _, n := range ns {
		m[n.NodeID] = n
	}
	return m
}

func (h *harness) approve(id, node string, approved bool, decision any) error {
	var raw json.RawMessage
	if decision != nil {
		raw, _ = json.Marshal(decision)
	}
	return h.gw.SubmitApproval(context.Background(), host.DecisionInput{RunID: id, NodeID: node, Approved: approved, Decision: raw, By: host.Identity{UserID: "alice"}})
}

func (h *harness) signal(id, name string, corr *string, payload any) {
	h.t.Helper()
	b, _ := json.Marshal(payload)
	if _, err := h.gw.SubmitSignal(context.Background(), host.SignalInput{RunID: id, Name: name, CorrelationID: corr, PayloadJSON: string(b)}); err != nil {
		h.t.Fatal(err)
	}
}

// eventually polls cond until it holds (testkit.Eventually).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, 15*time.Second, what, cond)
}

func jsonEqual(t *testing.T, got any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Fatalf("got %s\nwant %s", gb, wb)
	}
}

func strp(s string) *string { return &s }
