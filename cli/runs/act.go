package runs

import (
	"context"
	"encoding/json"
	"fmt"
)

// LaunchOptions are launchRun's options.
type LaunchOptions struct {
	RunID          string
	IdempotencyKey string
}

// Launch starts a run of workflow with input (a JSON object; nil is {})
// and prints its run id alone on a line, so that scripts can capture it.
func (c *CLI) Launch(ctx context.Context, workflow string, input json.RawMessage, o LaunchOptions) error {
	params := map[string]any{"workflow": workflow}
	if len(input) > 0 {
		params["input"] = input
	}
	opts := map[string]any{}
	if o.RunID != "" {
		opts["runId"] = o.RunID
	}
	if o.IdempotencyKey != "" {
		opts["idempotencyKey"] = o.IdempotencyKey
	}
	if len(opts) > 0 {
		params["options"] = opts
	}
	raw, err := c.call(ctx, "launchRun", params)
	if err != nil {
		return err
	}
	if c.JSON {
		return c.printJSON(raw)
	}
	var res struct {
		RunID string `json:"runId"`
	}
	if err := json.Unmarshal(raw, &res); err != nil || res.RunID == "" {
		return fmt.Errorf("launchRun answered %.200s without a runId", raw)
	}
	_, err = fmt.Fprintln(c.Out, res.RunID)
	return err
}

// Decision is an approval decision of `runs approve` and `runs deny`.
type Decision struct {
	RunID, NodeID string
	Iteration     int
	Approved      bool
	Note          string
	// Fields are more fields of the decision object: {"selected": "a"}
	// for a select approval, {"ranked": [...]} for a rank one,
	// {"value": ...} for the value the workflow gets.
	Fields map[string]json.RawMessage
}

// Decide submits an approval decision.
func (c *CLI) Decide(ctx context.Context, d Decision) error {
	decision := map[string]any{}
	for k, v := range d.Fields {
		decision[k] = v
	}
	decision["approved"] = d.Approved
	if d.Note != "" {
		decision["note"] = d.Note
	}
	raw, err := c.call(ctx, "submitApproval", map[string]any{"runId": d.RunID, "nodeId": d.NodeID, "iteration": d.Iteration, "decision": decision})
	if err != nil {
		return err
	}
	if c.JSON {
		return c.printJSON(raw)
	}
	verb := "denied"
	if d.Approved {
		verb = "approved"
	}
	_, err = fmt.Fprintf(c.Out, "%s %s of run %s\n", verb, nodeName(d.NodeID, d.Iteration), d.RunID)
	return err
}

// Signal is a signal of `runs signal`.
type Signal struct {
	RunID, Name string
	// CorrelationID is "" for none.
	CorrelationID string
	// Payload is the signal's data (JSON); nil sends {}.
	Payload json.RawMessage
}

// SendSignal submits a signal to a run.
func (c *CLI) SendSignal(ctx context.Context, s Signal) error {
	params := map[string]any{"runId": s.RunID, "signalName": s.Name}
	if s.CorrelationID != "" {
		params["correlationId"] = s.CorrelationID
	}
	if len(s.Payload) > 0 {
		params["data"] = s.Payload
	}
	raw, err := c.call(ctx, "submitSignal", params)
	if err != nil {
		return err
	}
	if c.JSON {
		return c.printJSON(raw)
	}
	var res struct {
		Seq int64 `json:"seq"`
	}
	_ = json.Unmarshal(raw, &res)
	_, err = fmt.Fprintf(c.Out, "sent signal %s to run %s (seq %d)\n", s.Name, s.RunID, res.Seq)
	return err
}

// Cancel asks the gateway to cancel a run.
func (c *CLI) Cancel(ctx context.Context, runID string) error {
	raw, err := c.call(ctx, "cancelRun", map[string]any{"runId": runID})
	if err != nil {
		return err
	}
	if c.JSON {
		return c.printJSON(raw)
	}
	_, err = fmt.Fprintf(c.Out, "cancelling run %s\n", runID)
	return err
}

// ResumeOptions are resumeRun's options.
type ResumeOptions struct {
	// RetryFailed continues a failed run from its failed step.
	RetryFailed bool
	// Force replays a run held by versionPolicy "strict" under the
	// module's current version.
	Force bool
}

// Resume asks the gateway to resume a run and prints what it answered.
func (c *CLI) Resume(ctx context.Context, runID string, o ResumeOptions) error {
	params := map[string]any{"runId": runID}
	opts := map[string]any{}
	if o.RetryFailed {
		opts["retryFailed"] = true
	}
	if o.Force {
		opts["force"] = true
	}
	if len(opts) > 0 {
		params["options"] = opts
	}
	raw, err := c.call(ctx, "resumeRun", params)
	if err != nil {
		return err
	}
	if c.JSON {
		return c.printJSON(raw)
	}
	var res struct {
		Status string `json:"status"`
	}
	_ = json.Unmarshal(raw, &res)
	_, err = fmt.Fprintf(c.Out, "run %s: %s\n", runID, res.Status)
	return err
}
