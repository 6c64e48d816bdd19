package api

import (
	"testing"
	"time"
)

func TestCronMethods(t *testing.T) {
	g := newTestGateway(t)
	now := float64(time.Now().UnixMilli())
	var firstCronID string
	var nightlyCreated any
	cases := []methodCase{
		{name: "cronCreate", method: "cronCreate", params: map[string]any{"workflow": "echo", "pattern": "*/5 * * * *"}, check: func(t *testing.T, p any) {
			m := obj(t, p)
			firstCronID, _ = m["cronId"].(string)
			if !uuidPattern.MatchString(firstCronID) || m["pattern"] != "*/5 * * * *" || m["workflowPath"] != "gateway:echo" || m["enabled"] != true ||
				m["lastRunAtMs"] != nil || m["errorJson"] != nil || m["workflow"] != "echo" || len(m) != 9 {
				t.Fatalf("row %v", m)
			}
			if c, _ := m["createdAtMs"].(float64); c < now {
				t.Fatalf("createdAtMs %v", m["createdAtMs"])
			}
			if n, _ := m["nextRunAtMs"].(float64); n <= now || n > now+5*60*1000+1000 {
				t.Fatalf("nextRunAtMs %v", m["nextRunAtMs"])
			}
		}},
		{name: "cron.add with id and enabled", method: "cron.add", params: map[string]any{"workflow": "echo", "pattern": "0 8 * * 1-5", "cronId": "nightly", "enabled": false},
			check: func(t *testing.T, p any) {
				m := obj(t, p)
				nightlyCreated = m["createdAtMs"]
				if m["cronId"] != "nightly" || m["enabled"] != false {
					t.Fatalf("row %v", m)
				}
			}},
		{name: "cronCreate upserts", method: "cronCreate", params: map[string]any{"workflow": "gate", "pattern": "@daily", "cronId": "nightly"}, check: func(t *testing.T, p any) {
			m := obj(t, p)
			if m["pattern"] != "@daily" || m["workflow"] != "gate" || m["workflowPath"] != "gateway:gate" || m["enabled"] != true || m["createdAtMs"] != nightlyCreated {
				t.Fatalf("row %v (created %v)", m, nightlyCreated)
			}
		}},
		{name: "cronCreate with seconds field", method: "cronCreate", params: map[string]any{"workflow": "echo", "pattern": "30 */5 * * * *", "cronId": "secs"}},
		{name: "cronCreate missing pattern", method: "cronCreate", params: map[string]any{"workflow": "echo"}, status: 400, code: "INVALID_REQUEST", message: "workflow and pattern are required"},
		{name: "cronCreate missing workflow", method: "cron.add", params: map[string]any{"pattern": "* * * * *"}, status: 400, code: "INVALID_REQUEST", message: "workflow and pattern are required"},
		{name: "cronCreate unknown workflow", method: "cronCreate", params: map[string]any{"workflow": "nope", "pattern": "* * * * *"}, status: 404, code: "NOT_FOUND", message: "Unknown workflow: nope"},
		{name: "cronCreate bad pattern", method: "cronCreate", params: map[string]any{"workflow": "echo", "pattern": "61 * * * *"}, status: 400, code: "INVALID_INPUT"},
		{name: "cronCreate garbage pattern", method: "cronCreate", params: map[string]any{"workflow": "echo", "pattern": "every day"}, status: 400, code: "INVALID_INPUT"},

		{name: "cronList", method: "cronList", params: map[string]any{}, check: func(t *testing.T, p any) {
			list := p.([]any)
			if len(list) != 3 || obj(t, list[0])["cronId"] != firstCronID || obj(t, list[1])["cronId"] != "nightly" || obj(t, list[2])["cronId"] != "secs" {
				t.Fatalf("list %v", p)
			}
		}},
		{name: "cron.list filter", method: "cron.list", params: map[string]any{"filter": map[string]any{"workflow": "gate"}}, check: func(t *testing.T, p any) {
			list := p.([]any)
			if len(list) != 1 || obj(t, list[0])["cronId"] != "nightly" {
				t.Fatalf("list %v", p)
			}
		}},
		{name: "cronList ignores a top-level workflow", method: "cronList", params: map[string]any{"workflow": "gate"}, check: func(t *testing.T, p any) {
			if len(p.([]any)) != 3 {
				t.Fatalf("list %v", p)
			}
		}},
		{name: "cronList unknown workflow", method: "cronList", params: map[string]any{"filter": map[string]any{"workflow": "nope"}}, check: func(t *testing.T, p any) {
			jsonEqual(t, p, `[]`)
		}},

		{name: "cronRun by workflow", method: "cronRun", params: map[string]any{"workflow": "echo", "input": map[string]any{"n": 7}}, check: func(t *testing.T, p any) {
			m := obj(t, p)
			id, _ := m["runId"].(string)
			if m["workflow"] != "echo" || !uuidPattern.MatchString(id) {
				t.Fatalf("payload %v", m)
			}
			jsonEqual(t, g.waitRun(id, "finished")["output"], `{"obj":{"n":7},"scalar":42}`)
		}},
		{name: "cron.trigger by cronId wins over workflow", method: "cron.trigger", params: map[string]any{"cronId": "nightly", "workflow": "echo"}, check: func(t *testing.T, p any) {
			m := obj(t, p)
			if m["workflow"] != "gate" {
				t.Fatalf("payload %v", m)
			}
			g.waitRun(m["runId"].(string), "waiting-approval")
		}},
		{name: "cronRun unknown cronId falls back to workflow", method: "cronRun", params: map[string]any{"cronId": "nope", "workflow": "echo"}, check: func(t *testing.T, p any) {
			if obj(t, p)["workflow"] != "echo" {
				t.Fatalf("payload %v", p)
			}
		}},
		{name: "cronRun unknown cronId alone", method: "cronRun", params: map[string]any{"cronId": "nope"}, status: 400, code: "INVALID_REQUEST", message: "cronId or workflow is required"},
		{name: "cronRun without either", method: "cronRun", params: map[string]any{}, status: 400, code: "INVALID_REQUEST", message: "cronId or workflow is required"},
		{name: "cronRun unknown workflow", method: "cronRun", params: map[string]any{"workflow": "nope"}, status: 404, code: "NOT_FOUND", message: "Unknown workflow: nope"},

		{name: "cronDelete", method: "cronDelete", params: map[string]any{"cronId": "secs"}, check: func(t *testing.T, p any) {
			jsonEqual(t, p, `{"cronId":"secs","removed":true}`)
		}},
		{name: "cron.remove unknown", method: "cron.remove", params: map[string]any{"cronId": "secs"}, status: 404, code: "NOT_FOUND", message: "Cron not found: secs"},
		{name: "cronDelete missing", method: "cronDelete", params: map[string]any{}, status: 400, code: "INVALID_REQUEST", message: "cronId is required"},

		{name: "cron:read lists", token: tokCronRead, method: "cronList", params: map[string]any{}},
		{name: "cron:read cannot trigger", token: tokCronRead, method: "cronRun", params: map[string]any{}, status: 403, code: "FORBIDDEN"},
	}
	runMethodCases(t, g, cases)

	// Each manual trigger starts a new run and stamps the cron.
	a := obj(t, g.ok("cronRun", map[string]any{"cronId": "nightly"}))["runId"]
	b := obj(t, g.ok("cronRun", map[string]any{"cronId": "nightly"}))["runId"]
	if a == b {
		t.Fatalf("two triggers answered the same run %v", a)
	}
	for _, c := range g.ok("cronList", map[string]any{}).([]any) {
		if m := obj(t, c); m["cronId"] == "nightly" {
			if last, _ := m["lastRunAtMs"].(float64); last < now {
				t.Fatalf("lastRunAtMs %v", m["lastRunAtMs"])
			}
		}
	}
}
