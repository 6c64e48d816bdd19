package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smithers-orchestrator/smithers-go/api/auth"
	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/host/sqlite"
	"github.com/smithers-orchestrator/smithers-go/jsruntime"
)

const (
	ghSecret    = "It's a Secret to Everybody"
	giteaSecret = "gitea-secret"
)

// webhookModule registers workflows with each kind of webhook config.
const webhookModule = `
export default function register(gateway) {
  gateway.register("github", async (ctx) => {
    const push = await ctx.waitForEvent("push", { event: "push", correlationId: ctx.input.repo });
    return { got: push };
  }, { webhook: { secret: "It's a Secret to Everybody",
    signal: { name: " push ", correlationIdPath: "repository.full_name", runIdPath: "smithers.runId", payloadPath: "head_commit" },
    run: { inputPath: "inputs" } } });
  gateway.register("gitea", async (ctx) => ({ input: ctx.input }),
    { webhook: { secret: "gitea-secret", signatureHeader: "X-Gitea-Signature", signaturePrefix: "", deliveryHeader: "X-Gitea-Delivery" } });
  gateway.register("nowhere", async () => 1, { webhook: { secret: "k", run: { enabled: false } } });
  gateway.register("signal-only", async () => 1, { webhook: { secret: "k", signal: { name: "ping" }, run: { enabled: false } } });
  gateway.register("plain", async () => 1);
}
`

// newWebhookGateway is the real router and engine on webhookModule, with
// metrics and no auth (webhooks take none; the RPC calls of the tests
// only look at runs).
func newWebhookGateway(t *testing.T, cfg Config, wrap func(host.Store) host.Store) *testGateway {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	log := testLogger()
	modPath := filepath.Join(dir, "gateway.mjs")
	if err := os.WriteFile(modPath, []byte(webhookModule), 0o644); err != nil {
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
	var keys []string
	for _, wf := range exec.Workflows() {
		keys = append(keys, wf.Key)
	}
	metrics := NewMetrics(prometheus.NewRegistry(), keys)
	gw, err := host.New(host.Config{Store: st, Executor: exec, Logger: log, InstanceID: "test", Observer: metrics})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	cfg.Gateway, cfg.Reads, cfg.Auth, cfg.Logger, cfg.Metrics = gw, st, auth.NoAuth{}, log, metrics
	srv := NewServer(cfg)
	return &testGateway{t: t, gw: gw, srv: srv, h: srv.Handler(), tokens: map[string]string{tokAll: "unused"}}
}

// githubSignature is the X-Hub-Signature-256 value GitHub sends for body.
func githubSignature(secret, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// hook posts body to /webhooks/<key> with the headers given as pairs.
func (g *testGateway) hook(key, body string, headers ...string) response {
	return g.post("/webhooks/"+key, "", body, headers...)
}

// github posts a correctly signed GitHub-style delivery.
func (g *testGateway) github(body, deliveryID string) response {
	h := []string{"X-Hub-Signature-256", githubSignature(ghSecret, body)}
	if deliveryID != "" {
		h = append(h, "X-GitHub-Delivery", deliveryID)
	}
	return g.hook("github", body, h...)
}

// webhookOK checks a success response and returns its body.
func webhookOK(t *testing.T, res response) map[string]any {
	t.Helper()
	if res.status != http.StatusOK || res.body["ok"] != true || res.body["verified"] != true {
		t.Fatalf("webhook answered %d %s, want 200 ok", res.status, res.raw)
	}
	checkCommonHeaders(t, "webhook", res.header)
	return res.body
}

// metric sums the /metrics samples of name whose labels include labels.
func (g *testGateway) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	res := g.serve(httptest.NewRequest(http.MethodGet, "/metrics", nil))
	var s scrape
	for _, line := range strings.Split(string(res.raw), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			s.samples = append(s.samples, parseSample(t, line))
		}
	}
	v, _ := s.value(name, labels)
	return v
}

// TestWebhookProcessingTable: every refusal of docs/workflows.md in order,
// with its status, error body and metric reason.
func TestWebhookProcessingTable(t *testing.T) {
	g := newWebhookGateway(t, Config{MaxBodyBytes: 512}, nil)
	deep := `{"inputs":` + strings.Repeat("[", 32) + strings.Repeat("]", 32) + `}`
	tests := []struct {
		name, key, body string
		headers         []string
		status          int
		code, message   string
		reason, label   string
	}{
		{"unknown workflow", "nope", `{}`, nil, 404, "NOT_FOUND", "Unknown workflow: nope", "workflow_not_found", "unknown"},
		{"workflow without a webhook", "plain", `{}`, nil, 404, "NOT_FOUND", "Webhook not configured for workflow: plain", "not_configured", "plain"},
		{"neither signal nor run", "nowhere", `{}`, nil, 400, "INVALID_REQUEST", "Webhook config must enable signal delivery or run creation", "misconfigured", "nowhere"},
		{"bad Content-Length", "github", `{}`, []string{"Content-Length", "1.5"}, 400, "INVALID_INPUT", "Gateway request Content-Length must be a non-negative integer.", "invalid_payload", "github"},
		{"body over the cap", "github", `{"a":"` + strings.Repeat("x", 600) + `"}`, nil, 413, "PayloadTooLarge", "Gateway request payload exceeds 512 bytes.", "invalid_payload", "github"},
		{"no signature", "github", `{}`, nil, 401, "UNAUTHORIZED", "Webhook signature verification failed", "invalid_signature", "github"},
		{"wrong secret", "github", `{}`, []string{"X-Hub-Signature-256", githubSignature("guess", `{}`)}, 401, "UNAUTHORIZED", "Webhook signature verification failed", "invalid_signature", "github"},
		{"upper-case hex", "github", `{}`, []string{"X-Hub-Signature-256", "sha256=" + strings.ToUpper(strings.TrimPrefix(githubSignature(ghSecret, `{}`), "sha256="))}, 401, "UNAUTHORIZED", "Webhook signature verification failed", "invalid_signature", "github"},
		{"signature of another body", "github", `{"a":1}`, []string{"X-Hub-Signature-256", githubSignature(ghSecret, `{"a":2}`)}, 401, "UNAUTHORIZED", "Webhook signature verification failed", "invalid_signature", "github"},
		{"prefix where none is configured", "gitea", `{}`, []string{"X-Gitea-Signature", githubSignature(giteaSecret, `{}`)}, 401, "UNAUTHORIZED", "Webhook signature verification failed", "invalid_signature", "gitea"},
		{"not JSON", "github", `{"a":`, []string{"X-Hub-Signature-256", githubSignature(ghSecret, `{"a":`)}, 400, "INVALID_INPUT", "Webhook payload must be valid JSON.", "invalid_payload", "github"},
		{"two JSON values", "github", `{} {}`, []string{"X-Hub-Signature-256", githubSignature(ghSecret, `{} {}`)}, 400, "INVALID_INPUT", "Webhook payload must be valid JSON.", "invalid_payload", "github"},
		{"run input too deep", "github", deep, []string{"X-Hub-Signature-256", githubSignature(ghSecret, deep)}, 400, "INVALID_INPUT", "Gateway RPC input exceeds the maximum nesting depth of 32.", "invalid_payload", "github"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := g.metric(t, "smithers_gateway_webhooks_rejected_total", map[string]string{"workflow": tc.label, "reason": tc.reason})
			res := g.hook(tc.key, tc.body, tc.headers...)
			checkCommonHeaders(t, tc.name, res.header)
			want := fmt.Sprintf(`{"error":{"code":%q,"message":%q},"ok":false}`, tc.code, tc.message)
			if res.status != tc.status || string(res.raw) != want {
				t.Fatalf("answered %d %s\nwant %d %s", res.status, res.raw, tc.status, want)
			}
			if got := g.metric(t, "smithers_gateway_webhooks_rejected_total", map[string]string{"workflow": tc.label, "reason": tc.reason}); got != before+1 {
				t.Errorf("webhooks_rejected_total{reason=%q,workflow=%q} went from %v to %v, want +1", tc.reason, tc.label, before, got)
			}
		})
	}
	if got := g.metric(t, "smithers_gateway_webhooks_received_total", map[string]string{"workflow": "github"}); got != 9 {
		t.Errorf("webhooks_received_total{workflow=github} = %v, want 9", got)
	}
	// Verified: the JSON and run-input failures came after the signature.
	if got := g.metric(t, "smithers_gateway_webhooks_verified_total", map[string]string{"workflow": "github"}); got != 3 {
		t.Errorf("webhooks_verified_total{workflow=github} = %v, want 3", got)
	}
	if got := g.metric(t, "smithers_gateway_errors_total", map[string]string{"kind": "webhook", "workflow": "github", "code": "UNAUTHORIZED"}); got != 4 {
		t.Errorf("errors_total{kind=webhook,workflow=github,code=UNAUTHORIZED} = %v, want 4", got)
	}
	if runs, _ := g.gw.ListRuns(context.Background(), "", host.RunFilter{}); len(runs) != 0 {
		t.Errorf("refused webhooks started %d runs", len(runs))
	}
}

// TestWebhookDeliversSignalToWaitingRuns: a signed delivery goes to every
// waiting-event run whose wait matches its name and correlation id (none
// other), they resume and finish with the payload; the success body lists
// what was delivered.
func TestWebhookDeliversSignalToWaitingRuns(t *testing.T) {
	g := newWebhookGateway(t, Config{}, nil)
	a := g.launch("github", map[string]any{"repo": "octo/app"})
	b := g.launch("github", map[string]any{"repo": "octo/app"})
	other := g.launch("github", map[string]any{"repo": "octo/other"})
	for _, id := range []string{a, b, other} {
		g.waitRun(id, "waiting-event")
	}
	body := `{"repository":{"full_name":" octo/app "},"head_commit":{"id":"c0ffee","n":12345678901234567890},"zen":"<&>"}`
	out := webhookOK(t, g.github(body, ""))
	if out["workflow"] != "github" || out["started"] != nil {
		t.Fatalf("success body %v", out)
	}
	matched, _ := out["matchedRunIds"].([]any)
	if len(matched) != 2 || !(matched[0] == a && matched[1] == b || matched[0] == b && matched[1] == a) {
		t.Fatalf("matchedRunIds %v, want the two octo/app runs %s and %s", matched, a, b)
	}
	for i, d := range out["delivered"].([]any) {
		d := d.(map[string]any)
		if d["runId"] != matched[i] || d["seq"] != float64(0) || d["signalName"] != "push" || d["correlationId"] != "octo/app" || d["receivedAtMs"].(float64) <= 0 {
			t.Errorf("delivered[%d] = %v", i, d)
		}
	}
	for _, id := range []string{a, b} {
		r := g.waitRun(id, "finished")
		jsonEqual(t, r["output"], `{"got":{"id":"c0ffee","n":12345678901234567890}}`)
	}
	if r := g.waitRun(other, "waiting-event"); r["status"] != "waiting-event" {
		t.Fatalf("the octo/other run was woken: %v", r)
	}
	// The stored payload is the value at payloadPath as sent: numbers
	// intact.
	sigs, err := g.srv.reads.(host.Store).ListSignals(context.Background(), a)
	if err != nil || len(sigs) != 1 || sigs[0].ReceivedBy != "webhook:github" || sigs[0].ConsumedBy != "push" ||
		sigs[0].PayloadJSON != `{"id":"c0ffee","n":12345678901234567890}` {
		t.Fatalf("signals of %s: %+v %v, want one received by webhook:github, consumed by push", a, sigs, err)
	}

	// With runIdPath, only that run gets it, even if others wait too.
	c := g.launch("github", map[string]any{"repo": "octo/other"})
	g.waitRun(c, "waiting-event")
	body = fmt.Sprintf(`{"smithers":{"runId":%q},"repository":{"full_name":"octo/other"},"head_commit":null}`, other)
	out = webhookOK(t, g.github(body, ""))
	jsonEqual(t, out["matchedRunIds"], fmt.Sprintf(`[%q]`, other))
	if r := g.waitRun(other, "finished"); fmt.Sprint(r["output"]) != "map[got:map[]]" {
		t.Errorf("a null payload arrives as {}: output %v", r["output"])
	}
	if r := g.waitRun(c, "waiting-event"); r["status"] != "waiting-event" {
		t.Fatalf("a run not named by runIdPath was woken: %v", r)
	}

	// A named run that is finished, or does not wait for this, takes
	// nothing: the delivery starts a run instead.
	body = fmt.Sprintf(`{"smithers":{"runId":%q},"repository":{"full_name":"octo/other"},"inputs":{"repo":"octo/new"}}`, a)
	out = webhookOK(t, g.github(body, ""))
	jsonEqual(t, out["matchedRunIds"], `[]`)
	jsonEqual(t, out["delivered"], `[]`)
	if started, _ := out["started"].(map[string]any); started["workflow"] != "github" || started["runId"] == "" {
		t.Fatalf("started %v, want a new github run", out["started"])
	}
}

// TestWebhookStartsRuns: with nothing waiting, a delivery starts a run
// with the value at inputPath (non-objects wrapped as {payload}) under
// system auth triggered by webhook:<key>; a custom signature header with
// an empty prefix carries the bare hex.
func TestWebhookStartsRuns(t *testing.T) {
	g := newWebhookGateway(t, Config{}, nil)
	gitea := func(body string) response {
		mac := hmac.New(sha256.New, []byte(giteaSecret))
		mac.Write([]byte(body))
		return g.hook("gitea", body, "X-Gitea-Signature", hex.EncodeToString(mac.Sum(nil)))
	}
	for _, tc := range []struct{ body, input string }{
		{`{"ref":"main","n":2}`, `{"ref":"main","n":2}`},
		{`[1,"two"]`, `{"payload":[1,"two"]}`},
		{`"hello"`, `{"payload":"hello"}`},
		{`null`, `{"payload":null}`},
		{``, `{}`},
	} {
		out := webhookOK(t, gitea(tc.body))
		started, _ := out["started"].(map[string]any)
		id, _ := started["runId"].(string)
		if id == "" || started["workflow"] != "gitea" {
			t.Fatalf("%s: started %v", tc.body, out["started"])
		}
		jsonEqual(t, out["delivered"], `[]`)
		r := g.waitRun(id, "finished")
		jsonEqual(t, r["output"], `{"input":`+tc.input+`}`)
		run, _, _ := g.srv.reads.GetRun(context.Background(), id)
		var cfg struct {
			TriggeredBy string `json:"gatewayTriggeredBy"`
			Auth        struct {
				Role   string   `json:"role"`
				Scopes []string `json:"scopes"`
			} `json:"auth"`
		}
		_ = json.Unmarshal([]byte(run.ConfigJSON), &cfg)
		if cfg.TriggeredBy != "webhook:gitea" || cfg.Auth.Role != "system" || fmt.Sprint(cfg.Auth.Scopes) != "[*]" {
			t.Errorf("run config %s, want triggeredBy webhook:gitea, role system, scopes [*]", run.ConfigJSON)
		}
	}
	// The input of a github run comes from inputPath; a missing one is {}.
	out := webhookOK(t, g.github(`{"inputs":{"repo":"x/y"}}`, ""))
	id := out["started"].(map[string]any)["runId"].(string)
	run, _, _ := g.srv.reads.GetRun(context.Background(), id)
	if run.InputJSON != `{"repo":"x/y"}` {
		t.Errorf("input %s, want the value at inputPath", run.InputJSON)
	}
	// Run creation disabled and nothing waiting: nothing happens.
	mac := hmac.New(sha256.New, []byte("k"))
	mac.Write([]byte(`{}`))
	out = webhookOK(t, g.hook("signal-only", `{}`, "X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil))))
	jsonEqual(t, out, `{"ok":true,"workflow":"signal-only","verified":true,"delivered":[],"matchedRunIds":[],"started":null}`)
	if got := g.metric(t, "smithers_gateway_runs_started_total", map[string]string{"workflow": "gitea", "source": "webhook"}); got != 5 {
		t.Errorf("runs_started_total{workflow=gitea,source=webhook} = %v, want 5", got)
	}
}

// TestWebhookDuplicateDeliveryID: a delivery id seen before is answered
// with the first answer plus duplicate: true and delivers nothing; another
// id, or the same id at another workflow, is a new delivery.
func TestWebhookDuplicateDeliveryID(t *testing.T) {
	g := newWebhookGateway(t, Config{}, nil)
	body := `{"inputs":{"repo":"a/b"}}`
	first := webhookOK(t, g.github(body, "d-1"))
	if _, ok := first["duplicate"]; ok {
		t.Fatalf("first delivery marked duplicate: %v", first)
	}
	again := webhookOK(t, g.github(body, "d-1"))
	if again["duplicate"] != true {
		t.Fatalf("retry not marked duplicate: %v", again)
	}
	delete(again, "duplicate")
	jsonEqual(t, again, string(mustMarshal(first)))
	// Another body with the same id is still the same delivery.
	webhookOK(t, g.github(`{"inputs":{"repo":"c/d"}}`, "d-1"))
	if runs, _ := g.gw.ListRuns(context.Background(), "", host.RunFilter{}); len(runs) != 1 {
		t.Fatalf("%d runs after three deliveries of one id, want 1", len(runs))
	}
	if out := webhookOK(t, g.github(body, "d-2")); out["duplicate"] != nil || out["started"] == nil {
		t.Fatalf("a new delivery id: %v", out)
	}
	// The id is per workflow; gitea's header is its own.
	mac := hmac.New(sha256.New, []byte(giteaSecret))
	mac.Write([]byte(body))
	sig := hex.EncodeToString(mac.Sum(nil))
	if out := webhookOK(t, g.hook("gitea", body, "X-Gitea-Signature", sig, "X-Gitea-Delivery", "d-1")); out["duplicate"] != nil {
		t.Fatalf("d-1 at another workflow: %v", out)
	}
	if out := webhookOK(t, g.hook("gitea", body, "X-Gitea-Signature", sig, "X-Gitea-Delivery", "d-1")); out["duplicate"] != true {
		t.Fatalf("gitea's delivery header is not used: %v", out)
	}
	// A refused retry (bad signature) is not a delivery and is not recorded.
	res := g.hook("github", body, "X-Hub-Signature-256", "sha256=00", "X-GitHub-Delivery", "d-3")
	if res.status != 401 {
		t.Fatalf("bad signature: %d", res.status)
	}
	if out := webhookOK(t, g.github(body, "d-3")); out["duplicate"] != nil || out["started"] == nil {
		t.Fatalf("the first accepted d-3: %v", out)
	}
}

// TestWebhookConcurrentRetriesDeliverOnce: retries of one delivery id sent
// at the same time start one run; all answers name it.
func TestWebhookConcurrentRetriesDeliverOnce(t *testing.T) {
	g := newWebhookGateway(t, Config{}, nil)
	const n = 16
	answers := make(chan response, n)
	for i := 0; i < n; i++ {
		go func() { answers <- g.github(`{"inputs":{}}`, "same") }()
	}
	ids := map[any]int{}
	for i := 0; i < n; i++ {
		out := webhookOK(t, <-answers)
		ids[out["started"].(map[string]any)["runId"]]++
	}
	if len(ids) != 1 {
		t.Fatalf("concurrent retries started runs %v, want one", ids)
	}
	if runs, _ := g.gw.ListRuns(context.Background(), "", host.RunFilter{}); len(runs) != 1 {
		t.Fatalf("%d runs, want 1", len(runs))
	}
}

// TestWebhookStorageFault: a delivery that cannot be committed answers 503
// SERVICE_UNAVAILABLE with Retry-After (the sender retries), reason
// server_error.
func TestWebhookStorageFault(t *testing.T) {
	var fs *faultyStore
	g := newWebhookGateway(t, Config{}, func(s host.Store) host.Store {
		fs = &faultyStore{Store: s}
		return fs
	})
	fs.set(fmt.Errorf("%w: disk full (test)", host.ErrStorageUnavailable))
	res := g.github(`{}`, "")
	if res.status != 503 || res.header.Get("Retry-After") == "" || !strings.Contains(string(res.raw), `"code":"SERVICE_UNAVAILABLE"`) {
		t.Fatalf("answered %d %s (Retry-After %q)", res.status, res.raw, res.header.Get("Retry-After"))
	}
	if strings.Contains(string(res.raw), "disk full") {
		t.Errorf("the storage error leaked to the sender: %s", res.raw)
	}
	if got := g.metric(t, "smithers_gateway_webhooks_rejected_total", map[string]string{"workflow": "github", "reason": "server_error"}); got != 1 {
		t.Errorf("rejected{reason=server_error} = %v", got)
	}
	fs.set(nil)
	webhookOK(t, g.github(`{}`, ""))
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzWebhookBody feeds arbitrary bytes through the body parser and the
// path lookup of a delivery: never a panic, the empty path is the whole
// body, and a value found is part of the body.
func FuzzWebhookBody(f *testing.F) {
	f.Add([]byte(`{"a":{"b":[{"c":1}]}}`), "a.b.0.c")
	f.Add([]byte(`[1,[2,[3]]]`), "1.1.0")
	f.Add([]byte(`"x"`), "")
	f.Add([]byte(`{"":{"":1}}`), ".")
	f.Add([]byte(`{"n":1e400}`), "n")
	f.Fuzz(func(t *testing.T, body []byte, path string) {
		v, err := decodeWebhookBody(body)
		if err != nil {
			return
		}
		got, ok := host.WebhookPathValue(v, path)
		if path == "" && (!ok || fmt.Sprint(got) != fmt.Sprint(v)) {
			t.Fatalf("empty path: %v %v, want the whole body", got, ok)
		}
		if ok {
			whole, _ := json.Marshal(v)
			part, err := json.Marshal(got)
			if err != nil || !strings.Contains(string(whole), string(part)) {
				t.Fatalf("value %s at %q is not in the body %s", part, path, whole)
			}
		}
	})
}
