package api

import (
	"strings"
	"testing"
)

func TestLegacyMethods(t *testing.T) {
	g := newTestGateway(t)
	echoRun := g.launch("echo", map[string]any{"n": 3})
	g.waitRun(echoRun, "finished")
	failRun := g.launch("failing", nil)
	g.waitRun(failRun, "waiting-approval")
	unsupported := func(t *testing.T, res response, method string) {
		t.Helper()
		e := wantError(t, res, 501, "UnsupportedSandbox")
		if msg, _ := e["message"].(string); !strings.HasPrefix(msg, method+" is not supported") {
			t.Fatalf("message %q", msg)
		}
	}
	cases := []methodCase{
		{name: "runs.rerun", method: "runs.rerun", params: map[string]any{"runId": echoRun, "newRunId": "rerun-copy"}, check: func(t *testing.T, p any) {
			jsonEqual(t, p, `{"runId":"rerun-copy","workflow":"echo"}`)
			jsonEqual(t, g.waitRun("rerun-copy", "finished")["output"], `{"obj":{"n":3},"scalar":42}`)
		}},
		{name: "runs.rerun new id", method: "runs.rerun", params: map[string]any{"runId": echoRun}, check: func(t *testing.T, p any) {
			if id, _ := obj(t, p)["runId"].(string); !uuidPattern.MatchString(id) {
				t.Fatalf("payload %v", p)
			}
		}},
		{name: "runs.rerun missing", method: "runs.rerun", params: map[string]any{}, status: 400, code: "INVALID_REQUEST", message: "runId is required"},
		{name: "runs.rerun unknown", method: "runs.rerun", params: map[string]any{"runId": "nope"}, status: 404, code: "NOT_FOUND", message: "Run not found: nope"},

		{name: "runs.diff missing", method: "runs.diff", params: map[string]any{"leftRunId": echoRun}, status: 400, code: "INVALID_REQUEST", message: "leftRunId and rightRunId are required"},
		{name: "runs.diff unknown", method: "runs.diff", params: map[string]any{"leftRunId": echoRun, "rightRunId": "nope"}, status: 404, code: "NOT_FOUND", message: "Both runs must exist"},

		{name: "frames.list missing", method: "frames.list", params: map[string]any{}, status: 400, code: "INVALID_REQUEST", message: "runId is required"},
		{name: "frames.list limit 0", method: "frames.list", params: map[string]any{"runId": echoRun, "limit": 0}, status: 400, code: "INVALID_INPUT"},
		{name: "frames.list afterFrameNo 0", method: "frames.list", params: map[string]any{"runId": echoRun, "afterFrameNo": 0}, status: 400, code: "INVALID_INPUT",
			message: "afterFrameNo must be a finite number greater than 0."},
		{name: "frames.list unknown", method: "frames.list", params: map[string]any{"runId": "nope"}, status: 404, code: "NOT_FOUND"},
		{name: "frames.get frameNo 0", method: "frames.get", params: map[string]any{"runId": echoRun, "frameNo": 0}, status: 400, code: "INVALID_INPUT"},
		{name: "frames.get unknown", method: "frames.get", params: map[string]any{"runId": "nope"}, status: 404, code: "NOT_FOUND"},

		{name: "attempts.list of a run", method: "attempts.list", params: map[string]any{"runId": echoRun}, check: func(t *testing.T, p any) {
			list := p.([]any)
			if len(list) != 2 || obj(t, list[0])["nodeId"] != "obj" || obj(t, list[1])["nodeId"] != "scalar" {
				t.Fatalf("list %v", p)
			}
			a := obj(t, list[0])
			want := []string{"runId", "nodeId", "iteration", "attempt", "state", "startedAtMs", "finishedAtMs", "heartbeatAtMs",
				"heartbeatDataJson", "errorJson", "jjPointer", "responseText", "jjCwd", "cached", "metaJson"}
			if len(a) != len(want) {
				t.Fatalf("attempt row %v", a)
			}
			for _, k := range want {
				if _, ok := a[k]; !ok {
					t.Fatalf("attempt row lacks %s: %v", k, a)
				}
			}
			if a["runId"] != echoRun || a["iteration"] != float64(0) || a["attempt"] != float64(1) || a["state"] != "finished" ||
				a["jjPointer"] != nil || a["cached"] != false || a["startedAtMs"] == nil || a["finishedAtMs"] == nil {
				t.Fatalf("attempt row %v", a)
			}
		}},
		{name: "attempts.list of a node", method: "attempts.list", params: map[string]any{"runId": failRun, "nodeId": "boom", "iteration": 0}, check: func(t *testing.T, p any) {
			list := p.([]any)
			if len(list) != 1 {
				t.Fatalf("list %v", p)
			}
			a := obj(t, list[0])
			if a["state"] != "failed" || !strings.Contains(a["errorJson"].(string), "boom") {
				t.Fatalf("attempt %v", a)
			}
		}},
		{name: "attempts.list of an unknown node", method: "attempts.list", params: map[string]any{"runId": echoRun, "nodeId": "nope"}, check: func(t *testing.T, p any) {
			jsonEqual(t, p, `[]`)
		}},
		{name: "attempts.list bad iteration", method: "attempts.list", params: map[string]any{"runId": echoRun, "nodeId": "obj", "iteration": "x"}, status: 400, code: "INVALID_REQUEST"},
		{name: "attempts.list missing", method: "attempts.list", params: map[string]any{}, status: 400, code: "INVALID_REQUEST", message: "runId is required"},
		{name: "attempts.list unknown", method: "attempts.list", params: map[string]any{"runId": "nope"}, status: 404, code: "NOT_FOUND"},

		{name: "attempts.get", method: "attempts.get", params: map[string]any{"runId": echoRun, "nodeId": "scalar", "iteration": 0, "attempt": 1}, check: func(t *testing.T, p any) {
			a := obj(t, p)
			if a["nodeId"] != "scalar" || a["attempt"] != float64(1) || a["state"] != "finished" {
				t.Fatalf("attempt %v", a)
			}
		}},
		{name: "attempts.get missing attempt", method: "attempts.get", params: map[string]any{"runId": echoRun, "nodeId": "scalar", "iteration": 0}, status: 400, code: "INVALID_REQUEST",
			message: "runId, nodeId, iteration, and attempt are required"},
		{name: "attempts.get string iteration", method: "attempts.get", params: map[string]any{"runId": echoRun, "nodeId": "scalar", "iteration": "0", "attempt": 1}, status: 400, code: "INVALID_REQUEST"},
		{name: "attempts.get absent attempt", method: "attempts.get", params: map[string]any{"runId": echoRun, "nodeId": "scalar", "iteration": 0, "attempt": 9}, status: 404, code: "NOT_FOUND",
			message: "Attempt not found"},
		{name: "attempts.get unknown run", method: "attempts.get", params: map[string]any{"runId": "nope", "nodeId": "scalar", "iteration": 0, "attempt": 1}, status: 404, code: "NOT_FOUND"},
	}
	runMethodCases(t, g, cases)

	unsupported(t, g.rpc(tokAll, "runs.diff", map[string]any{"leftRunId": echoRun, "rightRunId": failRun}), "runs.diff")
	unsupported(t, g.rpc(tokAll, "frames.list", map[string]any{"runId": echoRun, "limit": 5, "afterFrameNo": 2}), "frames.list")
	unsupported(t, g.rpc(tokAll, "frames.get", map[string]any{"runId": echoRun}), "frames.get")

	// The heartbeat of the failed attempt is in the row (as a JSON string).
	eventually(t, "heartbeat data on the attempt", func() bool {
		res := g.rpc(tokAll, "attempts.get", map[string]any{"runId": failRun, "nodeId": "boom", "iteration": 0, "attempt": 1})
		p, _ := res.body["payload"].(map[string]any)
		return p["heartbeatDataJson"] == `{"progress":0.5}`
	})
}
