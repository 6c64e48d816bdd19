package api

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// Operator handoff, time travel and DevTools methods. hijackRun is
// upstream's stub. The others need render frames, VCS sandboxes and node
// diffs, which this gateway does not record yet (docs/differences.md): they
// validate their params in the documented order, look the run up, and then
// answer 501 UnsupportedSandbox naming the method.

// maxSafeInteger is JavaScript's Number.MAX_SAFE_INTEGER (2^53-1).
const maxSafeInteger = 1<<53 - 1

// errUnsupported is the answer of a method whose feature comes later.
func errUnsupported(method, missing string) error {
	return host.Errorf(host.CodeUnsupported, "%s is not supported by this gateway yet: %s.", method, missing)
}

// lookupRun finds a run or fails with code ("RunNotFound" for the
// stream/devtools/rewind family, "NOT_FOUND" for core methods).
func (s *Server) lookupRun(ctx context.Context, runID, code string) (host.Run, error) {
	r, ok, err := s.reads.GetRun(ctx, runID)
	if err != nil {
		return host.Run{}, fmt.Errorf("get run %s: %w", runID, err)
	}
	if !ok {
		return host.Run{}, host.Errorf(code, "Run not found: %s", runID)
	}
	return r, nil
}

// hijackRun answers a handoff session id for an existing run; it has no
// other effect (docs/rpc.md).
func (s *Server) hijackRun(ctx context.Context, c *call) (any, error) {
	runID, _ := c.params.str("runId")
	if runID == "" {
		return nil, host.Errorf(codeInvalidRunID, "runId is required")
	}
	if _, err := s.lookupRun(ctx, runID, host.CodeRunNotFound); err != nil {
		return nil, err
	}
	return map[string]any{"runId": runID, "status": "hijack-ready", "sessionId": uuid.NewString()}, nil
}

// rewindRun (jumpToFrame, devtools.jumpToFrame) checks what upstream checks
// before the time-travel engine runs (docs/rpc.md): runId present,
// frameNo a number, the run exists, the caller owns the run or is an admin,
// runId pattern, frameNo range, confirm === true.
func (s *Server) rewindRun(ctx context.Context, c *call) (any, error) {
	p := c.params
	runID, _ := p.str("runId")
	if runID == "" {
		return nil, host.Errorf(codeInvalidRunID, "runId is required")
	}
	if _, ok := p["frameNo"].(json.Number); !ok {
		return nil, host.Errorf(codeInvalidFrameNo, "frameNo is required")
	}
	run, err := s.lookupRun(ctx, runID, host.CodeRunNotFound)
	if err != nil {
		return nil, err
	}
	if !mayRewind(c.ident, run) {
		return nil, host.Errorf(host.CodeUnauthorizedOwner, "Only the run owner or an admin may rewind this run.")
	}
	if _, err := validRunIDParam(p); err != nil {
		return nil, err
	}
	if _, ok := jsonInt(p["frameNo"], maxI32); !ok {
		return nil, host.Errorf(codeInvalidFrameNo, "frameNo must be a non-negative i32 integer.")
	}
	if confirm, _ := p["confirm"].(bool); !confirm {
		return nil, host.Errorf(codeConfirmationRequired, "Rewinding a run is destructive; pass confirm: true.")
	}
	return nil, errUnsupported(c.method, "runs have no render frames to rewind to")
}

// mayRewind reports whether the caller may rewind the run: role admin (in
// any letter case), or a userId equal to the run's recorded owner
// (configJson.auth.triggeredBy).
func mayRewind(id host.Identity, run host.Run) bool {
	if strings.EqualFold(id.Role, "admin") {
		return true
	}
	if id.UserID == "" {
		return false
	}
	var cfg struct {
		Auth struct {
			TriggeredBy string `json:"triggeredBy"`
		} `json:"auth"`
	}
	if json.Unmarshal([]byte(run.ConfigJSON), &cfg) != nil {
		return false
	}
	return cfg.Auth.TriggeredBy == id.UserID
}

// getNodeDiff (devtools.getNodeDiff): runId and nodeId patterns, iteration a
// JSON number in [0, 2^31-1], run lookup (docs/rpc.md).
func (s *Server) getNodeDiff(ctx context.Context, c *call) (any, error) {
	p := c.params
	runID, err := validRunIDParam(p)
	if err != nil {
		return nil, err
	}
	if _, err := validNodeIDParam(p); err != nil {
		return nil, err
	}
	if _, ok := jsonInt(p["iteration"], maxI32); !ok {
		return nil, host.Errorf(codeInvalidIteration, "iteration must be a non-negative i32 integer.")
	}
	if _, err := s.lookupRun(ctx, runID, host.CodeRunNotFound); err != nil {
		return nil, err
	}
	return nil, errUnsupported(c.method, "runs do not record VCS snapshots to diff")
}

// getDevToolsSnapshot: runId (InvalidRunId), frameNo when given an integer
// in [0, 2^31-1] (FrameOutOfRange), run lookup (docs/rpc.md).
func (s *Server) getDevToolsSnapshot(ctx context.Context, c *call) (any, error) {
	p := c.params
	runID, err := validRunIDParam(p)
	if err != nil {
		return nil, err
	}
	if v, ok := p["frameNo"]; ok && v != nil {
		if _, ok := jsonInt(v, maxI32); !ok {
			return nil, host.Errorf(codeFrameOutOfRange, "frameNo must be a non-negative i32 integer.")
		}
	}
	if _, err := s.lookupRun(ctx, runID, host.CodeRunNotFound); err != nil {
		return nil, err
	}
	return nil, errUnsupported(c.method, "runs have no render frames")
}

// streamDevTools is WebSocket-only (over HTTP the method table answers
// INVALID_REQUEST). Validation order of docs/websocket.md: runId present,
// afterSeq/fromSeq agree, runId pattern, seq an integer in [0, 2^53-1], run
// lookup. The subscription-filter check belongs to the WebSocket transport.
func (s *Server) streamDevTools(ctx context.Context, c *call) (any, error) {
	p := c.params
	runID, _ := p.str("runId")
	if runID == "" {
		return nil, host.Errorf(codeInvalidRunID, "runId is required")
	}
	after, hasAfter := p["afterSeq"].(json.Number)
	from, hasFrom := p["fromSeq"].(json.Number)
	if hasAfter && hasFrom && !sameNumber(after, from) {
		return nil, host.Errorf(host.CodeSeqOutOfRange, "fromSeq and afterSeq must match when both are provided")
	}
	if _, err := validRunIDParam(p); err != nil {
		return nil, err
	}
	seq := p["afterSeq"]
	if seq == nil {
		seq = p["fromSeq"]
	}
	if seq != nil {
		if _, ok := jsonInt(seq, maxSafeInteger); !ok {
			return nil, host.Errorf(host.CodeSeqOutOfRange, "fromSeq must be a non-negative integer.")
		}
	}
	if _, err := s.lookupRun(ctx, runID, host.CodeRunNotFound); err != nil {
		return nil, err
	}
	return nil, errUnsupported(c.method, "runs have no render frames to stream")
}

// sameNumber compares two JSON numbers by value, as JavaScript's === does.
func sameNumber(a, b json.Number) bool {
	fa, ea := a.Float64()
	fb, eb := b.Float64()
	return ea == nil && eb == nil && fa == fb
}
