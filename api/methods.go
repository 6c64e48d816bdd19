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
	transport string  // "http" or "ws"
	conn      *wsConn // the socket of a WebSocket call (nil over HTTP)
}

// subscribe adds a run the caller started to its socket's filter
// (auto-subscribe, docs/websocket.md); a no-op over HTTP.
func (c *call) subscribe(runID string) {
	if c.conn != nil {
		c.conn.autoSubscribe(runID)
	}
}

// handler implements one method; errors are *host.Error (rendered by the
// error table) or thrownError wrapping one.
type handler func(s *Server, ctx context.Context, c *call) (any, error)

type method struct {
	handler handler
	// wsOnly methods answer INVALID_REQUEST over HTTP; the WebSocket
	// transport runs their handler (or serves them itself when handler is
	// nil).
	wsOnly bool
}

// methodTable lists every method: the 19 canonical v1 methods with their
// legacy aliases, and the utility and legacy-only methods (docs/rpc.md,
// §2.4.20). Scopes are not here: the gate resolves them from the name with
// api/auth, so a name without a handler still gets its scope checked before
// METHOD_NOT_FOUND.
func methodTable() map[string]*method {
	m := map[string]*method{}
	add := func(h handler, names ...string) {
		for _, n := range names {
			m[n] = &method{handler: h}
		}
	}
	// Runs (rpc_runs.go).
	add((*Server).launchRun, "launchRun", "runs.create")
	add((*Server).resumeRun, "resumeRun")
	add((*Server).cancelRun, "cancelRun", "runs.cancel")
	add((*Server).getRun, "getRun", "runs.get")
	add((*Server).listRuns, "listRuns", "runs.list")
	add((*Server).listWorkflows, "listWorkflows", "workflows.list")
	add((*Server).listApprovals, "listApprovals", "approvals.list")
	add((*Server).submitApproval, "submitApproval", "approvals.decide")
	add((*Server).submitSignal, "submitSignal", "signals.send")
	add((*Server).healthRPC, "health")
	m["streamRunEvents"] = &method{handler: (*Server).streamRunEvents, wsOnly: true}
	// Operator handoff and time travel (rpc_devtools.go).
	add((*Server).hijackRun, "hijackRun")
	add((*Server).rewindRun, "rewindRun", "jumpToFrame", "devtools.jumpToFrame")
	add((*Server).getNodeDiff, "getNodeDiff", "devtools.getNodeDiff")
	add((*Server).getDevToolsSnapshot, "getDevToolsSnapshot")
	m["streamDevTools"] = &method{handler: (*Server).streamDevTools, wsOnly: true}
	// Node outputs from the journal (rpc_node_output.go).
	add((*Server).getNodeOutput, "getNodeOutput", "devtools.getNodeOutput")
	// Crons (rpc_cron.go).
	add((*Server).cronList, "cronList", "cron.list")
	add((*Server).cronCreate, "cronCreate", "cron.add")
	add((*Server).cronDelete, "cronDelete", "cron.remove")
	add((*Server).cronRun, "cronRun", "cron.trigger")
	// Legacy-only methods (rpc_legacy.go).
	add((*Server).rerunRun, "runs.rerun")
	add((*Server).diffRuns, "runs.diff")
	add((*Server).listFrames, "frames.list")
	add((*Server).getFrame, "frames.get")
	add((*Server).listAttempts, "attempts.list")
	add((*Server).getAttempt, "attempts.get")
	return m
}

func errMethodNotFound(name string) error {
	return &host.Error{Code: host.CodeMethodNotFound, Message: "Unknown method: " + name}
}

// invoke runs the scope gate and then the method (steps 8-9 of docs/rpc.md
// §1.6); the gate runs before parameter validation, also for unknown names
// (which need run:read).
func (s *Server) invoke(ctx context.Context, c *call) (any, error) {
	if c.method == auth.MethodConnect && c.transport == "http" {
		return nil, errMethodNotFound(c.method)
	}
	if !auth.HasScope(c.ident.Scopes, c.method) {
		required := auth.RequiredScope(c.method)
		return nil, &host.Error{Code: host.CodeForbidden, Message: fmt.Sprintf("Missing required scope: %s", required),
			Extra: map[string]any{"requiredScope": required}}
	}
	m, ok := s.methods[c.method]
	if !ok {
		return nil, errMethodNotFound(c.method)
	}
	if m.wsOnly && c.transport == "http" {
		return nil, errInvalidRequest("%s is only supported over websocket connections", c.method)
	}
	if m.handler == nil {
		return nil, errMethodNotFound(c.method)
	}
	return m.handler(s, ctx, c)
}
