package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fakeGateway serves just enough of the v1 protocol for FollowRun: getRun
// over HTTP, and connect plus streamRunEvents over WebSocket, replaying a
// fixed list of run events after afterSeq. The first dropAfter events of a
// socket's stream are sent, then that socket is cut (dropAfter < 0: never).
type fakeGateway struct {
	t         *testing.T
	events    []string // event names; seq is index+1
	status    string   // getRun status
	dropAfter int

	mu        sync.Mutex
	afterSeqs []any // the afterSeq of each streamRunEvents (nil: absent)
}

func (f *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v1/rpc/") {
		fmt.Fprintf(w, `{"type":"res","id":"1","ok":true,"payload":{"runId":"r1","status":%q}}`, f.status)
		return
	}
	up := websocket.Upgrader{}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	connSeq := 0
	send := func(v any) bool {
		b, _ := json.Marshal(v)
		return ws.WriteMessage(websocket.TextMessage, b) == nil
	}
	event := func(name string, payload any) bool {
		connSeq++
		return send(map[string]any{"type": "event", "event": name, "payload": payload, "seq": connSeq, "stateVersion": 1})
	}
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var req struct {
			ID     string         `json:"id"`
			Method string         `json:"method"`
			Params map[string]any `json:"params"`
		}
		_ = json.Unmarshal(data, &req)
		switch req.Method {
		case "connect":
			send(map[string]any{"type": "res", "id": req.ID, "ok": true, "payload": map[string]any{"protocol": 1}})
		case "streamRunEvents":
			after := int64(0)
			f.mu.Lock()
			f.afterSeqs = append(f.afterSeqs, req.Params["afterSeq"])
			streamID := fmt.Sprintf("s%d", len(f.afterSeqs))
			f.mu.Unlock()
			if v, ok := req.Params["afterSeq"].(float64); ok {
				after = int64(v)
			}
			send(map[string]any{"type": "res", "id": req.ID, "ok": true, "payload": map[string]any{
				"streamId": streamID, "runId": "r1", "afterSeq": req.Params["afterSeq"], "currentSeq": len(f.events)}})
			// A broadcast and another stream's frame are not this stream's.
			event("node.started", map[string]any{"runId": "r1", "nodeId": "x"})
			event("run.heartbeat", map[string]any{"streamId": "other", "runId": "r1"})
			sent := 0
			for i := after; i < int64(len(f.events)); i++ {
				if f.dropAfter >= 0 && sent == f.dropAfter {
					return // cut the socket
				}
				event("run.event", map[string]any{"streamId": streamID, "apiVersion": "v1", "type": "RunEvent", "runId": "r1",
					"event": f.events[i], "payload": map[string]any{"runId": "r1"}, "seq": i + 1, "stateVersion": i + 1})
				sent++
			}
			// Then only heartbeats, as a live stream of a quiet run.
			go func() {
				for range time.Tick(20 * time.Millisecond) {
					if !event("run.heartbeat", map[string]any{"streamId": streamID, "runId": "r1"}) {
						return
					}
				}
			}()
		}
	}
}

func followAll(t *testing.T, f *fakeGateway, afterSeq int64) ([]string, []int64, int) {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var names []string
	var seqs []int64
	reconnects := 0
	err := New(srv.URL, "tok").FollowRun(ctx, "r1", FollowOptions{
		AfterSeq:    afterSeq,
		OnEvent:     func(e RunEvent) error { names = append(names, e.Event); seqs = append(seqs, e.Seq); return nil },
		OnReconnect: func(error, time.Duration) { reconnects++ },
	})
	if err != nil {
		t.Fatalf("FollowRun: %v", err)
	}
	return names, seqs, reconnects
}

// TestFollowRunResumesAfterADroppedSocket: each socket is cut after two
// events; FollowRun resumes from the last seq it saw, hands every event
// over once and in order, and stops at run.completed.
func TestFollowRunResumesAfterADroppedSocket(t *testing.T) {
	f := &fakeGateway{t: t, status: "finished", dropAfter: 2,
		events: []string{"node.pending", "node.started", "node.finished", "node.pending", "run.completed"}}
	names, seqs, reconnects := followAll(t, f, 0)
	if got := strings.Join(names, ","); got != strings.Join(f.events, ",") {
		t.Fatalf("events %s, want %s", got, strings.Join(f.events, ","))
	}
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("seqs %v, want 1..5", seqs)
		}
	}
	if reconnects != 2 {
		t.Errorf("%d reconnects, want 2", reconnects)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := fmt.Sprint(f.afterSeqs); got != "[0 2 4]" {
		t.Errorf("afterSeq of each stream %s, want [0 2 4]", got)
	}
}

// TestFollowRunStopsAtTheLastCompletion: a run that failed and was resumed
// has an earlier run.completed; following its history goes on to the last.
func TestFollowRunStopsAtTheLastCompletion(t *testing.T) {
	f := &fakeGateway{t: t, status: "finished", dropAfter: -1,
		events: []string{"node.failed", "run.completed", "node.started", "node.finished", "run.completed"}}
	names, _, _ := followAll(t, f, 0)
	if len(names) != 5 {
		t.Fatalf("events %v, want all 5 up to the last run.completed", names)
	}
}

// TestFollowRunOfAFinishedRunSeenToTheEnd returns at once when nothing is
// left after afterSeq and the run is over.
func TestFollowRunOfAFinishedRunSeenToTheEnd(t *testing.T) {
	f := &fakeGateway{t: t, status: "finished", dropAfter: -1, events: []string{"node.pending", "run.completed"}}
	names, _, _ := followAll(t, f, 2)
	if len(names) != 0 {
		t.Fatalf("events %v after the last seq, want none", names)
	}
}

// TestFollowRunReturnsGatewayErrors: an error the gateway answers is not
// retried.
func TestFollowRunReturnsGatewayErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"type":"res","id":"1","ok":false,"error":{"version":"v1","code":"NOT_FOUND","message":"Run not found: r1"}}`)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := New(srv.URL, "tok").FollowRun(ctx, "r1", FollowOptions{})
	if e, ok := err.(*Error); !ok || e.Code != "NOT_FOUND" {
		t.Fatalf("err = %v, want the gateway's NOT_FOUND", err)
	}
}
