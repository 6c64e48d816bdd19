package runs

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/smithers-orchestrator/smithers-go/api/client"
)

// Node is one step of a run as `runs show` derives it from the run's
// events, attempt rows and pending approvals.
type Node struct {
	NodeID    string `json:"nodeId"`
	Iteration int    `json:"iteration"`
	// Kind is task, approval, event or timer; "" when nothing said.
	Kind  string `json:"kind,omitempty"`
	State string `json:"state"`
	// Attempts is how many attempts a task made.
	Attempts int `json:"attempts"`
	// Error is the node's error (node.failed), as the gateway sent it.
	Error json.RawMessage `json:"error,omitempty"`
	// Detail says more: an approval's title or decision.
	Detail string `json:"detail,omitempty"`
}

type nodeKey struct {
	id        string
	iteration int
}

// eventPayload is the union of the node, approval and run event payloads
// fields that Nodes reads.
type eventPayload struct {
	NodeID    string          `json:"nodeId"`
	Iteration int             `json:"iteration"`
	Attempt   int             `json:"attempt"`
	State     string          `json:"state"`
	Approved  *bool           `json:"approved"`
	Error     json.RawMessage `json:"error"`
	Status    string          `json:"status"`
	Output    string          `json:"output"`
	Stream    string          `json:"stream"`
}

// NodeSources are what Nodes reads; any may be empty.
type NodeSources struct {
	// Events are the run's events, in seq order.
	Events   []client.RunEvent
	Attempts []client.Attempt
	// Approvals are the run's pending approvals.
	Approvals []client.ApprovalSummary
	// Blocked is getRun's runState.blocked: the step a parked run waits
	// on (events say only "pending" for a wait).
	Blocked map[string]any
}

// Nodes derives a run's nodes, in the order they first appeared, from its
// events, attempt rows, pending approvals and the step it is blocked on
// (events a gateway no longer keeps are filled in from the others).
func Nodes(src NodeSources) []Node {
	events, attempts, approvals := src.Events, src.Attempts, src.Approvals
	var order []nodeKey
	nodes := map[nodeKey]*Node{}
	get := func(id string, iteration int) *Node {
		k := nodeKey{id, iteration}
		n := nodes[k]
		if n == nil {
			n = &Node{NodeID: id, Iteration: iteration}
			nodes[k] = n
			order = append(order, k)
		}
		return n
	}
	for _, e := range events {
		var p eventPayload
		if json.Unmarshal(e.Payload, &p) != nil || p.NodeID == "" {
			continue
		}
		n := get(p.NodeID, p.Iteration)
		if p.State != "" && strings.HasPrefix(e.Event, "node.") && e.Event != "node.retrying" {
			n.State = p.State
		}
		switch e.Event {
		case "node.started", "node.retrying", "task.output", "task.heartbeat":
			n.Kind = "task"
		case "approval.requested", "node.waiting_approval":
			n.Kind = "approval"
		case "approval.decided":
			n.Kind = "approval"
			if p.Approved != nil && *p.Approved {
				n.Detail = "approved"
			} else if p.Approved != nil {
				n.Detail = "denied"
			}
		case "approval.auto_approved":
			n.Kind, n.Detail = "approval", "auto-approved"
		case "node.failed":
			n.Error = p.Error
		}
		if n.Kind == "" {
			switch p.State {
			case "waiting-event":
				n.Kind = "event"
			case "waiting-timer":
				n.Kind = "timer"
			case "waiting-approval":
				n.Kind = "approval"
			}
		}
	}
	sorted := append([]client.Attempt(nil), attempts...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Attempt < sorted[j].Attempt })
	for _, a := range sorted {
		n := get(a.NodeID, a.Iteration)
		n.Kind = "task"
		n.Attempts = max(n.Attempts, a.Attempt)
		if n.State == "" {
			n.State = a.State
		}
	}
	for _, a := range approvals {
		n := get(a.NodeID, a.Iteration)
		n.Kind = "approval"
		if n.State == "" {
			n.State = "waiting-approval"
		}
		if a.RequestTitle != "" {
			n.Detail = "asks: " + cut(a.RequestTitle, 80)
		}
	}
	if id, _ := src.Blocked["nodeId"].(string); id != "" {
		n := get(id, 0)
		kind, _ := src.Blocked["kind"].(string)
		switch kind {
		case "approval":
			n.Kind, n.State = kind, "waiting-approval"
		case "timer":
			n.Kind, n.State = kind, "waiting-timer"
			if at, _ := src.Blocked["wakeAt"].(string); at != "" && n.Detail == "" {
				n.Detail = "wakes at " + at
			}
		case "event":
			n.Kind, n.State = kind, "waiting-event"
			if key, _ := src.Blocked["correlationKey"].(string); key != "" && n.Detail == "" {
				n.Detail = "waits for " + key
			}
		}
	}
	out := make([]Node, 0, len(order))
	for _, k := range order {
		out = append(out, *nodes[k])
	}
	return out
}

// eventsTimeout bounds reading a run's kept events for `runs show`.
const eventsTimeout = 15 * time.Second

// Show prints a run: its row, its nodes, its attempts (with their errors)
// and its output.
func (c *CLI) Show(ctx context.Context, runID string) error {
	rawRun, err := c.call(ctx, "getRun", map[string]any{"runId": runID})
	if err != nil {
		return err
	}
	var run client.Run
	if err := json.Unmarshal(rawRun, &run); err != nil {
		return fmt.Errorf("getRun answered %.200s: %w", rawRun, err)
	}
	// The rest is best effort: a gateway that serves no attempt rows or
	// keeps no events still shows the run.
	var notes []string
	rawAttempts, err := c.call(ctx, "attempts.list", map[string]any{"runId": runID})
	var attempts []client.Attempt
	if err == nil {
		err = json.Unmarshal(rawAttempts, &attempts)
	}
	if err != nil {
		notes = append(notes, fmt.Sprintf("attempts are not shown: attempts.list: %v", err))
		rawAttempts = nil
	}
	evCtx, cancel := context.WithTimeout(ctx, eventsTimeout)
	events, gap, err := c.Client.RunEvents(evCtx, runID, 0)
	cancel()
	if err != nil {
		notes = append(notes, fmt.Sprintf("nodes may be incomplete: the run's events could not be read: %v", err))
	} else if gap != nil {
		notes = append(notes, fmt.Sprintf("nodes may be incomplete: events %d to %d are no longer kept", gap.FromSeq, gap.ToSeq))
	}
	var approvals []client.ApprovalSummary
	if raw, err := c.call(ctx, "listApprovals", map[string]any{"runId": runID}); err == nil {
		_ = json.Unmarshal(raw, &approvals)
	}
	nodes := Nodes(NodeSources{Events: events, Attempts: attempts, Approvals: approvals, Blocked: run.RunState.Blocked})
	for _, n := range notes {
		fmt.Fprintf(c.Err, "note: %s\n", n)
	}
	if c.JSON {
		if rawAttempts == nil {
			rawAttempts = json.RawMessage("null")
		}
		return c.printJSON(map[string]any{"run": rawRun, "nodes": nodes, "attempts": rawAttempts})
	}
	return c.printRun(run, nodes, attempts)
}

func (c *CLI) printRun(run client.Run, nodes []Node, attempts []client.Attempt) error {
	w := c.Out
	t := newTable(w)
	t.row("Run:", run.RunID)
	t.row("Workflow:", run.Workflow())
	t.row("Status:", run.Status)
	t.row("Created:", c.timestamp(run.CreatedAtMs))
	if run.FinishedAtMs > 0 {
		t.row("Finished:", fmt.Sprintf("%s (took %s)", c.timestamp(run.FinishedAtMs), c.span(run.StartedAtMs, run.FinishedAtMs)))
	} else {
		t.row("Running for:", c.span(run.StartedAtMs, 0))
	}
	if s := errorSummary([]byte(run.ErrorJSON), 0); s != "" {
		t.row("Error:", s)
	}
	if err := t.flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	if len(nodes) == 0 {
		fmt.Fprintln(w, "No nodes yet.")
	} else {
		t = newTable(w)
		t.row("NODE", "KIND", "STATE", "ATTEMPTS", "DETAIL")
		for _, n := range nodes {
			detail := n.Detail
			if s := errorSummary(n.Error, 80); s != "" {
				detail = s
			}
			t.row(nodeName(n.NodeID, n.Iteration), orDash(n.Kind), orDash(n.State), countOrDash(n.Attempts), detail)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}

	if len(attempts) > 0 {
		fmt.Fprintln(w, "\nAttempts:")
		t = newTable(w)
		t.row("NODE", "#", "STATE", "STARTED", "TOOK", "ERROR")
		for _, a := range attempts {
			t.row(nodeName(a.NodeID, a.Iteration), strconv.Itoa(a.Attempt), a.State, c.timestamp(a.StartedAtMs),
				c.span(a.StartedAtMs, a.FinishedAtMs), errorSummary([]byte(a.ErrorJSON), 100))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}

	if len(run.Output) > 0 && string(run.Output) != "null" {
		fmt.Fprintf(w, "\nOutput:\n%s\n", indented(run.Output))
	}
	return nil
}

func nodeName(id string, iteration int) string {
	if iteration == 0 {
		return id
	}
	return id + "[" + strconv.Itoa(iteration) + "]"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func countOrDash(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}
