package runs

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/smithers-orchestrator/smithers-go/api/client"
)

// ListOptions filter `runs list`.
type ListOptions struct {
	// Status keeps runs with this status ("running" also matches
	// "continued", as listRuns does).
	Status string
	// Workflow keeps runs of this workflow key (listRuns' workflow
	// filter; rows of other workflows from a gateway without that filter
	// are dropped here).
	Workflow string
	// Limit is how many runs to print at most (default 50).
	Limit int
}

// List prints the newest runs, newest first.
func (c *CLI) List(ctx context.Context, o ListOptions) error {
	if o.Limit <= 0 {
		o.Limit = 50
	}
	params := map[string]any{"limit": o.Limit}
	if o.Status != "" {
		params["status"] = o.Status
	}
	if o.Workflow != "" {
		params["workflow"] = o.Workflow
	}
	raw, err := c.call(ctx, "listRuns", params)
	if err != nil {
		return err
	}
	var rows []json.RawMessage
	if err := json.Unmarshal(raw, &rows); err != nil {
		return fmt.Errorf("listRuns answered %.200s: %w", raw, err)
	}
	kept := rows[:0]
	var runs []client.Run
	for _, row := range rows {
		var r client.Run
		if err := json.Unmarshal(row, &r); err != nil {
			return fmt.Errorf("listRuns row %.200s: %w", row, err)
		}
		if o.Workflow != "" && r.Workflow() != o.Workflow {
			continue
		}
		if len(kept) == o.Limit {
			break
		}
		kept = append(kept, row)
		runs = append(runs, r)
	}
	if c.JSON {
		return c.printJSON(kept)
	}
	if len(runs) == 0 {
		_, err := fmt.Fprintln(c.Out, "no runs")
		return err
	}
	t := newTable(c.Out)
	t.row("RUN ID", "WORKFLOW", "STATUS", "CREATED", "DURATION", "ERROR")
	for _, r := range runs {
		t.row(r.RunID, r.Workflow(), r.Status, c.timestamp(r.CreatedAtMs), c.span(r.StartedAtMs, r.FinishedAtMs), errorSummary([]byte(r.ErrorJSON), 60))
	}
	return t.flush()
}
