package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tokenEffectTimeout is how soon a token store change must take effect
// (docs/configuration.md: within a second; a little slack for a loaded machine).
const tokenEffectTimeout = 1500 * time.Millisecond

// assertUnauthorized calls listWorkflows with token and fails unless the
// gateway answers 401 UNAUTHORIZED with message (any message if empty).
func assertUnauthorized(t *testing.T, g *Gateway, token, message string) {
	t.Helper()
	status, f := postRPC(t, g.URL, token, "listWorkflows", map[string]any{})
	if status != http.StatusUnauthorized || f.OK || f.Error == nil || f.Error.Code != "UNAUTHORIZED" {
		t.Fatalf("token %q: HTTP %d, error %+v; want 401 UNAUTHORIZED", token, status, f.Error)
	}
	if message != "" && f.Error.Message != message {
		t.Fatalf("token %q: message %q, want %q", token, f.Error.Message, message)
	}
}

// authorized reports whether listWorkflows succeeds with token.
func authorized(t *testing.T, g *Gateway, token string) bool {
	t.Helper()
	status, f := postRPC(t, g.URL, token, "listWorkflows", map[string]any{})
	return status == http.StatusOK && f.OK
}

// TestAuthTokens checks token mode over HTTP: missing and wrong tokens are
// refused, and tokens issued or revoked with the CLI while the gateway runs
// take effect within about a second.
func TestAuthTokens(t *testing.T) {
	t.Parallel()
	g := startGateway(t, exampleModule("quickstart"))

	assertUnauthorized(t, g, "", "A bearer token is required")
	assertUnauthorized(t, g, "smithers_not-a-real-token", "Invalid token")
	if !authorized(t, g, g.Token) {
		t.Fatalf("the token issued before start is refused")
	}

	fresh := issueToken(t, g.Store)
	start := time.Now()
	eventually(t, tokenEffectTimeout, "a token issued while the gateway runs to be accepted", func() bool {
		return authorized(t, g, fresh)
	})
	t.Logf("issued token accepted after %v", time.Since(start).Round(time.Millisecond))

	revokeToken(t, g.Store, fresh)
	start = time.Now()
	eventually(t, tokenEffectTimeout, "a revoked token to be refused", func() bool {
		return !authorized(t, g, fresh)
	})
	t.Logf("revoked token refused after %v", time.Since(start).Round(time.Millisecond))
	assertUnauthorized(t, g, fresh, "Token has been revoked")
	if !authorized(t, g, g.Token) {
		t.Errorf("revoking one token also locked out another")
	}
}

// TestAuthMissingTokenStore: without a token store file every request is
// refused (fail closed) and the log says why; issuing a token creates the
// file and the gateway recovers without a restart.
func TestAuthMissingTokenStore(t *testing.T) {
	t.Parallel()
	g := startGatewayWith(t, gatewayConfig{module: exampleModule("quickstart"), noToken: true})

	assertUnauthorized(t, g, "", "")
	assertUnauthorized(t, g, "smithers_anything", "")
	if !logSoon(g, "ERROR", g.Store, "token store") {
		t.Errorf("no ERROR log line says that the token store %s is unavailable", g.Store)
	}

	tok := issueToken(t, g.Store)
	eventually(t, tokenEffectTimeout, "the gateway to accept a token once the store exists", func() bool {
		return authorized(t, g, tok)
	})
}

// TestAuthJWT runs the gateway in JWT mode (HS256): a token with the
// configured issuer, audience and a scope claim is served; one for another
// audience, an expired one, and one without a scope claim (no scopes, so
// no method) are refused. Without an issuer and audience the gateway does
// not start: it would accept any token its identity provider signed.
func TestAuthJWT(t *testing.T) {
	t.Parallel()
	const secret = "e2e-jwt-secret"
	jwtEnv := []string{"SMITHERS_GATEWAY_AUTH_MODE=jwt", "SMITHERS_GATEWAY_JWT_SECRET=" + secret}

	t.Run("issuer and audience are required", func(t *testing.T) {
		t.Parallel()
		data := t.TempDir()
		env := append(baseEnv(data), "PORT=0", "HOST=127.0.0.1", "SMITHERS_GATEWAY_MODULE="+exampleModule("quickstart"),
			"SMITHERS_DB_PATH="+filepath.Join(data, "smithers.db"))
		env = append(env, jwtEnv...)
		code, stdout, stderr := runToExit(t, data, env, "gateway")
		if code == 0 || strings.Contains(stdout, "listening on") {
			t.Fatalf("the gateway started in JWT mode without issuer and audience (exit %d)\n%s", code, stdout)
		}
		if !strings.Contains(stderr, "SMITHERS_GATEWAY_JWT_ISSUER") || !strings.Contains(stderr, "SMITHERS_GATEWAY_JWT_AUDIENCE") {
			t.Fatalf("stderr does not name the missing settings:\n%s", stderr)
		}
	})

	t.Run("tokens", func(t *testing.T) {
		t.Parallel()
		g := startGatewayWith(t, gatewayConfig{module: exampleModule("quickstart"), noToken: true,
			env: append(jwtEnv, "SMITHERS_GATEWAY_JWT_ISSUER=https://idp.example", "SMITHERS_GATEWAY_JWT_AUDIENCE=smithers")})
		sign := func(claims jwt.MapClaims) string {
			s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		exp := time.Now().Add(time.Hour).Unix()
		good := sign(jwt.MapClaims{"iss": "https://idp.example", "aud": "smithers", "exp": exp, "sub": "alice", "scope": "run:read"})
		if !authorized(t, g, good) {
			t.Fatal("a valid JWT with scope run:read cannot list workflows")
		}
		assertUnauthorized(t, g, sign(jwt.MapClaims{"iss": "https://idp.example", "aud": "another-app", "exp": exp, "scope": "run:read"}),
			"JWT audience did not match")
		assertUnauthorized(t, g, sign(jwt.MapClaims{"iss": "https://idp.example", "aud": "smithers", "exp": time.Now().Add(-time.Hour).Unix(), "scope": "run:read"}),
			"JWT has expired")
		noScopes := sign(jwt.MapClaims{"iss": "https://idp.example", "aud": "smithers", "exp": exp, "sub": "bob"})
		status, f := postRPC(t, g.URL, noScopes, "listWorkflows", map[string]any{})
		if status != http.StatusForbidden || f.Error == nil || f.Error.Code != "FORBIDDEN" {
			t.Fatalf("a JWT without a scope claim: HTTP %d, error %+v; want 403 FORBIDDEN", status, f.Error)
		}
	})
}

// TestAuthTrustedProxy runs the gateway behind a trusted proxy: the
// identity comes from the proxy's headers, a missing scopes header grants
// the configured default scopes (not everything), and with allowed origins
// set a request from another origin is refused.
func TestAuthTrustedProxy(t *testing.T) {
	t.Parallel()
	g := startGatewayWith(t, gatewayConfig{module: exampleModule("quickstart"), noToken: true,
		env: []string{"SMITHERS_GATEWAY_AUTH_MODE=trusted-proxy", "SMITHERS_GATEWAY_ALLOWED_ORIGINS=https://ui.example"}})
	call := func(method string, headers map[string]string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, g.URL+"/v1/rpc/"+method, strings.NewReader(`{"workflow":"quickstart","input":{}}`))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var f frame
		if err := json.NewDecoder(resp.Body).Decode(&f); err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		if f.Error != nil {
			return resp.StatusCode, f.Error.Code + " " + f.Error.Message
		}
		return resp.StatusCode, ""
	}
	ui := "https://ui.example"
	if status, e := call("launchRun", map[string]string{"Origin": ui, "X-User-Id": "alice", "X-User-Scopes": "run:write"}); status != http.StatusOK {
		t.Fatalf("launchRun with run:write from the proxy: %d %s", status, e)
	}
	if status, e := call("listWorkflows", map[string]string{"Origin": ui, "X-User-Id": "bob"}); status != http.StatusOK {
		t.Fatalf("listWorkflows with the default scopes: %d %s", status, e)
	}
	if status, e := call("launchRun", map[string]string{"Origin": ui, "X-User-Id": "bob"}); status != http.StatusForbidden || !strings.HasPrefix(e, "FORBIDDEN") {
		t.Fatalf("launchRun without a scopes header: %d %s, want 403 FORBIDDEN (default scopes run:read)", status, e)
	}
	for _, origin := range []string{"https://evil.example", ""} {
		status, e := call("listWorkflows", map[string]string{"Origin": origin, "X-User-Scopes": "*"})
		if status != http.StatusUnauthorized || e != "UNAUTHORIZED Origin is not allowed" {
			t.Fatalf("origin %q: %d %s, want 401 Origin is not allowed", origin, status, e)
		}
	}
}

// TestTokenIssueConcurrentProcesses: several `smithers token issue`
// processes writing one store at the same time lose nothing: the store
// ends up with every token, each of which the gateway accepts.
func TestTokenIssueConcurrentProcesses(t *testing.T) {
	t.Parallel()
	g := startGatewayWith(t, gatewayConfig{module: exampleModule("quickstart")})
	const n = 12
	tokens := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Not runToExit: it may t.Fatal, which is for the test's
			// own goroutine.
			dir := filepath.Dir(g.Store)
			p, err := spawn(dir, baseEnv(dir), "token", "issue", "--scopes", "run:read", "--store", g.Store)
			if err != nil {
				t.Errorf("start token issue: %v", err)
				return
			}
			select {
			case <-p.done:
			case <-time.After(exitTimeout):
				p.kill()
				t.Errorf("token issue did not exit within %v", exitTimeout)
				return
			}
			if code := p.exitCode(); code != 0 {
				t.Errorf("token issue exited %d: %s", code, p.stderr.String())
				return
			}
			tok, _, _ := strings.Cut(p.stdout.String(), "\n")
			tokens <- strings.TrimSpace(tok)
		}()
	}
	wg.Wait()
	close(tokens)
	var issued []string
	for tok := range tokens {
		issued = append(issued, tok)
	}
	if len(issued) != n {
		t.Fatalf("%d of %d issues succeeded", len(issued), n)
	}
	var store struct {
		Tokens map[string]json.RawMessage `json:"tokens"`
	}
	raw, err := os.ReadFile(g.Store)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &store); err != nil {
		t.Fatalf("the store is not valid JSON after concurrent issues: %v", err)
	}
	if len(store.Tokens) != n+1 { // and the one issued before start
		t.Fatalf("the store holds %d tokens, want %d", len(store.Tokens), n+1)
	}
	for _, tok := range issued {
		if _, ok := store.Tokens[tok]; !ok {
			t.Fatalf("an issued token is missing from the store")
		}
		eventually(t, tokenEffectTimeout, "an issued token to be accepted", func() bool { return authorized(t, g, tok) })
	}
}
