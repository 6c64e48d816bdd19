package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/testkit"
)

// runTimeout bounds how long a run may take to reach an awaited status.
const runTimeout = 15 * time.Second

var httpClient = &http.Client{Timeout: 10 * time.Second}

// frame is a v1 RPC response frame.
type frame struct {
	Type       string          `json:"type"`
	ID         string          `json:"id"`
	OK         bool            `json:"ok"`
	APIVersion string          `json:"apiVersion"`
	Payload    json.RawMessage `json:"payload"`
	Error      *wireError      `json:"error"`
}

type wireError struct {
	Version string `json:"version"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// runRow is the part of getRun's payload the tests look at.
type runRow struct {
	RunID        string          `json:"runId"`
	WorkflowKey  string          `json:"workflowKey"`
	Status       string          `json:"status"`
	Output       json.RawMessage `json:"output"`
	ErrorJSON    *string         `json:"errorJson"`
	CreatedAtMs  int64           `json:"createdAtMs"`
	FinishedAtMs *int64          `json:"finishedAtMs"`
}

type approvalSummary struct {
	RunID        string `json:"runId"`
	NodeID       string `json:"nodeId"`
	WorkflowKey  string `json:"workflowKey"`
	RequestTitle string `json:"requestTitle"`
}

// postRPC calls POST /v1/rpc/<method> with params as the body and, when
// token is not empty, a bearer token. It returns the HTTP status and the
// decoded frame.
func postRPC(t *testing.T, url, token, method string, params any) (int, frame) {
	t.Helper()
	status, f, err := tryRPC(url, token, method, params)
	if err != nil {
		t.Fatal(err)
	}
	return status, f
}

// tryRPC is postRPC for callers that expect the gateway to be gone at
// times (killed, restarting) or that run off the test goroutine: a
// transport error or an answer that is not a frame is returned, never
// fatal.
func tryRPC(url, token, method string, params any) (int, frame, error) {
	var f frame
	body, err := json.Marshal(params)
	if err != nil {
		return 0, f, fmt.Errorf("marshal %s params: %w", method, err)
	}
	req, err := http.NewRequest(http.MethodPost, url+"/v1/rpc/"+method, bytes.NewReader(body))
	if err != nil {
		return 0, f, fmt.Errorf("%s request: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, f, fmt.Errorf("POST %s: %w", method, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, f, fmt.Errorf("read %s response: %w", method, err)
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return resp.StatusCode, f, fmt.Errorf("%s answered %d with a body that is not a frame: %w\n%s", method, resp.StatusCode, err, raw)
	}
	return resp.StatusCode, f, nil
}

// rpc calls method with the gateway's token and returns the payload; the
// test fails unless the call succeeded.
func (g *Gateway) rpc(method string, params any) json.RawMessage {
	g.t.Helper()
	return g.rpcAs(g.Token, method, params)
}

func (g *Gateway) rpcAs(token, method string, params any) json.RawMessage {
	g.t.Helper()
	status, f := postRPC(g.t, g.URL, token, method, params)
	if status != http.StatusOK || !f.OK || f.Type != "res" || f.APIVersion != "v1" {
		g.t.Fatalf("%s %v: HTTP %d, frame ok=%v type=%q apiVersion=%q error=%+v", method, params, status, f.OK, f.Type, f.APIVersion, f.Error)
	}
	return f.Payload
}

// launch starts a run of workflow and returns its runId.
func (g *Gateway) launch(workflow string, input any) string {
	g.t.Helper()
	var out struct {
		RunID    string `json:"runId"`
		Workflow string `json:"workflow"`
	}
	decode(g.t, g.rpc("launchRun", map[string]any{"workflow": workflow, "input": input}), &out)
	if out.RunID == "" || out.Workflow != workflow {
		g.t.Fatalf("launchRun answered %+v", out)
	}
	return out.RunID
}

func (g *Gateway) getRun(runID string) runRow {
	g.t.Helper()
	var r runRow
	decode(g.t, g.rpc("getRun", map[string]any{"runId": runID}), &r)
	return r
}

func (g *Gateway) approve(runID, nodeID string) {
	g.t.Helper()
	g.rpc("submitApproval", map[string]any{"runId": runID, "nodeId": nodeID, "decision": map[string]any{"approved": true}})
}

func (g *Gateway) listApprovals() []approvalSummary {
	g.t.Helper()
	var list []approvalSummary
	decode(g.t, g.rpc("listApprovals", map[string]any{}), &list)
	return list
}

// waitStatus polls getRun until the run has status want; a run that ends
// in another terminal status fails the test at once.
func (g *Gateway) waitStatus(runID, want string) runRow {
	g.t.Helper()
	deadline := time.Now().Add(runTimeout)
	var r runRow
	for {
		r = g.getRun(runID)
		if r.Status == want {
			return r
		}
		if isTerminal(r.Status) {
			g.t.Fatalf("run %s is %s, want %s; errorJson: %s", runID, r.Status, want, deref(r.ErrorJSON))
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("run %s still %s after %v, want %s", runID, r.Status, runTimeout, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func isTerminal(status string) bool {
	return status == "finished" || status == "failed" || status == "cancelled"
}

func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}

func decode(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}

// assertJSON fails unless got and want are the same JSON value.
func assertJSON(t *testing.T, what string, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v in %s", what, err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad expectation %s: %v", what, want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("%s = %s, want %s", what, gb, wb)
	}
}

// eventually polls cond every 20 ms until it holds, failing the test after
// timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, timeout, what, cond)
}

// writeModule writes src as gateway.mjs in a new temp dir and returns its
// path.
func writeModule(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gateway.mjs")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// exampleModule is the path of examples/<name>/gateway.mjs.
func exampleModule(name string) string {
	return filepath.Join(moduleRoot, "examples", name, "gateway.mjs")
}

// countLines counts the lines of path equal to word (0 if it is missing).
func countLines(t *testing.T, path, word string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) == word {
			n++
		}
	}
	return n
}

// logSoon reports whether a log line of that level containing every word
// shows up in the gateway's stderr within a few seconds: stderr is copied
// apart from stdout, so a line written before the listening line may reach
// the test after it.
func logSoon(g *Gateway, level string, words ...string) bool {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if hasLog(g.Stderr(), level, words...) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hasLog reports whether a JSON log line at level mentions every one of
// words (in any field).
func hasLog(stderr, level string, words ...string) bool {
	for _, l := range strings.Split(stderr, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil || m["level"] != level {
			continue
		}
		found := true
		for _, w := range words {
			if !strings.Contains(l, w) {
				found = false
				break
			}
		}
		if found {
			return true
		}
	}
	return false
}
