package api

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/stream"
)

// smallBuffers shrinks the kernel socket buffers of the connections whose
// client address was registered, so that a client that stops reading
// stalls the server's writer after a few frames rather than a few
// megabytes.
type smallBuffers struct {
	net.Listener
	clients sync.Map // client address -> true
}

type smallBufferConn struct {
	net.Conn
	l    *smallBuffers
	once sync.Once
}

func (l *smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &smallBufferConn{Conn: c, l: l}, nil
}

// Write shrinks the send buffer before the first response byte: by then
// the client has sent its request, so its address is registered.
func (c *smallBufferConn) Write(b []byte) (int, error) {
	c.once.Do(func() {
		if _, slow := c.l.clients.Load(c.RemoteAddr().String()); slow {
			_ = c.Conn.(*net.TCPConn).SetWriteBuffer(4096)
		}
	})
	return c.Conn.Write(b)
}

// dialSlow opens a socket with a small receive buffer and registers it for
// a small server-side send buffer.
func dialSlow(t *testing.T, g *wsGateway, l *smallBuffers) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		// Not below loopback's 64 KiB MSS: a smaller window leaves TCP
		// waiting on its persist timer once the client reads again.
		_ = c.(*net.TCPConn).SetReadBuffer(128 << 10)
		l.clients.Store(c.LocalAddr().String(), true)
		return c, nil
	}}
	ws, _, err := d.Dial(g.wsURL("/"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// readUntil reads frames until one matches.
func readUntil(t *testing.T, ws *websocket.Conn, what string, match func(wsFrame) bool) wsFrame {
	t.Helper()
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		f := wsFrame{raw: data}
		if err := json.Unmarshal(data, &f.m); err != nil {
			t.Fatal(err)
		}
		if match(f) {
			return f
		}
	}
}

// TestSlowConsumerIsDisconnected: a socket that stops reading while a run
// produces many events is closed with 1013 after a run.error
// BackpressureDisconnect on its stream; its queue never exceeds the bound;
// the other sockets get every event in order.
func TestSlowConsumerIsDisconnected(t *testing.T) {
	// The bound leaves the well-behaved sockets room for a stalled
	// moment of the writer goroutines (the engine emits an event every
	// few hundred microseconds); the slow socket exceeds it anyway.
	const bound, chunks = 1000, 3000
	var l *smallBuffers
	g := newWSGateway(t, wsOptions{cfg: Config{QueueLimits: stream.Limits{MaxEvents: bound}},
		listener: func(in net.Listener) net.Listener { l = &smallBuffers{Listener: in}; return l }})
	fastBroadcast := g.connected(t, tokAll, nil)
	fastStream := g.connected(t, tokAll, map[string]any{"subscribe": []any{"flood"}})
	before := map[*wsConn]bool{}
	for _, c := range g.openConns() {
		before[c] = true
	}

	slow := dialSlow(t, g, l)
	send := func(v map[string]any) {
		b, _ := json.Marshal(v)
		if err := slow.WriteMessage(websocket.TextMessage, b); err != nil {
			t.Fatal(err)
		}
	}
	send(map[string]any{"type": "req", "id": "c", "method": "connect", "params": g.connectParams(tokAll, nil)})
	if f := readUntil(t, slow, "connect", func(f wsFrame) bool { return f.id() == "c" }); f.m["ok"] != true {
		t.Fatalf("connect: %s", f.raw)
	}
	var slowConn *wsConn
	for _, c := range g.openConns() {
		if !before[c] {
			slowConn = c
		}
	}
	if slowConn == nil {
		t.Fatal("the slow socket's server side not found")
	}

	// Every socket subscribes while the run waits, then the flood starts.
	g.launchWith("flood", "chatty", map[string]any{"chunks": chunks, "size": 300, "hold": true})
	g.waitRun("flood", "waiting-event")
	send(map[string]any{"type": "req", "id": "s", "method": "streamRunEvents", "params": map[string]any{"runId": "flood", "afterSeq": 0}})
	res := readUntil(t, slow, "stream response", func(f wsFrame) bool { return f.id() == "s" })
	if res.m["ok"] != true {
		t.Fatalf("streamRunEvents: %s", res.raw)
	}
	streamID := res.payload()["streamId"]
	fastReq := fastStream.request("streamRunEvents", map[string]any{"runId": "flood", "afterSeq": 0})
	fastStream.waitFor("stream response", 0, func(f wsFrame) bool { return f.id() == fastReq })
	g.ok("submitSignal", map[string]any{"runId": "flood", "signalName": "flood"})

	// The slow socket stops reading. The hub cuts it off once its writer
	// is stalled and its queue is full.
	eventually(t, "the slow subscriber to be cut off", func() bool { return g.hub.Overflows() >= 1 })

	// Reading again, the client gets what was in flight, the run.error,
	// then the close frame.
	var sawError bool
	var closeErr error
	for {
		_, data, err := slow.ReadMessage()
		if err != nil {
			closeErr = err
			break
		}
		var f wsFrame
		f.raw = data
		_ = json.Unmarshal(data, &f.m)
		if p := f.payload(); f.isEvent("run.error") && p["streamId"] == streamID {
			e, _ := p["error"].(map[string]any)
			if e["code"] != "BackpressureDisconnect" || e["version"] != "v1" || p["runId"] != "flood" {
				t.Fatalf("run.error %s", f.raw)
			}
			sawError = true
		}
	}
	var ce *websocket.CloseError
	if !errors.As(closeErr, &ce) || ce.Code != websocket.CloseTryAgainLater {
		t.Fatalf("slow socket ended with %v, want close 1013", closeErr)
	}
	if !sawError {
		t.Fatal("no run.error BackpressureDisconnect before the close")
	}
	if n, _ := slowConn.sub.Peak(); n > bound {
		t.Fatalf("the slow socket's queue held %d events, bound %d", n, bound)
	}

	// The others got everything, in order.
	v := collectStream(t, fastStream, fastReq)
	last := v.seqs[len(v.seqs)-1]
	if last != chunks+6 { // hold: pending, finished; talk: pending, started, finished; run.completed
		t.Fatalf("last seq %d", last)
	}
	checkSeqs(t, "fast stream", v.seqs, 1, last)
	fastBroadcast.waitEvent("run.completed", 0, func(p map[string]any) bool { return p["runId"] == "flood" })
	for _, c := range []*wsClient{fastBroadcast, fastStream} {
		checkCounters(t, c.all())
		var outputs []string
		for _, f := range c.all() {
			if p := f.payload(); f.isEvent("task.output") {
				outputs = append(outputs, p["output"].(string))
			}
		}
		if len(outputs) != chunks {
			t.Fatalf("fast socket got %d task.output broadcasts", len(outputs))
		}
		for i, o := range outputs {
			if !strings.HasSuffix(o, " "+itoa(i)) {
				t.Fatalf("task.output %d out of order: %.20s...", i, o[len(o)-10:])
			}
		}
		if !c.isOpen() {
			t.Fatal("a fast socket was closed")
		}
	}
	if n := g.hub.Overflows(); n != 1 {
		t.Fatalf("%d subscribers cut off, want only the slow one", n)
	}
	rec := httptest.NewRecorder()
	g.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "\nsmithers_gateway_backpressure_disconnect_total 1\n") {
		t.Fatalf("backpressure metric: %s", grepLines(rec.Body.String(), "backpressure"))
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// grepLines returns the lines of s containing sub.
func grepLines(s, sub string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestSlowConsumerThatNeverReadsIsCounted: a socket whose client never
// reads again is cut off by the hub while its writer is stuck in a write;
// the write deadline then ends the socket. Every such cut-off is counted
// in smithers_gateway_backpressure_disconnect_total, whichever the writer
// noticed first, and the socket's queue stays within its bound.
func TestSlowConsumerThatNeverReadsIsCounted(t *testing.T) {
	// The bound is more frames than the socket buffers hold, so the
	// writer is blocked in a write when the hub cuts the subscriber off.
	const bound, flood = 1000, 3000
	var l *smallBuffers
	g := newWSGateway(t, wsOptions{cfg: Config{QueueLimits: stream.Limits{MaxEvents: bound}, WriteTimeout: time.Second},
		listener: func(in net.Listener) net.Listener { l = &smallBuffers{Listener: in}; return l }})
	slow := dialSlow(t, g, l)
	connect, _ := json.Marshal(map[string]any{"type": "req", "id": "c", "method": "connect", "params": g.connectParams(tokAll, nil)})
	if err := slow.WriteMessage(websocket.TextMessage, connect); err != nil {
		t.Fatal(err)
	}
	if f := readUntil(t, slow, "connect", func(f wsFrame) bool { return f.id() == "c" }); f.m["ok"] != true {
		t.Fatalf("connect: %s", f.raw)
	}
	conns := g.openConns()
	if len(conns) != 1 {
		t.Fatalf("%d server-side sockets, want 1", len(conns))
	}
	slowConn := conns[0]

	// The client reads nothing more while broadcasts pour in, published
	// straight into the hub so that the flood does not depend on how fast
	// the engine runs on this machine.
	payload := json.RawMessage(`{"runId":"flood","nodeId":"talk","output":"` + strings.Repeat("x", 300) + `"}`)
	sv := g.hub.StateVersion()
	for i := range flood {
		g.hub.Publish([]host.Event{{RunID: "flood", Seq: int64(i + 1), StateVersion: sv + int64(i) + 1, Name: "task.output", Payload: payload}})
	}
	if n := g.hub.Overflows(); n != 1 {
		t.Fatalf("%d subscribers cut off after the flood, want 1", n)
	}
	eventually(t, "the slow socket to be closed", func() bool { return len(g.openConns()) == 0 })
	if n, _ := slowConn.sub.Peak(); n > bound {
		t.Fatalf("the slow socket's queue held %d events, bound %d", n, bound)
	}
	rec := httptest.NewRecorder()
	g.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "\nsmithers_gateway_backpressure_disconnect_total 1\n") {
		t.Fatalf("backpressure metric: %s", grepLines(rec.Body.String(), "backpressure"))
	}
}
