package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"github.com/smithers-orchestrator/smithers-go/api/auth"
	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/stream"
)

// WebSocket close codes used by the gateway (docs/differences.md).
const (
	closePolicyViolation = websocket.ClosePolicyViolation         // 1008: failed connect, handshake timeout, revoked token
	closeTryAgainLater   = websocket.CloseTryAgainLater           // 1013: fell behind (BackpressureDisconnect); evicted before connect
	closeGoingAway       = websocket.CloseGoingAway               // 1001: gateway shutting down
	closeInvalidPayload  = websocket.CloseInvalidFramePayloadData // 1007: a text frame that is not UTF-8
)

// wsLimits are the per-connection timings and bounds.
type wsLimits struct {
	heartbeat       time.Duration // tick interval
	handshake       time.Duration // close sockets that have not connected
	ping            time.Duration // server ping interval
	pongWait        time.Duration // close a peer silent this long
	writeWait       time.Duration // deadline of one write
	revokeCheck     time.Duration // re-check the credentials this often
	streamHeartbeat time.Duration // run.heartbeat interval of run-event streams
	maxPayload      int64
	maxInflight     int // concurrently processed requests per socket
	queue           stream.Limits
}

// stateVersion is the gateway-wide stateVersion that frames other than
// broadcasts carry (docs/websocket.md). The hub's counter moves in the
// store's commit hook, before host.Gateway's (which moves when Update
// returns), so taking the larger keeps a tick or heartbeat from carrying a
// version older than a broadcast the socket already received.
func (s *Server) stateVersion() int64 { return max(s.gw.StateVersion(), s.hub.StateVersion()) }

// wsConn is one WebSocket connection. The reader goroutine decodes frames
// and runs requests; the writer goroutine owns the socket's writes, the
// connection seq and the run-event streams, and drains the hub subscriber.
type wsConn struct {
	s      *Server
	ws     *websocket.Conn
	out    *corkedConn // ws's network connection, corked while a batch of events is written
	header http.Header // the upgrade request's headers (trusted-proxy identity)
	lim    wsLimits
	sub    *stream.Subscriber
	slot   *wsSlot // its connection slot (pending until the first connect)

	control   chan func() // work for the writer, in order
	done      chan struct{}
	ctx       context.Context // cancelled when the connection ends
	cancel    context.CancelFunc
	closeOnce sync.Once

	mu         sync.Mutex
	ident      *host.Identity // nil until a successful connect
	token      string
	hasFilter  bool
	filter     map[string]bool
	streamRuns map[string]int // runId -> open run-event streams
	connected  chan struct{}  // signalled on each successful connect

	// Writer-only.
	connSeq  int64
	frameBuf []byte // reused encoding buffer of event frames
	streams  map[string]*runStream
}

// runStream is one streamRunEvents subscription of a connection.
type runStream struct {
	id      string
	runID   string
	lastSeq int64
}

func (s *Server) serveWS(c echo.Context) error {
	w, r := c.Response(), c.Request()
	if s.guard != nil {
		if err := s.guard.CheckUpgrade(r); err != nil {
			s.metrics.errorKind("auth", "ws", host.ErrorCode(err))
			refuseUpgrade(w, http.StatusForbidden, wireMessage(err))
			return nil
		}
	}
	// Reserve the slot before upgrading, so that concurrent upgrades cannot
	// exceed the cap and a socket is counted by the time its client has the
	// 101.
	slot, evicted := s.ws.slots.acquire()
	s.metrics.wsEvicted(evicted)
	if slot == nil {
		refuseUpgrade(w, http.StatusServiceUnavailable, "Gateway connection limit reached")
		s.metrics.wsRejected()
		return nil
	}
	s.wsCount.Add(1)
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	cw := &corkingWriter{ResponseWriter: w, pool: &s.ws.corkBuffers}
	ws, err := up.Upgrade(cw, r, http.Header{"X-Smithers-Api-Version": {"v1"}})
	if err != nil {
		s.ws.slots.release(slot)
		s.wsCount.Add(-1)
		return nil // the upgrader already answered
	}
	ctx, cancel := context.WithCancel(context.Background())
	conn := &wsConn{s: s, ws: ws, out: cw.conn, header: r.Header.Clone(), lim: s.ws.limits, slot: slot, control: make(chan func(), 256), ctx: ctx, cancel: cancel,
		done: make(chan struct{}), streamRuns: map[string]int{}, streams: map[string]*runStream{}, connected: make(chan struct{}, 1)}
	conn.sub = s.hub.Subscribe(conn.lim.queue, conn.wants)
	s.trackConn(conn, true)
	s.metrics.wsOpened()
	defer func() {
		conn.shutdown()
		s.trackConn(conn, false)
		s.ws.slots.release(slot)
		s.wsCount.Add(-1)
		s.metrics.wsClosed()
	}()
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		conn.writeLoop()
	}()
	conn.readLoop()
	conn.shutdown()
	<-writerDone
	return nil
}

// refuseUpgrade answers an upgrade request that is not accepted with a
// one-line text body, and closes the connection.
func refuseUpgrade(w http.ResponseWriter, status int, message string) {
	h := w.Header()
	h.Set("Connection", "close")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Smithers-API-Version", "v1")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(message + "\n"))
}

func (c *wsConn) shutdown() {
	c.closeOnce.Do(func() {
		c.cancel()
		close(c.done)
		c.sub.Close()
		_ = c.ws.Close()
	})
}

// send queues fn for the writer; it gives up when the connection ended.
func (c *wsConn) send(fn func()) {
	select {
	case c.control <- fn:
	case <-c.done:
	}
}

// awaitClose waits, for at most one write deadline, until a close queued
// for the writer has ended the connection; then the reader stops.
func (c *wsConn) awaitClose() {
	t := time.NewTimer(c.lim.writeWait)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
	}
}

// closeWith sends a close frame with code and reason, then ends the
// connection. Writer-only.
func (c *wsConn) closeWith(code int, reason string) {
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(c.lim.writeWait))
	c.shutdown()
}

func (c *wsConn) readLoop() {
	c.ws.SetReadLimit(c.lim.maxPayload)
	_ = c.ws.SetReadDeadline(time.Now().Add(c.lim.pongWait))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(c.lim.pongWait)) })
	sem := make(chan struct{}, c.lim.maxInflight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		kind, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(c.lim.pongWait))
		c.s.metrics.received("ws", "request")
		if kind == websocket.TextMessage && !utf8.Valid(data) {
			// RFC 6455 §8.1: a text message that is not UTF-8 fails the
			// connection with 1007. Nothing of it is decoded (the JSON
			// decoder would silently replace the bad bytes).
			c.s.metrics.errorKind("frame", "ws", host.CodeInvalidFrame)
			c.send(func() { c.closeWith(closeInvalidPayload, "text frame is not valid UTF-8") })
			c.awaitClose()
			return
		}
		req, err := decodeFrame(data)
		if err != nil {
			_, code := wireError(err)
			c.s.metrics.errorKind("frame", "ws", code)
			c.respond(invalidFrameID, "", nil, err)
			continue
		}
		if req.method == "connect" {
			c.connect(req)
			continue
		}
		ident, ok := c.identity()
		if !ok {
			c.respond(req.id, req.method, nil, host.Errorf(host.CodeUnauthorized, "Connect first"))
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-c.done:
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.handle(req, ident)
		}()
	}
}

// afterResponse is a payload whose method has work to do on the writer
// right after its response frame (streamRunEvents replay).
type afterResponse struct {
	payload any
	after   func()
}

func (c *wsConn) handle(req wsRequest, ident host.Identity) {
	start := time.Now()
	payload, err := c.s.invoke(c.ctx, &call{method: req.method, params: asParams(req.params), ident: ident, transport: "ws", conn: c})
	c.s.metrics.rpc(req.method, "ws", start, err)
	if ar, ok := payload.(afterResponse); ok && err == nil {
		c.respond(req.id, req.method, ar.payload, nil)
		c.send(ar.after)
		return
	}
	c.respond(req.id, req.method, payload, err)
}

// respond queues a response frame.
func (c *wsConn) respond(id, method string, payload any, err error) {
	var frame any
	outcome := "ok"
	if err != nil {
		frame, _ = errorFrame(id, err)
		outcome = "error"
		var he *host.Error
		if !errors.As(err, &he) {
			c.s.log.Error("ws rpc failed", "method", method, "err", err)
		}
	} else {
		frame = okFrame(id, payload)
	}
	c.send(func() {
		c.write(frame)
		c.s.metrics.sent("ws", "response", outcome, "")
	})
}

// write sends one frame with a write deadline. Writer-only.
func (c *wsConn) write(frame any) {
	b, err := json.Marshal(frame)
	if err != nil {
		c.s.log.Error("encode ws frame", "err", err)
		return
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.lim.writeWait))
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.shutdown()
	}
}

// event sends an event frame with the next connection seq. Writer-only.
// The frame is assembled around the payload's encoding (stored events carry
// theirs already) rather than marshalled as a map: a broadcast is encoded
// once per socket on the hot path.
func (c *wsConn) event(name string, payload any, stateVersion int64) {
	var body []byte
	switch p := payload.(type) {
	case json.RawMessage:
		body = p
	default:
		b, err := json.Marshal(p)
		if err != nil {
			c.s.log.Error("encode ws event", "event", name, "err", err)
			return
		}
		body = b
	}
	c.connSeq++
	c.writeRaw(eventFrame(c.frameBuf[:0], name, body, c.connSeq, stateVersion))
	c.s.metrics.sentEvent(name)
}

// eventFrame appends {"type":"event","event":name,"payload":payload,
// "seq":seq,"stateVersion":sv,"apiVersion":"v1"} to buf.
func eventFrame(buf []byte, name string, payload []byte, seq, stateVersion int64) []byte {
	buf = append(buf, `{"type":"event","event":`...)
	buf = strconv.AppendQuote(buf, name)
	buf = append(buf, `,"payload":`...)
	buf = appendPayload(buf, payload)
	buf = append(buf, `,"seq":`...)
	buf = strconv.AppendInt(buf, seq, 10)
	buf = append(buf, `,"stateVersion":`...)
	buf = strconv.AppendInt(buf, stateVersion, 10)
	return append(buf, `,"apiVersion":"v1"}`...)
}

// appendPayload appends an event's payload, null when it has none.
func appendPayload(b, payload []byte) []byte {
	if len(payload) == 0 {
		return append(b, "null"...)
	}
	return append(b, payload...)
}

// writeRaw sends one encoded frame with a write deadline. Writer-only.
func (c *wsConn) writeRaw(b []byte) {
	c.frameBuf = b
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.lim.writeWait))
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.shutdown()
	}
}

func (c *wsConn) identity() (host.Identity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ident == nil {
		return host.Identity{}, false
	}
	return *c.ident, true
}

// wants is the hub filter: events of runs streamed on this socket, and the
// broadcasts an authenticated socket receives.
func (c *wsConn) wants(e host.Event) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.streamRuns[e.RunID] > 0 {
		return true
	}
	return c.ident != nil && c.passesFilterLocked(e.RunID)
}

// passesFilterLocked is the broadcast delivery rule of docs/websocket.md: no
// filter, an empty filter, or a filter holding the run.
func (c *wsConn) passesFilterLocked(runID string) bool {
	return runID == "" || !c.hasFilter || len(c.filter) == 0 || c.filter[runID]
}

// autoSubscribe adds a run this socket started to its filter, creating the
// filter if absent (upstream's behaviour, docs/websocket.md).
func (c *wsConn) autoSubscribe(runID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.hasFilter {
		c.hasFilter = true
		c.filter = map[string]bool{}
	}
	c.filter[runID] = true
}

// writeLoop is the socket's writer: every frame is written here, in order.
// It waits on few channels (the cost of a wake-up grows with them, and a
// fan-out wakes every socket's writer once per event): its periodic duties
// share one timer (writerClock), and the connection's end is seen as the
// subscriber going (shutdown closes it).
func (c *wsConn) writeLoop() {
	// Every subscriber the hub cut off is counted once, whichever way the
	// socket then ended: a writer stuck on a peer that never reads sees
	// its write deadline expire (and the socket close) before it sees the
	// overflow. Closing the subscriber first (it is idempotent) makes the
	// flag final.
	defer func() {
		c.sub.Close()
		if c.sub.Overflowed() {
			c.s.metrics.backpressureDisconnect()
		}
	}()
	clock := newWriterClock(time.Now(), c.lim)
	defer clock.stop()
	evicted := c.slot.evicted // nil once connected: nobody evicts it then
	c.event("connect.challenge", map[string]any{"nonce": uuid.NewString(), "ts": time.Now().UnixMilli()}, c.s.stateVersion())
	for {
		select {
		case fn := <-c.control:
			fn()
		case <-c.sub.Ready():
			c.out.cork(time.Now().Add(c.lim.writeWait))
			for _, e := range c.sub.Drain() {
				c.deliver(e)
			}
			if err := c.out.uncork(time.Now().Add(c.lim.writeWait)); err != nil {
				c.shutdown()
				return
			}
		case <-c.sub.Gone():
			if c.sub.Overflowed() {
				c.backpressure()
			}
			return
		case <-c.connected:
			evicted = nil
			clock.connected(time.Now())
		case <-evicted:
			// Newer sockets needed the slot of this one, which has not
			// connected; a client that meant to reconnects.
			c.closeWith(closeTryAgainLater, "too many unauthenticated connections")
			return
		case now := <-clock.C():
			if !c.periodic(clock.due(now)) {
				return
			}
		}
	}
}

// periodic does the writer's duties that came due; false means the socket
// was closed.
func (c *wsConn) periodic(d duties) bool {
	if d.handshake {
		if _, ok := c.identity(); !ok {
			c.closeWith(closePolicyViolation, "handshake timeout")
			return false
		}
	}
	if d.ping {
		if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.lim.writeWait)); err != nil {
			c.shutdown()
			return false
		}
	}
	if d.revoke {
		if reason, bad := c.credentialsRevoked(); bad {
			c.closeWith(closePolicyViolation, reason)
			return false
		}
	}
	if d.tick {
		c.event("tick", map[string]any{"ts": time.Now().UnixMilli()}, c.s.stateVersion())
		c.s.metrics.heartbeatTick()
	}
	if d.beat {
		for _, st := range c.streams {
			c.event("run.heartbeat", map[string]any{"apiVersion": "v1", "type": "Heartbeat", "streamId": st.id, "runId": st.runID, "ts": time.Now().UnixMilli()}, c.s.stateVersion())
		}
	}
	return true
}

// credentialsRevoked re-checks the socket's token: a token revoked or
// expired while the socket is open closes it.
func (c *wsConn) credentialsRevoked() (string, bool) {
	c.mu.Lock()
	ident, token := c.ident, c.token
	c.mu.Unlock()
	mode := c.s.auth.Mode()
	if ident == nil || (mode != auth.ModeToken && mode != auth.ModeJWT) {
		return "", false
	}
	_, err := c.s.auth.Authenticate(auth.Credentials{Token: token, Header: c.header})
	switch {
	case err == nil:
		return "", false
	case errors.Is(err, auth.ErrTokenRevoked):
		return "token revoked", true
	case errors.Is(err, auth.ErrTokenExpired):
		return "token expired", true
	case errors.Is(err, auth.ErrStoreUnavailable):
		// The store file is being rewritten or is broken: new requests are
		// refused (fail closed), but open sockets are not torn down over
		// what may be a half-written save.
		return "", false
	}
	return "token no longer valid", true
}

// Encodings of a committed event shared by every socket it is written to
// (stream.Queued.Encoded).
const (
	encBroadcast = iota // broadcastHead
	encRunEvent         // runEventTail
)

// deliver writes a committed event: as a broadcast when the filter passes,
// and as run.event on every stream of its run that has not seen it yet.
// What every socket writes alike is encoded once (frames differ only in
// the socket's seq and its streams' ids).
func (c *wsConn) deliver(e *stream.Queued) {
	c.mu.Lock()
	broadcast := c.ident != nil && c.passesFilterLocked(e.RunID)
	c.mu.Unlock()
	if broadcast {
		c.connSeq++
		b := append(c.frameBuf[:0], e.Encoded(encBroadcast, broadcastHead)...)
		c.writeRaw(frameTail(b, c.connSeq, e.StateVersion))
		c.s.metrics.sentEvent(e.Name)
	}
	for _, st := range c.streams {
		if st.runID == e.RunID && e.Seq > st.lastSeq {
			st.lastSeq = e.Seq
			c.connSeq++
			b := append(c.frameBuf[:0], `{"type":"event","event":"run.event","payload":{"streamId":`...)
			b = strconv.AppendQuote(b, st.id)
			b = append(b, e.Encoded(encRunEvent, runEventTail)...)
			c.writeRaw(frameTail(b, c.connSeq, e.StateVersion))
			c.s.metrics.sentEvent("run.event")
		}
	}
}

// broadcastHead is what an event's broadcast frame (eventFrame) has before
// the socket's seq: {"type":"event","event":name,"payload":payload,"seq":
func broadcastHead(e host.Event) []byte {
	b := make([]byte, 0, len(e.Payload)+len(e.Name)+48)
	b = append(b, `{"type":"event","event":`...)
	b = strconv.AppendQuote(b, e.Name)
	b = append(b, `,"payload":`...)
	b = appendPayload(b, e.Payload)
	return append(b, `,"seq":`...)
}

// runEventTail is the RunEvent record of a run.event frame
// (runEventPayload) after its streamId, then the frame's "seq" key.
func runEventTail(e host.Event) []byte {
	b := runEventPayload(&runStream{}, e)
	b = b[len(`{"streamId":""`):]
	return append(b, `,"seq":`...)
}

// frameTail ends an event frame begun up to its "seq" key: the socket's
// seq, the stateVersion and the apiVersion (eventFrame's order).
func frameTail(b []byte, seq, stateVersion int64) []byte {
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"stateVersion":`...)
	b = strconv.AppendInt(b, stateVersion, 10)
	return append(b, `,"apiVersion":"v1"}`...)
}

// runEventPayload encodes the RunEvent record of a run.event frame:
// {streamId, apiVersion, type:"RunEvent", runId, event, payload, seq,
// stateVersion}.
func runEventPayload(st *runStream, e host.Event) json.RawMessage {
	b := make([]byte, 0, len(e.Payload)+len(st.id)+len(e.RunID)+len(e.Name)+128)
	b = append(b, `{"streamId":`...)
	b = strconv.AppendQuote(b, st.id)
	b = append(b, `,"apiVersion":"v1","type":"RunEvent","runId":`...)
	b = strconv.AppendQuote(b, e.RunID)
	b = append(b, `,"event":`...)
	b = strconv.AppendQuote(b, e.Name)
	b = append(b, `,"payload":`...)
	b = appendPayload(b, e.Payload)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, `,"stateVersion":`...)
	b = strconv.AppendInt(b, e.StateVersion, 10)
	return append(b, '}')
}

// backpressure tells each stream why the socket closes, then closes it with
// 1013 so that a resilient client reconnects and resumes from afterSeq.
// The metric is counted when the writer ends.
func (c *wsConn) backpressure() {
	for _, st := range c.streams {
		c.event("run.error", map[string]any{"streamId": st.id, "runId": st.runID,
			"error": map[string]any{"version": "v1", "code": host.CodeBackpressure, "message": "The client fell behind the event stream; reconnect and resume from afterSeq."}}, c.s.stateVersion())
	}
	c.closeWith(closeTryAgainLater, "backpressure")
}
