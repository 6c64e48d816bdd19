package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// TestWSRPCMatchesHTTP: every method answers the same over WebSocket as
// over HTTP: same payload, same error code, message and extra fields (the
// scope gate's requiredScope included).
func TestWSRPCMatchesHTTP(t *testing.T) {
	g := newWSGateway(t, wsOptions{})
	finished := g.launch("echo", map[string]any{"n": 1})
	g.waitRun(finished, "finished")
	parked := func(workflow, status string) func(t *testing.T) (string, map[string]any) {
		return func(t *testing.T) (string, map[string]any) {
			id := g.launch(workflow, map[string]any{})
			g.waitRun(id, status)
			return id, map[string]any{"runId": id}
		}
	}
	static := func(params map[string]any) func(t *testing.T) (string, map[string]any) {
		return func(*testing.T) (string, map[string]any) { return "", params }
	}
	tests := []struct {
		name, token, method string
		// setup makes fresh state for one transport; it returns the run
		// the call is about ("" for none) and the params.
		setup func(t *testing.T) (string, map[string]any)
		extra map[string]any // merged into the params
		code  string         // "" for success
		// shapeOnly compares the payloads' shape, not their values.
		shapeOnly bool
	}{
		{name: "launchRun", token: tokAll, method: "launchRun", setup: static(map[string]any{"workflow": "echo", "input": map[string]any{}}), shapeOnly: true},
		{name: "launchRun unknown workflow", token: tokAll, method: "launchRun", setup: static(map[string]any{"workflow": "nope"}), code: "NOT_FOUND"},
		{name: "getRun", token: tokAll, method: "getRun", setup: static(map[string]any{"runId": finished})},
		{name: "runs.get alias", token: tokRead, method: "runs.get", setup: static(map[string]any{"runId": finished})},
		{name: "getRun unknown run", token: tokAll, method: "getRun", setup: static(map[string]any{"runId": "nope"}), code: "NOT_FOUND"},
		{name: "getRun without runId", token: tokAll, method: "getRun", setup: static(map[string]any{}), code: "INVALID_REQUEST"},
		{name: "listRuns", token: tokRead, method: "listRuns", setup: static(map[string]any{"limit": 1}), shapeOnly: true},
		{name: "health", token: tokRead, method: "health", setup: static(map[string]any{}), shapeOnly: true},
		{name: "submitApproval", token: tokAll, method: "submitApproval", setup: parked("gate", "waiting-approval"),
			extra: map[string]any{"nodeId": "ship", "decision": map[string]any{"approved": true, "note": "ok"}}},
		{name: "submitApproval not waiting", token: tokAll, method: "submitApproval", setup: static(map[string]any{"runId": finished, "nodeId": "obj", "approved": true}), code: "INVALID_INPUT"},
		{name: "submitSignal", token: tokAll, method: "submitSignal", setup: parked("wait", "waiting-event"), extra: map[string]any{"signalName": "go", "data": map[string]any{"x": 1}}},
		{name: "submitSignal without name", token: tokAll, method: "submitSignal", setup: static(map[string]any{"runId": finished}), code: "INVALID_REQUEST"},
		{name: "cancelRun", token: tokAll, method: "cancelRun", setup: parked("sleepy", "waiting-timer")},
		{name: "cancelRun finished run", token: tokAll, method: "cancelRun", setup: static(map[string]any{"runId": finished}), code: "RUN_NOT_ACTIVE"},
		{name: "unknown method", token: tokAll, method: "noSuchMethod", setup: static(map[string]any{}), code: "METHOD_NOT_FOUND"},
		{name: "run:read cannot launch", token: tokRead, method: "launchRun", setup: static(map[string]any{"workflow": "echo"}), code: "FORBIDDEN"},
		{name: "run:read cannot approve", token: tokRead, method: "submitApproval", setup: static(map[string]any{}), code: "FORBIDDEN"},
		{name: "cron:read cannot read runs", token: tokCronRead, method: "getRun", setup: static(map[string]any{"runId": finished}), code: "FORBIDDEN"},
	}
	sockets := map[string]*wsClient{}
	for _, tok := range []string{tokAll, tokRead, tokCronRead} {
		sockets[tok] = g.connected(t, tok, map[string]any{"subscribe": []any{}})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			params := func() (string, map[string]any) {
				runID, p := tc.setup(t)
				if p != nil {
					p = merged(p, tc.extra)
				}
				return runID, p
			}
			httpRun, hp := params()
			res := g.rpc(tc.token, tc.method, hp)
			wsRun, wp := params()
			f := sockets[tc.token].call(tc.method, wp)
			if f.typ() != "res" || f.m["apiVersion"] != "v1" || f.id() == "" {
				t.Fatalf("ws response frame %s", f.raw)
			}
			if _, has := f.m["seq"]; has {
				t.Fatalf("response frame carries seq: %s", f.raw)
			}
			if tc.code != "" {
				he := wantError(t, res, statusOf(tc.code), tc.code)
				we := f.errorObject()
				if f.m["ok"] != false || we["version"] != "v1" {
					t.Fatalf("ws error frame %s", f.raw)
				}
				jsonEqual(t, we, mustJSONText(t, he))
				if tc.code == "FORBIDDEN" && we["requiredScope"] == nil {
					t.Fatalf("FORBIDDEN without requiredScope: %s", f.raw)
				}
				return
			}
			if res.status != 200 || res.body["ok"] != true || f.m["ok"] != true {
				t.Fatalf("http %d %s\nws %s", res.status, res.raw, f.raw)
			}
			hv, wv := normalize(res.body["payload"], httpRun), normalize(f.m["payload"], wsRun)
			if tc.shapeOnly {
				if hs, ws := shape(hv), shape(wv); hs != ws {
					t.Fatalf("payload shapes differ:\nhttp %s\nws   %s", hs, ws)
				}
				return
			}
			jsonEqual(t, wv, mustJSONText(t, hv))
		})
	}
	// The scope gate names the scope it wanted.
	f := sockets[tokRead].call("launchRun", map[string]any{"workflow": "echo"})
	if e := f.errorObject(); e["code"] != "FORBIDDEN" || e["requiredScope"] != "run:write" {
		t.Fatalf("run:read launchRun: %s", f.raw)
	}
}

func merged(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func mustJSONText(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// normalize replaces runID by "<run>" and drops the values that differ
// between two equal calls made a moment apart (times, generated ids).
func normalize(v any, runID string) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, val := range x {
			if strings.HasSuffix(k, "AtMs") || k == "computedAt" || k == "uptimeMs" {
				out[k] = "<time>"
				continue
			}
			out[k] = normalize(val, runID)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = normalize(val, runID)
		}
		return out
	case string:
		if runID != "" && x == runID {
			return "<run>"
		}
		if uuidPattern.MatchString(x) {
			return "<uuid>"
		}
		return x
	}
	return v
}

// shape describes a JSON value's structure: object keys and value kinds.
func shape(v any) string {
	switch x := v.(type) {
	case map[string]any:
		var b strings.Builder
		b.WriteString("{")
		for _, k := range sortedKeys(x) {
			b.WriteString(k + ":" + shape(x[k]) + ",")
		}
		return b.String() + "}"
	case []any:
		if len(x) == 0 {
			return "[]"
		}
		return "[" + shape(x[0]) + "...]"
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	}
	return "?"
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// TestWSBadFrames: a frame that cannot be parsed or validated is answered
// with id "invalid" and the socket stays open, before and after connect.
func TestWSBadFrames(t *testing.T) {
	g := newWSGateway(t, wsOptions{})
	tests := []struct {
		name, frame, code string
	}{
		{"not JSON", `nope`, "INVALID_INPUT"},
		{"two JSON values", `{"type":"req","id":"a","method":"health"} {}`, "INVALID_INPUT"},
		{"array", `[1]`, "INVALID_REQUEST"},
		{"string", `"req"`, "INVALID_REQUEST"},
		{"not a request", `{"type":"res","id":"a","method":"health"}`, "INVALID_FRAME"},
		{"no type", `{"id":"a","method":"health"}`, "INVALID_FRAME"},
		{"numeric id", `{"type":"req","id":1,"method":"health"}`, "INVALID_FRAME"},
		{"no id", `{"type":"req","method":"health"}`, "INVALID_FRAME"},
		{"id too long", `{"type":"req","id":"` + strings.Repeat("i", 129) + `","method":"health"}`, "INVALID_INPUT"},
		{"bad method name", `{"type":"req","id":"a","method":"bad method"}`, "INVALID_INPUT"},
		{"no method", `{"type":"req","id":"a"}`, "INVALID_INPUT"},
		{"too deep", `{"type":"req","id":"a","method":"health","params":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, "INVALID_INPUT"},
	}
	for _, connected := range []bool{false, true} {
		c := g.dial(t, "")
		if connected {
			c.ok("connect", g.connectParams(tokAll, nil))
		}
		for _, tc := range tests {
			mark := len(c.all())
			c.send(tc.frame)
			_, f := c.waitFor("answer to "+tc.name, mark, func(f wsFrame) bool { return f.typ() == "res" })
			e := f.errorObject()
			if f.id() != "invalid" || f.m["ok"] != false || f.m["apiVersion"] != "v1" || e["version"] != "v1" || e["message"] == "" {
				t.Fatalf("%s (connected %v): %s", tc.name, connected, f.raw)
			}
			if e["code"] != tc.code {
				t.Errorf("%s (connected %v): code %v, want %s", tc.name, connected, e["code"], tc.code)
			}
		}
		// Still open; binary messages are read as text.
		c.wmu.Lock()
		err := c.ws.WriteMessage(websocket.BinaryMessage, []byte(`{"type":"req","id":"bin","method":"connect","params":`+mustJSONText(t, g.connectParams(tokAll, nil))+`}`))
		c.wmu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		_, f := c.waitFor("binary connect", 0, func(f wsFrame) bool { return f.id() == "bin" })
		if f.m["ok"] != true {
			t.Fatalf("binary connect frame: %s", f.raw)
		}
		checkCounters(t, c.all())
	}
}

// TestWSInvalidUTF8ClosesWith1007: a text frame that is not valid UTF-8,
// before or after connect, and wherever the bad bytes are (inside a JSON
// string too), closes the socket with 1007 without being answered.
func TestWSInvalidUTF8ClosesWith1007(t *testing.T) {
	g := newWSGateway(t, wsOptions{})
	for _, tc := range []struct {
		name      string
		connected bool
		frame     string
	}{
		{"bare bytes", false, "\xff\xfe"},
		{"inside a JSON string", false, `{"type":"req","id":"a` + "\xc3\x28" + `","method":"health"}`},
		{"after connect", true, `{"type":"req","id":"a","method":"getRun","params":{"runId":"` + "\xed\xa0\x80" + `"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := g.dial(t, "")
			if tc.connected {
				c.ok("connect", g.connectParams(tokAll, nil))
			}
			mark := len(c.all())
			c.send(tc.frame)
			if code, reason := c.closed(); code != websocket.CloseInvalidFramePayloadData {
				t.Fatalf("closed with %d %q, want 1007", code, reason)
			}
			for _, f := range c.all()[mark:] {
				if f.typ() == "res" {
					t.Fatalf("the invalid frame was answered: %s", f.raw)
				}
			}
		})
	}
	// Valid UTF-8 beyond ASCII is fine.
	c := g.connected(t, tokAll, nil)
	if f := c.call("getRun", map[string]any{"runId": "ünïcødé"}); f.m["ok"] != false || !c.isOpen() {
		t.Fatalf("a valid multi-byte frame: %s", f.raw)
	}
}
