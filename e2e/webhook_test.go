package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const webhookSecret = "e2e webhook secret"

// webhookModule's "github" workflow waits for a push of its repository;
// its webhook delivers pushes as that signal, and starts a run from the
// body's inputs when no run waits for the push.
var webhookModule = fmt.Sprintf(`
export default function register(gateway) {
  gateway.register("github", async (ctx) => {
    const push = await ctx.signal("push", { correlationId: ctx.input.repo });
    return { repo: ctx.input.repo, head: push.id };
  }, { webhook: { secret: %q,
    signal: { name: "push", correlationIdPath: "repository.full_name", payloadPath: "head_commit" },
    run: { inputPath: "inputs" } } });
}
`, webhookSecret)

// webhookAnswer is a decoded webhook response.
type webhookAnswer struct {
	status int
	raw    string
	body   map[string]any
}

// postWebhook posts body to /webhooks/<key>, signed with secret as GitHub
// signs (X-Hub-Signature-256) unless signature is given, with the
// delivery id when not empty.
func (g *Gateway) postWebhook(key, body, signature, deliveryID string) webhookAnswer {
	g.t.Helper()
	if signature == "" {
		mac := hmac.New(sha256.New, []byte(webhookSecret))
		mac.Write([]byte(body))
		signature = "sha256=" + hex.EncodeToString(mac.Sum(nil))
	}
	req, err := http.NewRequest(http.MethodPost, g.URL+"/webhooks/"+key, strings.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", signature)
	if deliveryID != "" {
		req.Header.Set("X-GitHub-Delivery", deliveryID)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		g.t.Fatalf("POST /webhooks/%s: %v", key, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := webhookAnswer{status: resp.StatusCode, raw: string(raw)}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		g.t.Fatalf("POST /webhooks/%s answered %d with %s: %v", key, resp.StatusCode, raw, err)
	}
	return a
}

// delivered checks a 200 answer and returns it.
func (a webhookAnswer) delivered(t *testing.T) map[string]any {
	t.Helper()
	if a.status != http.StatusOK || a.body["ok"] != true || a.body["verified"] != true || a.body["workflow"] != "github" {
		t.Fatalf("webhook answered %d %s, want 200 ok", a.status, a.raw)
	}
	return a.body
}

// metricsText is GET /metrics.
func (g *Gateway) metricsText() string {
	g.t.Helper()
	resp, err := httpClient.Get(g.URL + "/metrics")
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestWebhookDeliveries drives a GitHub-style webhook through the real
// binary: a wrong signature is refused (401, counted), a signed push
// wakes the run waiting for it, a push nobody waits for starts a run, and
// a retried delivery id is answered with the first answer, marked
// duplicate, delivering nothing, also after a restart.
func TestWebhookDeliveries(t *testing.T) {
	t.Parallel()
	g := startGateway(t, writeModule(t, webhookModule))

	push := `{"ref":"refs/heads/main","repository":{"full_name":"octo/app"},"head_commit":{"id":"abc123"}}`
	bad := g.postWebhook("github", push, "sha256="+strings.Repeat("0", 64), "d-0")
	if want := `{"error":{"code":"UNAUTHORIZED","message":"Webhook signature verification failed"},"ok":false}`; bad.status != 401 || bad.raw != want {
		t.Fatalf("wrong signature: %d %s, want 401 %s", bad.status, bad.raw, want)
	}
	m := g.metricsText()
	for _, line := range []string{`smithers_gateway_webhooks_rejected_total{reason="invalid_signature",workflow="github"} 1`,
		`smithers_gateway_webhooks_received_total{workflow="github"} 1`} {
		if !strings.Contains(m, line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}

	// A signed push wakes the run waiting for it.
	waiting := g.launch("github", map[string]any{"repo": "octo/app"})
	g.waitStatus(waiting, "waiting-event")
	out := g.postWebhook("github", push, "", "d-1").delivered(t)
	assertJSON(t, "matchedRunIds", mustJSON(t, out["matchedRunIds"]), fmt.Sprintf(`[%q]`, waiting))
	d := out["delivered"].([]any)[0].(map[string]any)
	if d["runId"] != waiting || d["signalName"] != "push" || d["correlationId"] != "octo/app" || d["seq"] != float64(0) || out["started"] != nil {
		t.Fatalf("success body %s", mustJSON(t, out))
	}
	r := g.waitStatus(waiting, "finished")
	assertJSON(t, "output", r.Output, `{"repo":"octo/app","head":"abc123"}`)
	// A retry of it is the same answer, and the finished run gets nothing.
	again := g.postWebhook("github", push, "", "d-1").delivered(t)
	if again["duplicate"] != true {
		t.Fatalf("retried d-1 answered %s, want duplicate: true", mustJSON(t, again))
	}
	delete(again, "duplicate")
	assertJSON(t, "retried answer", mustJSON(t, again), string(mustJSON(t, out)))

	// A push no run waits for starts a run with the body's inputs.
	other := `{"repository":{"full_name":"octo/none"},"head_commit":{"id":"fff"},"inputs":{"repo":"octo/new"}}`
	out = g.postWebhook("github", other, "", "d-2").delivered(t)
	started, _ := out["started"].(map[string]any)
	newRun, _ := started["runId"].(string)
	if newRun == "" || started["workflow"] != "github" || len(out["delivered"].([]any)) != 0 {
		t.Fatalf("success body %s, want a started run", mustJSON(t, out))
	}
	g.waitStatus(newRun, "waiting-event")
	runsBefore := len(g.listRuns())

	// The sender retries d-2 across a gateway restart: same answer,
	// marked duplicate, no second run.
	g.kill9()
	g.restart()
	again = g.postWebhook("github", other, "", "d-2").delivered(t)
	if again["duplicate"] != true {
		t.Fatalf("retried d-2 answered %s, want duplicate: true", mustJSON(t, again))
	}
	delete(again, "duplicate")
	assertJSON(t, "retried answer", mustJSON(t, again), string(mustJSON(t, out)))
	if n := len(g.listRuns()); n != runsBefore {
		t.Fatalf("%d runs after the duplicate delivery, want %d", n, runsBefore)
	}

	// The started run is woken by its own push.
	g.postWebhook("github", `{"repository":{"full_name":"octo/new"},"head_commit":{"id":"def456"}}`, "", "d-3").delivered(t)
	r = g.waitStatus(newRun, "finished")
	assertJSON(t, "output", r.Output, `{"repo":"octo/new","head":"def456"}`)
}

// listRuns returns every run.
func (g *Gateway) listRuns() []runRow {
	g.t.Helper()
	var runs []runRow
	decode(g.t, g.rpc("listRuns", map[string]any{"limit": 1000}), &runs)
	return runs
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(b.Bytes())
}

// TestWebhookBlankSecretRefusesStart: a module whose webhook has a blank
// secret stops start-up with exit status 1 and a message naming the
// workflow, before the gateway listens.
func TestWebhookBlankSecretRefusesStart(t *testing.T) {
	t.Parallel()
	module := writeModule(t, `
export default function register(gateway) {
  gateway.register("fine", async () => 1, { webhook: { secret: "set" } });
  gateway.register("github-push", async () => 1, { webhook: { secret: "   ", signal: { name: "push" } } });
}
`)
	data := t.TempDir()
	env := append(baseEnv(data), "PORT=0", "HOST=127.0.0.1", "SMITHERS_GATEWAY_MODULE="+module,
		"SMITHERS_DB_PATH="+filepath.Join(data, "smithers.db"), "SMITHERS_TOKEN_STORE="+filepath.Join(data, "tokens.json"))
	code, stdout, stderr := runToExit(t, data, env, "gateway")
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	if strings.Contains(stdout, "listening on") {
		t.Errorf("the gateway listened with a blank webhook secret; stdout:\n%s", stdout)
	}
	if !regexp.MustCompile(`"github-push".*webhook secret is blank`).MatchString(stderr) {
		t.Errorf("stderr does not name workflow \"github-push\" and its blank secret:\n%s", stderr)
	}
}
