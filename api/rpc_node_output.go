package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// getNodeOutput (devtools.getNodeOutput) serves a node's output from the
// run journal (docs/rpc.md, docs/differences.md). Validation and lookup
// order: runId pattern (InvalidRunId), nodeId pattern (InvalidNodeId),
// iteration (InvalidIteration: required, a number or numeric string, an
// integer in [0, 2^31-1]), RunNotFound, NodeNotFound, IterationNotFound,
// NodeHasNoOutput (timer nodes, which settle without a value).
//
// The answer is {status, row, schema: null} plus partial when failed:
// "produced" for a finished (or skipped) node, with row = the output when it
// is an object, else {value: output}; "failed" for a failed or cancelled
// node, or one whose latest attempt failed, with partial = that attempt's
// last heartbeat data when it is an object, else null; "pending" otherwise.
func (s *Server) getNodeOutput(ctx context.Context, c *call) (any, error) {
	start := time.Now()
	res, size, err := s.nodeOutput(ctx, c)
	status := "error"
	if err == nil {
		status, _ = res["status"].(string)
	}
	s.metrics.nodeOutputServed(status, size, start)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// nodeOutput is getNodeOutput without its metrics; size is the byte length
// of the stored output it serves (0 when it serves none).
func (s *Server) nodeOutput(ctx context.Context, c *call) (res map[string]any, size int, err error) {
	p := c.params
	runID, err := validRunIDParam(p)
	if err != nil {
		return nil, 0, err
	}
	nodeID, err := validNodeIDParam(p)
	if err != nil {
		return nil, 0, err
	}
	iteration, err := iterationParam(p["iteration"])
	if err != nil {
		return nil, 0, err
	}
	if _, err := s.lookupRun(ctx, runID, host.CodeRunNotFound); err != nil {
		return nil, 0, err
	}
	n, err := s.journalNode(ctx, runID, nodeID, iteration)
	if err != nil {
		return nil, 0, err
	}
	if n.Kind == host.KindTimer {
		return nil, 0, host.Errorf(host.CodeNodeHasNoOut, "Node %s has no output.", nodeID)
	}
	switch n.State {
	case host.NodeFinished, host.NodeSkipped:
		row, err := outputRow(n)
		if err != nil {
			return nil, 0, err
		}
		return map[string]any{"status": "produced", "row": row, "schema": nil}, len(n.OutputJSON), nil
	case host.NodeFailed, host.NodeCancelled:
		res, err := s.failedOutput(ctx, n)
		return res, 0, err
	}
	attempts, err := s.reads.ListAttempts(ctx, runID, nodeID, iteration)
	if err != nil {
		return nil, 0, fmt.Errorf("list attempts of %s/%s: %w", runID, nodeID, err)
	}
	if len(attempts) > 0 {
		last := attempts[len(attempts)-1]
		if last.State == host.AttemptFailed || last.ErrorJSON != "" {
			res, err := s.failedOutput(ctx, n)
			return res, 0, err
		}
	}
	return map[string]any{"status": "pending", "row": nil, "schema": nil}, 0, nil
}

// iterationParam accepts a JSON number or a numeric string holding an
// integer in [0, 2^31-1]; anything else, absence included, is
// InvalidIteration.
func iterationParam(v any) (int, error) {
	var text string
	switch x := v.(type) {
	case nil:
		return 0, host.Errorf(codeInvalidIteration, "iteration is required")
	case json.Number:
		text = x.String()
	case string:
		text = strings.TrimSpace(x)
	}
	if n, ok := integralInRange(text, maxI32); ok {
		return int(n), nil
	}
	return 0, host.Errorf(codeInvalidIteration, "iteration must be a non-negative i32 integer.")
}

// journalNode finds one node of a run: NodeNotFound when the run has no
// node with that id, IterationNotFound when it lacks that iteration.
func (s *Server) journalNode(ctx context.Context, runID, nodeID string, iteration int) (host.Node, error) {
	nodes, err := s.reads.ListNodes(ctx, runID)
	if err != nil {
		return host.Node{}, fmt.Errorf("list nodes of %s: %w", runID, err)
	}
	seen := false
	for _, n := range nodes {
		if n.NodeID != nodeID {
			continue
		}
		seen = true
		if n.Iteration == iteration {
			return n, nil
		}
	}
	if !seen {
		return host.Node{}, host.Errorf(host.CodeNodeNotFound, "Node not found: %s", nodeID)
	}
	return host.Node{}, host.Errorf(host.CodeIterationNF, "Iteration %d not found for node %s.", iteration, nodeID)
}

// outputRow is a settled node's output as an object: the output itself when
// it is one, else {value: output} (undefined is null).
func outputRow(n host.Node) (any, error) {
	raw := strings.TrimSpace(n.OutputJSON)
	if raw == "" {
		return map[string]any{"value": nil}, nil
	}
	if !json.Valid([]byte(raw)) {
		return nil, host.Errorf(codeMalformedOutputRow, "The stored output of node %s is not valid JSON.", n.NodeID)
	}
	if raw[0] == '{' {
		return json.RawMessage(raw), nil
	}
	return map[string]any{"value": json.RawMessage(raw)}, nil
}

// failedOutput answers a failed node with the heartbeat data of its latest
// attempt as partial output.
func (s *Server) failedOutput(ctx context.Context, n host.Node) (map[string]any, error) {
	attempts, err := s.reads.ListAttempts(ctx, n.RunID, n.NodeID, n.Iteration)
	if err != nil {
		return nil, fmt.Errorf("list attempts of %s/%s: %w", n.RunID, n.NodeID, err)
	}
	var partial any
	if len(attempts) > 0 {
		data := bytes.TrimSpace([]byte(attempts[len(attempts)-1].HeartbeatDataJSON))
		if len(data) > 0 && data[0] == '{' && json.Valid(data) {
			partial = json.RawMessage(data)
		}
	}
	return map[string]any{"status": "failed", "row": nil, "schema": nil, "partial": partial}, nil
}
