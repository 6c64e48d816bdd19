package api

import (
	"testing"
)

func TestGetNodeOutput(t *testing.T) {
	g := newTestGateway(t)
	echoRun := g.launch("echo", map[string]any{"n": 5})
	g.waitRun(echoRun, "finished")
	gateRun := g.launch("gate", nil)
	g.waitRun(gateRun, "waiting-approval")
	sleepRun := g.launch("sleepy", nil)
	g.waitRun(sleepRun, "waiting-timer")
	waitRun := g.launch("wait", nil)
	g.waitRun(waitRun, "waiting-event")
	g.ok("submitSignal", map[string]any{"runId": waitRun, "signalName": "go", "data": []any{1, 2}})
	g.waitRun(waitRun, "finished")
	failRun := g.launch("failing", nil)
	g.waitRun(failRun, "waiting-approval")

	at := func(runID, nodeID string, iteration any) map[string]any {
		return map[string]any{"runId": runID, "nodeId": nodeID, "iteration": iteration}
	}
	cases := []methodCase{
		{name: "object output", method: "getNodeOutput", params: at(echoRun, "obj", 0), check: func(t *testing.T, p any) {
			jsonEqual(t, p, `{"status":"produced","row":{"n":5},"schema":null}`)
		}},
		{name: "scalar output is wrapped", method: "devtools.getNodeOutput", params: at(echoRun, "scalar", "0"), check: func(t *testing.T, p any) {
			jsonEqual(t, p, `{"status":"produced","row":{"value":42},"schema":null}`)
		}},
		{name: "signal payload", method: "getNodeOutput", params: at(waitRun, "evt", 0), check: func(t *testing.T, p any) {
			jsonEqual(t, p, `{"status":"produced","row":{"value":[1,2]},"schema":null}`)
		}},
		{name: "waiting approval is pending", method: "getNodeOutput", params: at(gateRun, "ship", 0), check: func(t *testing.T, p any) {
			jsonEqual(t, p, `{"status":"pending","row":null,"schema":null}`)
		}},
		{name: "timer has no output", method: "getNodeOutput", params: at(sleepRun, "nap", 0), status: 404, code: "NodeHasNoOutput"},

		{name: "missing runId", method: "getNodeOutput", params: map[string]any{"nodeId": "obj", "iteration": 0}, status: 400, code: "InvalidRunId"},
		{name: "upper-case runId", method: "getNodeOutput", params: at("ABC", "obj", 0), status: 400, code: "InvalidRunId"},
		{name: "runId of 65 chars", method: "getNodeOutput", params: at("a123456789a123456789a123456789a123456789a123456789a123456789abcde", "obj", 0), status: 400, code: "InvalidRunId"},
		{name: "missing nodeId", method: "getNodeOutput", params: map[string]any{"runId": echoRun, "iteration": 0}, status: 400, code: "InvalidNodeId"},
		{name: "bad nodeId", method: "getNodeOutput", params: at(echoRun, "a/b", 0), status: 400, code: "InvalidNodeId"},
		{name: "missing iteration", method: "getNodeOutput", params: map[string]any{"runId": echoRun, "nodeId": "obj"}, status: 400, code: "InvalidIteration"},
		{name: "negative iteration", method: "getNodeOutput", params: at(echoRun, "obj", -1), status: 400, code: "InvalidIteration"},
		{name: "fractional iteration", method: "getNodeOutput", params: at(echoRun, "obj", 0.5), status: 400, code: "InvalidIteration"},
		{name: "iteration beyond i32", method: "getNodeOutput", params: at(echoRun, "obj", 2147483648), status: 400, code: "InvalidIteration"},
		{name: "non-numeric iteration", method: "getNodeOutput", params: at(echoRun, "obj", "x"), status: 400, code: "InvalidIteration"},
		{name: "empty string iteration", method: "getNodeOutput", params: at(echoRun, "obj", ""), status: 400, code: "InvalidIteration"},
		{name: "boolean iteration", method: "getNodeOutput", params: at(echoRun, "obj", true), status: 400, code: "InvalidIteration"},
		{name: "unknown run", method: "getNodeOutput", params: at("nope", "obj", 0), status: 404, code: "RunNotFound", message: "Run not found: nope"},
		{name: "unknown node", method: "getNodeOutput", params: at(echoRun, "nope", 0), status: 404, code: "NodeNotFound"},
		{name: "unknown iteration", method: "getNodeOutput", params: at(echoRun, "obj", 2147483647), status: 404, code: "IterationNotFound"},
	}
	runMethodCases(t, g, cases)

	// A failed task answers its last heartbeat as partial output.
	eventually(t, "failed output with partial", func() bool {
		res := g.rpc(tokAll, "getNodeOutput", at(failRun, "boom", 0))
		p, _ := res.body["payload"].(map[string]any)
		part, _ := p["partial"].(map[string]any)
		return p["status"] == "failed" && p["row"] == nil && part["progress"] == 0.5
	})
}
