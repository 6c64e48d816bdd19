package api

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/smithers-orchestrator/smithers-go/api/auth"
)

// TestTrustedProxyRefusesCrossSiteRequests: behind a trusted proxy the
// browser's session authenticates any request it sends, so a request that
// may change state is refused with 403 FORBIDDEN when another site could
// have made the browser send it: an Origin other than the gateway's own or
// an allowed one, or a form or text body. Non-browser clients (no Origin,
// JSON) and the gateway's own pages still work; bearer-token modes are not
// affected.
func TestTrustedProxyRefusesCrossSiteRequests(t *testing.T) {
	g := newTestGateway(t)
	h := g.serverWith(auth.NewTrustedProxy(auth.TrustedProxyConfig{}))
	ui := g.serverWith(auth.NewTrustedProxy(auth.TrustedProxyConfig{AllowedOrigins: []string{"https://ui.example"}}))
	const launch = `{"workflow":"echo","input":{}}`
	user := func(kv ...string) map[string]string {
		m := map[string]string{"x-user-id": "u1", "x-user-scopes": "run:write run:read"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	runs := func() int { return len(g.ok("listRuns", map[string]any{"limit": 1000}).([]any)) }

	for _, tt := range []struct {
		name    string
		h       http.Handler
		headers map[string]string
		status  int
		message string // in the error message
	}{
		{"no Origin, JSON", h, user("Content-Type", "application/json"), 200, ""},
		{"no Origin, no Content-Type", h, user(), 200, ""},
		{"the gateway's own origin", h, user("Origin", "http://example.com", "Content-Type", "application/json"), 200, ""},
		{"another site", h, user("Origin", "https://evil.example", "Content-Type", "application/json"), 403, "Origin"},
		{"an opaque origin", h, user("Origin", "null"), 403, "Origin"},
		{"text/plain", h, user("Content-Type", "text/plain;charset=UTF-8"), 403, "application/json"},
		{"a form", h, user("Content-Type", "application/x-www-form-urlencoded"), 403, "application/json"},
		{"a multipart form", h, user("Content-Type", "multipart/form-data; boundary=b"), 403, "application/json"},
		{"a form from the own origin", h, user("Origin", "http://example.com", "Content-Type", "text/plain"), 403, "application/json"},
		{"an allowed origin", ui, user("Origin", "https://ui.example", "Content-Type", "application/json"), 200, ""},
		{"an allowed origin sending text", ui, user("Origin", "https://ui.example", "Content-Type", "text/plain"), 403, "application/json"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := runs()
			res := callWith(tt.h, "launchRun", launch, tt.headers)
			if tt.status == 200 {
				launchedID(t, res)
				return
			}
			e := wantError(t, res, http.StatusForbidden, "FORBIDDEN")
			if msg, _ := e["message"].(string); !strings.Contains(msg, "Cross-site request refused") || !strings.Contains(msg, tt.message) {
				t.Fatalf("message %q does not say what was refused", msg)
			}
			if after := runs(); after != before {
				t.Fatalf("a refused launchRun started a run (%d runs, were %d)", after, before)
			}
		})
	}
	// A read over POST is refused alike: the guard does not know which
	// methods change state.
	wantError(t, callWith(h, "listRuns", `{}`, user("Origin", "https://evil.example")), http.StatusForbidden, "FORBIDDEN")
	// With allowed origins, other origins stay refused by authentication,
	// as before.
	wantError(t, callWith(ui, "listRuns", `{}`, user("Origin", "https://evil.example")), http.StatusUnauthorized, "UNAUTHORIZED")
	// A bearer token is never sent by a browser on its own: token mode
	// does not look at Origin or Content-Type.
	res := callWith(g.h, "launchRun", launch, map[string]string{"Authorization": "Bearer " + g.token(tokAll),
		"Origin": "https://evil.example", "Content-Type": "text/plain"})
	launchedID(t, res)
}

// TestTrustedProxyRefusesCrossSiteUpgrades: in trusted-proxy mode a
// WebSocket upgrade from another site is refused with 403 before it
// becomes a socket; the gateway's own origin and clients without Origin
// connect.
func TestTrustedProxyRefusesCrossSiteUpgrades(t *testing.T) {
	g := newWSGateway(t, wsOptions{auth: auth.NewTrustedProxy(auth.TrustedProxyConfig{})})
	_, resp, err := websocket.DefaultDialer.Dial(g.wsURL("/"), http.Header{"Origin": {"https://evil.example"}})
	if err == nil || resp == nil {
		t.Fatalf("upgrade from another site: err %v, want a refused upgrade", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "Cross-site request refused") ||
		resp.Header.Get("X-Smithers-API-Version") != "v1" {
		t.Fatalf("refused upgrade: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if n := len(g.openConns()); n != 0 {
		t.Fatalf("%d sockets open after a refused upgrade", n)
	}
	for _, origin := range []string{g.url, ""} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		h.Set("X-User-Scopes", "run:read")
		ws, _, err := websocket.DefaultDialer.Dial(g.wsURL("/"), h)
		if err != nil {
			t.Fatalf("upgrade with Origin %q: %v", origin, err)
		}
		c := &wsClient{t: t, ws: ws, changed: make(chan struct{})}
		t.Cleanup(func() { ws.Close() })
		go c.read()
		c.ok("connect", g.connectParams("", nil))
		c.ok("listRuns", map[string]any{})
	}
}
