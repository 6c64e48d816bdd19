package runs

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/smithers-orchestrator/smithers-go/api/client"
)

// FollowOptions tune `runs follow`.
type FollowOptions struct {
	// AfterSeq is the last event seq already seen: the events after it are
	// printed first. 0 prints the run's whole history; negative prints
	// live events only.
	AfterSeq int64
}

// Follow prints the run's events, one line each (or one JSON object each
// with CLI.JSON), until the run completes. A dropped socket is resumed
// from the last event printed, with a note on Err.
func (c *CLI) Follow(ctx context.Context, runID string, o FollowOptions) error {
	return c.Client.FollowRun(ctx, runID, client.FollowOptions{
		AfterSeq: o.AfterSeq,
		OnEvent: func(e client.RunEvent) error {
			if c.JSON {
				b, err := json.Marshal(e)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(c.Out, "%s\n", b)
				return err
			}
			_, err := fmt.Fprintln(c.Out, c.EventLine(e, c.now()))
			return err
		},
		OnGap: func(g client.GapResync) {
			fmt.Fprintf(c.Err, "note: events %d to %d of run %s are no longer kept by the gateway\n", g.FromSeq, g.ToSeq, g.RunID)
		},
		OnReconnect: func(err error, pause time.Duration) {
			fmt.Fprintf(c.Err, "note: the event stream dropped (%v); resuming in %v\n", err, pause)
		},
	})
}

// EventLine renders one run event: the time it was received, its seq, its
// name, its node and a short detail.
func (c *CLI) EventLine(e client.RunEvent, at time.Time) string {
	var p eventPayload
	_ = json.Unmarshal(e.Payload, &p)
	return strings.TrimRight(fmt.Sprintf("%s  %-5s %-24s %-16s %s", c.clock(at), fmt.Sprintf("#%d", e.Seq), e.Event,
		nodeName(p.NodeID, p.Iteration), eventDetail(e.Event, p, e.Payload)), " ")
}

// eventDetail is the short detail of an event line.
func eventDetail(name string, p eventPayload, raw json.RawMessage) string {
	switch name {
	case "node.failed":
		if s := errorSummary(p.Error, 100); s != "" {
			return p.State + ": " + s
		}
		return p.State
	case "node.retrying":
		return fmt.Sprintf("attempt %d failed, will retry: %s", p.Attempt, errorSummary(p.Error, 80))
	case "task.output":
		return p.Stream + ": " + cut(p.Output, 100)
	case "task.heartbeat":
		return fmt.Sprintf("attempt %d", p.Attempt)
	case "approval.decided":
		if p.Approved != nil && *p.Approved {
			return "approved"
		}
		return "denied"
	case "approval.requested", "approval.auto_approved":
		return ""
	case "run.completed":
		if s := errorSummary(p.Error, 100); s != "" {
			return p.Status + ": " + s
		}
		return p.Status
	}
	if strings.HasPrefix(name, "node.") {
		return p.State
	}
	return compact(raw, 100)
}
