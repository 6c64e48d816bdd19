package api

import (
	"context"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// cronRow renders a cron as docs/rpc.md lists it.
func cronRow(c host.Cron) map[string]any {
	return map[string]any{
		"cronId":       c.CronID,
		"pattern":      c.Pattern,
		"workflowPath": nullString(c.WorkflowPath),
		"enabled":      c.Enabled,
		"createdAtMs":  nullInt(c.CreatedAtMs),
		"lastRunAtMs":  nullInt(c.LastRunAtMs),
		"nextRunAtMs":  nullInt(c.NextRunAtMs),
		"errorJson":    nullString(c.ErrorJSON),
		"workflow":     nullString(c.Workflow()),
	}
}

// cronList answers every stored cron oldest first; filter.workflow (only
// inside filter, as upstream) keeps one workflow's crons.
func (s *Server) cronList(ctx context.Context, c *call) (any, error) {
	workflow, _ := c.params.obj("filter").str("workflow")
	crons, err := s.gw.ListCrons(ctx, workflow)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(crons))
	for _, cr := range crons {
		out = append(out, cronRow(cr))
	}
	return out, nil
}

// cronCreate upserts a cron keyed by cronId and answers the stored row. A
// pattern the parser refuses is 400 INVALID_INPUT (upstream: a thrown 500).
func (s *Server) cronCreate(ctx context.Context, c *call) (any, error) {
	p := c.params
	workflow, _ := p.str("workflow")
	pattern, _ := p.str("pattern")
	if workflow == "" || pattern == "" {
		return nil, errInvalidRequest("workflow and pattern are required")
	}
	cronID, _ := p.str("cronId")
	enabled := true
	if b, ok := p["enabled"].(bool); ok {
		enabled = b
	}
	cron, err := s.gw.CreateCron(ctx, host.CronInput{CronID: cronID, Workflow: workflow, Pattern: pattern, Enabled: enabled})
	if err != nil {
		if host.ErrorCode(err) == host.CodeInvalidInput {
			return nil, thrown(err)
		}
		return nil, err
	}
	return cronRow(cron), nil
}

func (s *Server) cronDelete(ctx context.Context, c *call) (any, error) {
	cronID, _ := c.params.str("cronId")
	if cronID == "" {
		return nil, errInvalidRequest("cronId is required")
	}
	if err := s.gw.DeleteCron(ctx, cronID); err != nil {
		return nil, err
	}
	return map[string]any{"cronId": cronID, "removed": true}, nil
}

// cronRun starts a run now for a cron's workflow (or params.workflow) with
// the caller's auth and answers {runId, workflow}. An unknown workflow is 404
// NOT_FOUND (upstream: a thrown 500), with the thrown-error id rule.
func (s *Server) cronRun(ctx context.Context, c *call) (any, error) {
	p := c.params
	cronID, _ := p.str("cronId")
	workflow, _ := p.str("workflow")
	input, ok := p["input"].(map[string]any)
	if !ok {
		input = map[string]any{}
	}
	inputJSON, err := validateInput(input)
	if err != nil {
		return nil, err
	}
	run, err := s.gw.TriggerCron(ctx, host.CronTrigger{CronID: cronID, Workflow: workflow, InputJSON: inputJSON, Auth: c.ident})
	if err != nil {
		if host.ErrorCode(err) == host.CodeNotFound {
			return nil, thrown(err)
		}
		return nil, err
	}
	s.metrics.cronTrigger("manual")
	c.subscribe(run.RunID)
	return map[string]any{"runId": run.RunID, "workflow": run.WorkflowKey}, nil
}
