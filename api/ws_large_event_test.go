package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// TestLargeEventsReachSocketsThatKeepUp: events larger than a socket's
// queue byte budget (1 MiB), a 4 MiB task.output alone and a commit of
// node.failed and run.completed carrying 4 MiB each, reach every socket
// that keeps up, as broadcasts and on a run-event stream; nobody is cut
// off.
func TestLargeEventsReachSocketsThatKeepUp(t *testing.T) {
	const size = 4 << 20
	g := newWSGateway(t, wsOptions{})
	g.launchWith("big", "sleepy", map[string]any{})
	g.waitRun("big", "waiting-timer")
	broadcast := g.connected(t, tokAll, nil)
	streamer := g.connected(t, tokAll, map[string]any{"subscribe": []any{"none"}})
	streamID := streamer.ok("streamRunEvents", map[string]any{"runId": "big"})["streamId"]
	current := int64(0)
	if run, _, err := g.srv.reads.GetRun(t.Context(), "big"); err != nil {
		t.Fatal(err)
	} else {
		current = run.LastSeq
	}
	// The stream is registered once the writer ran its (empty) replay.
	streamer.ok("health", nil)

	big := strings.Repeat("x", size)
	errJSON := `{"code":"EXEC_FAILED","message":"` + big + `"}`
	sv := g.hub.StateVersion()
	event := func(i int64, name, payload string) host.Event {
		return host.Event{RunID: "big", Seq: current + i, StateVersion: sv + i, Name: name, Payload: json.RawMessage(payload)}
	}
	g.hub.Publish([]host.Event{event(1, "task.output", `{"runId":"big","nodeId":"talk","output":"`+big+`","stream":"stdout"}`)})
	g.hub.Publish([]host.Event{
		event(2, "node.failed", `{"runId":"big","nodeId":"talk","state":"failed","error":`+errJSON+`}`),
		event(3, "run.completed", `{"runId":"big","status":"failed","error":`+errJSON+`}`),
	})

	_, f := broadcast.waitEvent("task.output", 0, func(p map[string]any) bool { return p["runId"] == "big" })
	if out, _ := f.payload()["output"].(string); len(out) != size {
		t.Fatalf("task.output broadcast carries %d bytes, want %d", len(out), size)
	}
	broadcast.waitEvent("node.failed", 0, func(p map[string]any) bool { return p["runId"] == "big" })
	broadcast.waitEvent("run.completed", 0, func(p map[string]any) bool { return p["runId"] == "big" })
	var seqs []int64
	for i := int64(1); i <= 3; i++ {
		_, f := streamer.waitEvent("run.event", 0, func(p map[string]any) bool {
			return p["streamId"] == streamID && num(t, p, "seq") == current+i
		})
		seqs = append(seqs, num(t, f.payload(), "seq"))
		if p, _ := f.payload()["payload"].(map[string]any); p == nil {
			t.Fatalf("run.event %d without its payload", i)
		}
	}
	if g.hub.Overflows() != 0 || !broadcast.isOpen() || !streamer.isOpen() {
		t.Fatalf("a socket that keeps up was cut off: %d overflows", g.hub.Overflows())
	}
	checkCounters(t, broadcast.all())
	checkCounters(t, streamer.all())
}
