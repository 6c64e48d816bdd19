package api

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/smithers-orchestrator/smithers-go/tokenstore"
)

func TestWSChallengeIsFirstFrame(t *testing.T) {
	g := newWSGateway(t, wsOptions{})
	c := g.dial(t, "")
	_, f := c.waitFor("first frame", 0, func(wsFrame) bool { return true })
	if !f.isEvent("connect.challenge") || num(t, f.m, "seq") != 1 || f.m["apiVersion"] != "v1" {
		t.Fatalf("first frame %s, want connect.challenge with seq 1", f.raw)
	}
	if sv := num(t, f.m, "stateVersion"); sv != g.healthStateVersion(t) {
		t.Fatalf("challenge stateVersion %d, /health says %d", sv, g.healthStateVersion(t))
	}
	p := f.payload()
	nonce, _ := p["nonce"].(string)
	if len(p) != 2 || !uuidPattern.MatchString(nonce) {
		t.Fatalf("challenge payload %v, want {nonce: UUID, ts}", p)
	}
	if ts := num(t, p, "ts"); time.Since(time.UnixMilli(ts)).Abs() > time.Minute {
		t.Fatalf("challenge ts %d is not now (ms)", ts)
	}
	other := g.dial(t, "")
	_, f2 := other.waitFor("first frame", 0, func(wsFrame) bool { return true })
	if f2.payload()["nonce"] == nonce {
		t.Fatal("two sockets got the same nonce")
	}
}

func TestWSRequestsBeforeConnect(t *testing.T) {
	g := newWSGateway(t, wsOptions{})
	c := g.dial(t, "")
	for _, method := range []string{"getRun", "health", "listRuns", "noSuchMethod"} {
		res := c.call(method, map[string]any{"runId": "x"})
		e := res.errorObject()
		if res.m["ok"] != false || res.m["apiVersion"] != "v1" || e["version"] != "v1" || e["code"] != "UNAUTHORIZED" || e["message"] != "Connect first" {
			t.Fatalf("%s before connect: %s, want UNAUTHORIZED Connect first", method, res.raw)
		}
	}
	// No event but the challenge was delivered, and the socket stayed open:
	// connect still works on it.
	c.ok("connect", g.connectParams(tokAll, nil))
	if p := c.ok("health", nil); p["protocol"] != float64(1) {
		t.Fatalf("health after connect: %v", p)
	}
	frames := c.all()
	events := checkCounters(t, frames)
	if len(events) != 1 || !events[0].isEvent("connect.challenge") {
		t.Fatalf("events before connect: %s", c.describe())
	}
}

// TestWSFailedConnectClosesSocket: every failed connect, first or
// repeated, is answered and then the socket is closed with 1008 (docs/architecture.md
// §8).
func TestWSFailedConnectClosesSocket(t *testing.T) {
	g := newWSGateway(t, wsOptions{})
	tests := []struct {
		name         string
		params       any // the connect params; a map is merged into valid params
		code         string
		message      string
		reconnecting bool // connect successfully first
	}{
		{name: "params not an object", params: []any{1}, code: "INVALID_REQUEST", message: "Connect params must be an object"},
		{name: "params a string", params: "x", code: "INVALID_REQUEST", message: "Connect params must be an object"},
		{name: "no params", params: nil, code: "INVALID_REQUEST", message: "Connect params must be an object"},
		{name: "missing minProtocol", params: map[string]any{"minProtocol": nil}, code: "INVALID_REQUEST", message: "Connect request is missing protocol negotiation fields"},
		{name: "missing maxProtocol", params: map[string]any{"maxProtocol": nil}, code: "INVALID_REQUEST", message: "Connect request is missing protocol negotiation fields"},
		{name: "string protocol", params: map[string]any{"minProtocol": "1"}, code: "INVALID_REQUEST", message: "Connect request is missing protocol negotiation fields"},
		{name: "zero minProtocol", params: map[string]any{"minProtocol": 0}, code: "INVALID_INPUT", message: "minProtocol must be a finite number greater than 0."},
		{name: "negative maxProtocol", params: map[string]any{"maxProtocol": -1}, code: "INVALID_INPUT", message: "maxProtocol must be a finite number greater than 0."},
		{name: "protocol too new", params: map[string]any{"minProtocol": 2, "maxProtocol": 3}, code: "PROTOCOL_UNSUPPORTED", message: "Gateway protocol 1 is not supported by the client"},
		{name: "protocol range reversed", params: map[string]any{"minProtocol": 2, "maxProtocol": 1}, code: "PROTOCOL_UNSUPPORTED", message: "Gateway protocol 1 is not supported by the client"},
		{name: "missing client", params: map[string]any{"client": nil}, code: "INVALID_REQUEST"},
		{name: "falsy client", params: map[string]any{"client": ""}, code: "INVALID_REQUEST"},
		{name: "no token", params: map[string]any{"auth": nil}, code: "UNAUTHORIZED"},
		{name: "wrong token", params: map[string]any{"auth": map[string]any{"token": "nope"}}, code: "UNAUTHORIZED"},
		{name: "failed re-connect", params: map[string]any{"auth": map[string]any{"token": "nope"}}, code: "UNAUTHORIZED", reconnecting: true},
		{name: "invalid re-connect", params: map[string]any{"minProtocol": 0}, code: "INVALID_INPUT", reconnecting: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := g.dial(t, "")
			if tc.reconnecting {
				c.ok("connect", g.connectParams(tokAll, nil))
			}
			params := tc.params
			if m, ok := params.(map[string]any); ok {
				params = g.connectParams(tokAll, m)
			}
			res := c.call("connect", params)
			e := res.errorObject()
			if res.m["ok"] != false || res.m["apiVersion"] != "v1" || e["version"] != "v1" || e["code"] != tc.code {
				t.Fatalf("connect answered %s, want %s", res.raw, tc.code)
			}
			if tc.message != "" && e["message"] != tc.message {
				t.Fatalf("message %q, want %q", e["message"], tc.message)
			}
			if code, _ := c.closed(); code != websocket.ClosePolicyViolation {
				t.Fatalf("close code %d, want 1008", code)
			}
		})
	}
}

func TestWSHello(t *testing.T) {
	g := newWSGateway(t, wsOptions{cfg: Config{HeartbeatInterval: 1234 * time.Millisecond}})
	finished := g.launch("echo", map[string]any{})
	g.waitRun(finished, "finished")
	parked := g.launch("gate", map[string]any{})
	g.waitRun(parked, "waiting-approval")
	sleeping := g.launch("sleepy", map[string]any{})
	g.waitRun(sleeping, "waiting-timer")

	c := g.dial(t, "")
	res := c.call("connect", g.connectParams(tokAll, nil))
	if res.m["ok"] != true || res.m["apiVersion"] != "v1" || res.m["type"] != "res" {
		t.Fatalf("connect: %s", res.raw)
	}
	hello := res.payload()
	if num(t, hello, "protocol") != 1 {
		t.Fatalf("protocol %v", hello["protocol"])
	}
	jsonEqual(t, hello["features"], `["streaming","runs"]`)
	jsonEqual(t, hello["policy"], `{"heartbeatMs":1234}`)
	a, _ := hello["auth"].(map[string]any)
	session, _ := a["sessionToken"].(string)
	if !uuidPattern.MatchString(session) || a["role"] != "operator" || a["userId"] != "alice" || a["tokenId"] != tokenstore.TokenID(g.token(tokAll)) {
		t.Fatalf("hello auth %v", a)
	}
	jsonEqual(t, a["scopes"], `["*"]`)
	if len(a) != 5 {
		t.Fatalf("hello auth has keys %v, want sessionToken, role, scopes, userId, tokenId", a)
	}

	snap, _ := hello["snapshot"].(map[string]any)
	if num(t, snap, "stateVersion") != g.healthStateVersion(t) {
		t.Fatalf("snapshot stateVersion %v, /health %d", snap["stateVersion"], g.healthStateVersion(t))
	}
	runs := map[string]string{}
	for _, r := range snap["runs"].([]any) {
		row := r.(map[string]any)
		runs[row["runId"].(string)] = row["status"].(string)
		if row["workflowKey"] != row["workflowName"] {
			t.Fatalf("snapshot run row %v", row)
		}
	}
	if runs[parked] != "waiting-approval" || runs[sleeping] != "waiting-timer" || runs[finished] != "" || len(runs) != 2 {
		t.Fatalf("snapshot runs %v, want the parked %s and the sleeping %s only", runs, parked, sleeping)
	}
	approvals := snap["approvals"].([]any)
	if len(approvals) != 1 {
		t.Fatalf("snapshot approvals %v", approvals)
	}
	ap := approvals[0].(map[string]any)
	if ap["runId"] != parked || ap["nodeId"] != "ship" || ap["workflowKey"] != "gate" || ap["requestTitle"] != "Ship it?" {
		t.Fatalf("snapshot approval %v", ap)
	}

	// A second connect issues a new session token.
	again := c.ok("connect", g.connectParams(tokBob, nil))
	a2 := again["auth"].(map[string]any)
	if a2["sessionToken"] == session || a2["userId"] != "bob" {
		t.Fatalf("re-connect auth %v", a2)
	}

	// A token without userId.
	h := g.dial(t, "")
	ra := h.ok("connect", g.connectParams(tokRead, nil))["auth"].(map[string]any)
	if ra["userId"] != nil || ra["role"] != "operator" {
		t.Fatalf("run:read token auth %v", ra)
	}
	jsonEqual(t, ra["scopes"], `["run:read"]`)
}

// TestWSReconnectReplacesFilter: a second connect replaces the
// subscription filter.
func TestWSReconnectReplacesFilter(t *testing.T) {
	g := newWSGateway(t, wsOptions{})
	observer := g.connected(t, tokAll, nil)
	c := g.connected(t, tokAll, map[string]any{"subscribe": []any{"run-a"}})

	g.launchWith("run-b", "echo", map[string]any{})
	g.launchWith("run-a", "echo", map[string]any{})
	// run-a's events were published after run-b's: once c has run-a's
	// run.completed, it would have had run-b's events too.
	c.waitEvent("run.completed", 0, func(p map[string]any) bool { return p["runId"] == "run-a" })
	for _, f := range c.all() {
		if p := f.payload(); f.typ() == "event" && p["runId"] == "run-b" {
			t.Fatalf("socket subscribed to run-a got %s", f.raw)
		}
	}

	mark := len(c.all())
	c.ok("connect", g.connectParams(tokAll, map[string]any{"subscribe": []any{"run-c", 7}}))
	g.launchWith("run-d", "echo", map[string]any{})
	g.launchWith("run-a2", "echo", map[string]any{})
	g.launchWith("run-c", "echo", map[string]any{})
	c.waitEvent("run.completed", mark, func(p map[string]any) bool { return p["runId"] == "run-c" })
	observer.waitEvent("run.completed", 0, func(p map[string]any) bool { return p["runId"] == "run-c" })
	for _, f := range c.all()[mark:] {
		if p := f.payload(); f.typ() == "event" && p["runId"] != nil && p["runId"] != "run-c" {
			t.Fatalf("after re-connect with subscribe [run-c] the socket got %s", f.raw)
		}
	}

	// Re-connect without subscribe: no filter, every run.
	mark = len(c.all())
	c.ok("connect", g.connectParams(tokAll, nil))
	g.launchWith("run-e", "echo", map[string]any{})
	c.waitEvent("run.completed", mark, func(p map[string]any) bool { return p["runId"] == "run-e" })
}

func TestWSHandshakeTimeout(t *testing.T) {
	g := newWSGateway(t, wsOptions{cfg: Config{HandshakeTimeout: 150 * time.Millisecond, HeartbeatInterval: 50 * time.Millisecond}})
	idle := g.dial(t, "")
	connected := g.connected(t, tokAll, nil)
	if code, reason := idle.closed(); code != websocket.ClosePolicyViolation {
		t.Fatalf("idle socket closed with %d %q, want 1008", code, reason)
	}
	if n := len(checkCounters(t, idle.all())); n != 1 {
		t.Fatalf("idle socket got %d events, want only the challenge: %s", n, idle.describe())
	}
	// The connected socket outlives the handshake timeout: it keeps
	// getting ticks well past it.
	start := time.Now()
	from := 0
	for time.Since(start) < 3*150*time.Millisecond {
		from, _ = connected.waitEvent("tick", from+1, nil)
	}
	connected.ok("health", nil)
}

func TestWSUpgradeOnAnyPath(t *testing.T) {
	g := newWSGateway(t, wsOptions{})
	for _, path := range []string{"/", "/anything", "/v1/rpc/getRun", "/health?x=1"} {
		c := g.dial(t, path)
		if c.resp.StatusCode != http.StatusSwitchingProtocols || c.resp.Header.Get("X-Smithers-API-Version") != "v1" {
			t.Fatalf("%s: upgrade answered %d with headers %v", path, c.resp.StatusCode, c.resp.Header)
		}
		c.waitEvent("connect.challenge", 0, nil)
		if p := c.ok("connect", g.connectParams(tokAll, nil)); p["protocol"] != float64(1) {
			t.Fatalf("%s: hello %v", path, p)
		}
	}
}

// TestWSConnectionLimit: when every slot is held by an authenticated
// socket, an upgrade is refused with 503; closing a socket frees its slot.
func TestWSConnectionLimit(t *testing.T) {
	g := newWSGateway(t, wsOptions{cfg: Config{MaxConnections: 2}})
	first := g.connected(t, tokAll, nil)
	g.connected(t, tokAll, nil)
	_, resp, err := websocket.DefaultDialer.Dial(g.wsURL("/"), nil)
	if err == nil || resp == nil {
		t.Fatalf("third socket: err %v, want a refused upgrade", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || string(body) != "Gateway connection limit reached\n" {
		t.Fatalf("refused upgrade: %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Smithers-API-Version") != "v1" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("refused upgrade headers %v", resp.Header)
	}
	g.wantMetric(t, "smithers_gateway_errors_total", map[string]string{"kind": "connection_limit", "transport": "ws"}, 1)
	// Closing a socket frees its slot.
	first.ws.Close()
	eventually(t, "a free connection slot", func() bool { inUse, _ := g.srv.ws.slots.counts(); return inUse < 2 })
	c := g.dial(t, "")
	c.ok("connect", g.connectParams(tokAll, nil))
}
