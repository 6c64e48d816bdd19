package e2e

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestHeaderAndRequestTimeouts: a client that sends its headers or its body
// too slowly is disconnected after SMITHERS_GATEWAY_HEADERS_TIMEOUT_MS /
// SMITHERS_GATEWAY_REQUEST_TIMEOUT_MS (Go's server closes the connection;
// docs/differences.md lets that stand), while normal requests keep working.
func TestHeaderAndRequestTimeouts(t *testing.T) {
	t.Parallel()
	g := startGatewayWith(t, gatewayConfig{module: exampleModule("quickstart"),
		env: []string{"SMITHERS_GATEWAY_HEADERS_TIMEOUT_MS=300", "SMITHERS_GATEWAY_REQUEST_TIMEOUT_MS=600"}})
	addr := strings.TrimPrefix(g.URL, "http://")

	closedWithin := func(t *testing.T, conn net.Conn, limit time.Duration) {
		t.Helper()
		start := time.Now()
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.ReadAll(bufio.NewReader(conn))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("connection still open after 5 s")
		}
		if d := time.Since(start); d > limit {
			t.Fatalf("connection closed after %s, want within %s", d, limit)
		}
	}

	t.Run("slow headers", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Write([]byte("POST /v1/rpc/health HTTP/1.1\r\nHost: x\r\n")); err != nil {
			t.Fatal(err)
		}
		closedWithin(t, conn, 3*time.Second)
	})
	t.Run("slow body", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		req := "POST /v1/rpc/health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + g.Token + "\r\nContent-Length: 100\r\n\r\n{\"a\":"
		if _, err := conn.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(conn)
		if strings.Contains(string(b), `"ok":true`) {
			t.Fatalf("a request whose body never completed succeeded: %s", b)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("connection held %s", d)
		}
	})
	g.rpc("health", map[string]any{}) // normal requests keep working
}
