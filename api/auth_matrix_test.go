package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/api/auth"
)

// serverWith is a second router on g's engine with another authenticator.
func (g *testGateway) serverWith(a auth.Authenticator) http.Handler {
	return NewServer(Config{Gateway: g.gw, Reads: g.srv.reads, Auth: a, Logger: testLogger()}).Handler()
}

func callWith(h http.Handler, method, body string, headers map[string]string) response {
	req := httptest.NewRequest(http.MethodPost, "/v1/rpc/"+method, strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := response{status: rec.Code, header: rec.Header(), raw: rec.Body.Bytes()}
	_ = json.Unmarshal(res.raw, &res.body)
	return res
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

// TestAuthMatrixTokenMode covers token mode end to end over HTTP: expiry,
// revocation while the gateway runs, scope grants by type, method name and
// wildcard prefix.
func TestAuthMatrixTokenMode(t *testing.T) {
	g := newTestGateway(t)
	runID := g.launch("echo", nil)
	path := filepath.Join(t.TempDir(), "tokens.json")
	issue := func(ttl time.Duration, scopes ...string) string {
		res, err := auth.Issue(path, auth.IssueOptions{Scopes: scopes, TTL: ttl, Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return res.Token
	}
	full := issue(time.Hour, "*")
	short := issue(time.Millisecond, "*")
	methodGrant := issue(time.Hour, "getRun")
	wildcard := issue(time.Hour, "runs.*")
	ts := auth.OpenTokenStore(path, auth.TokenStoreOptions{Logger: testLogger(), PollInterval: 20 * time.Millisecond})
	defer ts.Close()
	h := g.serverWith(ts)
	get := `{"runId":"` + runID + `"}`

	for _, tc := range []struct {
		name, tok, method, body string
		status                  int
		message, requiredScope  string
		refresh                 bool
	}{
		{"no token", "", "getRun", get, 401, "A bearer token is required", "", false},
		{"wrong token", "smithers_wrong", "getRun", get, 401, "Invalid token", "", false},
		{"expired", short, "getRun", get, 401, "Token expired; issue a refreshed token.", "", true},
		{"full scope", full, "launchRun", `{"workflow":"echo"}`, 200, "", "", false},
		{"method grant allows that method", methodGrant, "getRun", get, 200, "", "", false},
		{"method grant allows nothing else", methodGrant, "listRuns", `{}`, 403, "", "run:read", false},
		{"method grant never escalates", methodGrant, "runs.get", get, 403, "", "run:read", false},
		{"wildcard grant covers its prefix", wildcard, "runs.get", get, 200, "", "", false},
		{"wildcard grant covers writes of its prefix", wildcard, "runs.create", `{"workflow":"echo"}`, 200, "", "", false},
		{"wildcard grant skips camelCase names", wildcard, "getRun", get, 403, "", "run:read", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.tok != "" {
				hdr = bearer(tc.tok)
			}
			res := callWith(h, tc.method, tc.body, hdr)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.status, tc.status, res.raw)
			}
			if tc.status == 200 {
				return
			}
			e := res.body["error"].(map[string]any)
			if tc.message != "" && e["message"] != tc.message {
				t.Fatalf("message %q, want %q", e["message"], tc.message)
			}
			if tc.requiredScope != "" && (e["code"] != "FORBIDDEN" || e["requiredScope"] != tc.requiredScope) {
				t.Fatalf("error %v, want FORBIDDEN requiredScope %s", e, tc.requiredScope)
			}
			if (e["refresh"] == "smithers token issue") != tc.refresh {
				t.Fatalf("refresh hint %v, want %v", e["refresh"], tc.refresh)
			}
		})
	}

	t.Run("revoked while the gateway runs", func(t *testing.T) {
		if res := callWith(h, "getRun", get, bearer(full)); res.status != 200 {
			t.Fatalf("before revocation: %d %s", res.status, res.raw)
		}
		if _, err := auth.Revoke(path, full, time.Now()); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Second)
		for {
			res := callWith(h, "getRun", get, bearer(full))
			if res.status == 401 {
				e := res.body["error"].(map[string]any)
				if e["message"] != "Token has been revoked" || e["refresh"] != "smithers token issue" {
					t.Fatalf("revoked: %s", res.raw)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("a revoked token still works after 1 s")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func signHS256(t *testing.T, secret string, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	head := enc(map[string]any{"alg": "HS256", "typ": "JWT"}) + "." + enc(claims)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(head))
	return head + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func TestAuthMatrixJWT(t *testing.T) {
	g := newTestGateway(t)
	runID := g.launch("echo", nil)
	a, err := auth.NewJWT(auth.JWTConfig{Secret: "s3cret", Issuer: "idp", Audience: []string{"smithers"}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	h := g.serverWith(a)
	now := time.Now().Unix()
	claims := func(extra map[string]any) map[string]any {
		c := map[string]any{"iss": "idp", "aud": "smithers", "sub": "user:1", "exp": now + 600, "scope": "run:read run:write"}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	get := `{"runId":"` + runID + `"}`
	for _, tc := range []struct {
		name, token, method, body string
		status                    int
		message                   string
	}{
		{"good token", signHS256(t, "s3cret", claims(nil)), "launchRun", `{"workflow":"echo"}`, 200, ""},
		{"bad signature", signHS256(t, "other", claims(nil)), "getRun", get, 401, "JWT signature verification failed"},
		{"expired", signHS256(t, "s3cret", claims(map[string]any{"exp": now - 3600})), "getRun", get, 401, "JWT has expired"},
		{"wrong issuer", signHS256(t, "s3cret", claims(map[string]any{"iss": "evil"})), "getRun", get, 401, "JWT issuer did not match"},
		{"not a JWT", "abc", "getRun", get, 401, "JWT must have three segments"},
		{"scopes from the claim", signHS256(t, "s3cret", claims(map[string]any{"scope": "run:read"})), "launchRun", `{"workflow":"echo"}`, 403, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := callWith(h, tc.method, tc.body, bearer(tc.token))
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.status, tc.status, res.raw)
			}
			if tc.message != "" {
				if e := res.body["error"].(map[string]any); e["message"] != tc.message {
					t.Fatalf("message %q, want %q", e["message"], tc.message)
				}
			}
		})
	}
}

func TestAuthMatrixTrustedProxy(t *testing.T) {
	g := newTestGateway(t)
	runID := g.launch("echo", nil)
	h := g.serverWith(auth.NewTrustedProxy(auth.TrustedProxyConfig{DefaultScopes: []string{"run:read"}}))
	get := `{"runId":"` + runID + `"}`
	// Scopes from the header.
	res := callWith(h, "launchRun", `{"workflow":"echo"}`, map[string]string{"x-user-id": "u1", "x-user-scopes": "run:write"})
	if res.status != 200 {
		t.Fatalf("header scopes: %d %s", res.status, res.raw)
	}
	// A missing scopes header grants the default scopes, never "*".
	if res := callWith(h, "getRun", get, map[string]string{"x-user-id": "u1"}); res.status != 200 {
		t.Fatalf("default scopes read: %d %s", res.status, res.raw)
	}
	res = callWith(h, "launchRun", `{"workflow":"echo"}`, map[string]string{"x-user-id": "u1"})
	if res.status != 403 || res.body["error"].(map[string]any)["requiredScope"] != "run:write" {
		t.Fatalf("default scopes write: %d %s", res.status, res.raw)
	}
	// The recorded run owner is the header's user.
	runs := g.ok("getRun", map[string]any{"runId": launchedID(t, callWith(h, "launchRun", `{"workflow":"echo"}`, map[string]string{"x-user-id": "carol", "x-user-scopes": "*"}))}).(map[string]any)
	if !strings.Contains(runs["configJson"].(string), `"triggeredBy":"carol"`) {
		t.Fatalf("configJson %v", runs["configJson"])
	}
}

func launchedID(t *testing.T, res response) string {
	t.Helper()
	if res.status != 200 {
		t.Fatalf("launch: %d %s", res.status, res.raw)
	}
	return res.body["payload"].(map[string]any)["runId"].(string)
}
