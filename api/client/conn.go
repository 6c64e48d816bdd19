package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Event is one server event frame.
type Event struct {
	Name         string
	Payload      json.RawMessage
	Seq          int64 // connection seq
	StateVersion int64
	Received     time.Time
}

// Hello is the connect response.
type Hello struct {
	Protocol int `json:"protocol"`
	Policy   struct {
		HeartbeatMs int64 `json:"heartbeatMs"`
	} `json:"policy"`
	Auth struct {
		Role   string   `json:"role"`
		Scopes []string `json:"scopes"`
		UserID *string  `json:"userId"`
	} `json:"auth"`
	Snapshot struct {
		Runs         []json.RawMessage `json:"runs"`
		Approvals    []json.RawMessage `json:"approvals"`
		StateVersion int64             `json:"stateVersion"`
	} `json:"snapshot"`
}

// HandshakeError is a WebSocket upgrade the server answered with an HTTP
// status other than 101 (a 503 at the connection limit, a 404 from a
// proxy that does not pass WebSocket on).
type HandshakeError struct {
	URL    string
	Status int
	Err    error
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("dial %s: %v (HTTP %d)", e.URL, e.Err, e.Status)
}

func (e *HandshakeError) Unwrap() error { return e.Err }

// Conn is one WebSocket connection.
type Conn struct {
	ws      *websocket.Conn
	wmu     sync.Mutex
	next    atomic.Int64
	mu      sync.Mutex
	pending map[string]chan frame
	events  chan Event
	done    chan struct{}
	err     error
	// CloseCode is the close code the server sent (0 if none yet).
	closeCode atomic.Int64
	onFrame   func([]byte, time.Time) bool
}

// DialOptions tune Dial.
type DialOptions struct {
	Subscribe []string // nil: no filter
	Header    http.Header
	// EventBuffer is the capacity of the events channel (default 4096); a
	// consumer that stops reading stops the connection's reader.
	EventBuffer int
	// SkipConnect leaves the handshake to the caller (Connect).
	SkipConnect bool
	// OnFrame, when set, sees every frame's bytes on the connection's
	// reader goroutine, with the time it was read, before it is decoded;
	// returning true consumes the frame (it is neither decoded nor sent to
	// Events). data is only valid during the call, and OnFrame must not
	// block. A load generator on the gateway's own cores uses it to skip
	// the decoding and the goroutine hand-off of each frame: it reads
	// what it measures from the bytes.
	OnFrame func(data []byte, received time.Time) bool
}

// Dial opens a WebSocket to baseURL (http:// or ws://) and completes the
// connect handshake with token.
func Dial(ctx context.Context, baseURL, token string, o DialOptions) (*Conn, *Hello, error) {
	u := strings.Replace(strings.Replace(baseURL, "https://", "wss://", 1), "http://", "ws://", 1)
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.DialContext(ctx, u, o.Header)
	if err != nil {
		if resp != nil {
			return nil, nil, &HandshakeError{URL: u, Status: resp.StatusCode, Err: err}
		}
		return nil, nil, fmt.Errorf("dial %s: %w", u, err)
	}
	if o.EventBuffer <= 0 {
		o.EventBuffer = 4096
	}
	c := &Conn{ws: ws, pending: map[string]chan frame{}, events: make(chan Event, o.EventBuffer), done: make(chan struct{}), onFrame: o.OnFrame}
	ws.SetCloseHandler(func(code int, text string) error {
		c.closeCode.Store(int64(code))
		return nil
	})
	go c.readLoop()
	if o.SkipConnect {
		return c, nil, nil
	}
	hello, err := c.Connect(ctx, token, o.Subscribe)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, hello, nil
}

// Connect sends the connect request.
func (c *Conn) Connect(ctx context.Context, token string, subscribe []string) (*Hello, error) {
	params := map[string]any{"minProtocol": 1, "maxProtocol": 1, "client": map[string]any{"id": "smithers-go-client", "version": "1", "platform": "go"},
		"auth": map[string]any{"token": token}}
	if subscribe != nil {
		params["subscribe"] = subscribe
	}
	var h Hello
	if err := c.Call(ctx, "connect", params, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

func (c *Conn) readLoop() {
	defer close(c.done)
	defer close(c.events)
	var buf bytes.Buffer // one frame's bytes, reused: decoding copies what it keeps
	for {
		err := c.readFrame(&buf)
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				c.closeCode.Store(int64(ce.Code))
			}
			c.mu.Lock()
			c.err = err
			for id, ch := range c.pending {
				close(ch)
				delete(c.pending, id)
			}
			c.mu.Unlock()
			return
		}
		received := time.Now()
		if c.onFrame != nil && c.onFrame(buf.Bytes(), received) {
			continue
		}
		var f frame
		if json.Unmarshal(buf.Bytes(), &f) != nil {
			continue
		}
		switch f.Type {
		case "res":
			c.mu.Lock()
			ch := c.pending[f.ID]
			delete(c.pending, f.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- f
			}
		case "event":
			c.events <- Event{Name: f.Event, Payload: f.Payload, Seq: f.Seq, StateVersion: f.StateVersion, Received: received}
		}
	}
}

// readFrame reads the next message into buf, in place of what it held.
func (c *Conn) readFrame(buf *bytes.Buffer) error {
	_, r, err := c.ws.NextReader()
	if err != nil {
		return err
	}
	buf.Reset()
	_, err = buf.ReadFrom(r)
	return err
}

// Call sends a request and waits for its response.
func (c *Conn) Call(ctx context.Context, method string, params, out any) error {
	id := strconv.FormatInt(c.next.Add(1), 10)
	ch := make(chan frame, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.pending[id] = ch
	c.mu.Unlock()
	b, err := json.Marshal(map[string]any{"type": "req", "id": id, "method": method, "params": params})
	if err != nil {
		return err
	}
	c.wmu.Lock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	err = c.ws.WriteMessage(websocket.TextMessage, b)
	c.wmu.Unlock()
	if err != nil {
		return err
	}
	select {
	case f, ok := <-ch:
		if !ok {
			return fmt.Errorf("%s: connection closed (code %d)", method, c.CloseCode())
		}
		if !f.OK {
			return decodeError(0, f.Error)
		}
		if out != nil {
			return json.Unmarshal(f.Payload, out)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Send writes a raw frame (for protocol tests).
func (c *Conn) Send(data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.WriteMessage(websocket.TextMessage, data)
}

// Events delivers event frames in arrival order; it is closed when the
// connection ends.
func (c *Conn) Events() <-chan Event { return c.events }

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// CloseCode is the close code the server sent, 0 when none.
func (c *Conn) CloseCode() int { return int(c.closeCode.Load()) }

// Close closes the connection.
func (c *Conn) Close() error {
	c.wmu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.wmu.Unlock()
	return c.ws.Close()
}

// StreamResponse is the streamRunEvents response.
type StreamResponse struct {
	StreamID   string `json:"streamId"`
	RunID      string `json:"runId"`
	AfterSeq   *int64 `json:"afterSeq"`
	CurrentSeq int64  `json:"currentSeq"`
}

// RunEvent is the payload of a run.event frame.
type RunEvent struct {
	StreamID     string          `json:"streamId"`
	Type         string          `json:"type"`
	RunID        string          `json:"runId"`
	Event        string          `json:"event"`
	Payload      json.RawMessage `json:"payload"`
	Seq          int64           `json:"seq"`
	StateVersion int64           `json:"stateVersion"`
}

// StreamRunEvents starts a run-event stream; afterSeq < 0 means live only.
func (c *Conn) StreamRunEvents(ctx context.Context, runID string, afterSeq int64) (*StreamResponse, error) {
	params := map[string]any{"runId": runID}
	if afterSeq >= 0 {
		params["afterSeq"] = afterSeq
	}
	var r StreamResponse
	if err := c.Call(ctx, "streamRunEvents", params, &r); err != nil {
		return nil, err
	}
	return &r, nil
}
