package host

import (
	"encoding/json"
	"time"
)

// RunStateView is the derived state of a run (docs/rpc.md). Blocked and
// Unhealthy are nil when absent.
type RunStateView struct {
	RunID      string
	State      string
	Blocked    map[string]any
	Unhealthy  map[string]any
	ComputedAt time.Time
}

// staleAfter is how old a running run's heartbeat may be before the run is
// reported stale or orphaned.
const staleAfter = 30 * time.Second

// ComputeRunState derives the RunStateView of r from its nodes.
func ComputeRunState(r Run, nodes []Node, now time.Time) RunStateView {
	v := RunStateView{RunID: r.RunID, ComputedAt: now}
	iso := func(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z") }
	switch r.Status {
	case RunFinished, RunContinued:
		v.State = "succeeded"
	case RunFailed:
		v.State = "failed"
	case RunCancelled:
		v.State = "cancelled"
	case RunWaitingApproval:
		v.State = string(r.Status)
		var first *Node
		for i := range nodes {
			n := &nodes[i]
			if n.State == NodeWaitingApproval && (first == nil || n.CreatedAtMs < first.CreatedAtMs) {
				first = n
			}
		}
		if first != nil {
			v.Blocked = map[string]any{"kind": "approval", "nodeId": first.NodeID, "requestedAt": iso(first.CreatedAtMs)}
		}
	case RunWaitingTimer:
		v.State = string(r.Status)
		var first *Node
		for i := range nodes {
			n := &nodes[i]
			if n.State == NodeWaitingTimer && (first == nil || n.FiresAtMs < first.FiresAtMs) {
				first = n
			}
		}
		if first != nil {
			v.Blocked = map[string]any{"kind": "timer", "nodeId": first.NodeID, "wakeAt": iso(first.FiresAtMs)}
		}
	case RunWaitingEvent:
		v.State = string(r.Status)
		for _, n := range nodes {
			if n.State != NodeWaitingEvent {
				continue
			}
			var meta EventMeta
			_ = json.Unmarshal([]byte(n.MetaJSON), &meta)
			key := meta.WaitForEvent.SignalName
			if c := meta.WaitForEvent.CorrelationID; c != nil {
				key = *c
			}
			v.Blocked = map[string]any{"kind": "event", "nodeId": n.NodeID, "correlationKey": key}
			break
		}
	case RunRunning:
		last := max(r.HeartbeatAtMs, r.StartedAtMs)
		switch {
		case last == 0:
			v.State = "unknown"
		case now.UnixMilli()-last <= staleAfter.Milliseconds():
			v.State = "running"
		default:
			v.State = "stale"
			if r.RuntimeOwnerID == "" {
				v.State = "orphaned"
			}
			v.Unhealthy = map[string]any{"kind": "engine-heartbeat-stale", "lastHeartbeatAt": iso(last)}
		}
	default:
		v.State = "unknown"
	}
	return v
}
