// Package client is a Go client of the Gateway v1 protocol: HTTP RPC and
// WebSocket (connect handshake, calls, events, run-event streams, and
// FollowRun, a run-event stream resumed across dropped sockets). It works
// against this gateway and the upstream one; `smithers bench`, `smithers
// runs` and the tests use it.
//
// Concurrency: Client and Conn are safe for concurrent use; a Conn delivers
// events on one channel in arrival order.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Error is a failed response frame.
type Error struct {
	Status  int // HTTP status (0 over WebSocket)
	Code    string
	Message string
	Extra   map[string]any
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Client calls methods over HTTP (POST /v1/rpc/<method>).
type Client struct {
	BaseURL string // http://host:port
	Token   string
	HTTP    *http.Client
}

// New returns a client for baseURL with a bearer token.
func New(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token,
		HTTP: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
}

// frame is a response frame.
type frame struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	OK      bool            `json:"ok"`
	Payload json.RawMessage `json:"payload"`
	Error   json.RawMessage `json:"error"`
	// Event frames.
	Event        string          `json:"event"`
	Seq          int64           `json:"seq"`
	StateVersion int64           `json:"stateVersion"`
	EventPayload json.RawMessage `json:"-"`
}

func decodeError(status int, raw json.RawMessage) *Error {
	e := &Error{Status: status}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	e.Code, _ = m["code"].(string)
	e.Message, _ = m["message"].(string)
	delete(m, "code")
	delete(m, "message")
	delete(m, "version")
	e.Extra = m
	return e
}

// Call invokes method with params and decodes the payload into out (which
// may be nil).
func (c *Client) Call(ctx context.Context, method string, params, out any) error {
	body, err := json.Marshal(params)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+"/v1/rpc/"+method, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("%s: HTTP %d: %.200s", method, resp.StatusCode, data)
	}
	if !f.OK {
		return decodeError(resp.StatusCode, f.Error)
	}
	if out != nil {
		return json.Unmarshal(f.Payload, out)
	}
	return nil
}

// Get fetches a non-RPC path (/health, /metrics) and returns its body.
func (c *Client) Get(ctx context.Context, path string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
	}
	return string(b), err
}
