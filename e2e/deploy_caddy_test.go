package e2e

// Tests of deploy/reference/Caddyfile with the real Caddy: adapted with the
// shipped defaults and validated, then run in front of a gateway to check
// what the reference deployment promises through it.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// bigOutputModule's workflow returns a large output, so that getRun's
// response is large enough for Caddy to compress.
const bigOutputModule = `
export default function register(gateway) {
  gateway.register("big", async (ctx) => {
    return await ctx.task("make", async () => ({ blob: "x".repeat(ctx.input.size) }));
  });
}
`

// TestDeployCaddyReverseProxy adapts deploy/reference/Caddyfile with the values
// the compose file and the systemd environment file give it and validates
// the result (`caddy validate` provisions every module), then runs it in
// Caddy in front of the gateway, on a loopback port with plain HTTP, and
// checks what the reference deployment promises through it. Between Caddy
// and the gateway a transparent Go proxy records the headers Caddy sends
// upstream.
func TestDeployCaddyReverseProxy(t *testing.T) {
	t.Parallel()
	caddy := needTool(t, "caddy", "apt-get install caddy")
	caddyfile := referenceFile("Caddyfile")

	// The shipped defaults: a public site on all interfaces with an ACME
	// email, Caddy's usual admin endpoint, and no adapter warnings.
	prod, stderr := caddyAdapt(t, caddy, caddyfile, caddyEnv(t, map[string]string{
		"SMITHERS_DOMAIN": "smithers.example.com", "SMITHERS_TLS_EMAIL": "ops@example.com", "SMITHERS_GATEWAY_UPSTREAM": "gateway:7331"}))
	if strings.Contains(stderr, "warn") || strings.Contains(stderr, "WARN") {
		t.Errorf("caddy adapt warns about deploy/reference/Caddyfile:\n%s", stderr)
	}
	if prod.Admin.Listen != "localhost:2019" || prod.Admin.Disabled {
		t.Errorf("default admin endpoint %+v, want localhost:2019", prod.Admin)
	}
	if l := prod.listens(); !slices.Equal(l, []string{":443"}) {
		t.Errorf("default listeners %q, want [:443] (all interfaces)", l)
	}
	if e := prod.issuerEmails(); len(e) == 0 || slices.ContainsFunc(e, func(s string) bool { return s != "ops@example.com" }) {
		t.Errorf("ACME issuer emails %q, want ops@example.com", e)
	}
	if !strings.Contains(prod.raw, `"dial":"gateway:7331"`) {
		t.Errorf("the adapted config does not proxy to SMITHERS_GATEWAY_UPSTREAM: %s", prod.raw)
	}
	for _, vars := range []map[string]string{
		{"SMITHERS_DOMAIN": "smithers.example.com", "SMITHERS_TLS_EMAIL": "ops@example.com", "SMITHERS_GATEWAY_UPSTREAM": "gateway:7331"},
		nil, // compose's default: localhost, Caddy's local CA
	} {
		validate := exec.Command(caddy, "validate", "--config", caddyfile, "--adapter", "caddyfile")
		validate.Env = caddyEnv(t, vars)
		if out, err := validate.CombinedOutput(); err != nil {
			t.Errorf("caddy validate deploy/reference/Caddyfile with %v: %v\n%s", vars, err, out)
		}
	}
	if unset, _ := caddyAdapt(t, caddy, caddyfile, caddyEnv(t, nil)); !strings.Contains(unset.raw, `"dial":"127.0.0.1:7331"`) || !strings.Contains(unset.raw, `"localhost"`) {
		t.Errorf("without environment the site is not localhost proxying to 127.0.0.1:7331: %s", unset.raw)
	}

	g := startGateway(t, writeModule(t, bigOutputModule))
	tap := newHeaderTap(t, g.URL)
	site := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	base := "http://" + site
	env := caddyEnv(t, map[string]string{"SMITHERS_DOMAIN": base, "SMITHERS_GATEWAY_UPSTREAM": tap.addr,
		"SMITHERS_CADDY_ADMIN": "off", "SMITHERS_CADDY_BIND": "127.0.0.1"})
	if cfg, _ := caddyAdapt(t, caddy, caddyfile, env); !slices.Equal(cfg.listens(), []string{site}) || !cfg.Admin.Disabled {
		t.Fatalf("test configuration listens on %q with admin %+v, want only %s and no admin endpoint", cfg.listens(), cfg.Admin, site)
	}
	startCaddy(t, caddy, caddyfile, env, base)

	// GET /health, with forged forwarding headers that Caddy must replace.
	resp, body := doHTTP(t, http.MethodGet, base+"/health", "", nil, map[string]string{
		"X-Test-Call": "health", "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"})
	var health struct {
		OK bool `json:"ok"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &health) != nil || !health.OK {
		t.Fatalf("GET /health through Caddy = %d %s", resp.StatusCode, body)
	}
	for name, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Smithers-API-Version": "v1"} {
		if got := resp.Header.Values(name); !slices.Equal(got, []string{want}) {
			t.Errorf("/health through Caddy: %s = %q, want exactly [%s]", name, got, want)
		}
	}
	up := tap.request(t, "health")
	for name, want := range map[string]string{"X-Forwarded-Proto": "http", "X-Forwarded-Host": site, "X-Forwarded-For": "127.0.0.1"} {
		if got := up.Values(name); !slices.Equal(got, []string{want}) {
			t.Errorf("upstream request: %s = %q, want [%s]", name, got, want)
		}
	}
	if rid := up.Get("X-Request-Id"); !uuidPattern.MatchString(rid) {
		t.Errorf("upstream request: X-Request-Id = %q, want a UUID", rid)
	}

	// An RPC without a body id answers with Caddy's request id, not the
	// client's.
	resp, body = doHTTP(t, http.MethodPost, base+"/v1/rpc/launchRun", g.Token,
		map[string]any{"workflow": "big", "input": map[string]any{"size": 8192}},
		map[string]string{"X-Test-Call": "launch", "X-Request-Id": "client-chosen-id"})
	var f frame
	if err := json.Unmarshal(body, &f); err != nil || resp.StatusCode != http.StatusOK || !f.OK {
		t.Fatalf("launchRun through Caddy = %d %s", resp.StatusCode, body)
	}
	rid := tap.request(t, "launch").Get("X-Request-Id")
	if !uuidPattern.MatchString(rid) || f.ID != rid {
		t.Errorf("launchRun response id = %q, want the X-Request-Id UUID Caddy sent upstream (%q)", f.ID, rid)
	}
	var launched struct {
		RunID string `json:"runId"`
	}
	decode(t, f.Payload, &launched)
	g.waitStatus(launched.RunID, "finished")

	// A large JSON response is compressed.
	resp, body = doHTTP(t, http.MethodPost, base+"/v1/rpc/getRun", g.Token, map[string]any{"runId": launched.RunID},
		map[string]string{"Accept-Encoding": "gzip"})
	if ce := resp.Header.Get("Content-Encoding"); ce != "gzip" {
		t.Errorf("getRun through Caddy with Accept-Encoding: gzip: Content-Encoding %q, want gzip (%d bytes)", ce, len(body))
	} else {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("gzip body: %v", err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("gunzip body: %v", err)
		}
		var run struct {
			OK      bool `json:"ok"`
			Payload struct {
				Output struct {
					Blob string `json:"blob"`
				} `json:"output"`
			} `json:"payload"`
		}
		if json.Unmarshal(plain, &run) != nil || !run.OK || len(run.Payload.Output.Blob) != 8192 {
			t.Errorf("getRun through Caddy, gunzipped: %.300s", plain)
		}
	}

	t.Run("websocket", func(t *testing.T) {
		dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
		conn, resp, err := dialer.Dial("ws://"+site+"/", http.Header{"X-Test-Call": {"websocket"}})
		if err != nil {
			how := ""
			if resp != nil {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
				how = fmt.Sprintf(" (HTTP %s: %s)", resp.Status, b)
			}
			t.Fatalf("WebSocket upgrade through Caddy: %v%s", err, how)
		}
		defer conn.Close()
		if v := resp.Header.Get("X-Smithers-API-Version"); v != "v1" {
			t.Errorf("101 through Caddy: X-Smithers-API-Version = %q, want v1", v)
		}
		if up := tap.request(t, "websocket"); !strings.EqualFold(up.Get("Upgrade"), "websocket") || !uuidPattern.MatchString(up.Get("X-Request-Id")) {
			t.Errorf("upstream upgrade request: Upgrade %q, X-Request-Id %q", up.Get("Upgrade"), up.Get("X-Request-Id"))
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		var challenge struct {
			Type    string `json:"type"`
			Event   string `json:"event"`
			Seq     int64  `json:"seq"`
			Payload struct {
				Nonce string `json:"nonce"`
			} `json:"payload"`
		}
		if err := conn.ReadJSON(&challenge); err != nil {
			t.Fatalf("read the first frame through Caddy: %v", err)
		}
		if challenge.Type != "event" || challenge.Event != "connect.challenge" || challenge.Seq != 1 || challenge.Payload.Nonce == "" {
			t.Fatalf("first frame through Caddy = %+v, want the connect.challenge event with seq 1 and a nonce", challenge)
		}
		// Client frames pass the other way too.
		connect := map[string]any{"type": "req", "id": "c1", "method": "connect", "params": map[string]any{
			"minProtocol": 1, "maxProtocol": 1, "client": map[string]any{"id": "e2e", "version": "0", "platform": "go"},
			"auth": map[string]any{"token": g.Token}}}
		if err := conn.WriteJSON(connect); err != nil {
			t.Fatalf("send connect: %v", err)
		}
		for {
			var res frame
			if err := conn.ReadJSON(&res); err != nil {
				t.Fatalf("read the connect response through Caddy: %v", err)
			}
			if res.Type == "res" && res.ID == "c1" {
				if !res.OK {
					t.Fatalf("connect through Caddy failed: %+v", res.Error)
				}
				break
			}
		}
	})
}

// caddyEnv is Caddy's environment: its own HOME and XDG directories and vars.
func caddyEnv(t *testing.T, vars map[string]string) []string {
	t.Helper()
	dir := t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "XDG_DATA_HOME=" + filepath.Join(dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// caddyConfig is the part of Caddy's JSON config the tests look at.
type caddyConfig struct {
	raw   string
	Admin struct {
		Disabled bool   `json:"disabled"`
		Listen   string `json:"listen"`
	} `json:"admin"`
	Apps struct {
		HTTP struct {
			Servers map[string]struct {
				Listen []string `json:"listen"`
			} `json:"servers"`
		} `json:"http"`
		TLS struct {
			Automation struct {
				Policies []struct {
					Issuers []struct {
						Email string `json:"email"`
					} `json:"issuers"`
				} `json:"policies"`
			} `json:"automation"`
		} `json:"tls"`
	} `json:"apps"`
}

func (c caddyConfig) listens() []string {
	var l []string
	for _, s := range c.Apps.HTTP.Servers {
		l = append(l, s.Listen...)
	}
	sort.Strings(l)
	return l
}

func (c caddyConfig) issuerEmails() []string {
	var e []string
	for _, p := range c.Apps.TLS.Automation.Policies {
		for _, i := range p.Issuers {
			e = append(e, i.Email)
		}
	}
	return e
}

// caddyAdapt adapts the Caddyfile with env and returns the JSON config and
// Caddy's log output.
func caddyAdapt(t *testing.T, caddy, caddyfile string, env []string) (caddyConfig, string) {
	t.Helper()
	cmd := exec.Command(caddy, "adapt", "--config", caddyfile, "--adapter", "caddyfile")
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("caddy adapt %s: %v\n%s", caddyfile, err, stderr.String())
	}
	var cfg caddyConfig
	if err := json.Unmarshal(stdout.Bytes(), &cfg); err != nil {
		t.Fatalf("caddy adapt printed no JSON config: %v\n%s", err, stdout.String())
	}
	cfg.raw = stdout.String()
	return cfg, stderr.String()
}

// startCaddy runs `caddy run` with the Caddyfile, waits until base answers,
// and kills Caddy at cleanup (printing its log if the test failed).
func startCaddy(t *testing.T, caddy, caddyfile string, env []string, base string) {
	t.Helper()
	cmd := exec.Command(caddy, "run", "--config", caddyfile, "--adapter", "caddyfile")
	cmd.Env = env
	cmd.Dir = t.TempDir()
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start caddy: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(exitTimeout):
			t.Errorf("caddy did not exit after SIGKILL")
		}
		if t.Failed() {
			t.Logf("caddy output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := httpClient.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("caddy exited before serving %s:\n%s", base, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy did not serve %s within %v: %v\n%s", base, startTimeout, err, out.String())
		}
	}
}

// headerTap is a reverse proxy that records the request headers of every
// request carrying X-Test-Call. It buffers each HTTP response and writes it
// whole, with its length (the gateway never streams an HTTP response), so
// that the tap adds no streaming behaviour of its own to what Caddy sees;
// WebSocket upgrades go through httputil.ReverseProxy.
type headerTap struct {
	addr string
	mu   sync.Mutex
	seen map[string]http.Header
}

func newHeaderTap(t *testing.T, upstream string) *headerTap {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	tap := &headerTap{seen: map[string]http.Header{}}
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	ws := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if call := r.Header.Get("X-Test-Call"); call != "" {
			tap.mu.Lock()
			tap.seen[call] = r.Header.Clone()
			tap.mu.Unlock()
		}
		if websocket.IsWebSocketUpgrade(r) {
			ws.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		out, err := http.NewRequestWithContext(context.WithoutCancel(r.Context()), r.Method, upstream+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		out.Header = r.Header.Clone()
		out.Header.Del("Connection")
		resp, err := client.Do(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		for k, vs := range resp.Header {
			if k != "Connection" && k != "Transfer-Encoding" && k != "Content-Length" {
				w.Header()[k] = vs
			}
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	tap.addr = srv.Listener.Addr().String()
	return tap
}

func (tap *headerTap) request(t *testing.T, call string) http.Header {
	t.Helper()
	tap.mu.Lock()
	defer tap.mu.Unlock()
	h, ok := tap.seen[call]
	if !ok {
		t.Fatalf("the %s request did not reach the upstream", call)
	}
	return h
}
