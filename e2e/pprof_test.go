package e2e

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

var profilerURL = regexp.MustCompile(`"msg":"profiler listening","url":"(http://[^"]+)"`)

// TestPprofIsOptInAndApartFromTheAPI: --pprof serves Go's profiler on its
// own loopback listener; the API's address never serves it.
func TestPprofIsOptInAndApartFromTheAPI(t *testing.T) {
	t.Parallel()
	g := startGatewayWith(t, gatewayConfig{module: exampleModule("quickstart"), env: []string{"SMITHERS_GATEWAY_PPROF=0"}})
	var url string
	eventually(t, 5*time.Second, "the profiler's log line", func() bool {
		m := profilerURL.FindStringSubmatch(g.Stderr())
		if m != nil {
			url = m[1]
		}
		return m != nil
	})
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("a bare port made the profiler listen on %s, want loopback", url)
	}
	resp, err := httpClient.Get(url + "goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Fatalf("profiler answered %d: %.200s", resp.StatusCode, body)
	}
	resp, err = httpClient.Get(g.URL + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("the API address serves the profiler")
	}
}
