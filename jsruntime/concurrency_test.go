package jsruntime_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/jsruntime"
)

// loadModule loads src as the workflow module and returns the executor's
// workflows, or the load error.
func loadModule(t *testing.T, src string, log *slog.Logger) ([]host.WorkflowDef, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gateway.mjs")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if log == nil {
		log = testLogger()
	}
	ex, err := jsruntime.Load(jsruntime.Options{ModulePath: path, Workers: 2, Logger: log})
	if err != nil {
		return nil, err
	}
	defer ex.Close()
	return ex.Workflows(), nil
}

func TestRegisterConcurrencyOption(t *testing.T) {
	var logs bytes.Buffer
	wfs, err := loadModule(t, `export default function (g) {
  g.register("a", async () => 1, { concurrency: { limit: 2 } });
  g.register("b", async () => 1, { concurrency: { limit: 1, key: "customer.id", limt: 3 } });
}`, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(wfs) != 2 || wfs[0].Concurrency == nil || *wfs[0].Concurrency != (host.ConcurrencyLimit{Limit: 2}) ||
		wfs[1].Concurrency == nil || *wfs[1].Concurrency != (host.ConcurrencyLimit{Limit: 1, Key: "customer.id"}) {
		t.Fatalf("workflows %+v", wfs)
	}
	if n := strings.Count(logs.String(), "option=concurrency.limt "); n != 1 {
		t.Fatalf("%d warnings naming concurrency.limt, want 1:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "option=concurrency ") {
		t.Fatalf("concurrency was reported as unknown:\n%s", logs.String())
	}
}

// TestRegisterConcurrencyMistakes: a concurrency option the gateway cannot
// apply stops start-up at the register call's line.
func TestRegisterConcurrencyMistakes(t *testing.T) {
	for _, tc := range []struct{ opt, contains string }{
		{`5`, `option concurrency must be an object, got number 5`},
		{`{}`, `option concurrency: limit is required`},
		{`{ limit: 0 }`, `option concurrency.limit must be greater than 0`},
		{`{ limit: 1.5 }`, `option concurrency.limit must be a non-negative integer`},
		{`{ limit: -1 }`, `option concurrency.limit must be a non-negative integer`},
		{`{ limit: "2" }`, `option concurrency.limit must be a number, got string "2"`},
		{`{ limit: 2, key: "" }`, `option concurrency.key must be a dotted path into the run input`},
		{`{ limit: 2, key: "a..b" }`, `option concurrency.key must be a dotted path into the run input`},
		{`{ limit: 2, key: 7 }`, `option concurrency.key must be a dotted path into the run input such as "tenant" or "customer.id", got number 7`},
	} {
		t.Run(tc.opt, func(t *testing.T) {
			_, err := loadModule(t, "export default function (g) {\n\n  g.register(\"a\", async () => 1, { concurrency: "+tc.opt+" });\n}\n", nil)
			var le *jsruntime.LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %T %v, want a *LoadError", err, err)
			}
			if !strings.HasSuffix(le.File, "gateway.mjs") || le.Line != 3 {
				t.Fatalf("location %s:%d, want gateway.mjs:3 (%v)", le.File, le.Line, err)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("message %q lacks %q", err.Error(), tc.contains)
			}
		})
	}
}

// bodyGauge is an HTTP server task bodies report to: GET /enter and
// /leave with ?k=<key value>&run=<run id>. It counts the bodies running at
// once, overall and per key value, and the order they entered.
type bodyGauge struct {
	mu        sync.Mutex
	running   map[string]int
	peak      map[string]int
	total     int
	peakTotal int
	entered   []string
	// onEnter, when set, is called (without mu) after an entry is
	// counted; the body's /enter answers when it returns.
	onEnter func(r *http.Request)
	srv     *httptest.Server
}

func newBodyGauge(t *testing.T) *bodyGauge {
	g := &bodyGauge{running: map[string]int{}, peak: map[string]int{}}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, run := r.URL.Query().Get("k"), r.URL.Query().Get("run")
		g.mu.Lock()
		switch r.URL.Path {
		case "/enter":
			g.running[k]++
			g.total++
			g.peak[k] = max(g.peak[k], g.running[k])
			g.peakTotal = max(g.peakTotal, g.total)
			g.entered = append(g.entered, run)
		case "/leave":
			g.running[k]--
			g.total--
		}
		hook := g.onEnter
		g.mu.Unlock()
		if r.URL.Path == "/enter" && hook != nil {
			hook(r)
		}
		fmt.Fprint(w, "{}")
	}))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *bodyGauge) snapshot() (peak map[string]int, peakTotal int, entered []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.peak), g.peakTotal, slices.Clone(g.entered)
}

// gaugedModule registers workflows whose one task reports to the gauge at
// ctx.input.url for 20 ms, under the concurrency option given.
func gaugedModule(registrations string) string {
	return `
const body = (ctx) => async (t) => {
  const q = "?k=" + (ctx.input.tenant || "") + "&run=" + ctx.runId;
  await t.fetch(ctx.input.url + "/enter" + q);
  await new Promise((r) => setTimeout(r, 20));
  await t.fetch(ctx.input.url + "/leave" + q);
  return ctx.runId;
};
const wf = async (ctx) => ctx.task("work", body(ctx));
export default function (gateway) {
` + registrations + `
}`
}

func TestConcurrencyLimitCapsTaskBodiesAcrossRuns(t *testing.T) {
	g := newBodyGauge(t)
	h := newHarness(t, gaugedModule(`gateway.register("limited", wf, { concurrency: { limit: 2 } });`))
	var ids []string
	for range 10 {
		ids = append(ids, h.launch("limited", map[string]any{"url": g.srv.URL}))
	}
	for _, id := range ids {
		jsonEqual(t, h.output(id), `"`+id+`"`)
	}
	peak, _, entered := g.snapshot()
	if peak[""] != 2 {
		t.Fatalf("%d task bodies ran at once under a limit of 2", peak[""])
	}
	if len(entered) != 10 {
		t.Fatalf("%d bodies ran for 10 runs", len(entered))
	}
}

func TestConcurrencyLimitPerKeyValue(t *testing.T) {
	g := newBodyGauge(t)
	// The first body holds its slot until a second body runs beside it:
	// with a per-tenant limit, the other tenant's run can; with one slot
	// for the whole workflow, none could (and the hold gives up after 5 s).
	second := make(chan struct{})
	var once sync.Once
	first := true
	g.onEnter = func(*http.Request) {
		g.mu.Lock()
		isFirst, both := first, g.total >= 2
		first = false
		g.mu.Unlock()
		if both {
			once.Do(func() { close(second) })
		}
		if isFirst {
			select {
			case <-second:
			case <-time.After(5 * time.Second):
			}
		}
	}
	h := newHarness(t, gaugedModule(`gateway.register("tenants", wf, { concurrency: { limit: 1, key: "tenant" } });`))
	var ids []string
	for i := range 8 {
		tenant := []string{"a", "b"}[i%2]
		ids = append(ids, h.launch("tenants", map[string]any{"url": g.srv.URL, "tenant": tenant}))
	}
	for _, id := range ids {
		jsonEqual(t, h.output(id), `"`+id+`"`)
	}
	peak, peakTotal, _ := g.snapshot()
	if peak["a"] != 1 || peak["b"] != 1 {
		t.Fatalf("bodies at once per tenant %v, want 1 each", peak)
	}
	if peakTotal != 2 {
		t.Fatalf("at most %d bodies ran at once: the two tenants' runs did not interleave", peakTotal)
	}
}

// TestConcurrencySlotIsFreeDuringRetryBackoff: a failed attempt gives its
// slot back for the backoff; the retry asks again, behind the run that
// took it meanwhile.
func TestConcurrencySlotIsFreeDuringRetryBackoff(t *testing.T) {
	g := newBodyGauge(t)
	gate := make(chan struct{})
	g.onEnter = func(r *http.Request) {
		if strings.HasSuffix(r.URL.Query().Get("run"), ":hold") {
			<-gate
		}
	}
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("retry", async (ctx) => ctx.task("work", async (t) => {
    const tag = ctx.input.name + t.attempt + (ctx.input.name === "a" && t.attempt === 1 ? ":hold" : "");
    await t.fetch(ctx.input.url + "/enter?run=" + tag);
    await t.fetch(ctx.input.url + "/leave?run=" + tag);
    if (ctx.input.name === "a" && t.attempt === 1) throw new Error("flaky");
    return t.attempt;
  }, { retries: 1, backoffMs: 500 }), { concurrency: { limit: 1 } });
}`)
	a := h.launch("retry", map[string]any{"url": g.srv.URL, "name": "a"})
	eventually(t, "a's first attempt runs", func() bool { _, _, e := g.snapshot(); return len(e) == 1 })
	b := h.launch("retry", map[string]any{"url": g.srv.URL, "name": "b"})
	eventually(t, "b's task is journaled", func() bool { _, ok := h.nodes(b)["work"]; return ok })
	close(gate)
	jsonEqual(t, h.output(a), `2`)
	jsonEqual(t, h.output(b), `1`)
	peak, _, entered := g.snapshot()
	if !slices.Equal(entered, []string{"a1:hold", "b1", "a2"}) || peak[""] != 1 {
		t.Fatalf("bodies entered %v (peak %d), want a's retry after b's body (a's slot is free during its backoff), one at a time", entered, peak[""])
	}
}

// TestConcurrencySlotReleasedHoweverAttemptEnds: each way an attempt's body
// can end gives its slot back; under a limit of 1 the run's next task
// could not start otherwise.
func TestConcurrencySlotReleasedHoweverAttemptEnds(t *testing.T) {
	h := newHarnessOpts(t, `
export default function (gateway) {
  gateway.register("one", async (ctx) => {
    const mode = ctx.input.mode;
    const first = await ctx.task("work", async (t) => {
      if (mode === "throw") throw new Error("boom");
      if (mode === "type") throw new TypeError("not retried");
      if (mode === "hang" || mode === "forever") await new Promise(() => {});
      if (mode === "big") return "x".repeat(4096);
      return "ok";
    }, { retries: mode === "throw" ? 1 : 0, backoffMs: 1, timeoutMs: mode === "hang" ? 50 : undefined, continueOnFail: true });
    const then = await ctx.task("then", async () => "next");
    return [first === undefined ? "failed" : first, then];
  }, { concurrency: { limit: 1 } });
}`, harnessOpts{maxOutput: 1024})
	for _, tc := range []struct{ mode, want string }{
		{"ok", `["ok","next"]`}, {"throw", `["failed","next"]`}, {"type", `["failed","next"]`},
		{"hang", `["failed","next"]`}, {"big", `["failed","next"]`},
	} {
		id := h.launch("one", map[string]any{"mode": tc.mode})
		eventually(t, "the run whose first task ends by "+tc.mode+" finishes", func() bool { return h.run(id).Status.Terminal() })
		jsonEqual(t, h.output(id), tc.want)
	}
	// A cancelled run's slot goes to the run waiting for it.
	x := h.launch("one", map[string]any{"mode": "forever"})
	eventually(t, "the first run's body starts", func() bool { return h.nodes(x)["work"].State == host.NodeInProgress })
	y := h.launch("one", map[string]any{"mode": "ok"})
	eventually(t, "the second run's task is journaled", func() bool { _, ok := h.nodes(y)["work"]; return ok })
	if st := h.nodes(y)["work"].State; st != host.NodePending {
		t.Fatalf("the second run's task is %s while the first holds the only slot", st)
	}
	if err := h.gw.CancelRun(context.Background(), x); err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, h.output(y), `["ok","next"]`)
	if st := h.finish(x).Status; st != host.RunCancelled {
		t.Fatalf("first run %s", st)
	}
}

// TestConcurrencyWaitSurvivesRestart: runs waiting for a slot when the
// gateway stops keep waiting after it starts again, their tasks journaled
// pending and never started early, and all finish, one body at a time.
func TestConcurrencyWaitSurvivesRestart(t *testing.T) {
	g := newBodyGauge(t)
	gate := make(chan struct{})
	g.onEnter = func(r *http.Request) {
		select {
		case <-gate:
		case <-r.Context().Done():
			// The gateway stopped: the body's t.fetch was cancelled and
			// the body will not leave.
			g.mu.Lock()
			g.running[""]--
			g.total--
			g.mu.Unlock()
		}
	}
	h := newHarness(t, gaugedModule(`gateway.register("single", wf, { concurrency: { limit: 1 } });`))
	first := h.launch("single", map[string]any{"url": g.srv.URL})
	eventually(t, "the first run's body starts", func() bool { _, _, e := g.snapshot(); return len(e) == 1 })
	var waiting []string
	for range 3 {
		id := h.launch("single", map[string]any{"url": g.srv.URL})
		eventually(t, "a waiting run's task is journaled", func() bool { _, ok := h.nodes(id)["work"]; return ok })
		waiting = append(waiting, id)
	}
	for _, id := range waiting {
		if n := h.nodes(id)["work"]; n.State != host.NodePending || n.Attempts != 0 {
			t.Fatalf("run %s's task is %s with %d attempts: it started while another held the only slot", id, n.State, n.Attempts)
		}
	}
	h.restart()
	close(gate)
	for _, id := range append([]string{first}, waiting...) {
		jsonEqual(t, h.output(id), `"`+id+`"`)
	}
	peak, _, entered := g.snapshot()
	if peak[""] != 1 || len(entered) != 5 {
		t.Fatalf("bodies entered %v, at most %d at once; want 5 (the first run's twice), one at a time", entered, peak[""])
	}
	// The first run's interrupted attempt is followed by one more; the
	// waiting runs' tasks ran once, after the restart.
	for _, id := range append([]string{first}, waiting...) {
		want := 1
		if id == first {
			want = 2
		}
		if n := h.nodes(id)["work"]; n.Attempts != want {
			t.Fatalf("run %s's task has %d attempts, want %d", id, n.Attempts, want)
		}
	}
}

// TestConcurrencyLimitWithMaxConcurrency: a task waits for its run's
// maxConcurrency slot and the workflow's limit; both bounds hold.
func TestConcurrencyLimitWithMaxConcurrency(t *testing.T) {
	g := newBodyGauge(t)
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("both", async (ctx) => {
    const body = async (t) => {
      const q = "?k=" + ctx.runId + "&run=" + ctx.runId;
      await t.fetch(ctx.input.url + "/enter" + q);
      await new Promise((r) => setTimeout(r, 20));
      await t.fetch(ctx.input.url + "/leave" + q);
      return 1;
    };
    const all = await Promise.all([1, 2, 3, 4, 5].map((i) => ctx.task("t" + i, body)));
    return all.length;
  }, { maxConcurrency: 2, concurrency: { limit: 3 } });
}`)
	var ids []string
	for range 3 {
		ids = append(ids, h.launch("both", map[string]any{"url": g.srv.URL}))
	}
	for _, id := range ids {
		jsonEqual(t, h.output(id), `5`)
	}
	peak, peakTotal, entered := g.snapshot()
	for _, id := range ids {
		if peak[id] > 2 {
			t.Fatalf("run %s ran %d task bodies at once under maxConcurrency 2", id, peak[id])
		}
	}
	if peakTotal > 3 || peakTotal < 2 || len(entered) != 15 {
		t.Fatalf("%d bodies ran, at most %d at once; want 15, at most 3 at once (and more than one)", len(entered), peakTotal)
	}
}
