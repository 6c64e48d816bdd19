package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const maxBody = 1 << 20

// paddedBody is a valid RPC body of exactly n bytes: {"id":"pad"} then
// spaces.
func paddedBody(n int) string {
	const head = `{"id":"pad"}`
	return head + strings.Repeat(" ", n-len(head))
}

func TestBodyLimitThroughHandler(t *testing.T) {
	g := newTestGateway(t)
	tooLarge := fmt.Sprintf("Gateway request payload exceeds %d bytes.", maxBody)
	badLength := "Gateway request Content-Length must be a non-negative integer."
	tests := []struct {
		name          string
		contentLength string // "" leaves the header out
		body          string
		status        int
		code, message string
	}{
		{"exactly max", "", paddedBody(maxBody), 200, "", ""},
		{"one byte over max", "", paddedBody(maxBody + 1), 413, "PayloadTooLarge", tooLarge},
		{"length header over max, small body", fmt.Sprint(maxBody + 1), `{}`, 413, "PayloadTooLarge", tooLarge},
		{"length header beyond int64", "99999999999999999999999999", `{}`, 413, "PayloadTooLarge", tooLarge},
		{"lying small length, large body", "2", paddedBody(maxBody + 10), 413, "PayloadTooLarge", tooLarge},
		{"length with spaces", " 2 ", `{}`, 200, "", ""},
		{"non-numeric length", "abc", `{}`, 400, "INVALID_INPUT", badLength},
		{"negative length", "-1", `{}`, 400, "INVALID_INPUT", badLength},
		{"fractional length", "1.5", `{}`, 400, "INVALID_INPUT", badLength},
		{"signed length", "+2", `{}`, 400, "INVALID_INPUT", badLength},
		{"blank length", "  ", `{}`, 400, "INVALID_INPUT", badLength},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/v1/rpc/health", strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+g.token(tokAll))
			if tc.contentLength != "" {
				req.Header.Set("Content-Length", tc.contentLength)
				req.ContentLength = -1
			}
			res := g.serve(req)
			checkCommonHeaders(t, tc.name, res.header)
			if tc.code == "" {
				if res.status != 200 || res.body["ok"] != true {
					t.Fatalf("%d %s", res.status, res.raw)
				}
				return
			}
			e := wantError(t, res, tc.status, tc.code)
			if e["message"] != tc.message {
				t.Fatalf("message %q", e["message"])
			}
		})
	}
}

func TestAuthBeforeBody(t *testing.T) {
	g := newTestGateway(t)
	res := g.post("/v1/rpc/health", "", paddedBody(maxBody+1))
	wantError(t, res, 401, "UNAUTHORIZED")
}

func TestConfiguredBodyLimit(t *testing.T) {
	g := newTestGatewayConfig(t, Config{MaxBodyBytes: 100})
	if res := g.post("/v1/rpc/health", tokAll, paddedBody(100)); res.status != 200 {
		t.Fatalf("100 bytes: %d %s", res.status, res.raw)
	}
	e := wantError(t, g.post("/v1/rpc/health", tokAll, paddedBody(101)), 413, "PayloadTooLarge")
	if e["message"] != "Gateway request payload exceeds 100 bytes." {
		t.Fatalf("message %q", e["message"])
	}
}

// rawExchange writes a raw HTTP/1.1 request to a real server and reads the
// response.
func rawExchange(t *testing.T, addr, request string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func readResponseFrame(t *testing.T, r io.Reader) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBodyLimitOverTheWire(t *testing.T) {
	g := newTestGateway(t)
	var lastTE atomic.Value // the Transfer-Encoding the server saw last
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lastTE.Store(strings.Join(r.TransferEncoding, ","))
		g.h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	auth := "Authorization: Bearer " + g.token(tokAll) + "\r\n"

	t.Run("Content-Length over max is refused before the body is sent", func(t *testing.T) {
		res := rawExchange(t, addr, "POST /v1/rpc/health HTTP/1.1\r\nHost: x\r\n"+auth+fmt.Sprintf("Content-Length: %d\r\n\r\n", maxBody+1))
		if res.StatusCode != 413 {
			t.Fatalf("status %d", res.StatusCode)
		}
		checkCommonHeaders(t, "413", res.Header)
		if e := readResponseFrame(t, res.Body)["error"].(map[string]any); e["code"] != "PayloadTooLarge" {
			t.Fatalf("error %v", e)
		}
	})
	t.Run("non-numeric Content-Length is Go's own bare 400", func(t *testing.T) {
		res := rawExchange(t, addr, "POST /v1/rpc/health HTTP/1.1\r\nHost: x\r\n"+auth+"Content-Length: abc\r\n\r\n{}")
		if res.StatusCode != 400 {
			t.Fatalf("status %d", res.StatusCode)
		}
	})
	t.Run("malformed percent-encoding is Go's own bare 400", func(t *testing.T) {
		res := rawExchange(t, addr, "POST /v1/rpc/%zz HTTP/1.1\r\nHost: x\r\n"+auth+"Content-Length: 2\r\n\r\n{}")
		if res.StatusCode != 400 {
			t.Fatalf("status %d", res.StatusCode)
		}
	})
	t.Run("an encoded slash stays in the method", func(t *testing.T) {
		res := rawExchange(t, addr, "POST /v1/rpc/a%2Fb HTTP/1.1\r\nHost: x\r\n"+auth+"Content-Length: 2\r\n\r\n{}")
		f := readResponseFrame(t, res.Body)
		if e, _ := f["error"].(map[string]any); res.StatusCode != 400 || e["code"] != "INVALID_INPUT" || e["message"] != "Gateway method name is invalid." {
			t.Fatalf("status %d frame %v", res.StatusCode, f)
		}
	})
	t.Run("chunked body over max", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			chunk := strings.Repeat(" ", 64<<10)
			_, _ = io.WriteString(pw, "{}")
			for i := 0; i < 20; i++ { // 1.25 MiB
				if _, err := io.WriteString(pw, chunk); err != nil {
					return
				}
			}
			pw.Close()
		}()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/rpc/health", pr)
		req.ContentLength = -1 // chunked
		req.Header.Set("Authorization", "Bearer "+g.token(tokAll))
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		pr.CloseWithError(io.ErrClosedPipe)
		if res.StatusCode != 413 || lastTE.Load() != "chunked" {
			t.Fatalf("status %d, transfer encoding %q", res.StatusCode, lastTE.Load())
		}
		if e := readResponseFrame(t, res.Body)["error"].(map[string]any); e["code"] != "PayloadTooLarge" {
			t.Fatalf("error %v", e)
		}
	})
	t.Run("chunked body of exactly max", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/rpc/health", io.MultiReader(strings.NewReader(paddedBody(maxBody))))
		req.ContentLength = -1
		req.Header.Set("Authorization", "Bearer "+g.token(tokAll))
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if lastTE.Load() != "chunked" {
			t.Fatalf("request was not chunked: %q", lastTE.Load())
		}
		if f := readResponseFrame(t, res.Body); res.StatusCode != 200 || f["id"] != "pad" {
			t.Fatalf("status %d frame %v", res.StatusCode, f)
		}
	})
}
