package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestStreamRunEventsValidation(t *testing.T) {
	g := newWSGateway(t, wsOptions{})
	runID := g.launch("echo", map[string]any{})
	g.waitRun(runID, "finished")
	c := g.connected(t, tokAll, nil)
	current := c.ok("streamRunEvents", map[string]any{"runId": runID})["currentSeq"].(float64)
	if current != 7 { // 3 events for each of two tasks, run.completed
		t.Fatalf("currentSeq %v, want 7", current)
	}
	const badSeq = "afterSeq must be a non-negative integer"
	tests := []struct {
		name          string
		params        string
		code, message string
	}{
		{"no params", `null`, "InvalidRunId", "runId is required"},
		{"missing runId", `{}`, "InvalidRunId", "runId is required"},
		{"empty runId", `{"runId":""}`, "InvalidRunId", "runId is required"},
		{"numeric runId", `{"runId":7}`, "InvalidRunId", "runId is required"},
		{"runId before afterSeq", `{"afterSeq":-1}`, "InvalidRunId", "runId is required"},
		{"negative afterSeq", `{"runId":"RUN","afterSeq":-1}`, "SeqOutOfRange", badSeq},
		{"fractional afterSeq", `{"runId":"RUN","afterSeq":1.5}`, "SeqOutOfRange", badSeq},
		{"string afterSeq", `{"runId":"RUN","afterSeq":"1"}`, "SeqOutOfRange", badSeq},
		{"null afterSeq", `{"runId":"RUN","afterSeq":null}`, "SeqOutOfRange", badSeq},
		{"bool afterSeq", `{"runId":"RUN","afterSeq":true}`, "SeqOutOfRange", badSeq},
		{"afterSeq before lookup", `{"runId":"nope","afterSeq":-1}`, "SeqOutOfRange", badSeq},
		{"unknown run", `{"runId":"nope"}`, "RunNotFound", "Run not found: nope"},
		{"unknown run with afterSeq", `{"runId":"nope","afterSeq":0}`, "RunNotFound", "Run not found: nope"},
		{"afterSeq too new", `{"runId":"RUN","afterSeq":8}`, "SeqOutOfRange", "afterSeq 8 is newer than current seq 7"},
		{"afterSeq too new as a float", `{"runId":"RUN","afterSeq":8.0}`, "SeqOutOfRange", "afterSeq 8 is newer than current seq 7"},
		{"afterSeq beyond int64", `{"runId":"RUN","afterSeq":1e30}`, "SeqOutOfRange", "afterSeq 9223372036854775807 is newer than current seq 7"},
		{"afterSeq beyond float64", `{"runId":"RUN","afterSeq":1e400}`, "SeqOutOfRange", badSeq},
		{"afterSeq far too new", `{"runId":"RUN","afterSeq":1000}`, "SeqOutOfRange", "afterSeq 1000 is newer than current seq 7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Sent as written: 8.0 must reach the gateway as 8.0.
			var params any = json.RawMessage(replaceRun(tc.params, runID))
			if tc.params == "null" {
				params = nil
			}
			f := c.call("streamRunEvents", params)
			e := f.errorObject()
			if f.m["ok"] != false || e["code"] != tc.code || e["message"] != tc.message || e["version"] != "v1" || f.m["apiVersion"] != "v1" {
				t.Fatalf("got %s, want %s %q", f.raw, tc.code, tc.message)
			}
		})
	}
	t.Run("over HTTP", func(t *testing.T) {
		e := wantError(t, g.rpc(tokAll, "streamRunEvents", map[string]any{"runId": runID}), http.StatusBadRequest, "INVALID_REQUEST")
		if e["message"] != "streamRunEvents is only supported over websocket connections" {
			t.Fatalf("message %q", e["message"])
		}
	})
	t.Run("scope", func(t *testing.T) {
		f := g.connected(t, tokCronRead, nil).call("streamRunEvents", map[string]any{"runId": runID})
		if e := f.errorObject(); e["code"] != "FORBIDDEN" || e["requiredScope"] != "run:read" {
			t.Fatalf("cron:read token: %s", f.raw)
		}
	})
	// An integral afterSeq written as a float is that integer, as with
	// upstream's Number.isInteger.
	for _, text := range []string{"7.0", "0.7e1", "70e-1"} {
		params := json.RawMessage(`{"runId":"` + runID + `","afterSeq":` + text + `}`)
		if p := c.ok("streamRunEvents", params); p["afterSeq"] != float64(7) {
			t.Fatalf("afterSeq %s: response %v", text, p)
		}
	}
	// afterSeq equal to the current seq is valid: nothing to replay.
	p := c.ok("streamRunEvents", map[string]any{"runId": runID, "afterSeq": 7})
	if p["afterSeq"] != float64(7) || p["currentSeq"] != float64(7) || p["runId"] != runID || !uuidPattern.MatchString(p["streamId"].(string)) {
		t.Fatalf("response %v", p)
	}
	if len(p) != 4 {
		t.Fatalf("response keys %v, want streamId, runId, afterSeq, currentSeq", p)
	}
}

func replaceRun(s, runID string) string {
	out := []byte{}
	for i := 0; i < len(s); i++ {
		if i+3 <= len(s) && s[i:i+3] == "RUN" {
			out = append(out, runID...)
			i += 2
			continue
		}
		out = append(out, s[i])
	}
	return string(out)
}

// streamView is what one stream delivered on a socket.
type streamView struct {
	response  wsFrame
	resIndex  int
	seqs      []int64
	completed int // run.event frames carrying run.completed
	firstAt   int // index of the stream's first run.event frame (-1: none)
	lastAt    int
}

// collectStream waits until the stream delivered run.completed and returns
// what it delivered, checking every run.event frame's shape.
func collectStream(t *testing.T, c *wsClient, reqID string) streamView {
	t.Helper()
	resIndex, res := c.waitFor("streamRunEvents response", 0, func(f wsFrame) bool { return f.id() == reqID })
	if res.m["ok"] != true {
		t.Fatalf("streamRunEvents: %s", res.raw)
	}
	streamID := res.payload()["streamId"].(string)
	runID := res.payload()["runId"].(string)
	c.waitEvent("run.event", 0, func(p map[string]any) bool { return p["streamId"] == streamID && p["event"] == "run.completed" })
	v := streamView{response: res, resIndex: resIndex, firstAt: -1}
	for i, f := range c.all() {
		p := f.payload()
		if !f.isEvent("run.event") || p["streamId"] != streamID {
			continue
		}
		if v.firstAt < 0 {
			v.firstAt = i
		}
		v.lastAt = i
		if p["apiVersion"] != "v1" || p["type"] != "RunEvent" || p["runId"] != runID || p["payload"] == nil ||
			num(t, p, "stateVersion") > num(t, f.m, "stateVersion") || len(p) != 8 {
			t.Fatalf("run.event frame %s", f.raw)
		}
		if inner := p["payload"].(map[string]any); inner["runId"] != runID {
			t.Fatalf("run.event payload of another run: %s", f.raw)
		}
		v.seqs = append(v.seqs, num(t, p, "seq"))
		if p["event"] == "run.completed" {
			v.completed++
		}
	}
	return v
}

// (A live run.event frame carries its broadcast's stateVersion, the same
// as the record's; a replayed one the current value, which is not less.)

// checkSeqs asserts that seqs are exactly from..to.
func checkSeqs(t *testing.T, what string, seqs []int64, from, to int64) {
	t.Helper()
	if int64(len(seqs)) != to-from+1 {
		t.Fatalf("%s: %d events %v, want seqs %d..%d", what, len(seqs), seqs, from, to)
	}
	for i, s := range seqs {
		if s != from+int64(i) {
			t.Fatalf("%s: seqs %v, want %d..%d (gap or duplicate at %d)", what, seqs, from, to, i)
		}
	}
}

// TestStreamRunEventsReplayThenLive: streams started at different afterSeq
// values while the run keeps producing events each get exactly the events
// after afterSeq, in seq order, replay then live, without gap or duplicate,
// the response first, and run.completed once.
func TestStreamRunEventsReplayThenLive(t *testing.T) {
	g := newWSGateway(t, wsOptions{})
	const first, second = 30, 40
	base := g.connected(t, tokAll, map[string]any{"subscribe": []any{"busy"}})
	g.launchWith("busy", "many", map[string]any{"first": first, "second": second, "hold": true, "delayMs": 2})
	baseReq := base.request("streamRunEvents", map[string]any{"runId": "busy", "afterSeq": 0})

	type started struct {
		c        *wsClient
		reqID    string
		afterSeq int64 // -1: live only
	}
	var mu sync.Mutex
	var streams []started
	start := func(afterSeq int64, sameSocket bool) {
		c := base
		if !sameSocket {
			c = g.connected(t, tokAll, map[string]any{"subscribe": []any{"busy"}})
		}
		params := map[string]any{"runId": "busy"}
		if afterSeq >= 0 {
			params["afterSeq"] = afterSeq
		}
		id := c.request("streamRunEvents", params)
		mu.Lock()
		streams = append(streams, started{c, id, afterSeq})
		mu.Unlock()
	}
	// While the first half runs: streams at seqs seen so far.
	for _, at := range []int64{5, 20, 40} {
		_, f := base.waitEvent("run.event", 0, func(p map[string]any) bool { return p["seq"].(float64) >= float64(at) })
		start(int64(f.payload()["seq"].(float64))-3, false)
		start(-1, false)
		start(at/2, true)
	}
	// The hold: every stream so far is registered before the second half,
	// and more start concurrently with it.
	base.waitEvent("run.event", 0, func(p map[string]any) bool {
		inner := p["payload"].(map[string]any)
		return p["event"] == "node.pending" && inner["nodeId"] == "hold"
	})
	concurrent := make([]*wsClient, 6)
	for i := range concurrent {
		concurrent[i] = g.connected(t, tokAll, map[string]any{"subscribe": []any{"busy"}})
	}
	var wg sync.WaitGroup
	errs := make([]error, len(concurrent))
	for i, c := range concurrent {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("concurrent", i)
			b, _ := json.Marshal(map[string]any{"type": "req", "id": id, "method": "streamRunEvents", "params": map[string]any{"runId": "busy", "afterSeq": i * 15}})
			c.wmu.Lock()
			errs[i] = c.ws.WriteMessage(websocket.TextMessage, b)
			c.wmu.Unlock()
			mu.Lock()
			streams = append(streams, started{c, id, int64(i * 15)})
			mu.Unlock()
		}()
	}
	g.ok("submitSignal", map[string]any{"runId": "busy", "signalName": "more"})
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 { // more while the second half runs
		base.waitEvent("run.event", 0, func(p map[string]any) bool { return p["seq"].(float64) >= float64(110+20*i) })
		start(int64(100+20*i), false)
		start(-1, false)
	}

	baseView := collectStream(t, base, baseReq)
	last := baseView.seqs[len(baseView.seqs)-1]
	if want := int64(3*(first+second) + 3); last != want { // hold: pending, finished; run.completed
		t.Fatalf("last seq %d, want %d", last, want)
	}
	checkSeqs(t, "afterSeq 0", baseView.seqs, 1, last)
	for _, s := range streams {
		what := fmt.Sprintf("stream afterSeq %d", s.afterSeq)
		if s.afterSeq < 0 {
			// A live-only stream that began after the run's last event
			// (the second half can finish before the test's sockets
			// connect) has nothing to receive.
			_, res := s.c.waitFor("streamRunEvents response", 0, func(f wsFrame) bool { return f.id() == s.reqID })
			if res.m["ok"] == true && num(t, res.payload(), "currentSeq") >= last {
				for _, f := range s.c.all() {
					if f.isEvent("run.event") && f.payload()["streamId"] == res.payload()["streamId"] {
						t.Fatalf("%s begun after the run completed received %s", what, f.raw)
					}
				}
				continue
			}
		}
		v := collectStream(t, s.c, s.reqID)
		if v.firstAt < v.resIndex {
			t.Fatalf("%s: a run.event frame came before the response", what)
		}
		from := s.afterSeq + 1
		if s.afterSeq < 0 {
			from = num(t, v.response.payload(), "currentSeq") + 1
			if v.response.payload()["afterSeq"] != nil {
				t.Fatalf("%s: response %s", what, v.response.raw)
			}
		}
		checkSeqs(t, what, v.seqs, from, last)
		if v.completed != 1 {
			t.Fatalf("%s: run.completed %d times", what, v.completed)
		}
	}
	// The stream stays open after run.completed (heartbeats continue), and
	// no further run.event comes: a heartbeat after the last run.event
	// proves the stream went on without another.
	streamID := baseView.response.payload()["streamId"].(string)
	hb, _ := base.waitEvent("run.heartbeat", baseView.lastAt, func(p map[string]any) bool { return p["streamId"] == streamID })
	after := collectStream(t, base, baseReq)
	if after.lastAt != baseView.lastAt || hb < after.lastAt {
		t.Fatal("a run.event came after run.completed")
	}
	checkCounters(t, base.all())
	if n := len(runBroadcasts(t, base, "busy")); int64(n) != last {
		have := map[int64]bool{}
		for _, f := range base.all() {
			if f.typ() == "event" && !perConnection[f.event()] {
				have[num(t, f.m, "stateVersion")] = true
			}
		}
		for _, f := range base.all() {
			if p := f.payload(); f.isEvent("run.event") && p["streamId"] == streamID && !have[num(t, p, "stateVersion")] {
				t.Logf("missing broadcast %s", f.raw)
			}
		}
		t.Fatalf("socket got %d broadcasts of the run, want %d (the stream is in addition)", n, last)
	}
}

func TestStreamRunHeartbeat(t *testing.T) {
	g := newWSGateway(t, wsOptions{})
	runID := g.launch("gate", map[string]any{})
	g.waitRun(runID, "waiting-approval")
	c := g.connected(t, tokAll, nil)
	a := c.ok("streamRunEvents", map[string]any{"runId": runID})
	b := c.ok("streamRunEvents", map[string]any{"runId": runID, "afterSeq": 0})
	var ts []int64
	for _, s := range []map[string]any{a, b} {
		from := 0
		var prev int64
		for range 2 {
			var f wsFrame
			from, f = c.waitEvent("run.heartbeat", from, func(p map[string]any) bool { return p["streamId"] == s["streamId"] })
			from++
			p := f.payload()
			if len(p) != 5 || p["apiVersion"] != "v1" || p["type"] != "Heartbeat" || p["runId"] != runID {
				t.Fatalf("heartbeat %s", f.raw)
			}
			now := num(t, p, "ts")
			if time.Since(time.UnixMilli(now)).Abs() > time.Minute {
				t.Fatalf("heartbeat ts %d is not now (ms)", now)
			}
			if prev != 0 {
				ts = append(ts, now-prev)
			}
			prev = now
		}
	}
	for _, d := range ts {
		if d < 500 || d > 5000 {
			t.Fatalf("heartbeats %d ms apart, want about 1000", d)
		}
	}
	checkCounters(t, c.all())
}

// TestStreamGapResync: with a window smaller than the run's events, a
// stream resuming before the window gets run.gap_resync (with the getRun
// payload) and then the retained events.
func TestStreamGapResync(t *testing.T) {
	g := newWSGateway(t, wsOptions{eventWindow: 3})
	runID := g.launch("echo", map[string]any{})
	g.waitRun(runID, "finished")
	detail := g.ok("getRun", map[string]any{"runId": runID})
	tests := []struct {
		afterSeq       int64
		gapFrom, gapTo int64 // 0: no gap_resync
		replayFrom     int64
	}{
		{afterSeq: 0, gapFrom: 1, gapTo: 4, replayFrom: 5},
		{afterSeq: 3, gapFrom: 4, gapTo: 4, replayFrom: 5},
		{afterSeq: 4, replayFrom: 5},
		{afterSeq: 6, replayFrom: 7},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint("afterSeq ", tc.afterSeq), func(t *testing.T) {
			c := g.connected(t, tokAll, nil)
			id := c.request("streamRunEvents", map[string]any{"runId": runID, "afterSeq": tc.afterSeq})
			v := collectStream(t, c, id)
			if num(t, v.response.payload(), "currentSeq") != 7 {
				t.Fatalf("response %s", v.response.raw)
			}
			checkSeqs(t, "replay", v.seqs, tc.replayFrom, 7)
			streamID := v.response.payload()["streamId"]
			gaps := 0
			for i, f := range c.all() {
				if !f.isEvent("run.gap_resync") {
					continue
				}
				gaps++
				if i < v.resIndex || i > v.firstAt {
					t.Fatalf("gap_resync at frame %d, response %d, first run.event %d", i, v.resIndex, v.firstAt)
				}
				p := f.payload()
				if len(p) != 7 || p["apiVersion"] != "v1" || p["type"] != "GapResync" || p["streamId"] != streamID || p["runId"] != runID ||
					num(t, p, "fromSeq") != tc.gapFrom || num(t, p, "toSeq") != tc.gapTo {
					t.Fatalf("gap_resync %s", f.raw)
				}
				jsonEqual(t, normalize(p["snapshot"], ""), mustJSONText(t, normalize(detail, "")))
			}
			if want := map[bool]int{true: 1, false: 0}[tc.gapTo > 0]; gaps != want {
				t.Fatalf("%d gap_resync frames, want %d: %s", gaps, want, c.describe())
			}
		})
	}
}

// TestStreamResumesAcrossRestart: run seqs are persisted, so a client
// resuming with the last seq it saw before a restart gets what it missed.
func TestStreamResumesAcrossRestart(t *testing.T) {
	g := newWSGateway(t, wsOptions{})
	g.launchWith("survivor", "wait", map[string]any{})
	c := g.connected(t, tokAll, nil)
	id := c.request("streamRunEvents", map[string]any{"runId": "survivor", "afterSeq": 0})
	_, f := c.waitEvent("run.event", 0, func(p map[string]any) bool {
		return p["streamId"] != nil && p["event"] == "node.pending" && p["payload"].(map[string]any)["nodeId"] == "evt"
	})
	lastSeen, versionBefore := num(t, f.payload(), "seq"), num(t, f.m, "stateVersion")
	if _, res := c.waitFor("response", 0, func(f wsFrame) bool { return f.id() == id }); res.m["ok"] != true {
		t.Fatalf("streamRunEvents: %s", res.raw)
	}

	g2 := g.restart(t, wsOptions{})
	if code, _ := c.closed(); code != 1001 && code != 1006 {
		t.Fatalf("socket closed with %d at shutdown", code)
	}
	if v := g2.healthStateVersion(t); v != versionBefore {
		t.Fatalf("stateVersion %d after restart, %d before", v, versionBefore)
	}
	g2.ok("submitSignal", map[string]any{"runId": "survivor", "signalName": "go"})
	g2.waitRun("survivor", "finished")

	c2 := g2.connected(t, tokAll, map[string]any{"subscribe": []any{"survivor"}})
	id2 := c2.request("streamRunEvents", map[string]any{"runId": "survivor", "afterSeq": lastSeen})
	v := collectStream(t, c2, id2)
	if p := v.response.payload(); num(t, p, "currentSeq") <= lastSeen {
		t.Fatalf("response %s", v.response.raw)
	}
	// evt finished; after: pending, started, finished; run.completed.
	checkSeqs(t, "after restart", v.seqs, lastSeen+1, lastSeen+5)
	var events []string
	for _, f := range c2.all() {
		if p := f.payload(); f.isEvent("run.event") {
			events = append(events, fmt.Sprint(p["event"], "/", p["payload"].(map[string]any)["nodeId"]))
		}
	}
	jsonEqual(t, events, `["node.finished/evt","node.pending/after","node.started/after","node.finished/after","run.completed/<nil>"]`)
	if v := g2.healthStateVersion(t); v <= versionBefore {
		t.Fatalf("stateVersion %d after more events, %d before the restart", v, versionBefore)
	}
}

// TestStreamReplayCarriesCurrentStateVersion: a replayed run.event is not a
// broadcast, so its frame carries the stateVersion current when it is sent
// (docs/websocket.md), while the RunEvent record inside keeps the one the
// event was stored with.
func TestStreamReplayCarriesCurrentStateVersion(t *testing.T) {
	g := newWSGateway(t, wsOptions{})
	first := g.launch("echo", map[string]any{})
	g.waitRun(first, "finished")
	later := g.launch("echo", map[string]any{})
	g.waitRun(later, "finished")
	current := g.healthStateVersion(t)
	c := g.connected(t, tokAll, nil)
	v := collectStream(t, c, c.request("streamRunEvents", map[string]any{"runId": first, "afterSeq": 0}))
	checkSeqs(t, "replay", v.seqs, 1, 7)
	var stored []int64
	for _, f := range c.all()[v.firstAt : v.lastAt+1] {
		if !f.isEvent("run.event") {
			continue
		}
		if sv := num(t, f.m, "stateVersion"); sv != current {
			t.Fatalf("replayed frame stateVersion %d, current %d: %s", sv, current, f.raw)
		}
		stored = append(stored, num(t, f.payload(), "stateVersion"))
	}
	for i, sv := range stored {
		if sv >= current || (i > 0 && sv <= stored[i-1]) {
			t.Fatalf("record stateVersions %v: want the increasing values stored before %d", stored, current)
		}
	}
}
