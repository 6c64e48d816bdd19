package api

import (
	"context"
	"strings"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

func TestDevtoolsMethods(t *testing.T) {
	g := newTestGateway(t)
	run := g.launch("echo", nil) // launched by alice (tokAll)
	g.waitRun(run, "finished")
	unsupported := func(method string) func(*testing.T, response) {
		return func(t *testing.T, res response) {
			e := wantError(t, res, 501, "UnsupportedSandbox")
			if msg, _ := e["message"].(string); !strings.HasPrefix(msg, method+" is not supported") {
				t.Fatalf("message %q does not name %s", msg, method)
			}
		}
	}
	cases := []methodCase{
		{name: "hijackRun", method: "hijackRun", params: map[string]any{"runId": run, "options": map[string]any{"reason": "x"}}, check: func(t *testing.T, p any) {
			m := obj(t, p)
			if len(m) != 3 || m["runId"] != run || m["status"] != "hijack-ready" || !uuidPattern.MatchString(m["sessionId"].(string)) {
				t.Fatalf("payload %v", m)
			}
		}},
		{name: "hijackRun missing runId", method: "hijackRun", params: map[string]any{}, status: 400, code: "InvalidRunId", message: "runId is required"},
		{name: "hijackRun unknown", method: "hijackRun", params: map[string]any{"runId": "nope"}, status: 404, code: "RunNotFound", message: "Run not found: nope"},

		{name: "rewindRun missing runId", method: "rewindRun", params: map[string]any{"frameNo": 0}, status: 400, code: "InvalidRunId", message: "runId is required"},
		{name: "rewindRun frameNo not a number", method: "rewindRun", params: map[string]any{"runId": run, "frameNo": "0"}, status: 400, code: "InvalidFrameNo", message: "frameNo is required"},
		{name: "rewindRun unknown run", method: "rewindRun", params: map[string]any{"runId": "nope", "frameNo": 0}, status: 404, code: "RunNotFound"},
		{name: "rewindRun by another user", token: tokBob, method: "rewindRun", params: map[string]any{"runId": run, "frameNo": 0, "confirm": true}, status: 401, code: "Unauthorized",
			message: "Only the run owner or an admin may rewind this run."},
		{name: "rewindRun without a userId", token: tokRead, method: "rewindRun", params: map[string]any{}, status: 403, code: "FORBIDDEN"},
		{name: "rewindRun negative frameNo", method: "rewindRun", params: map[string]any{"runId": run, "frameNo": -1, "confirm": true}, status: 400, code: "InvalidFrameNo",
			message: "frameNo must be a non-negative i32 integer."},
		{name: "rewindRun fractional frameNo", method: "rewindRun", params: map[string]any{"runId": run, "frameNo": 1.5, "confirm": true}, status: 400, code: "InvalidFrameNo"},
		{name: "rewindRun frameNo beyond i32", method: "rewindRun", params: map[string]any{"runId": run, "frameNo": 2147483648, "confirm": true}, status: 400, code: "InvalidFrameNo"},
		{name: "rewindRun without confirm", method: "rewindRun", params: map[string]any{"runId": run, "frameNo": 0}, status: 400, code: "ConfirmationRequired"},
		{name: "rewindRun confirm not true", method: "rewindRun", params: map[string]any{"runId": run, "frameNo": 0, "confirm": "true"}, status: 400, code: "ConfirmationRequired"},

		{name: "getNodeDiff bad runId", method: "getNodeDiff", params: map[string]any{"runId": "Bad", "nodeId": "obj", "iteration": 0}, status: 400, code: "InvalidRunId"},
		{name: "getNodeDiff missing nodeId", method: "getNodeDiff", params: map[string]any{"runId": run, "iteration": 0}, status: 400, code: "InvalidNodeId"},
		{name: "getNodeDiff bad nodeId", method: "getNodeDiff", params: map[string]any{"runId": run, "nodeId": "a b", "iteration": 0}, status: 400, code: "InvalidNodeId"},
		{name: "getNodeDiff string iteration", method: "devtools.getNodeDiff", params: map[string]any{"runId": run, "nodeId": "obj", "iteration": "0"}, status: 400, code: "InvalidIteration"},
		{name: "getNodeDiff missing iteration", method: "getNodeDiff", params: map[string]any{"runId": run, "nodeId": "obj"}, status: 400, code: "InvalidIteration"},
		{name: "getNodeDiff unknown run", method: "getNodeDiff", params: map[string]any{"runId": "nope", "nodeId": "obj", "iteration": 0}, status: 404, code: "RunNotFound"},

		{name: "getDevToolsSnapshot missing runId", method: "getDevToolsSnapshot", params: map[string]any{}, status: 400, code: "InvalidRunId"},
		{name: "getDevToolsSnapshot bad runId", method: "getDevToolsSnapshot", params: map[string]any{"runId": strings.Repeat("a", 65)}, status: 400, code: "InvalidRunId"},
		{name: "getDevToolsSnapshot bad frameNo", method: "getDevToolsSnapshot", params: map[string]any{"runId": run, "frameNo": -1}, status: 400, code: "FrameOutOfRange"},
		{name: "getDevToolsSnapshot unknown run", method: "getDevToolsSnapshot", params: map[string]any{"runId": "nope"}, status: 404, code: "RunNotFound"},
	}
	runMethodCases(t, g, cases)

	for _, tc := range []struct {
		name, token, method string
		params              any
	}{
		{"rewindRun", tokAll, "rewindRun", map[string]any{"runId": run, "frameNo": 0, "confirm": true}},
		{"rewindRun by an admin", tokAdmin, "rewindRun", map[string]any{"runId": run, "frameNo": 3, "confirm": true}},
		{"jumpToFrame", tokAll, "jumpToFrame", map[string]any{"runId": run, "frameNo": 0, "confirm": true}},
		{"devtools.jumpToFrame", tokAll, "devtools.jumpToFrame", map[string]any{"runId": run, "frameNo": 0, "confirm": true}},
		{"getNodeDiff", tokAll, "getNodeDiff", map[string]any{"runId": run, "nodeId": "obj", "iteration": 0}},
		{"devtools.getNodeDiff", tokAll, "devtools.getNodeDiff", map[string]any{"runId": run, "nodeId": "obj", "iteration": 0}},
		{"getDevToolsSnapshot", tokObs, "getDevToolsSnapshot", map[string]any{"runId": run, "frameNo": 0}},
	} {
		t.Run(tc.name+" is not supported yet", func(t *testing.T) {
			unsupported(tc.method)(t, g.rpc(tc.token, tc.method, tc.params))
		})
	}
}

// TestStreamDevToolsValidation drives the handler the WebSocket transport
// runs (over HTTP the method is INVALID_REQUEST, see TestEnvelopeAndBareParams).
func TestStreamDevToolsValidation(t *testing.T) {
	g := newTestGateway(t)
	run := g.launch("echo", nil)
	g.waitRun(run, "finished")
	num := func(s string) any { return jsonNumber(s) }
	tests := []struct {
		name   string
		params params
		code   string
	}{
		{"missing runId", params{}, "InvalidRunId"},
		{"empty runId", params{"runId": ""}, "InvalidRunId"},
		{"conflicting seqs before the pattern", params{"runId": "BAD", "afterSeq": num("1"), "fromSeq": num("2")}, "SeqOutOfRange"},
		{"bad pattern", params{"runId": "BAD", "afterSeq": num("1"), "fromSeq": num("1.0")}, "InvalidRunId"},
		{"negative afterSeq", params{"runId": run, "afterSeq": num("-1")}, "SeqOutOfRange"},
		{"fractional fromSeq", params{"runId": run, "fromSeq": num("0.5")}, "SeqOutOfRange"},
		{"string afterSeq", params{"runId": run, "afterSeq": "1"}, "SeqOutOfRange"},
		{"afterSeq beyond 2^53-1", params{"runId": run, "afterSeq": num("9007199254740993")}, "SeqOutOfRange"},
		{"unknown run", params{"runId": "nope", "afterSeq": num("0")}, "RunNotFound"},
		{"known run", params{"runId": run}, "UnsupportedSandbox"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := g.srv.invoke(context.Background(), &call{method: "streamDevTools", params: tc.params,
				ident: host.Identity{Scopes: []string{"observability:read"}}, transport: "ws"})
			if got := host.ErrorCode(err); got != tc.code {
				t.Fatalf("code %q (%v), want %s", got, err, tc.code)
			}
		})
	}
}
