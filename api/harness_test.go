package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/api/auth"
	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/host/sqlite"
	"github.com/smithers-orchestrator/smithers-go/jsruntime"
	"github.com/smithers-orchestrator/smithers-go/testkit"
)

// testModule registers the workflows the API tests drive.
const testModule = `
export default function register(gateway) {
  gateway.register("echo", async (ctx) => {
    const obj = await ctx.task("obj", () => ({ n: ctx.input.n ?? 0 }));
    const scalar = await ctx.task("scalar", () => 42);
    return { obj, scalar };
  }, { readableName: "Echo", description: "Returns its input" });
  gateway.register("gate", async (ctx) => {
    const d = await ctx.approval("ship", { request: { title: "Ship it?", summary: "please" }, onDeny: "continue" });
    return { approved: d.approved };
  });
  gateway.register("wait", async (ctx) => {
    return await ctx.waitForEvent("evt", { event: "go" });
  });
  gateway.register("sleepy", async (ctx) => {
    await ctx.sleep("nap", 3600000);
  });
  gateway.register("failing", async (ctx) => {
    await ctx.task("boom", (t) => { t.heartbeat({ progress: 0.5 }); throw new Error("boom"); }, { retries: 0, continueOnFail: true });
    await ctx.approval("hold", { request: { title: "hold" } });
  });
}
`

// Token names of the test token store.
const (
	tokAll      = "all"      // scopes ["*"], userId alice
	tokRead     = "read"     // scopes ["run:read"]
	tokAdmin    = "admin"    // role admin, scopes ["*"], no userId
	tokCronRead = "cronread" // scopes ["cron:read"]
	tokObs      = "obs"      // scopes ["observability:read"]
	tokBob      = "bob"      // scopes ["*"], userId bob
)

// testGateway is the real router on the real engine, a temp SQLite store
// and a real token store file.
type testGateway struct {
	t      testing.TB
	gw     *host.Gateway
	srv    *Server
	h      http.Handler
	tokens map[string]string
}

func testLogger() *slog.Logger {
	if os.Getenv("SMITHERS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newTestGateway(t testing.TB) *testGateway {
	return newTestGatewayConfig(t, Config{})
}

// newTestGatewayConfig builds a gateway; cfg's Gateway, Reads, Auth and
// Logger are filled in.
func newTestGatewayConfig(t testing.TB, cfg Config) *testGateway {
	t.Helper()
	return newTestGatewayStore(t, cfg, nil)
}

// newTestGatewayStore is newTestGatewayConfig with the engine and the API
// on wrap(store) (the store itself when wrap is nil), so that a test can
// inject storage faults.
func newTestGatewayStore(t testing.TB, cfg Config, wrap func(host.Store) host.Store) *testGateway {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	log := testLogger()
	modPath := filepath.Join(dir, "gateway.mjs")
	if err := os.WriteFile(modPath, []byte(testModule), 0o644); err != nil {
		t.Fatal(err)
	}
	exec, err := jsruntime.Load(jsruntime.Options{ModulePath: modPath, Logger: log})
	if err != nil {
		t.Fatalf("load module: %v", err)
	}
	t.Cleanup(func() { exec.Close() })
	store, err := sqlite.Open(ctx, filepath.Join(dir, "smithers.db"), sqlite.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var st host.Store = store
	if wrap != nil {
		st = wrap(store)
	}
	gw, err := host.New(host.Config{Store: st, Executor: exec, Logger: log, InstanceID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })

	tokenPath := filepath.Join(dir, "tokens.json")
	tokens := map[string]string{}
	issue := func(name string, o auth.IssueOptions) {
		o.TTL = time.Hour
		res, err := auth.Issue(tokenPath, o)
		if err != nil {
			t.Fatal(err)
		}
		tokens[name] = res.Token
	}
	issue(tokAll, auth.IssueOptions{Scopes: []string{"*"}, UserID: "alice"})
	issue(tokRead, auth.IssueOptions{Scopes: []string{"run:read"}})
	issue(tokAdmin, auth.IssueOptions{Scopes: []string{"*"}, Role: "admin"})
	issue(tokCronRead, auth.IssueOptions{Scopes: []string{"cron:read"}})
	issue(tokObs, auth.IssueOptions{Scopes: []string{"observability:read"}})
	issue(tokBob, auth.IssueOptions{Scopes: []string{"*"}, UserID: "bob"})
	ts := auth.OpenTokenStore(tokenPath, auth.TokenStoreOptions{Logger: log})
	t.Cleanup(func() { ts.Close() })

	cfg.Gateway, cfg.Reads, cfg.Auth, cfg.Logger = gw, st, ts, log
	srv := NewServer(cfg)
	return &testGateway{t: t, gw: gw, srv: srv, h: srv.Handler(), tokens: tokens}
}

// response is a decoded HTTP response.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// serve sends req through the router. Like post and rpc, it does not fail
// the test itself, so subtests may use it.
func (g *testGateway) serve(req *http.Request) response {
	rec := httptest.NewRecorder()
	g.h.ServeHTTP(rec, req)
	res := response{status: rec.Code, header: rec.Header(), raw: rec.Body.Bytes()}
	// A body that is not a JSON object leaves body nil; the callers'
	// checks then fail with the raw body in their message.
	_ = json.Unmarshal(res.raw, &res.body)
	return res
}

// post sends a raw body to target with the named token (none when "").
func (g *testGateway) post(target, token string, body string, headers ...string) response {
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+g.token(token))
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return g.serve(req)
}

func (g *testGateway) token(name string) string {
	tok, ok := g.tokens[name]
	if !ok {
		panic("no test token " + name)
	}
	return tok
}

// rpc calls POST /v1/rpc/<method> with params as the bare body.
func (g *testGateway) rpc(token, method string, params any) response {
	b, err := json.Marshal(params)
	if err != nil {
		panic(err)
	}
	return g.post("/v1/rpc/"+method, token, string(b))
}

// ok calls a method that must succeed and returns its payload.
func (g *testGateway) ok(method string, params any) any {
	g.t.Helper()
	res := g.rpc(tokAll, method, params)
	if res.status != http.StatusOK || res.body["ok"] != true {
		g.t.Fatalf("%s %v: status %d body %s", method, params, res.status, res.raw)
	}
	return res.body["payload"]
}

func (g *testGateway) launch(workflow string, input any) string {
	g.t.Helper()
	p := g.ok("launchRun", map[string]any{"workflow": workflow, "input": input}).(map[string]any)
	return p["runId"].(string)
}

// waitRun polls getRun until the run has one of the statuses.
func (g *testGateway) waitRun(runID string, statuses ...string) map[string]any {
	g.t.Helper()
	var last map[string]any
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		res := g.rpc(tokAll, "getRun", map[string]any{"runId": runID})
		if res.status == http.StatusOK {
			last = res.body["payload"].(map[string]any)
			for _, s := range statuses {
				if last["status"] == s {
					return last
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	g.t.Fatalf("run %s: last %v, want status in %v", runID, last, statuses)
	return nil
}

// eventually polls cond until it holds (testkit.Eventually).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, 15*time.Second, what, cond)
}

// errorOf returns the error object of a failed frame after checking the
// frame shape.
func errorOf(t *testing.T, res response) map[string]any {
	t.Helper()
	if res.body["ok"] != false || res.body["type"] != "res" || res.body["apiVersion"] != "v1" {
		t.Fatalf("not an error frame: %s", res.raw)
	}
	e, ok := res.body["error"].(map[string]any)
	if !ok || e["version"] != "v1" {
		t.Fatalf("error object %s", res.raw)
	}
	return e
}

// wantError checks status and error code of a response.
func wantError(t *testing.T, res response, status int, code string) map[string]any {
	t.Helper()
	e := errorOf(t, res)
	if res.status != status || e["code"] != code {
		t.Fatalf("got %d %v, want %d %s: %s", res.status, e["code"], status, code, res.raw)
	}
	return e
}

// jsonEqual compares v to the JSON text want.
func jsonEqual(t *testing.T, got any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("got  %s\nwant %s", gb, wb)
	}
}

func jsonNumber(s string) json.Number { return json.Number(s) }
