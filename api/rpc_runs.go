package api

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/smithers-orchestrator/smithers-go/api/auth"
	"github.com/smithers-orchestrator/smithers-go/host"
)

// maxListRuns bounds the rows of one listRuns answer.
const maxListRuns = 1000

// validateInput applies the run input limits (host.CheckInputBounds).
func validateInput(v any) (string, error) {
	raw := rawJSON(v)
	if err := host.CheckInputBounds(v, raw); err != nil {
		return "", err
	}
	return raw, nil
}

func (s *Server) launchRun(ctx context.Context, c *call) (any, error) {
	p := c.params
	workflow, ok := p.str("workflow")
	if !ok {
		return nil, errInvalidRequest("workflow is required")
	}
	if _, ok := s.gw.Workflow(workflow); !ok {
		return nil, host.Errorf(host.CodeNotFound, "Unknown workflow: %s", workflow)
	}
	input, ok := p["input"].(map[string]any)
	if !ok {
		input = map[string]any{}
	}
	inputJSON, err := validateInput(input)
	if err != nil {
		return nil, err
	}
	opts := p.obj("options")
	runID, _ := p.strOr("runId", opts)
	key, _ := opts.str("idempotencyKey")
	run, _, err := s.gw.LaunchRun(ctx, host.LaunchInput{Workflow: workflow, InputJSON: inputJSON, RunID: runID, IdempotencyKey: key, Auth: c.ident})
	if err != nil {
		return nil, err
	}
	c.subscribe(run.RunID)
	return map[string]any{"runId": run.RunID, "workflow": run.WorkflowKey}, nil
}

func requireRunID(p params) (string, error) {
	id, ok := p.str("runId")
	if !ok || id == "" {
		return "", errInvalidRequest("runId is required")
	}
	return id, nil
}

func (s *Server) getRun(ctx context.Context, c *call) (any, error) {
	id, err := requireRunID(c.params)
	if err != nil {
		return nil, err
	}
	d, err := s.gw.GetRun(ctx, id)
	if err != nil {
		return nil, err
	}
	return runDetail(d), nil
}

func (s *Server) listRuns(ctx context.Context, c *call) (any, error) {
	p := c.params
	f := p.obj("filter")
	lv := p["limit"]
	if lv == nil && f != nil {
		lv = f["limit"]
	}
	limit, err := positiveIntParam(lv, "limit", 50)
	if err != nil {
		return nil, err
	}
	// One answer holds at most maxListRuns rows (upstream has no bound);
	// page further with the cursor.
	limit = min(limit, maxListRuns)
	status, _ := p.strOr("status", f)
	filter, err := runListFilter(p, f)
	if err != nil {
		return nil, err
	}
	filter.Limit = limit
	runs, err := s.gw.ListRuns(ctx, status, filter)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(runs))
	for _, r := range runs {
		out = append(out, runRow(r))
	}
	return out, nil
}

func (s *Server) listWorkflows(_ context.Context, c *call) (any, error) {
	p := c.params
	hv, has := p["hasUi"]
	if !has {
		if f := p.obj("filter"); f != nil {
			hv, has = f["hasUi"]
		}
	}
	out := []any{}
	for _, wf := range s.gw.Workflows() {
		if b, ok := hv.(bool); has && ok && b {
			continue // no workflow serves a UI
		}
		item := map[string]any{"key": wf.Key, "hasUi": false, "uiPath": nil}
		if wf.ReadableName != "" {
			item["readableName"] = wf.ReadableName
		}
		if wf.Description != "" {
			item["description"] = wf.Description
		}
		out = append(out, item)
	}
	return out, nil
}

func (s *Server) cancelRun(ctx context.Context, c *call) (any, error) {
	id, err := requireRunID(c.params)
	if err != nil {
		return nil, err
	}
	if err := s.gw.CancelRun(ctx, id); err != nil {
		return nil, err
	}
	return map[string]any{"runId": id, "status": "cancelling"}, nil
}

func (s *Server) resumeRun(ctx context.Context, c *call) (any, error) {
	id, err := requireRunID(c.params)
	if err != nil {
		return nil, err
	}
	force, retryFailed := false, false
	if opts := c.params.obj("options"); opts != nil {
		force, _ = opts["force"].(bool)
		retryFailed, _ = opts["retryFailed"].(bool)
	}
	var status string
	if retryFailed {
		// Beyond upstream: a failed run continues from its failed step.
		status, err = s.gw.RetryFailedRun(ctx, id)
	} else {
		status, err = s.gw.ResumeRun(ctx, id, force)
	}
	if err != nil {
		return nil, err
	}
	if status == host.ResumeRequested {
		c.subscribe(id)
	}
	return map[string]any{"runId": id, "status": status}, nil
}

func (s *Server) listApprovals(ctx context.Context, c *call) (any, error) {
	p := c.params
	f := p.obj("filter")
	runID, _ := p.strOr("runId", f)
	workflow, _ := p.strOr("workflow", f)
	lv := p["limit"]
	if lv == nil && f != nil {
		lv = f["limit"]
	}
	limit := 0
	if lv != nil {
		var err error
		if limit, err = positiveIntParam(lv, "limit", 0); err != nil {
			return nil, err
		}
	}
	list, err := s.gw.ListApprovals(ctx, runID, workflow, limit)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(list))
	for _, a := range list {
		out = append(out, approvalSummary(a))
	}
	return out, nil
}

func (s *Server) submitApproval(ctx context.Context, c *call) (any, error) {
	p := c.params
	runID, rok := p.str("runId")
	nodeID, nok := p.str("nodeId")
	var approved, aok bool
	if b, ok := p["approved"].(bool); ok {
		approved, aok = b, true
	} else if d := p.obj("decision"); d != nil {
		if b, ok := d["approved"].(bool); ok {
			approved, aok = b, true
		}
	}
	if !rok || runID == "" || !nok || nodeID == "" || !aok {
		return nil, errInvalidRequest("runId, nodeId, and approved are required")
	}
	iteration := 0
	if n, ok := p["iteration"].(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			iteration = int(i)
		}
	}
	note, _ := p.str("note")
	if note == "" {
		if d := p.obj("decision"); d != nil {
			note, _ = d.str("note")
		}
	}
	var decision json.RawMessage
	if v, ok := p["decision"]; ok {
		decision = json.RawMessage(rawJSON(v))
	}
	err := s.gw.SubmitApproval(ctx, host.DecisionInput{RunID: runID, NodeID: nodeID, Iteration: iteration, Approved: approved,
		Decision: decision, Note: note, By: c.ident,
		// allowedScopes are checked by the engine inside the decision's
		// transaction, with the scope rules of auth.
		ScopesAllow: func(allowed []string) bool { return auth.ApprovalScopesSatisfied(c.ident.Scopes, allowed) }})
	if err != nil {
		return nil, err
	}
	s.metrics.approvalDecision(approved)
	c.subscribe(runID) // the decision resumes the run (docs/websocket.md)
	return map[string]any{"runId": runID, "nodeId": nodeID, "iteration": iteration, "approved": approved}, nil
}

func (s *Server) submitSignal(ctx context.Context, c *call) (any, error) {
	p := c.params
	runID, rok := p.str("runId")
	name, nok := p.str("signalName")
	key, kok := p.str("correlationKey")
	if !nok && kok {
		name, nok = key, true
	}
	if !rok || runID == "" || !nok {
		return nil, errInvalidRequest("runId and signalName are required")
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, errInvalidInput("Signal name must be a non-empty string.")
	}
	var corr *string
	if cid, ok := p.str("correlationId"); ok {
		corr = &cid
	} else if kok {
		corr = &key
	}
	if corr != nil {
		t := strings.TrimSpace(*corr)
		if t == "" {
			corr = nil
		} else {
			corr = &t
		}
	}
	payload := "{}"
	if v, ok := p["data"]; ok && v != nil {
		payload = rawJSON(v)
	} else if v, ok := p["payload"]; ok && v != nil {
		payload = rawJSON(v)
	}
	sig, err := s.gw.SubmitSignal(ctx, host.SignalInput{RunID: runID, Name: name, CorrelationID: corr, PayloadJSON: payload, ReceivedBy: c.ident.UserID})
	if err != nil {
		return nil, err
	}
	s.metrics.signalSent()
	c.subscribe(runID)
	var cid any
	if sig.CorrelationID != nil {
		cid = *sig.CorrelationID
	}
	return map[string]any{"runId": sig.RunID, "seq": sig.Seq, "signalName": sig.Name, "correlationId": cid, "receivedAtMs": sig.ReceivedAtMs}, nil
}

func (s *Server) healthRPC(_ context.Context, _ *call) (any, error) {
	return map[string]any{"protocol": s.protocol, "features": s.features, "stateVersion": s.stateVersion(),
		"uptimeMs": s.now().Sub(s.gw.StartedAt()).Milliseconds()}, nil
}
