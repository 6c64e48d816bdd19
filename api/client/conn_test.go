package client

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// eventServer answers connect, then sends the given event payloads in
// order, each as one frame, the second one in several fragments.
func eventServer(t *testing.T, payloads []string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		var req struct {
			ID string `json:"id"`
		}
		if err := ws.ReadJSON(&req); err != nil {
			return
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"res","id":"`+req.ID+`","ok":true,"payload":{"protocol":1}}`))
		for i, p := range payloads {
			frame := []byte(`{"type":"event","event":"e","payload":` + p + `,"seq":1,"stateVersion":1}`)
			if i != 1 {
				_ = ws.WriteMessage(websocket.TextMessage, frame)
				continue
			}
			w, err := ws.NextWriter(websocket.TextMessage)
			if err != nil {
				return
			}
			for len(frame) > 0 {
				n := min(len(frame), 100)
				_, _ = w.Write(frame[:n])
				frame = frame[n:]
			}
			_ = w.Close()
		}
		_, _, _ = ws.ReadMessage() // until the client closes
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestConnEventsKeepTheirBytes: the reader reuses one buffer for every
// frame, so an event must not share it: a large frame, a fragmented one
// and a short one each arrive whole, and stay whole after later frames.
func TestConnEventsKeepTheirBytes(t *testing.T) {
	big := `"` + strings.Repeat("x", 70_000) + `"`
	payloads := []string{big, `{"n":` + strings.Repeat("1", 500) + `}`, `{"n":2}`}
	conn, _, err := Dial(context.Background(), eventServer(t, payloads), "t", DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var got []Event
	for range payloads {
		select {
		case ev := <-conn.Events():
			got = append(got, ev)
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of %d events", len(got), len(payloads))
		}
	}
	for i, ev := range got {
		if ev.Name != "e" || string(ev.Payload) != payloads[i] {
			t.Fatalf("event %d: %s %.40s... (%d bytes), want %.40s... (%d bytes)", i, ev.Name, ev.Payload, len(ev.Payload), payloads[i], len(payloads[i]))
		}
	}
}

// TestConnOnFrame: OnFrame sees each frame's bytes and what it consumes
// is not decoded or queued, while what it leaves (the connect response)
// is handled as usual.
func TestConnOnFrame(t *testing.T) {
	payloads := []string{`{"n":1}`, `{"n":2}`, `{"n":3}`}
	var mu sync.Mutex
	var seen []string
	all := make(chan struct{})
	conn, hello, err := Dial(context.Background(), eventServer(t, payloads), "t", DialOptions{OnFrame: func(data []byte, at time.Time) bool {
		if !bytes.Contains(data, []byte(`"type":"event"`)) {
			return false
		}
		if at.IsZero() {
			t.Error("no receive time")
		}
		var f struct {
			Payload json.RawMessage `json:"payload"`
		}
		_ = json.Unmarshal(data, &f)
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, string(f.Payload))
		if len(seen) == len(payloads) {
			close(all)
		}
		return true
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if hello.Protocol != 1 {
		t.Fatalf("connect response not decoded: %+v", hello)
	}
	select {
	case <-all:
	case <-time.After(5 * time.Second):
		t.Fatalf("OnFrame saw %q", seen)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, " ") != strings.Join(payloads, " ") {
		t.Fatalf("OnFrame saw %q, want %q", seen, payloads)
	}
	select {
	case ev := <-conn.Events():
		t.Fatalf("a consumed frame reached Events: %+v", ev)
	default:
	}
}
