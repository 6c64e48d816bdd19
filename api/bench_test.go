package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// discardWriter is a ResponseWriter that keeps only the status, so that a
// benchmark measures the handler, not a recorder.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }

// BenchmarkHandler measures the API handler of GET /health and of getRun
// over HTTP (a finished run, its view cached by the store), without a
// network: the gateway's own cost per request besides net/http's.
func BenchmarkHandler(b *testing.B) {
	g := newTestGateway(b)
	runID := g.launch("echo", map[string]any{})
	g.waitRun(runID, "finished")
	body := `{"runId":"` + runID + `"}`
	auth := "Bearer " + g.token(tokAll)
	for _, bc := range []struct {
		name string
		req  func() *http.Request
	}{
		{"health", func() *http.Request { return httptest.NewRequest(http.MethodGet, "/health", nil) }},
		{"getRun", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/v1/rpc/getRun", strings.NewReader(body))
			r.Header.Set("Authorization", auth)
			r.Header.Set("Content-Type", "application/json")
			return r
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				r := bc.req()
				w := &discardWriter{h: http.Header{}}
				b.StartTimer()
				g.h.ServeHTTP(w, r)
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}
