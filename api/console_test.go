package api

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

var bootScript = regexp.MustCompile(`<script>(globalThis\.__SMITHERS_GATEWAY_UI__=(\{.*?\});)</script>`)

// get serves a GET (or another method) without credentials: the console's
// shell and assets need none.
func (g *testGateway) get(method, target string, headers ...string) response {
	req := httptest.NewRequest(method, target, nil)
	req.Host = "gw.example:7331"
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return g.serve(req)
}

// checkShell checks one shell response and returns its boot object.
func checkShell(t *testing.T, res response, mount string) map[string]any {
	t.Helper()
	if res.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", res.status, res.raw)
	}
	h := res.header
	if ct := h.Get("Content-Type"); ct != "text/html; charset=UTF-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := h.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control %q, want no-cache", cc)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("security headers missing: %v", h)
	}
	if h.Get("X-Smithers-API-Version") != "" {
		t.Errorf("UI responses carry no X-Smithers-API-Version (docs/rpc.md), got %q", h.Get("X-Smithers-API-Version"))
	}
	body := string(res.raw)
	for _, want := range []string{"<!doctype html>", "<title>Smithers Operator Console</title>", `<div id="root"></div>`,
		`<script type="module" src="` + strings.TrimSuffix(mount, "/") + `/__smithers_ui/client.js?v=`} {
		if !strings.Contains(body, want) {
			t.Errorf("shell lacks %q:\n%s", want, body)
		}
	}
	m := bootScript.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no boot script in the shell:\n%s", body)
	}
	// The CSP allows that one inline script by its hash, and nothing else
	// that is not from the gateway itself.
	sum := sha256.Sum256([]byte(m[1]))
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self' 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "';",
		"style-src 'self';", "img-src 'self';", "connect-src 'self' ws://gw.example:7331 wss://gw.example:7331;", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(csp, "http") {
		t.Errorf("CSP allows too much: %q", csp)
	}
	var boot map[string]any
	if err := json.Unmarshal([]byte(m[2]), &boot); err != nil {
		t.Fatalf("boot object: %v", err)
	}
	return boot
}

func TestConsoleShell(t *testing.T) {
	g := newTestGateway(t)
	for _, target := range []string{"/console", "/console/", "/console/runs", "/console/runs/abc-123?status=failed", "/console/approvals", "/console/no/such/page"} {
		t.Run(target, func(t *testing.T) {
			boot := checkShell(t, g.get(http.MethodGet, target), "/console")
			want := `{"apiVersion":"v1","assetBasePath":"/console/__smithers_ui/","kind":"operator","mountPath":"/console","props":{"authMode":"token"},"rpcPath":"/v1/rpc","workflowKey":null,"wsPath":"/"}`
			if got, _ := json.Marshal(boot); string(got) != want {
				t.Errorf("boot object %s, want %s", got, want)
			}
		})
	}
	t.Run("HEAD", func(t *testing.T) {
		get := g.get(http.MethodGet, "/console/runs")
		head := g.get(http.MethodHead, "/console/runs")
		if head.status != 200 || len(head.raw) != 0 {
			t.Fatalf("HEAD: status %d, %d body bytes", head.status, len(head.raw))
		}
		if cl := head.header.Get("Content-Length"); cl != get.header.Get("Content-Length") || cl == "" {
			t.Errorf("HEAD Content-Length %q, GET %q", cl, get.header.Get("Content-Length"))
		}
		if head.header.Get("Content-Security-Policy") == "" || head.header.Get("Content-Type") != "text/html; charset=UTF-8" {
			t.Errorf("HEAD headers %v", head.header)
		}
	})
	t.Run("revalidation", func(t *testing.T) {
		etag := g.get(http.MethodGet, "/console").header.Get("ETag")
		if res := g.get(http.MethodGet, "/console/runs", "If-None-Match", etag); res.status != http.StatusNotModified || len(res.raw) != 0 {
			t.Errorf("If-None-Match %s: status %d", etag, res.status)
		}
	})
	t.Run("boot object cannot close its script", func(t *testing.T) {
		body := string(g.get(http.MethodGet, "/console").raw)
		script := bootScript.FindStringSubmatch(body)[1]
		if strings.ContainsAny(script, "<>&") {
			t.Errorf("boot script has an unescaped <, > or &: %s", script)
		}
	})
}

func TestConsoleAssets(t *testing.T) {
	g := newTestGateway(t)
	shell := string(g.get(http.MethodGet, "/console").raw)
	tests := []struct {
		name, contentType string
	}{
		{"client.js", "text/javascript; charset=utf-8"},
		{"client.css", "text/css; charset=utf-8"},
		{"favicon.svg", "image/svg+xml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			embedded, err := consoleFiles.ReadFile("consoleassets/" + tc.name)
			if err != nil {
				t.Fatal(err)
			}
			// The shell names the asset with its version.
			ref := regexp.MustCompile(`/console/__smithers_ui/` + regexp.QuoteMeta(tc.name) + `\?v=([0-9a-f]{16})"`).FindStringSubmatch(shell)
			if ref == nil {
				t.Fatalf("the shell does not reference %s with a version", tc.name)
			}
			sum := sha256.Sum256(embedded)
			if v := ref[1]; v != hex.EncodeToString(sum[:8]) {
				t.Errorf("version %s is not the content's hash", v)
			}
			for _, c := range []struct{ target, cache string }{
				{"/console/__smithers_ui/" + tc.name, "no-cache"},
				{"/console/__smithers_ui/" + tc.name + "?v=" + ref[1], "public, max-age=31536000, immutable"},
				{"/console/__smithers_ui/" + tc.name + "?v=stale", "no-cache"},
			} {
				res := g.get(http.MethodGet, c.target)
				if res.status != 200 || string(res.raw) != string(embedded) {
					t.Fatalf("GET %s: status %d, %d bytes (want the embedded %d)", c.target, res.status, len(res.raw), len(embedded))
				}
				if got := res.header.Get("Content-Type"); got != tc.contentType {
					t.Errorf("%s Content-Type %q, want %q", c.target, got, tc.contentType)
				}
				if got := res.header.Get("Cache-Control"); got != c.cache {
					t.Errorf("%s Cache-Control %q, want %q", c.target, got, c.cache)
				}
				if res.header.Get("X-Content-Type-Options") != "nosniff" {
					t.Errorf("%s lacks nosniff", c.target)
				}
			}
			head := g.get(http.MethodHead, "/console/__smithers_ui/"+tc.name)
			if head.status != 200 || len(head.raw) != 0 || head.header.Get("Content-Length") == "" {
				t.Errorf("HEAD: status %d, %d bytes, Content-Length %q", head.status, len(head.raw), head.header.Get("Content-Length"))
			}
			etag := head.header.Get("ETag")
			if res := g.get(http.MethodGet, "/console/__smithers_ui/"+tc.name, "If-None-Match", etag); res.status != http.StatusNotModified {
				t.Errorf("If-None-Match %s: status %d, want 304", etag, res.status)
			}
		})
	}
	for _, target := range []string{"/console/__smithers_ui/nope.js", "/console/__smithers_ui/", "/console/__smithers_ui/a/client.js", "/console/__smithers_ui/index.html"} {
		t.Run("unknown "+target, func(t *testing.T) {
			res := g.get(http.MethodGet, target)
			if res.status != 404 || string(res.raw) != "Not Found" || res.header.Get("Content-Type") != "text/plain; charset=utf-8" ||
				res.header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("status %d, body %q, headers %v", res.status, res.raw, res.header)
			}
		})
	}
}

// TestConsoleRoutePrecedence: the console answers GET and HEAD under its
// mount only, after /health and /metrics, and never shadows the RPC or
// webhook routes.
func TestConsoleRoutePrecedence(t *testing.T) {
	for _, mount := range []string{"/console", "/"} {
		t.Run("mount "+mount, func(t *testing.T) {
			g := newTestGatewayConfig(t, Config{ConsolePath: mount})
			base := strings.TrimSuffix(mount, "/")
			tests := []struct {
				method, target string
				want           string // "shell", "404", "health", "rpc", "webhook"
			}{
				{http.MethodGet, "/health", "health"},
				{http.MethodPost, "/v1/rpc/health", "rpc"},
				{http.MethodPost, "/rpc", "rpc"},
				{http.MethodPost, "/webhooks/echo", "webhook"},
				{http.MethodPost, base + "/runs", "404"},
				{http.MethodPut, base + "/", "404"},
				{http.MethodOptions, base + "/", "404"},
				{http.MethodGet, base + "/runs", "shell"},
			}
			if mount == "/" {
				tests = append(tests, struct{ method, target, want string }{http.MethodGet, "/", "shell"},
					struct{ method, target, want string }{http.MethodGet, "/v1/rpc/health", "shell"})
			} else {
				tests = append(tests, struct{ method, target, want string }{http.MethodGet, "/consoles", "404"},
					struct{ method, target, want string }{http.MethodGet, "/", "404"},
					struct{ method, target, want string }{http.MethodGet, "/__smithers_ui/client.js", "404"})
			}
			for _, tc := range tests {
				req := httptest.NewRequest(tc.method, tc.target, strings.NewReader(`{"method":"health"}`))
				req.Header.Set("Authorization", "Bearer "+g.token(tokAll))
				res := g.serve(req)
				body := string(res.raw)
				ok := false
				switch tc.want {
				case "shell":
					ok = res.status == 200 && strings.Contains(body, "__SMITHERS_GATEWAY_UI__")
				case "404":
					ok = res.status == 404 && body == `{"error":{"code":"NOT_FOUND","message":"Route not found"}}`
				case "health":
					ok = res.status == 200 && strings.Contains(body, `"ok":true`)
				case "rpc":
					ok = res.status == 200 && strings.Contains(body, `"type":"res"`)
				case "webhook":
					ok = res.status == 404 && strings.Contains(body, "Webhook not configured")
				}
				if !ok {
					t.Errorf("%s %s: want %s, got %d %.200s", tc.method, tc.target, tc.want, res.status, body)
				}
			}
		})
	}
}

func TestConsoleDisabledAndMoved(t *testing.T) {
	t.Run("disabled", func(t *testing.T) {
		g := newTestGatewayConfig(t, Config{ConsoleDisabled: true})
		for _, target := range []string{"/console", "/console/runs", "/console/__smithers_ui/client.js"} {
			res := g.get(http.MethodGet, target)
			if res.status != 404 || string(res.raw) != `{"error":{"code":"NOT_FOUND","message":"Route not found"}}` {
				t.Errorf("GET %s: %d %s", target, res.status, res.raw)
			}
		}
	})
	t.Run("moved", func(t *testing.T) {
		g := newTestGatewayConfig(t, Config{ConsolePath: "ops/ui/"})
		boot := checkShell(t, g.get(http.MethodGet, "/ops/ui/runs/x"), "/ops/ui")
		if boot["mountPath"] != "/ops/ui" || boot["assetBasePath"] != "/ops/ui/__smithers_ui/" {
			t.Errorf("boot object %v", boot)
		}
		if res := g.get(http.MethodGet, "/ops/ui/__smithers_ui/client.js"); res.status != 200 {
			t.Errorf("asset under the moved mount: %d", res.status)
		}
		if res := g.get(http.MethodGet, "/console"); res.status != 404 {
			t.Errorf("the old path still answers %d", res.status)
		}
	})
}

func TestNormalizeConsolePath(t *testing.T) {
	good := map[string]string{
		"/console": "/console", "console": "/console", "/console/": "/console", "/": "/", "": "/",
		" /ops/ui ": "/ops/ui", "/a_b/c-d/e.f/g:h": "/a_b/c-d/e.f/g:h",
	}
	for in, want := range good {
		if got, err := NormalizeConsolePath(in); err != nil || got != want {
			t.Errorf("NormalizeConsolePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"/a b", "/a//b", "/../x", "/x/./y", "/x/__smithers_ui", "/é", "/a?b", "/a#b", "/<script>"} {
		if got, err := NormalizeConsolePath(in); err == nil {
			t.Errorf("NormalizeConsolePath(%q) = %q, want an error", in, got)
		}
	}
}
