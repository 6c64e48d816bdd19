package api

import (
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape is one GET /metrics through the network.
type scrape struct {
	header  http.Header
	types   map[string]string // family -> type
	order   []string          // families in the order of their TYPE lines
	samples []sample
}

func (g *wsGateway) scrape(t *testing.T) scrape {
	t.Helper()
	resp, err := http.Get(g.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	s := scrape{header: resp.Header, types: map[string]string{}}
	for _, line := range strings.Split(string(body), "\n") {
		switch {
		case line == "" || strings.HasPrefix(line, "# HELP "):
		case strings.HasPrefix(line, "# TYPE "):
			f := strings.Fields(line)
			if len(f) != 4 {
				t.Fatalf("TYPE line %q", line)
			}
			s.types[f[2]] = f[3]
			s.order = append(s.order, f[2])
		case strings.HasPrefix(line, "#"):
			t.Fatalf("unexpected comment %q", line)
		default:
			s.samples = append(s.samples, parseSample(t, line))
		}
	}
	return s
}

func parseSample(t *testing.T, line string) sample {
	t.Helper()
	sp := strings.LastIndexByte(line, ' ')
	if sp < 0 {
		t.Fatalf("sample line %q", line)
	}
	v, err := strconv.ParseFloat(line[sp+1:], 64)
	if err != nil {
		t.Fatalf("sample value in %q: %v", line, err)
	}
	s := sample{name: line[:sp], labels: map[string]string{}, value: v}
	if i := strings.IndexByte(s.name, '{'); i >= 0 {
		labels := strings.TrimSuffix(s.name[i+1:], "}")
		s.name = s.name[:i]
		// Our label values contain no commas, quotes or escapes.
		for _, pair := range strings.Split(labels, ",") {
			k, val, ok := strings.Cut(pair, "=")
			if !ok || len(val) < 2 || val[0] != '"' || val[len(val)-1] != '"' {
				t.Fatalf("label %q in %q", pair, line)
			}
			// A series carries only the labels it has, as upstream's do.
			if val = val[1 : len(val)-1]; val == "" {
				t.Fatalf("empty label %s in %q", k, line)
			}
			s.labels[k] = val
		}
	}
	return s
}

// value sums the samples of name whose labels include want.
func (s scrape) value(name string, want map[string]string) (float64, bool) {
	var sum float64
	found := false
	for _, smp := range s.samples {
		if smp.name != name {
			continue
		}
		match := true
		for k, v := range want {
			if smp.labels[k] != v {
				match = false
			}
		}
		if match {
			sum += smp.value
			found = true
		}
	}
	return sum, found
}

// want asserts the summed value of a series.
func (s scrape) want(t *testing.T, name string, labels map[string]string, want float64) {
	t.Helper()
	got, found := s.value(name, labels)
	if !found || got != want {
		t.Fatalf("%s%v = %v (present %v), want %v", name, labels, got, found, want)
	}
}

// wantMetric polls /metrics until the summed series has the value: a
// frame is counted as sent just after it was written, so a client may see
// it a moment before the counter moves.
func (g *wsGateway) wantMetric(t *testing.T, name string, labels map[string]string, want float64) {
	t.Helper()
	var got float64
	var found bool
	deadline := time.Now().Add(waitTimeout)
	for time.Now().Before(deadline) {
		if got, found = g.scrape(t).value(name, labels); found && got == want {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s%v = %v (present %v), want %v", name, labels, got, found, want)
}

// gatewayFamilies are the families of docs/operations.md this gateway
// implements, with their types.
var gatewayFamilies = map[string]string{
	"smithers_gateway_connections_total":                 "counter",
	"smithers_gateway_connections_active":                "gauge",
	"smithers_gateway_connections_closed_total":          "counter",
	"smithers_gateway_messages_received_total":           "counter",
	"smithers_gateway_messages_sent_total":               "counter",
	"smithers_gateway_rpc_calls_total":                   "counter",
	"smithers_gateway_rpc_duration_ms":                   "histogram",
	"smithers_gateway_errors_total":                      "counter",
	"smithers_gateway_auth_events_total":                 "counter",
	"smithers_gateway_heartbeat_ticks_total":             "counter",
	"smithers_gateway_runs_started_total":                "counter",
	"smithers_gateway_runs_completed_total":              "counter",
	"smithers_gateway_approval_decisions_total":          "counter",
	"smithers_gateway_signals_total":                     "counter",
	"smithers_gateway_cron_triggers_total":               "counter",
	"smithers_gateway_webhooks_received_total":           "counter",
	"smithers_gateway_webhooks_verified_total":           "counter",
	"smithers_gateway_webhooks_rejected_total":           "counter",
	"smithers_gateway_backpressure_disconnect_total":     "counter",
	"smithers_node_output_request_total":                 "counter",
	"smithers_node_output_bytes":                         "histogram",
	"smithers_node_output_duration_ms":                   "histogram",
	"smithers_node_output_schema_conversion_error_total": "counter",
}

// labelSets are the label keys the series of a family may carry
// (docs/operations.md), sorted and joined by commas.
var labelSets = map[string][]string{
	"smithers_gateway_messages_received_total": {"frameType,transport", "frameType,transport,workflow"},
	"smithers_gateway_messages_sent_total": {"frameType,outcome,transport", "event,frameType,transport",
		"frameType,outcome,route,transport,workflow"},
	"smithers_gateway_errors_total": {"code,kind,method,transport", "code,kind,transport", "code,kind,workflow",
		"kind,transport", "code,kind"},
	"smithers_gateway_auth_events_total": {"mode,outcome,transport"},
	"smithers_gateway_rpc_calls_total":   {"method,transport"},
}

// checkLabelSets fails on a series whose label keys are not among those
// of its family.
func checkLabelSets(t *testing.T, s scrape) {
	t.Helper()
	for _, smp := range s.samples {
		sets, ok := labelSets[smp.name]
		if !ok {
			continue
		}
		keys := make([]string, 0, len(smp.labels))
		for k := range smp.labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if got := strings.Join(keys, ","); !slices.Contains(sets, got) {
			t.Errorf("%s%v: labels %s, want one of %v", smp.name, smp.labels, got, sets)
		}
	}
}

// TestMetricsAtStartup: /metrics answers the Prometheus text format with
// the common headers, and every family exists, at zero, before any
// traffic.
func TestMetricsAtStartup(t *testing.T) {
	g := newWSGateway(t, wsOptions{})
	s := g.scrape(t)
	for k, v := range map[string]string{"Content-Type": "text/plain; version=0.0.4; charset=utf-8", "Cache-Control": "no-store",
		"X-Content-Type-Options": "nosniff", "X-Smithers-API-Version": "v1"} {
		if got := s.header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if !sort.StringsAreSorted(s.order) {
		t.Errorf("families are not sorted by name: %v", s.order)
	}
	for name, typ := range gatewayFamilies {
		if s.types[name] != typ {
			t.Errorf("family %s: type %q, want %s", name, s.types[name], typ)
			continue
		}
		sampleName := name
		if typ == "histogram" {
			sampleName = name + "_count"
		}
		if v, found := s.value(sampleName, nil); !found || v != 0 {
			t.Errorf("family %s: %v (present %v) before any traffic, want 0", name, v, found)
		}
	}
	// The histogram's buckets: 100·2^k ms, k = 0..11, and +Inf.
	var bounds []string
	for _, smp := range s.samples {
		if smp.name == "smithers_gateway_rpc_duration_ms_bucket" && smp.labels["method"] == "getRun" && smp.labels["transport"] == "ws" {
			bounds = append(bounds, smp.labels["le"])
		}
	}
	jsonEqual(t, bounds, `["100","200","400","800","1600","3200","6400","12800","25600","51200","102400","204800","+Inf"]`)
	checkLabelSets(t, s)
	// The configured auth mode is the one initialised; connect and
	// streamRunEvents exist over WebSocket only.
	s.want(t, "smithers_gateway_auth_events_total", map[string]string{"transport": "http", "mode": "token", "outcome": "failure"}, 0)
	for _, m := range []string{"connect", "streamRunEvents"} {
		if _, found := s.value("smithers_gateway_rpc_calls_total", map[string]string{"method": m, "transport": "http"}); found {
			t.Errorf("rpc_calls_total has an http series for %s", m)
		}
	}
	for _, wf := range []string{"echo", "gate"} {
		s.want(t, "smithers_gateway_runs_started_total", map[string]string{"workflow": wf}, 0)
		s.want(t, "smithers_gateway_runs_completed_total", map[string]string{"workflow": wf}, 0)
		s.want(t, "smithers_gateway_webhooks_rejected_total", map[string]string{"workflow": wf}, 0)
	}
}

// TestMetricsMoveWithTraffic: the counters count what a client did.
func TestMetricsMoveWithTraffic(t *testing.T) {
	g := newWSGateway(t, wsOptions{cfg: Config{HeartbeatInterval: 30 * time.Millisecond}})
	ws := map[string]string{"transport": "ws"}

	a := g.connected(t, tokAll, nil)
	s := g.scrape(t)
	s.want(t, "smithers_gateway_connections_total", ws, 1)
	s.want(t, "smithers_gateway_connections_active", ws, 1)
	s.want(t, "smithers_gateway_auth_events_total", map[string]string{"transport": "ws", "mode": "token", "outcome": "success"}, 1)
	s.want(t, "smithers_gateway_rpc_calls_total", map[string]string{"method": "connect", "transport": "ws"}, 1)

	// A failed connect: counted, then the socket closes.
	b := g.dial(t, "")
	b.call("connect", g.connectParams("", map[string]any{"auth": map[string]any{"token": "nope"}}))
	b.closed()
	c := g.connected(t, tokRead, nil)
	eventually(t, "the failed socket to be closed", func() bool {
		v, _ := g.scrape(t).value("smithers_gateway_connections_active", ws)
		return v == 2
	})
	s = g.scrape(t)
	s.want(t, "smithers_gateway_connections_total", ws, 3)
	g.wantMetric(t, "smithers_gateway_connections_closed_total", ws, 1)
	s.want(t, "smithers_gateway_auth_events_total", map[string]string{"transport": "ws", "outcome": "failure"}, 1)
	c.ws.Close()
	eventually(t, "connections_active to count the close", func() bool {
		v, _ := g.scrape(t).value("smithers_gateway_connections_active", ws)
		return v == 1
	})

	// A run with an approval, over the socket.
	runID := a.ok("launchRun", map[string]any{"workflow": "gate", "input": map[string]any{}})["runId"].(string)
	a.waitEvent("approval.requested", 0, func(p map[string]any) bool { return p["runId"] == runID })
	a.ok("submitApproval", map[string]any{"runId": runID, "nodeId": "ship", "approved": true})
	a.waitEvent("run.completed", 0, func(p map[string]any) bool { return p["runId"] == runID })
	waitRun := g.launch("wait", map[string]any{})
	g.waitRun(waitRun, "waiting-event")
	a.ok("submitSignal", map[string]any{"runId": waitRun, "signalName": "go"})
	g.waitRun(waitRun, "finished")
	if f := a.call("getRun", map[string]any{"runId": "nope"}); f.m["ok"] != false {
		t.Fatalf("getRun nope: %s", f.raw)
	}
	ticksSeen := 0
	for _, f := range a.all() {
		if f.isEvent("tick") {
			ticksSeen++
		}
	}
	if ticksSeen == 0 {
		a.waitEvent("tick", 0, nil)
		ticksSeen = 1
	}

	s = g.scrape(t)
	s.want(t, "smithers_gateway_approval_decisions_total", map[string]string{"outcome": "approved"}, 1)
	s.want(t, "smithers_gateway_approval_decisions_total", map[string]string{"outcome": "denied"}, 0)
	s.want(t, "smithers_gateway_signals_total", map[string]string{"outcome": "sent"}, 1)
	s.want(t, "smithers_gateway_runs_started_total", map[string]string{"workflow": "gate", "resume": "false"}, 1)
	s.want(t, "smithers_gateway_runs_completed_total", map[string]string{"workflow": "gate", "status": "finished"}, 1)
	s.want(t, "smithers_gateway_runs_completed_total", map[string]string{"workflow": "wait", "status": "finished"}, 1)
	s.want(t, "smithers_gateway_rpc_calls_total", map[string]string{"method": "launchRun", "transport": "ws"}, 1)
	s.want(t, "smithers_gateway_rpc_calls_total", map[string]string{"method": "launchRun", "transport": "http"}, 1)
	s.want(t, "smithers_gateway_rpc_duration_ms_count", map[string]string{"method": "submitApproval", "transport": "ws"}, 1)
	s.want(t, "smithers_gateway_errors_total", map[string]string{"kind": "rpc", "transport": "ws", "method": "getRun", "code": "NOT_FOUND"}, 1)
	// Requests on sockets: a: connect, launchRun, submitApproval,
	// submitSignal, getRun; b: connect; c: connect.
	s.want(t, "smithers_gateway_messages_received_total", map[string]string{"transport": "ws", "frameType": "request"}, 7)
	g.wantMetric(t, "smithers_gateway_messages_sent_total", map[string]string{"transport": "ws", "frameType": "response", "outcome": "error"}, 2)
	g.wantMetric(t, "smithers_gateway_messages_sent_total", map[string]string{"transport": "ws", "frameType": "response", "outcome": "ok"}, 5)
	eventually(t, "heartbeat_ticks_total to count the ticks the socket saw", func() bool {
		v, _ := g.scrape(t).value("smithers_gateway_heartbeat_ticks_total", nil)
		return v >= float64(ticksSeen)
	})
	g.wantMetric(t, "smithers_gateway_messages_sent_total", map[string]string{"transport": "ws", "frameType": "event", "event": "approval.requested"}, 1)
	s.want(t, "smithers_gateway_connections_active", ws, 1)

	// Errors that never reach a method: a refused credential, a body that
	// is not JSON, a WebSocket frame that is not one.
	wantError(t, g.post("/v1/rpc/listRuns", "", "{}", "Authorization", "Bearer smithers_wrong"), http.StatusUnauthorized, "UNAUTHORIZED")
	wantError(t, g.post("/v1/rpc/listRuns", tokAll, "{not json"), http.StatusBadRequest, "INVALID_INPUT")
	a.send("{not json")
	a.waitFor("the bad frame's answer", 0, func(f wsFrame) bool { return f.typ() == "res" && f.id() == "invalid" })
	// getNodeOutput: a produced output and an unknown node.
	g.ok("getNodeOutput", map[string]any{"runId": runID, "nodeId": "ship", "iteration": 0})
	g.rpc(tokAll, "getNodeOutput", map[string]any{"runId": runID, "nodeId": "nope", "iteration": 0})
	s = g.scrape(t)
	s.want(t, "smithers_gateway_errors_total", map[string]string{"kind": "auth", "transport": "http", "code": "UNAUTHORIZED"}, 1)
	s.want(t, "smithers_gateway_errors_total", map[string]string{"kind": "http", "transport": "http", "code": "INVALID_INPUT"}, 1)
	s.want(t, "smithers_gateway_errors_total", map[string]string{"kind": "frame", "transport": "ws", "code": "INVALID_INPUT"}, 1)
	s.want(t, "smithers_node_output_request_total", map[string]string{"status": "produced"}, 1)
	s.want(t, "smithers_node_output_request_total", map[string]string{"status": "error"}, 1)
	s.want(t, "smithers_node_output_duration_ms_count", nil, 2)
	s.want(t, "smithers_node_output_bytes_count", nil, 1)
	checkLabelSets(t, s)
}

// TestMetricsUnknownMethodsAreBounded: a caller inventing method names,
// even with a token that holds no scope for them, does not grow /metrics:
// every family with a method label records them as "unknown".
func TestMetricsUnknownMethodsAreBounded(t *testing.T) {
	g := newWSGateway(t, wsOptions{})
	methodSeries := func(s scrape) int {
		n := 0
		for _, smp := range s.samples {
			if _, has := smp.labels["method"]; has {
				n++
			}
		}
		return n
	}
	before := methodSeries(g.scrape(t))
	const names = 500
	c := g.connected(t, tokCronRead, nil)
	for i := range names {
		name := "bogus" + strconv.Itoa(i)
		wantError(t, g.rpc(tokCronRead, name, map[string]any{}), http.StatusForbidden, "FORBIDDEN")
		if f := c.call(name+"Ws", map[string]any{}); f.m["ok"] != false {
			t.Fatalf("%s over ws: %s", name, f.raw)
		}
	}
	s := g.scrape(t)
	for _, smp := range s.samples {
		if strings.HasPrefix(smp.labels["method"], "bogus") {
			t.Fatalf("a series per invented method name: %s%v", smp.name, smp.labels)
		}
	}
	// One series per family and transport at most: calls, the duration
	// histogram (its buckets, sum and count) and the FORBIDDEN errors.
	if grown := methodSeries(s) - before; grown > 2*(1+15+1) {
		t.Fatalf("%d invented method names added %d series", 2*names, grown)
	}
	for _, transport := range []string{"http", "ws"} {
		unknown := map[string]string{"method": "unknown", "transport": transport}
		s.want(t, "smithers_gateway_rpc_calls_total", unknown, names)
		s.want(t, "smithers_gateway_rpc_duration_ms_count", unknown, names)
		s.want(t, "smithers_gateway_errors_total", map[string]string{"kind": "rpc", "method": "unknown", "transport": transport, "code": "FORBIDDEN"}, names)
	}
	checkLabelSets(t, s)
}
