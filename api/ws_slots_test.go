package api

import (
	"testing"

	"github.com/gorilla/websocket"
)

// TestWSSilentSocketsCannotLockOutClients: a flood of sockets that never
// send connect, more than the unauthenticated cap and more than
// MaxConnections, never keeps a real client out: the oldest silent sockets
// are closed with 1013 to make room, sockets that connected are left
// alone, and a client arriving after the flood connects and calls.
func TestWSSilentSocketsCannotLockOutClients(t *testing.T) {
	const maxConns, maxPending, flood = 8, 3, 20
	g := newWSGateway(t, wsOptions{cfg: Config{MaxConnections: maxConns, MaxUnauthenticated: maxPending}})
	early := g.connected(t, tokAll, nil)
	silent := make([]*wsClient, flood)
	for i := range silent {
		silent[i] = g.dial(t, "")
	}
	for i, c := range silent[:flood-maxPending] {
		if code, reason := c.closed(); code != websocket.CloseTryAgainLater {
			t.Fatalf("silent socket %d closed with %d %q, want 1013", i, code, reason)
		}
	}
	if inUse, pending := g.srv.ws.slots.counts(); inUse != 1+maxPending || pending != maxPending {
		t.Fatalf("%d slots in use, %d pending; want %d and %d", inUse, pending, 1+maxPending, maxPending)
	}

	real := g.connected(t, tokAll, nil)
	real.ok("health", nil)
	runID := real.ok("launchRun", map[string]any{"workflow": "echo", "input": map[string]any{}})["runId"].(string)
	real.waitEvent("run.completed", 0, func(p map[string]any) bool { return p["runId"] == runID })
	// The real client's slot came from the oldest silent socket left.
	if code, _ := silent[flood-maxPending].closed(); code != websocket.CloseTryAgainLater {
		t.Fatalf("the oldest remaining silent socket closed with %d, want 1013", code)
	}
	for _, c := range silent[flood-maxPending+1:] {
		if !c.isOpen() {
			t.Fatal("a newer silent socket was closed although an older one was pending")
		}
	}
	early.ok("health", nil)
	g.wantMetric(t, "smithers_gateway_errors_total", map[string]string{"kind": "unauthenticated_evicted", "transport": "ws"}, flood-maxPending+1)

	// Authenticated sockets fill every slot they can; silent ones keep
	// being evicted instead of refusing real clients.
	for range maxConns - 2 {
		g.connected(t, tokAll, nil)
	}
	if inUse, pending := g.srv.ws.slots.counts(); inUse != maxConns || pending != 0 {
		t.Fatalf("%d slots in use, %d pending; want %d and 0", inUse, pending, maxConns)
	}
}

// TestWSUnauthenticatedCapDefault: without a configured cap, a quarter of
// MaxConnections (at least one) may be unauthenticated.
func TestWSUnauthenticatedCapDefault(t *testing.T) {
	for _, tc := range []struct{ maxConns, maxPending, want int }{
		{0, 0, 250}, {1000, 0, 250}, {10, 0, 2}, {3, 0, 1}, {1, 0, 1}, {10, 5, 5}, {10, 50, 10},
	} {
		if got := NewServer(Config{MaxConnections: tc.maxConns, MaxUnauthenticated: tc.maxPending}).ws.slots.maxPending; got != tc.want {
			t.Errorf("MaxConnections %d, MaxUnauthenticated %d: cap %d, want %d", tc.maxConns, tc.maxPending, got, tc.want)
		}
	}
}
