package api

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/smithers-orchestrator/smithers-go/api/auth"
)

// TestWSTokenRevokedWhileOpen: revoking a token in the store file closes
// its open sockets with 1008 "token revoked" within a second (docs/architecture.md
// §8: the store is re-read every 250 ms and open sockets re-check their
// token every 250 ms); sockets of other tokens stay open.
func TestWSTokenRevokedWhileOpen(t *testing.T) {
	g := newWSGateway(t, wsOptions{})
	victim := g.connected(t, tokBob, nil)
	bystander := g.connected(t, tokAll, nil)
	unconnected := g.dial(t, "")

	revokedAt := time.Now()
	if _, err := auth.Revoke(g.tokenPath, g.token(tokBob), revokedAt); err != nil {
		t.Fatal(err)
	}
	code, reason := victim.closed()
	if took := time.Since(revokedAt); took > time.Second {
		t.Fatalf("socket closed %v after the revocation, want within 1 s", took)
	}
	if code != websocket.ClosePolicyViolation || reason != "token revoked" {
		t.Fatalf("closed with %d %q, want 1008 \"token revoked\"", code, reason)
	}
	if !bystander.isOpen() || !unconnected.isOpen() {
		t.Fatal("a socket of another token was closed")
	}
	bystander.ok("health", nil)
	// The revoked token cannot connect again.
	c := g.dial(t, "")
	if e := c.call("connect", g.connectParams(tokBob, nil)).errorObject(); e["code"] != "UNAUTHORIZED" || e["refresh"] == nil {
		t.Fatalf("connect with a revoked token: %v", e)
	}
}

// TestWSTokenExpiresWhileOpen: a socket whose token expires is closed with
// 1008 "token expired".
func TestWSTokenExpiresWhileOpen(t *testing.T) {
	g := newWSGateway(t, wsOptions{})
	res, err := auth.Issue(g.tokenPath, auth.IssueOptions{Scopes: []string{"run:read"}, TTL: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	g.tokens["short"] = res.Token
	expiresAt := time.UnixMilli(res.Grant.ExpiresAtMs)
	// The store picks the new token up within its poll interval.
	eventually(t, "the new token to be accepted", func() bool { return g.rpc("short", "health", map[string]any{}).status == 200 })
	c := g.dial(t, "")
	if f := c.call("connect", g.connectParams("short", nil)); f.m["ok"] != true {
		if time.Now().After(expiresAt) {
			t.Fatalf("the machine is too slow: the 1.5 s token expired before connect (%s)", f.raw)
		}
		t.Fatalf("connect: %s", f.raw)
	}
	code, reason := c.closed()
	if code != websocket.ClosePolicyViolation || reason != "token expired" {
		t.Fatalf("closed with %d %q, want 1008 \"token expired\"", code, reason)
	}
	if now := time.Now(); now.Before(expiresAt) || now.After(expiresAt.Add(time.Second)) {
		t.Fatalf("closed at %v, token expired at %v", now, expiresAt)
	}
}

// TestWSReadLimit: a frame larger than MaxPayloadBytes closes the socket
// with 1009; one at the limit is read.
func TestWSReadLimit(t *testing.T) {
	const limit = 2048
	g := newWSGateway(t, wsOptions{cfg: Config{MaxPayloadBytes: limit}})
	c := g.connected(t, tokAll, nil)
	pad := func(n int) string {
		frame := `{"type":"req","id":"x","method":"health","params":{"pad":""}}`
		return strings.Replace(frame, `"pad":""`, `"pad":"`+strings.Repeat("p", n-len(frame))+`"`, 1)
	}
	c.send(pad(limit))
	if _, f := c.waitFor("answer at the limit", 0, func(f wsFrame) bool { return f.id() == "x" }); f.m["ok"] != true {
		t.Fatalf("frame at the limit: %s", f.raw)
	}
	c.send(pad(limit + 1))
	if code, _ := c.closed(); code != websocket.CloseMessageTooBig {
		t.Fatalf("closed with %d, want 1009", code)
	}
	// Before connect too.
	u := g.dial(t, "")
	u.send(pad(limit + 1))
	if code, _ := u.closed(); code != websocket.CloseMessageTooBig {
		t.Fatalf("unconnected socket closed with %d, want 1009", code)
	}
}
