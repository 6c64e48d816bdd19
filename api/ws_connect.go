package api

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/smithers-orchestrator/smithers-go/api/auth"
	"github.com/smithers-orchestrator/smithers-go/host"
)

// connect answers the handshake's connect request (docs/websocket.md). A
// failed connect, first or repeated, is answered and the socket is then
// closed with 1008 (docs/differences.md).
func (c *wsConn) connect(req wsRequest) {
	start := time.Now()
	hello, err := c.negotiate(req)
	c.s.metrics.rpc("connect", "ws", start, err)
	if err != nil {
		c.respond(req.id, "connect", nil, err)
		c.send(func() { c.closeWith(closePolicyViolation, "authentication failed") })
		return
	}
	c.respond(req.id, "connect", hello, nil)
}

func (c *wsConn) negotiate(req wsRequest) (any, error) {
	s := c.s
	p, ok := req.params.(map[string]any)
	if !ok {
		return nil, errInvalidRequest("Connect params must be an object")
	}
	minV, minOK := p["minProtocol"].(json.Number)
	maxV, maxOK := p["maxProtocol"].(json.Number)
	if !minOK || !maxOK {
		return nil, errInvalidRequest("Connect request is missing protocol negotiation fields")
	}
	minP, err := positiveIntParam(minV, "minProtocol", 0)
	if err != nil {
		return nil, err
	}
	maxP, err := positiveIntParam(maxV, "maxProtocol", 0)
	if err != nil {
		return nil, err
	}
	if minP > s.protocol || maxP < s.protocol {
		return nil, host.Errorf(host.CodeProtocolUnsupported, "Gateway protocol %d is not supported by the client", s.protocol)
	}
	if !truthy(p["client"]) {
		return nil, errInvalidRequest("Connect request is missing client information")
	}
	token := ""
	if a, ok := p["auth"].(map[string]any); ok {
		token, _ = a["token"].(string)
	}
	ident, err := s.auth.Authenticate(auth.Credentials{Token: token, Header: c.header})
	s.metrics.authEvent("ws", s.auth.Mode(), err == nil)
	if err != nil {
		return nil, err
	}
	if ident.Scopes == nil {
		ident.Scopes = []string{}
	}
	var filter map[string]bool
	hasFilter := false
	if list, ok := p["subscribe"].([]any); ok {
		hasFilter = true
		filter = map[string]bool{}
		for _, v := range list {
			if id, ok := v.(string); ok {
				filter[id] = true
			}
		}
	}
	snapshot, err := c.snapshot()
	if err != nil {
		return nil, err
	}
	if !s.ws.slots.authenticated(c.slot) {
		return nil, host.Errorf(host.CodeServiceUnavailable, "The connection was closed to make room for newer ones before it connected; reconnect.")
	}
	c.mu.Lock()
	c.ident = &ident
	c.token = token
	c.hasFilter, c.filter = hasFilter, filter
	c.mu.Unlock()
	select {
	case c.connected <- struct{}{}:
	default:
	}
	return map[string]any{
		"protocol": s.protocol,
		"features": s.features,
		"policy":   map[string]any{"heartbeatMs": c.lim.heartbeat.Milliseconds()},
		"auth": map[string]any{"sessionToken": uuid.NewString(), "role": ident.Role, "scopes": ident.Scopes,
			"userId": nullString(ident.UserID), "tokenId": nullString(ident.TokenID)},
		"snapshot": snapshot,
	}, nil
}

// snapshot is the hello payload's view of active runs and pending
// approvals.
func (c *wsConn) snapshot() (map[string]any, error) {
	ctx := c.ctx
	runs, err := c.s.reads.ListRuns(ctx, host.RunFilter{Statuses: []host.RunStatus{host.RunRunning, host.RunWaitingApproval, host.RunWaitingEvent, host.RunWaitingTimer}, Limit: 1000})
	if err != nil {
		return nil, err
	}
	approvals, err := c.s.gw.ListApprovals(ctx, "", "", 0)
	if err != nil {
		return nil, err
	}
	rows := make([]any, 0, len(runs))
	for _, r := range runs {
		rows = append(rows, runRow(r))
	}
	items := make([]any, 0, len(approvals))
	for _, a := range approvals {
		items = append(items, approvalSummary(a))
	}
	return map[string]any{"runs": rows, "approvals": items, "stateVersion": c.s.stateVersion()}, nil
}

// truthy is JavaScript truthiness for decoded JSON values.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case json.Number:
		f, err := x.Float64()
		return err == nil && f != 0
	}
	return true
}
