package host

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/google/uuid"
)

// cronPathPrefix starts the workflowPath of every cron created through the
// gateway: "gateway:<workflow key>" (docs/workflows.md).
const cronPathPrefix = "gateway:"

// CronWorkflowPath is the workflowPath of a gateway cron of workflow key.
func CronWorkflowPath(key string) string { return cronPathPrefix + key }

// Workflow is the key of the workflow the cron starts: its WorkflowKey,
// else the key in a "gateway:<key>" workflowPath, else "" (a cron created
// by another tool, which the gateway lists but never fires).
func (c Cron) Workflow() string {
	if c.WorkflowKey != "" {
		return c.WorkflowKey
	}
	if key, ok := strings.CutPrefix(c.WorkflowPath, cronPathPrefix); ok {
		return key
	}
	return ""
}

// ListCrons returns the stored crons oldest first (createdAtMs, then
// cronId). A non-empty workflow keeps only the crons of that workflow.
func (g *Gateway) ListCrons(ctx context.Context, workflow string) ([]Cron, error) {
	all, err := g.store.ListCrons(ctx)
	if err != nil {
		return nil, fmt.Errorf("list crons: %w", err)
	}
	out := all[:0]
	for _, c := range all {
		if workflow == "" || c.Workflow() == workflow {
			out = append(out, c)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].CreatedAtMs != out[j].CreatedAtMs {
			return out[i].CreatedAtMs < out[j].CreatedAtMs
		}
		return out[i].CronID < out[j].CronID
	})
	return out, nil
}

// CronInput is a cronCreate request after the API decoded it.
type CronInput struct {
	// CronID names the cron; "" creates one with a new UUID.
	CronID   string
	Workflow string
	Pattern  string
	Enabled  bool
}

// CreateCron stores a cron of a registered workflow with its next fire
// time computed from now, and returns the stored row. An existing cronId is
// updated in place: only pattern, workflow, enabled and nextRunAtMs change;
// createdAtMs, lastRunAtMs and errorJson are kept. It fails with NOT_FOUND
// for an unknown workflow and INVALID_INPUT for a pattern the cron parser
// refuses.
func (g *Gateway) CreateCron(ctx context.Context, in CronInput) (Cron, error) {
	if _, ok := g.workflows[in.Workflow]; !ok {
		return Cron{}, Errorf(CodeNotFound, "Unknown workflow: %s", in.Workflow)
	}
	if err := checkTexts(map[string]string{"cronId": in.CronID, "pattern": in.Pattern}); err != nil {
		return Cron{}, err
	}
	now := g.now()
	next, err := NextCronTime(in.Pattern, now)
	if err != nil {
		return Cron{}, err
	}
	if in.CronID == "" {
		in.CronID = uuid.NewString()
	}
	var stored Cron
	err = g.update(ctx, func(tx Tx) error {
		c, ok, err := tx.GetCron(in.CronID)
		if err != nil {
			return err
		}
		if !ok {
			c = Cron{CronID: in.CronID, CreatedAtMs: now.UnixMilli()}
		}
		c.Pattern = in.Pattern
		c.WorkflowPath = CronWorkflowPath(in.Workflow)
		c.WorkflowKey = in.Workflow
		c.Enabled = in.Enabled
		c.NextRunAtMs = next.UnixMilli()
		stored = c
		return tx.PutCron(c)
	})
	if err != nil {
		return Cron{}, err
	}
	g.kickCrons()
	return stored, nil
}

// DeleteCron removes a cron; NOT_FOUND when there is none with that id.
func (g *Gateway) DeleteCron(ctx context.Context, cronID string) error {
	err := g.update(ctx, func(tx Tx) error {
		ok, err := tx.DeleteCron(cronID)
		if err != nil {
			return err
		}
		if !ok {
			return Errorf(CodeNotFound, "Cron not found: %s", cronID)
		}
		return nil
	})
	if err == nil {
		g.kickCrons()
	}
	return err
}

// CronTrigger is a manual cronRun request after the API decoded it.
type CronTrigger struct {
	// CronID, when it names a stored cron, decides the workflow; an unknown
	// CronID falls back to Workflow.
	CronID   string
	Workflow string
	// InputJSON is the run input, a JSON object ("" means {}).
	InputJSON string
	Auth      Identity
}

// TriggerCron starts a run now, always with a new run id, for the workflow
// of the cron (or of in.Workflow), with the caller's auth. A triggered
// stored cron gets lastRunAtMs = now and its next fire time recomputed. It
// fails with INVALID_REQUEST when neither a stored cron nor a workflow is
// given and NOT_FOUND for an unknown workflow.
func (g *Gateway) TriggerCron(ctx context.Context, in CronTrigger) (Run, error) {
	workflow := in.Workflow
	var cron *Cron
	if in.CronID != "" {
		err := g.update(ctx, func(tx Tx) error {
			cron = nil // fn may run again
			c, ok, err := tx.GetCron(in.CronID)
			if ok {
				cron = &c
			}
			return err
		})
		if err != nil {
			return Run{}, fmt.Errorf("get cron %s: %w", in.CronID, err)
		}
		if cron != nil && cron.Workflow() != "" {
			workflow = cron.Workflow()
		}
	}
	if workflow == "" {
		return Run{}, Errorf(CodeInvalidRequest, "cronId or workflow is required")
	}
	if _, ok := g.workflows[workflow]; !ok {
		return Run{}, Errorf(CodeNotFound, "Unknown workflow: %s", workflow)
	}
	run, _, err := g.LaunchRun(ctx, LaunchInput{Workflow: workflow, InputJSON: in.InputJSON, Auth: in.Auth})
	if err != nil {
		return Run{}, err
	}
	if cron == nil {
		return run, nil
	}
	now := g.now()
	err = g.update(ctx, func(tx Tx) error {
		c, ok, err := tx.GetCron(cron.CronID)
		if err != nil || !ok {
			return err
		}
		c.LastRunAtMs = now.UnixMilli()
		if next, err := NextCronTime(c.Pattern, now); err == nil {
			c.NextRunAtMs = next.UnixMilli()
		}
		return tx.PutCron(c)
	})
	if err != nil {
		// The run has started; failing the call now would invite a second
		// trigger.
		g.log.Error("record manual cron trigger", "cronId", cron.CronID, "runId", run.RunID, "err", err)
	}
	g.kickCrons()
	return run, nil
}
