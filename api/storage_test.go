package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// faultyStore is the real store with a switchable storage fault: while the
// fault is set, Health reports it and writes and run reads fail with it,
// as a full disk or a lost database file does.
type faultyStore struct {
	host.Store
	fault atomic.Pointer[error]
}

func (f *faultyStore) set(err error) {
	if err == nil {
		f.fault.Store(nil)
		return
	}
	f.fault.Store(&err)
}

func (f *faultyStore) err() error {
	if p := f.fault.Load(); p != nil {
		return *p
	}
	return nil
}

func (f *faultyStore) Health() error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.Health()
}

func (f *faultyStore) Update(ctx context.Context, fn func(tx host.Tx) error) ([]host.Event, error) {
	if err := f.err(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return f.Store.Update(ctx, fn)
}

func (f *faultyStore) GetRun(ctx context.Context, runID string) (host.Run, bool, error) {
	if err := f.err(); err != nil {
		return host.Run{}, false, fmt.Errorf("get run %s: %w", runID, err)
	}
	return f.Store.GetRun(ctx, runID)
}

func (f *faultyStore) GetRunView(ctx context.Context, runID string) (host.RunView, bool, error) {
	if err := f.err(); err != nil {
		return host.RunView{}, false, fmt.Errorf("get run %s: %w", runID, err)
	}
	return f.Store.GetRunView(ctx, runID)
}

func newFaultyGateway(t *testing.T) (*testGateway, *faultyStore) {
	t.Helper()
	var fs *faultyStore
	g := newTestGatewayStore(t, Config{}, func(s host.Store) host.Store {
		fs = &faultyStore{Store: s}
		return fs
	})
	return g, fs
}

// TestHealthReportsStorageFaults: GET /health answers 200 with its usual
// body while the storage works, 503 with ok false and the reason while it
// does not, and 200 again once it recovers.
func TestHealthReportsStorageFaults(t *testing.T) {
	g, fs := newFaultyGateway(t)
	health := func() response { return g.serve(httptest.NewRequest(http.MethodGet, "/health", nil)) }
	keys := func(m map[string]any) string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return strings.Join(ks, ",")
	}

	res := health()
	if res.status != http.StatusOK || res.body["ok"] != true || keys(res.body) != "features,ok,protocol,stateVersion" {
		t.Fatalf("healthy: %d %s", res.status, res.raw)
	}
	if res.header.Get("Retry-After") != "" {
		t.Fatalf("healthy answer carries Retry-After %q", res.header.Get("Retry-After"))
	}

	fs.set(fmt.Errorf("%w: database or disk is full", host.ErrStorageUnavailable))
	res = health()
	if res.status != http.StatusServiceUnavailable || res.body["ok"] != false || keys(res.body) != "features,ok,protocol,reason,stateVersion" {
		t.Fatalf("storage down: %d %s", res.status, res.raw)
	}
	if reason, _ := res.body["reason"].(string); !strings.Contains(reason, "disk is full") {
		t.Fatalf("reason %q does not say why", reason)
	}
	for k, v := range map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store", "X-Smithers-API-Version": "v1", "Retry-After": retryAfterSeconds} {
		if got := res.header.Get(k); got != v {
			t.Fatalf("header %s = %q, want %q", k, got, v)
		}
	}

	fs.set(nil)
	if res := health(); res.status != http.StatusOK || res.body["ok"] != true {
		t.Fatalf("recovered: %d %s", res.status, res.raw)
	}
}

// TestStorageFaultAnswers503WithRetryAfter: while the storage fails,
// writes and reads answer 503 SERVICE_UNAVAILABLE with Retry-After and a
// message that does not leak the fault's details; afterwards they work.
func TestStorageFaultAnswers503WithRetryAfter(t *testing.T) {
	g, fs := newFaultyGateway(t)
	runID := g.launch("echo", map[string]any{})
	g.waitRun(runID, "finished")

	fs.set(fmt.Errorf("%w: write /data/smithers.db-wal: no space left on device", host.ErrStorageUnavailable))
	for _, call := range []struct {
		method string
		params map[string]any
	}{
		{"launchRun", map[string]any{"workflow": "echo", "input": map[string]any{}}},
		{"getRun", map[string]any{"runId": runID}},
	} {
		res := g.rpc(tokAll, call.method, call.params)
		e := wantError(t, res, http.StatusServiceUnavailable, host.CodeServiceUnavailable)
		if got := res.header.Get("Retry-After"); got != retryAfterSeconds {
			t.Fatalf("%s: Retry-After %q, want %q", call.method, got, retryAfterSeconds)
		}
		if msg, _ := e["message"].(string); strings.Contains(msg, "/data") || strings.Contains(msg, "no space") {
			t.Fatalf("%s: message leaks the fault: %q", call.method, msg)
		}
	}
	// Other errors carry no Retry-After.
	if res := g.rpc(tokAll, "getRun", map[string]any{}); res.status != http.StatusBadRequest || res.header.Get("Retry-After") != "" {
		t.Fatalf("a caller's mistake during the fault: %d, Retry-After %q", res.status, res.header.Get("Retry-After"))
	}

	fs.set(nil)
	g.waitRun(g.launch("echo", map[string]any{}), "finished")
}
