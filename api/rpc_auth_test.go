package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAuthFailures(t *testing.T) {
	g := newTestGateway(t)
	tests := []struct {
		name    string
		headers map[string]string
		code    string
		message string
	}{
		{"no token", nil, "UNAUTHORIZED", "A bearer token is required"},
		{"empty bearer", map[string]string{"Authorization": "Bearer "}, "UNAUTHORIZED", "A bearer token is required"},
		{"wrong token", map[string]string{"Authorization": "Bearer smithers_nope"}, "UNAUTHORIZED", "Invalid token"},
		{"prototype name", map[string]string{"Authorization": "Bearer __proto__"}, "UNAUTHORIZED", "Invalid token"},
		{"x-smithers-key wins over Authorization", map[string]string{"x-smithers-key": "smithers_nope", "Authorization": "Bearer " + g.token(tokAll)}, "UNAUTHORIZED", "Invalid token"},
		{"double space keeps a leading space", map[string]string{"Authorization": "Bearer  " + g.token(tokAll)}, "UNAUTHORIZED", "Invalid token"},
		{"valid via x-smithers-key", map[string]string{"x-smithers-key": g.token(tokAll)}, "", ""},
		{"valid with lower-case bearer", map[string]string{"Authorization": "bearer " + g.token(tokAll)}, "", ""},
		{"valid as a whole header value", map[string]string{"Authorization": g.token(tokAll)}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/v1/rpc/health", strings.NewReader(`{"id":"mine"}`))
			req.Header.Set("X-Request-Id", "rid")
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			res := g.serve(req)
			checkCommonHeaders(t, tc.name, res.header)
			if tc.code == "" {
				if res.status != 200 {
					t.Fatalf("%d %s", res.status, res.raw)
				}
				return
			}
			e := wantError(t, res, 401, tc.code)
			if e["message"] != tc.message || res.body["id"] != "rid" {
				t.Fatalf("frame %s", res.raw)
			}
		})
	}
}

func TestScopeGate(t *testing.T) {
	g := newTestGateway(t)
	runID := g.launch("echo", nil)
	tests := []struct {
		name, token, method, body string
		status                    int
		code, requiredScope       string
	}{
		{"run:read cannot launch", tokRead, "launchRun", `{"workflow":"echo"}`, 403, "FORBIDDEN", "run:write"},
		{"gate before validation", tokRead, "launchRun", `{}`, 403, "FORBIDDEN", "run:write"},
		{"gate before validation of a legacy alias", tokRead, "runs.create", `{"workflow":5}`, 403, "FORBIDDEN", "run:write"},
		{"run:read cannot hijack", tokRead, "hijackRun", `{}`, 403, "FORBIDDEN", "run:admin"},
		{"run:read cannot approve", tokRead, "submitApproval", `{}`, 403, "FORBIDDEN", "approval:submit"},
		{"run:read cannot signal", tokRead, "signals.send", `{}`, 403, "FORBIDDEN", "signal:submit"},
		{"run:read cannot list crons", tokRead, "cronList", `{}`, 403, "FORBIDDEN", "cron:read"},
		{"cron:read cannot create crons", tokCronRead, "cron.add", `{}`, 403, "FORBIDDEN", "cron:write"},
		{"run:read cannot snapshot", tokRead, "getDevToolsSnapshot", `{}`, 403, "FORBIDDEN", "observability:read"},
		{"run:read cannot stream devtools", tokRead, "streamDevTools", `{}`, 403, "FORBIDDEN", "observability:read"},
		{"run:read cannot rerun", tokRead, "runs.rerun", `{}`, 403, "FORBIDDEN", "run:write"},
		{"unknown method needs run:read", tokCronRead, "mysteryMethod", `{}`, 403, "FORBIDDEN", "run:read"},
		{"unknown method with run:read", tokRead, "mysteryMethod", `{}`, 404, "METHOD_NOT_FOUND", ""},
		{"config methods need run:admin", tokRead, "config.get", `{}`, 403, "FORBIDDEN", "run:admin"},
		{"approve needs approval:submit", tokRead, "approve", `{}`, 403, "FORBIDDEN", "approval:submit"},
		{"approve is no method", tokAll, "approve", `{}`, 404, "METHOD_NOT_FOUND", ""},
		{"connect needs no scope but is WS only", tokCronRead, "connect", `{}`, 404, "METHOD_NOT_FOUND", ""},
		{"run:read may read", tokRead, "getRun", `{"runId":"` + runID + `"}`, 200, "", ""},
		{"run:read may read through the alias", tokRead, "runs.get", `{"runId":"` + runID + `"}`, 200, "", ""},
		{"cron:read may list crons", tokCronRead, "cron.list", `{}`, 200, "", ""},
		{"observability:read passes the snapshot gate", tokObs, "getDevToolsSnapshot", `{}`, 400, "InvalidRunId", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := g.post("/v1/rpc/"+tc.method, tc.token, tc.body)
			if tc.code == "" {
				if res.status != 200 {
					t.Fatalf("%d %s", res.status, res.raw)
				}
				return
			}
			e := wantError(t, res, tc.status, tc.code)
			if tc.requiredScope != "" {
				if e["requiredScope"] != tc.requiredScope || e["message"] != "Missing required scope: "+tc.requiredScope {
					t.Fatalf("error %s", res.raw)
				}
			} else if _, has := e["requiredScope"]; has {
				t.Fatalf("unexpected requiredScope: %s", res.raw)
			}
		})
	}
}
