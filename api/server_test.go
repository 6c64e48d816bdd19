package api

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/api/auth"
)

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// checkCommonHeaders asserts the headers of docs/rpc.md.
func checkCommonHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	want := map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store",
		"X-Content-Type-Options": "nosniff", "X-Smithers-API-Version": "v1"}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: header %s = %q, want %q", what, k, got, v)
		}
	}
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "access-control-") {
			t.Errorf("%s: CORS header %s sent", what, k)
		}
	}
}

func TestRouteTable(t *testing.T) {
	g := newTestGateway(t)
	const routeNotFound = `{"error":{"code":"NOT_FOUND","message":"Route not found"}}`
	tests := []struct {
		name, method, target, body string
		status                     int
		// want: "health", "404", "rpc" (an RPC frame), "webhook" (a
		// webhook error body)
		want string
	}{
		{"health", http.MethodGet, "/health", "", 200, "health"},
		{"health with query string", http.MethodGet, "/health?x=1", "", 404, "404"},
		{"health trailing slash", http.MethodGet, "/health/", "", 404, "404"},
		{"HEAD health", http.MethodHead, "/health", "", 404, "404"},
		{"POST health", http.MethodPost, "/health", "", 404, "404"},
		{"metrics not served yet", http.MethodGet, "/metrics", "", 404, "404"},
		{"legacy rpc", http.MethodPost, "/rpc", `{"method":"health"}`, 200, "rpc"},
		{"legacy rpc with query string", http.MethodPost, "/rpc?x=1", `{"method":"health"}`, 404, "404"},
		{"legacy rpc trailing slash", http.MethodPost, "/rpc/", `{"method":"health"}`, 404, "404"},
		{"GET rpc", http.MethodGet, "/rpc", "", 404, "404"},
		{"v1 rpc", http.MethodPost, "/v1/rpc/health", `{}`, 200, "rpc"},
		{"v1 rpc ignores query string", http.MethodPost, "/v1/rpc/health?x=1", `{}`, 200, "rpc"},
		{"GET v1 rpc", http.MethodGet, "/v1/rpc/getRun", "", 404, "404"},
		{"PUT v1 rpc", http.MethodPut, "/v1/rpc/health", `{}`, 404, "404"},
		{"empty v1 method", http.MethodPost, "/v1/rpc/", `{}`, 404, "404"},
		{"extra v1 segment", http.MethodPost, "/v1/rpc/a/b", `{}`, 404, "404"},
		{"OPTIONS v1 rpc", http.MethodOptions, "/v1/rpc/health", "", 404, "404"},
		{"OPTIONS rpc", http.MethodOptions, "/rpc", "", 404, "404"},
		{"unknown HTTP method", "FROB", "/rpc", "", 404, "404"},
		{"DELETE root", http.MethodDelete, "/", "", 404, "404"},
		{"GET root", http.MethodGet, "/", "", 404, "404"},
		{"webhook of a workflow without one", http.MethodPost, "/webhooks/echo?x=1", `{}`, 404, "webhook"},
		{"GET webhook", http.MethodGet, "/webhooks/echo", "", 404, "404"},
		{"HEAD webhook", http.MethodHead, "/webhooks/echo", "", 404, "404"},
		{"empty webhook key", http.MethodPost, "/webhooks/", `{}`, 404, "404"},
		{"extra webhook segment", http.MethodPost, "/webhooks/echo/x", `{}`, 404, "404"},
		{"encoded slash is one segment", http.MethodPost, "/v1/rpc/a%2Fb", `{}`, 400, "rpc"},
		{"encoded method name", http.MethodPost, "/v1/rpc/%68ealth", `{}`, 200, "rpc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+g.token(tokAll))
			rec := httptest.NewRecorder()
			g.h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			checkCommonHeaders(t, tc.name, rec.Header())
			body := rec.Body.String()
			switch tc.want {
			case "404":
				if tc.method != http.MethodHead && body != routeNotFound {
					t.Fatalf("body %s, want %s", body, routeNotFound)
				}
			case "health":
				if !regexp.MustCompile(`^\{"features":\["streaming","runs"\],"ok":true,"protocol":1,"stateVersion":\d+\}$`).MatchString(body) {
					t.Fatalf("health body %s", body)
				}
			case "rpc":
				if !strings.Contains(body, `"type":"res"`) || !strings.Contains(body, `"apiVersion":"v1"`) {
					t.Fatalf("not an RPC frame: %s", body)
				}
			case "webhook":
				if want := `{"error":{"code":"NOT_FOUND","message":"Webhook not configured for workflow: echo"},"ok":false}`; body != want {
					t.Fatalf("body %s, want %s", body, want)
				}
			}
		})
	}
}

func TestHealthNeedsNoAuth(t *testing.T) {
	g := newTestGateway(t)
	res := g.serve(httptest.NewRequest(http.MethodGet, "/health", nil))
	if res.status != 200 || res.body["ok"] != true {
		t.Fatalf("health: %d %s", res.status, res.raw)
	}
	// The health RPC method needs run:read.
	wantError(t, g.post("/v1/rpc/health", "", `{}`), 401, "UNAUTHORIZED")
	wantError(t, g.post("/v1/rpc/health", tokCronRead, `{}`), 403, "FORBIDDEN")
}

func TestEnvelopeAndBareParams(t *testing.T) {
	g := newTestGateway(t)
	runID := g.launch("echo", map[string]any{"n": 1})
	tests := []struct {
		name, target, body string
		status             int
		code               string // "" for success
		message            string
	}{
		{"v1 bare params", "/v1/rpc/getRun", `{"runId":"` + runID + `"}`, 200, "", ""},
		{"v1 envelope", "/v1/rpc/getRun", `{"method":"getRun","params":{"runId":"` + runID + `"}}`, 200, "", ""},
		{"v1 envelope method ignored", "/v1/rpc/getRun", `{"method":"cronDelete","params":{"runId":"` + runID + `"}}`, 200, "", ""},
		{"v1 envelope method of any type", "/v1/rpc/getRun", `{"method":5,"params":{"runId":"` + runID + `"}}`, 200, "", ""},
		{"v1 envelope without params", "/v1/rpc/getRun", `{"method":"getRun","runId":"` + runID + `"}`, 400, "INVALID_REQUEST", "runId is required"},
		{"v1 empty body is {}", "/v1/rpc/getRun", ``, 400, "INVALID_REQUEST", "runId is required"},
		{"legacy envelope", "/rpc", `{"type":"req","method":"getRun","params":{"runId":"` + runID + `"}}`, 200, "", ""},
		{"legacy params not an object", "/rpc", `{"method":"getRun","params":[1,2]}`, 400, "INVALID_REQUEST", "runId is required"},
		{"legacy without method", "/rpc", `{}`, 400, "INVALID_INPUT", "Gateway method name must be a string."},
		{"legacy empty body", "/rpc", ``, 400, "INVALID_INPUT", "Gateway method name must be a string."},
		{"legacy method not a string", "/rpc", `{"method":1}`, 400, "INVALID_INPUT", "Gateway method name must be a string."},
		{"method 65 chars", "/rpc", `{"method":"` + strings.Repeat("a", 65) + `"}`, 400, "INVALID_INPUT", "method exceeds the maximum length of 64 characters."},
		{"method 64 chars", "/rpc", `{"method":"` + strings.Repeat("a", 64) + `"}`, 404, "METHOD_NOT_FOUND", "Unknown method: " + strings.Repeat("a", 64)},
		{"v1 method 65 chars", "/v1/rpc/" + strings.Repeat("a", 65), `{}`, 400, "INVALID_INPUT", "method exceeds the maximum length of 64 characters."},
		{"method 40 astral chars", "/rpc", `{"method":"` + strings.Repeat("😀", 40) + `"}`, 400, "INVALID_INPUT", "method exceeds the maximum length of 64 characters."},
		{"method upper-case start", "/rpc", `{"method":"GetRun"}`, 400, "INVALID_INPUT", "Gateway method name is invalid."},
		{"method empty segment", "/rpc", `{"method":"runs..get"}`, 400, "INVALID_INPUT", "Gateway method name is invalid."},
		{"method trailing dot", "/rpc", `{"method":"runs."}`, 400, "INVALID_INPUT", "Gateway method name is invalid."},
		{"method with dash", "/v1/rpc/get-run", `{}`, 400, "INVALID_INPUT", "Gateway method name is invalid."},
		{"dotted alias", "/rpc", `{"method":"runs.get","params":{"runId":"` + runID + `"}}`, 200, "", ""},
		{"body not JSON", "/v1/rpc/health", `{`, 400, "INVALID_INPUT", "Gateway RPC payload must be valid JSON."},
		{"trailing garbage", "/v1/rpc/health", `{}}`, 400, "INVALID_INPUT", "Gateway RPC payload must be valid JSON."},
		{"two values", "/v1/rpc/health", `{} {}`, 400, "INVALID_INPUT", "Gateway RPC payload must be valid JSON."},
		{"array body", "/v1/rpc/health", `[]`, 400, "INVALID_REQUEST", "RPC body must be a JSON object"},
		{"string body", "/v1/rpc/health", `"x"`, 400, "INVALID_REQUEST", "RPC body must be a JSON object"},
		{"number body", "/rpc", `1`, 400, "INVALID_REQUEST", "RPC body must be a JSON object"},
		{"null body", "/rpc", `null`, 400, "INVALID_REQUEST", "RPC body must be a JSON object"},
		{"connect over HTTP", "/v1/rpc/connect", `{}`, 404, "METHOD_NOT_FOUND", "Unknown method: connect"},
		{"unknown method", "/v1/rpc/mysteryMethod", `{}`, 404, "METHOD_NOT_FOUND", "Unknown method: mysteryMethod"},
		{"config method", "/v1/rpc/config.get", `{}`, 404, "METHOD_NOT_FOUND", "Unknown method: config.get"},
		{"streamRunEvents over HTTP", "/v1/rpc/streamRunEvents", `{"runId":"` + runID + `"}`, 400, "INVALID_REQUEST", "streamRunEvents is only supported over websocket connections"},
		{"streamDevTools over HTTP", "/v1/rpc/streamDevTools", `{"runId":"` + runID + `"}`, 400, "INVALID_REQUEST", "streamDevTools is only supported over websocket connections"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := g.post(tc.target, tokAll, tc.body)
			checkCommonHeaders(t, tc.name, res.header)
			if tc.code == "" {
				if res.status != 200 || res.body["ok"] != true || res.body["payload"].(map[string]any)["runId"] != runID {
					t.Fatalf("%d %s", res.status, res.raw)
				}
				return
			}
			e := wantError(t, res, tc.status, tc.code)
			if e["message"] != tc.message {
				t.Fatalf("message %q, want %q", e["message"], tc.message)
			}
		})
	}
}

func TestFrameShapes(t *testing.T) {
	g := newTestGateway(t)
	res := g.post("/v1/rpc/health", tokAll, `{"id":"abc"}`)
	if res.status != 200 {
		t.Fatalf("%d %s", res.status, res.raw)
	}
	if len(res.body) != 5 || res.body["type"] != "res" || res.body["id"] != "abc" || res.body["ok"] != true || res.body["apiVersion"] != "v1" {
		t.Fatalf("success frame %s", res.raw)
	}
	p := res.body["payload"].(map[string]any)
	if p["protocol"] != float64(1) || p["uptimeMs"] == nil || p["stateVersion"] == nil {
		t.Fatalf("health payload %s", res.raw)
	}
	// Error frames: {type, id, ok:false, apiVersion, error:{version, code, message, ...extras}}.
	res = g.post("/v1/rpc/launchRun", tokRead, `{"id":"abc","workflow":"echo"}`)
	e := wantError(t, res, 403, "FORBIDDEN")
	if len(res.body) != 5 || res.body["id"] != "abc" {
		t.Fatalf("error frame %s", res.raw)
	}
	jsonEqual(t, e, `{"version":"v1","code":"FORBIDDEN","message":"Missing required scope: run:write","requiredScope":"run:write"}`)
}

func TestResponseID(t *testing.T) {
	g := newTestGateway(t)
	const rid = "req-123"
	tests := []struct {
		name, target, token, body string
		headers                   []string
		status                    int
		wantID                    string // "uuid" for a generated one
	}{
		{"body id wins", "/v1/rpc/health", tokAll, `{"id":"mine"}`, []string{"X-Request-Id", rid}, 200, "mine"},
		{"X-Request-Id without body id", "/v1/rpc/health", tokAll, `{}`, []string{"X-Request-Id", rid}, 200, rid},
		{"generated without either", "/v1/rpc/health", tokAll, `{}`, nil, 200, "uuid"},
		{"non-string id ignored", "/v1/rpc/health", tokAll, `{"id":5}`, []string{"X-Request-Id", rid}, 200, rid},
		{"legacy envelope id", "/rpc", tokAll, `{"id":"env","method":"health"}`, []string{"X-Request-Id", rid}, 200, "env"},
		{"id of 128 chars", "/v1/rpc/health", tokAll, `{"id":"` + strings.Repeat("i", 128) + `"}`, nil, 200, strings.Repeat("i", 128)},
		{"id of 64 astral chars (128 units)", "/v1/rpc/health", tokAll, `{"id":"` + strings.Repeat("😀", 64) + `"}`, nil, 200, strings.Repeat("😀", 64)},
		{"id of 129 chars", "/v1/rpc/health", tokAll, `{"id":"` + strings.Repeat("i", 129) + `"}`, []string{"X-Request-Id", rid}, 400, rid},
		{"id of 65 astral chars (130 units)", "/v1/rpc/health", tokAll, `{"id":"` + strings.Repeat("😀", 65) + `"}`, []string{"X-Request-Id", rid}, 400, rid},
		{"returned error echoes body id", "/v1/rpc/getRun", tokAll, `{"id":"mine","runId":"nope"}`, []string{"X-Request-Id", rid}, 404, "mine"},
		{"scope failure echoes body id", "/v1/rpc/launchRun", tokRead, `{"id":"mine"}`, []string{"X-Request-Id", rid}, 403, "mine"},
		{"thrown positive-int error echoes request id", "/v1/rpc/listRuns", tokAll, `{"id":"mine","limit":0}`, []string{"X-Request-Id", rid}, 400, rid},
		{"thrown cron pattern error echoes request id", "/v1/rpc/cronCreate", tokAll, `{"id":"mine","workflow":"echo","pattern":"nope"}`, []string{"X-Request-Id", rid}, 400, rid},
		{"thrown unknown cron workflow echoes request id", "/v1/rpc/cronRun", tokAll, `{"id":"mine","workflow":"nope"}`, []string{"X-Request-Id", rid}, 404, rid},
		{"auth failure echoes request id", "/v1/rpc/health", "", `{"id":"mine"}`, []string{"X-Request-Id", rid}, 401, rid},
		{"bad JSON echoes request id", "/v1/rpc/health", tokAll, `{"id":"mine",`, []string{"X-Request-Id", rid}, 400, rid},
		{"bounds failure echoes request id", "/v1/rpc/health", tokAll, `{"id":"mine","a":[` + strings.Repeat("0,", 256) + `0]}`, []string{"X-Request-Id", rid}, 400, rid},
		{"bad method echoes request id", "/rpc", tokAll, `{"id":"mine","method":"Bad"}`, []string{"X-Request-Id", rid}, 400, rid},
		{"auth failure without X-Request-Id", "/v1/rpc/health", "", `{}`, nil, 401, "uuid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := g.post(tc.target, tc.token, tc.body, tc.headers...)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.status, tc.status, res.raw)
			}
			id, _ := res.body["id"].(string)
			if tc.wantID == "uuid" {
				if !uuidPattern.MatchString(id) {
					t.Fatalf("id %q is not a UUID", id)
				}
				return
			}
			if id != tc.wantID {
				t.Fatalf("id %q, want %q", id, tc.wantID)
			}
		})
	}
}

// TestMethodTableCoversRegistry: every canonical v1 method, legacy alias,
// utility and legacy-only method has an entry, and a registry scope.
func TestMethodTableCoversRegistry(t *testing.T) {
	names := []string{
		"launchRun", "runs.create", "resumeRun", "cancelRun", "runs.cancel", "hijackRun", "rewindRun", "jumpToFrame",
		"devtools.jumpToFrame", "submitApproval", "approvals.decide", "submitSignal", "signals.send", "getRun", "runs.get",
		"listRuns", "runs.list", "listWorkflows", "workflows.list", "listApprovals", "approvals.list", "streamRunEvents",
		"streamDevTools", "getNodeOutput", "devtools.getNodeOutput", "getNodeDiff", "devtools.getNodeDiff", "cronList",
		"cron.list", "cronCreate", "cron.add", "cronDelete", "cron.remove", "cronRun", "cron.trigger",
		"health", "runs.rerun", "runs.diff", "frames.list", "frames.get", "attempts.list", "attempts.get", "getDevToolsSnapshot",
	}
	table := methodTable()
	for _, n := range names {
		m, ok := table[n]
		if !ok {
			t.Errorf("method %s missing from the table", n)
			continue
		}
		if _, ok := auth.MethodScope(n); !ok {
			t.Errorf("method %s has no registry scope", n)
		}
		if m.handler == nil && n != "streamRunEvents" {
			t.Errorf("method %s has no handler", n)
		}
	}
	if len(table) != len(names) {
		t.Errorf("table has %d methods, want %d", len(table), len(names))
	}
}
