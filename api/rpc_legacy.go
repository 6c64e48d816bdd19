package api

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// Legacy-only methods of docs/rpc.md. runs.rerun and attempts.*
// are served from the journal; runs.diff and frames.* need run snapshots
// and render frames, which this gateway does not record yet: they validate
// and look the run up, then answer 501 UnsupportedSandbox (docs/differences.md).
// Unknown runs are NOT_FOUND here, as in the other core methods.

// rerunRun starts a new run of the original run's workflow with its input,
// exactly like launchRun (with runId = newRunId when given).
func (s *Server) rerunRun(ctx context.Context, c *call) (any, error) {
	runID, err := requireRunID(c.params)
	if err != nil {
		return nil, err
	}
	orig, err := s.lookupRun(ctx, runID, host.CodeNotFound)
	if err != nil {
		return nil, err
	}
	newRunID, _ := c.params.str("newRunId")
	run, _, err := s.gw.LaunchRun(ctx, host.LaunchInput{Workflow: orig.WorkflowKey, InputJSON: orig.InputJSON, RunID: newRunID, Auth: c.ident})
	if err != nil {
		return nil, err
	}
	c.subscribe(run.RunID)
	return map[string]any{"runId": run.RunID, "workflow": run.WorkflowKey}, nil
}

func (s *Server) diffRuns(ctx context.Context, c *call) (any, error) {
	left, _ := c.params.str("leftRunId")
	right, _ := c.params.str("rightRunId")
	if left == "" || right == "" {
		return nil, errInvalidRequest("leftRunId and rightRunId are required")
	}
	for _, id := range []string{left, right} {
		if _, err := s.lookupRun(ctx, id, host.CodeNotFound); err != nil {
			if host.ErrorCode(err) == host.CodeNotFound {
				return nil, host.Errorf(host.CodeNotFound, "Both runs must exist")
			}
			return nil, err
		}
	}
	return nil, errUnsupported(c.method, "runs do not record snapshots to compare")
}

func (s *Server) listFrames(ctx context.Context, c *call) (any, error) {
	runID, err := requireRunID(c.params)
	if err != nil {
		return nil, err
	}
	if _, err := positiveIntParam(c.params["limit"], "limit", 50); err != nil {
		return nil, err
	}
	if _, err := positiveIntParam(c.params["afterFrameNo"], "afterFrameNo", 0); err != nil {
		return nil, err
	}
	if _, err := s.lookupRun(ctx, runID, host.CodeNotFound); err != nil {
		return nil, err
	}
	return nil, errUnsupported(c.method, "runs have no render frames")
}

func (s *Server) getFrame(ctx context.Context, c *call) (any, error) {
	runID, err := requireRunID(c.params)
	if err != nil {
		return nil, err
	}
	if _, err := positiveIntParam(c.params["frameNo"], "frameNo", 0); err != nil {
		return nil, err
	}
	if _, err := s.lookupRun(ctx, runID, host.CodeNotFound); err != nil {
		return nil, err
	}
	return nil, errUnsupported(c.method, "runs have no render frames")
}

// attemptRow renders an attempt with the columns of docs/rpc.md;
// jj and agent columns this gateway does not have are null, and no attempt
// is ever served from a cache.
func attemptRow(a host.Attempt) map[string]any {
	return map[string]any{
		"runId":             a.RunID,
		"nodeId":            a.NodeID,
		"iteration":         a.Iteration,
		"attempt":           a.Attempt,
		"state":             a.State,
		"startedAtMs":       nullInt(a.StartedAtMs),
		"finishedAtMs":      nullInt(a.FinishedAtMs),
		"heartbeatAtMs":     nullInt(a.HeartbeatAtMs),
		"heartbeatDataJson": nullString(a.HeartbeatDataJSON),
		"errorJson":         nullString(a.ErrorJSON),
		"jjPointer":         nil,
		"responseText":      nil,
		"jjCwd":             nil,
		"cached":            false,
		"metaJson":          nullString(a.MetaJSON),
	}
}

// listAttempts answers the attempts of one node iteration, newest first,
// when nodeId is given (iteration defaults to 0), else every attempt of the
// run by start time.
func (s *Server) listAttempts(ctx context.Context, c *call) (any, error) {
	p := c.params
	runID, err := requireRunID(p)
	if err != nil {
		return nil, err
	}
	nodeID, _ := p.str("nodeId")
	iteration := int64(0)
	if v, ok := p["iteration"]; ok && v != nil {
		if iteration, ok = jsonInt(v, maxI32); !ok {
			return nil, errInvalidRequest("iteration must be a non-negative integer")
		}
	}
	if _, err := s.lookupRun(ctx, runID, host.CodeNotFound); err != nil {
		return nil, err
	}
	var attempts []host.Attempt
	if nodeID != "" {
		attempts, err = s.reads.ListAttempts(ctx, runID, nodeID, int(iteration))
		if err != nil {
			return nil, fmt.Errorf("list attempts of %s/%s: %w", runID, nodeID, err)
		}
		sort.SliceStable(attempts, func(i, j int) bool { return attempts[i].Attempt > attempts[j].Attempt })
	} else {
		nodes, err := s.reads.ListNodes(ctx, runID)
		if err != nil {
			return nil, fmt.Errorf("list nodes of %s: %w", runID, err)
		}
		for _, n := range nodes {
			as, err := s.reads.ListAttempts(ctx, runID, n.NodeID, n.Iteration)
			if err != nil {
				return nil, fmt.Errorf("list attempts of %s/%s: %w", runID, n.NodeID, err)
			}
			attempts = append(attempts, as...)
		}
		sort.SliceStable(attempts, func(i, j int) bool { return attempts[i].StartedAtMs < attempts[j].StartedAtMs })
	}
	out := make([]any, 0, len(attempts))
	for _, a := range attempts {
		out = append(out, attemptRow(a))
	}
	return out, nil
}

// getAttempt answers one attempt; runId, nodeId, iteration and attempt are
// all required (the last two as numbers).
func (s *Server) getAttempt(ctx context.Context, c *call) (any, error) {
	p := c.params
	runID, _ := p.str("runId")
	nodeID, _ := p.str("nodeId")
	_, iok := p["iteration"].(json.Number)
	_, aok := p["attempt"].(json.Number)
	if runID == "" || nodeID == "" || !iok || !aok {
		return nil, errInvalidRequest("runId, nodeId, iteration, and attempt are required")
	}
	iteration, iok := jsonInt(p["iteration"], maxI32)
	attempt, aok := jsonInt(p["attempt"], maxI32)
	if _, err := s.lookupRun(ctx, runID, host.CodeNotFound); err != nil {
		return nil, err
	}
	if iok && aok {
		attempts, err := s.reads.ListAttempts(ctx, runID, nodeID, int(iteration))
		if err != nil {
			return nil, fmt.Errorf("list attempts of %s/%s: %w", runID, nodeID, err)
		}
		for _, a := range attempts {
			if int64(a.Attempt) == attempt {
				return attemptRow(a), nil
			}
		}
	}
	return nil, host.Errorf(host.CodeNotFound, "Attempt not found")
}
