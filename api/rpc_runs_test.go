package api

import (
	"net/http"
	"testing"
)

// methodCase is one call of a method-table test: params, and either the
// expected error (status, code, message when non-empty) or a check of the
// payload.
type methodCase struct {
	name    string
	token   string // default tokAll
	method  string
	params  any
	status  int
	code    string
	message string
	check   func(t *testing.T, payload any)
}

func runMethodCases(t *testing.T, g *testGateway, cases []methodCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.token
			if tok == "" {
				tok = tokAll
			}
			res := g.rpc(tok, tc.method, tc.params)
			checkCommonHeaders(t, tc.name, res.header)
			if tc.code == "" {
				if res.status != 200 || res.body["ok"] != true {
					t.Fatalf("%s: %d %s", tc.method, res.status, res.raw)
				}
				if _, has := res.body["payload"]; !has {
					t.Fatalf("no payload: %s", res.raw)
				}
				if tc.check != nil {
					tc.check(t, res.body["payload"])
				}
				return
			}
			e := wantError(t, res, tc.status, tc.code)
			if tc.message != "" && e["message"] != tc.message {
				t.Fatalf("message %q, want %q", e["message"], tc.message)
			}
		})
	}
}

func obj(t *testing.T, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v is not an object", v)
	}
	return m
}

func TestRunMethods(t *testing.T) {
	g := newTestGateway(t)
	echoRun := g.launch("echo", map[string]any{"n": 5})
	g.waitRun(echoRun, "finished")
	gateRun := g.launch("gate", nil)
	g.waitRun(gateRun, "waiting-approval")
	waitRun := g.launch("wait", nil)
	g.waitRun(waitRun, "waiting-event")
	sleepRun := g.launch("sleepy", nil)
	g.waitRun(sleepRun, "waiting-timer")

	runs := []methodCase{
		{name: "launchRun", method: "launchRun", params: map[string]any{"workflow": "echo", "input": map[string]any{"n": 1}, "runId": "given-id-1"},
			check: func(t *testing.T, p any) { jsonEqual(t, p, `{"runId":"given-id-1","workflow":"echo"}`) }},
		{name: "runs.create with options.runId", method: "runs.create", params: map[string]any{"workflow": "echo", "options": map[string]any{"runId": "given-id-2"}},
			check: func(t *testing.T, p any) { jsonEqual(t, p, `{"runId":"given-id-2","workflow":"echo"}`) }},
		{name: "launchRun generates a UUID", method: "launchRun", params: map[string]any{"workflow": "echo", "input": "not an object"},
			check: func(t *testing.T, p any) {
				if id, _ := obj(t, p)["runId"].(string); !uuidPattern.MatchString(id) {
					t.Fatalf("runId %q", id)
				}
			}},
		{name: "launchRun without workflow", method: "launchRun", params: map[string]any{}, status: 400, code: "INVALID_REQUEST", message: "workflow is required"},
		{name: "launchRun with non-string workflow", method: "launchRun", params: map[string]any{"workflow": 1}, status: 400, code: "INVALID_REQUEST", message: "workflow is required"},
		{name: "launchRun unknown workflow", method: "launchRun", params: map[string]any{"workflow": "nope"}, status: 404, code: "NOT_FOUND", message: "Unknown workflow: nope"},
		{name: "launchRun bad runId", method: "launchRun", params: map[string]any{"workflow": "echo", "runId": "UPPER"}, status: 400, code: "INVALID_INPUT"},
		{name: "launchRun runId of another workflow", method: "launchRun", params: map[string]any{"workflow": "gate", "runId": echoRun}, status: 409, code: "Busy"},

		{name: "getRun", method: "getRun", params: map[string]any{"runId": echoRun}, check: func(t *testing.T, p any) {
			m := obj(t, p)
			if m["runId"] != echoRun || m["status"] != "finished" || m["workflowKey"] != "echo" || m["workflowName"] != "echo" {
				t.Fatalf("row %v", m)
			}
			jsonEqual(t, m["summary"], `{"finished":2}`)
			jsonEqual(t, m["output"], `{"obj":{"n":5},"scalar":42}`)
			if rs := obj(t, m["runState"]); rs["state"] != "succeeded" || rs["runId"] != echoRun {
				t.Fatalf("runState %v", rs)
			}
			for _, k := range []string{"parentRunId", "workflowPath", "workflowHash", "createdAtMs", "startedAtMs", "finishedAtMs",
				"heartbeatAtMs", "runtimeOwnerId", "cancelRequestedAtMs", "hijackRequestedAtMs", "hijackTarget", "vcsType", "vcsRoot",
				"vcsRevision", "errorJson", "configJson"} {
				if _, ok := m[k]; !ok {
					t.Errorf("run row lacks %s", k)
				}
			}
		}},
		{name: "runs.get", method: "runs.get", params: map[string]any{"runId": gateRun}, check: func(t *testing.T, p any) {
			m := obj(t, p)
			if m["status"] != "waiting-approval" || obj(t, obj(t, m["runState"])["blocked"])["kind"] != "approval" {
				t.Fatalf("row %v", m)
			}
		}},
		{name: "getRun missing runId", method: "getRun", params: map[string]any{}, status: 400, code: "INVALID_REQUEST", message: "runId is required"},
		{name: "getRun unknown", method: "getRun", params: map[string]any{"runId": "nope"}, status: 404, code: "NOT_FOUND", message: "Run not found: nope"},

		{name: "listRuns", method: "listRuns", params: map[string]any{}, check: func(t *testing.T, p any) {
			if list := p.([]any); len(list) < 4 || obj(t, list[0])["workflowKey"] == nil {
				t.Fatalf("list %v", p)
			}
		}},
		{name: "runs.list with filter", method: "runs.list", params: map[string]any{"filter": map[string]any{"status": "waiting-event", "limit": 5}}, check: func(t *testing.T, p any) {
			list := p.([]any)
			if len(list) != 1 || obj(t, list[0])["runId"] != waitRun {
				t.Fatalf("list %v", p)
			}
		}},
		{name: "listRuns limit", method: "listRuns", params: map[string]any{"limit": "2"}, check: func(t *testing.T, p any) {
			if len(p.([]any)) != 2 {
				t.Fatalf("list %v", p)
			}
		}},
		{name: "listRuns limit 0", method: "listRuns", params: map[string]any{"limit": 0}, status: 400, code: "INVALID_INPUT", message: "limit must be a finite number greater than 0."},
		{name: "listRuns fractional limit", method: "listRuns", params: map[string]any{"limit": 1.5}, status: 400, code: "INVALID_INPUT", message: "limit must be an integer greater than 0."},

		{name: "listWorkflows", method: "listWorkflows", params: map[string]any{}, check: func(t *testing.T, p any) {
			list := p.([]any)
			if len(list) != 5 {
				t.Fatalf("list %v", p)
			}
			jsonEqual(t, list[0], `{"key":"echo","readableName":"Echo","description":"Returns its input","hasUi":false,"uiPath":null}`)
			jsonEqual(t, list[1], `{"key":"failing","hasUi":false,"uiPath":null}`)
		}},
		{name: "workflows.list hasUi", method: "workflows.list", params: map[string]any{"filter": map[string]any{"hasUi": true}}, check: func(t *testing.T, p any) {
			jsonEqual(t, p, `[]`)
		}},

		{name: "resumeRun terminal", method: "resumeRun", params: map[string]any{"runId": echoRun}, check: func(t *testing.T, p any) {
			jsonEqual(t, p, `{"runId":"`+echoRun+`","status":"already_terminal"}`)
		}},
		{name: "resumeRun parked", method: "resumeRun", params: map[string]any{"runId": gateRun, "options": map[string]any{"force": false}}, check: func(t *testing.T, p any) {
			jsonEqual(t, p, `{"runId":"`+gateRun+`","status":"resume_requested"}`)
		}},
		{name: "resumeRun missing", method: "resumeRun", params: map[string]any{}, status: 400, code: "INVALID_REQUEST", message: "runId is required"},
		{name: "resumeRun unknown", method: "resumeRun", params: map[string]any{"runId": "nope"}, status: 404, code: "NOT_FOUND"},

		{name: "listApprovals", method: "listApprovals", params: map[string]any{}, check: func(t *testing.T, p any) {
			list := p.([]any)
			if len(list) != 1 {
				t.Fatalf("list %v", p)
			}
			a := obj(t, list[0])
			if a["runId"] != gateRun || a["nodeId"] != "ship" || a["requestTitle"] != "Ship it?" || a["requestSummary"] != "please" ||
				a["approvalMode"] != "gate" || a["workflowKey"] != "gate" || a["iteration"] != float64(0) {
				t.Fatalf("approval %v", a)
			}
		}},
		{name: "approvals.list filtered", method: "approvals.list", params: map[string]any{"filter": map[string]any{"workflow": "echo"}}, check: func(t *testing.T, p any) {
			jsonEqual(t, p, `[]`)
		}},
		{name: "listApprovals limit 0", method: "listApprovals", params: map[string]any{"limit": 0}, status: 400, code: "INVALID_INPUT"},

		{name: "submitSignal missing", method: "submitSignal", params: map[string]any{"runId": waitRun}, status: 400, code: "INVALID_REQUEST", message: "runId and signalName are required"},
		{name: "submitSignal blank name", method: "submitSignal", params: map[string]any{"runId": waitRun, "signalName": "  "}, status: 400, code: "INVALID_INPUT", message: "Signal name must be a non-empty string."},
		{name: "submitSignal unknown run", method: "submitSignal", params: map[string]any{"runId": "nope", "signalName": "go"}, status: 404, code: "NOT_FOUND"},
		// The unmatched signal goes first: the "go" signal finishes the run, which
		// then takes no more signals.
		{name: "signals.send with a correlation key", method: "signals.send", params: map[string]any{"runId": waitRun, "correlationKey": "other"}, check: func(t *testing.T, p any) {
			m := obj(t, p)
			if m["signalName"] != "other" || m["correlationId"] != "other" || m["seq"] != float64(0) {
				t.Fatalf("signal %v", m)
			}
		}},
		{name: "submitSignal", method: "submitSignal", params: map[string]any{"runId": waitRun, "signalName": "go", "data": map[string]any{"x": 1}}, check: func(t *testing.T, p any) {
			m := obj(t, p)
			if m["runId"] != waitRun || m["seq"] != float64(1) || m["signalName"] != "go" || m["correlationId"] != nil || m["receivedAtMs"] == nil {
				t.Fatalf("signal %v", m)
			}
		}},

		{name: "submitApproval missing approved", method: "submitApproval", params: map[string]any{"runId": gateRun, "nodeId": "ship", "approved": "true"}, status: 400, code: "INVALID_REQUEST", message: "runId, nodeId, and approved are required"},
		{name: "submitApproval unknown run", method: "submitApproval", params: map[string]any{"runId": "nope", "nodeId": "ship", "approved": true}, status: 404, code: "NOT_FOUND"},
		{name: "submitApproval not waiting", method: "submitApproval", params: map[string]any{"runId": echoRun, "nodeId": "obj", "approved": true}, status: 400, code: "INVALID_INPUT"},
		{name: "submitApproval", method: "submitApproval", params: map[string]any{"runId": gateRun, "nodeId": "ship", "decision": map[string]any{"approved": true, "note": "ok"}}, check: func(t *testing.T, p any) {
			jsonEqual(t, p, `{"runId":"`+gateRun+`","nodeId":"ship","iteration":0,"approved":true}`)
		}},
		{name: "approvals.decide twice", method: "approvals.decide", params: map[string]any{"runId": gateRun, "nodeId": "ship", "approved": false}, status: 409, code: "AlreadyDecided",
			message: "Approval for ship has already been decided"},

		{name: "cancelRun parked", method: "cancelRun", params: map[string]any{"runId": sleepRun}, check: func(t *testing.T, p any) {
			jsonEqual(t, p, `{"runId":"`+sleepRun+`","status":"cancelling"}`)
		}},
		{name: "runs.cancel terminal", method: "runs.cancel", params: map[string]any{"runId": echoRun}, status: 409, code: "RUN_NOT_ACTIVE", message: "Run is not currently active"},
		{name: "cancelRun unknown", method: "cancelRun", params: map[string]any{"runId": "nope"}, status: 404, code: "NOT_FOUND"},
		{name: "cancelRun missing", method: "cancelRun", params: map[string]any{}, status: 400, code: "INVALID_REQUEST", message: "runId is required"},

		{name: "health", method: "health", params: map[string]any{}, check: func(t *testing.T, p any) {
			m := obj(t, p)
			if m["protocol"] != float64(1) || m["uptimeMs"] == nil || m["stateVersion"] == nil {
				t.Fatalf("health %v", m)
			}
			jsonEqual(t, m["features"], `["streaming","runs"]`)
		}},
	}
	runMethodCases(t, g, runs)

	// The effects of the calls above reach the runs.
	if out := g.waitRun(waitRun, "finished")["output"]; out == nil {
		t.Fatal("signalled run has no output")
	} else {
		jsonEqual(t, out, `{"x":1}`)
	}
	jsonEqual(t, g.waitRun(gateRun, "finished")["output"], `{"approved":true}`)
	g.waitRun(sleepRun, "cancelled")

	// AlreadyDecided flattens its extras into the error object.
	e := wantError(t, g.rpc(tokAll, "submitApproval", map[string]any{"runId": gateRun, "nodeId": "ship", "approved": true}), 409, "AlreadyDecided")
	if e["runId"] != gateRun || e["nodeId"] != "ship" || e["iteration"] != float64(0) || e["status"] != "approved" {
		t.Fatalf("extras %v", e)
	}
}

// TestLaunchRunIdempotencyKey: launching twice with the same
// options.idempotencyKey returns the same run, whatever the input and over
// either transport of the body; the key wins over options.runId; the same
// key on another workflow is another run.
func TestLaunchRunIdempotencyKey(t *testing.T) {
	g := newTestGateway(t)
	launch := func(params map[string]any) string {
		t.Helper()
		p := g.ok("launchRun", params).(map[string]any)
		return p["runId"].(string)
	}
	first := launch(map[string]any{"workflow": "echo", "input": map[string]any{"n": 1}, "options": map[string]any{"idempotencyKey": "order-17"}})
	g.waitRun(first, "finished")
	again := launch(map[string]any{"workflow": "echo", "input": map[string]any{"n": 2}, "options": map[string]any{"idempotencyKey": "order-17"}})
	if again != first {
		t.Fatalf("the same idempotency key launched run %s, then %s", first, again)
	}
	withRunID := launch(map[string]any{"workflow": "echo", "input": map[string]any{}, "options": map[string]any{"idempotencyKey": "order-17", "runId": "fresh-id"}})
	if withRunID != first {
		t.Fatalf("with options.runId the key gave run %s, want %s", withRunID, first)
	}
	if res := g.rpc(tokAll, "getRun", map[string]any{"runId": "fresh-id"}); res.status != http.StatusNotFound {
		t.Fatalf("a run fresh-id was created: %d %s", res.status, res.raw)
	}
	other := launch(map[string]any{"workflow": "gate", "input": map[string]any{}, "options": map[string]any{"idempotencyKey": "order-17"}})
	if other == first {
		t.Fatal("the same key on another workflow returned the echo run")
	}
	out := g.ok("getRun", map[string]any{"runId": first}).(map[string]any)["output"].(map[string]any)
	if out["obj"].(map[string]any)["n"] != float64(1) {
		t.Fatalf("the run's output %v: the first launch's input must stand", out)
	}
	runs := g.ok("listRuns", map[string]any{"limit": 100}).([]any)
	if len(runs) != 2 {
		t.Fatalf("%d runs, want 2 (one per workflow)", len(runs))
	}
}
