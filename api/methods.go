package api

import (
	"context"
	"fmt"

	"github.com/smithers-orchestrator/smithers-go/api/auth"
	"github.com/smithers-orchestrator/smithers-go/host"
)

// call is one RPC invocation after transport decoding.
type call struct {
	method    string
	params    params
	ident     host.Identity
	transport string // "http" or "ws"
}

// handler implements one method; errors are *host.Error (rendered by the
// error table) or thrownError wrapping one.
type handler func(s *Server, ctx context.Context, c *call) (any, error)

type method struct {
	handler handler
	wsOnly  bool
}

// methodTable lists every method and its legacy aliases (CONTRACT.md §2.3).
func methodTable() map[string]*method {
	m := map[string]*method{}
	add := func(h handler, names ...string) {
		for _, n := range names {
			m[n] = &method{handler: h}
		}
	}
	add((*Server).launchRun, "launchRun", "runs.create")
	add((*Server).resumeRun, "resumeRun")
	add((*Server).cancelRun, "cancelRun", "runs.cancel")
	add((*Server).submitApproval, "submitApproval", "approvals.decide")
	add((*Server).submitSignal, "submitSignal", "signals.send")
	add((*Server).getRun, "getRun", "runs.get")
	add((*Server).listRuns, "listRuns", "runs.list")
	add((*Server).listWorkflows, "listWorkflows", "workflows.list")
	add((*Server).listApprovals, "listApprovals", "approvals.list")
	add((*Server).healthRPC, "health")
	m["streamRunEvents"] = &method{wsOnly: true}
	m["streamDevTools"] = &method{wsOnly: true}
	return m
}

// invoke runs the scope gate and then the method (steps 8-9 of CONTRACT.md
// §1.6); the gate runs before parameter validation.
func (s *Server) invoke(ctx context.Context, c *call) (any, error) {
	if c.method == "connect" && c.transport == "http" {
		return nil, &host.Error{Code: "METHOD_NOT_FOUND", Message: "Unknown method: " + c.method}
	}
	if !auth.HasScope(c.ident.Scopes, c.method) {
		required := auth.RequiredScope(c.method)
		return nil, &host.Error{Code: host.CodeForbidden, Message: fmt.Sprintf("Missing required scope: %s", required),
			Extra: map[string]any{"requiredScope": required}}
	}
	m, ok := s.methods[c.method]
	if !ok {
		return nil, &host.Error{Code: "METHOD_NOT_FOUND", Message: "Unknown method: " + c.method}
	}
	if m.wsOnly && c.transport == "http" {
		return nil, errInvalidRequest("%s is only supported over websocket connections", c.method)
	}
	return m.handler(s, ctx, c)
}
