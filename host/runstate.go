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
	Blocked    *RunBlocked
	Unhealthy  *RunUnhealthy
	ComputedAt time.Time
}

// RunBlocked is what a waiting run waits on: Kind "approval" (with
// RequestedAt), "timer" (with WakeAt) or "event" (with CorrelationKey).
// Times are ISO 8601 in UTC with milliseconds.
type RunBlocked struct {
	Kind           string
	NodeID         string
	RequestedAt    string
	WakeAt         string
	CorrelationKey string
}

// RunUnhealthy says why a running run looks stuck: Kind
// "engine-heartbeat-stale" since LastHeartbeatAt.
type RunUnhealthy struct {
	Kind            string
	LastHeartbeatAt string
}

// staleAfter is how old a running run's heartbeat may be before the run is
// reported stale or orphaned.
const staleAfter = 30 * time.Second

// ComputeRunState derives the RunStateView of r; waitingOn is the node a
// waiting run waits on (RunView.WaitingOn).
func ComputeRunState(r Run, waitingOn *Node, now time.Time) RunStateView {
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
		if n := waitingOn; n != nil && n.State == NodeWaitingApproval {
			v.Blocked = &RunBlocked{Kind: "approval", NodeID: n.NodeID, RequestedAt: iso(n.CreatedAtMs)}
		}
	case RunWaitingTimer:
		v.State = string(r.Status)
		if n := waitingOn; n != nil && n.State == NodeWaitingTimer {
			v.Blocked = &RunBlocked{Kind: "timer", NodeID: n.NodeID, WakeAt: iso(n.FiresAtMs)}
		}
	case RunWaitingEvent:
		v.State = string(r.Status)
		if n := waitingOn; n != nil && n.State == NodeWaitingEvent {
			var meta EventMeta
			_ = json.Unmarshal([]byte(n.MetaJSON), &meta)
			key := meta.WaitForEvent.SignalName
			if c := meta.WaitForEvent.CorrelationID; c != nil {
				key = *c
			}
			v.Blocked = &RunBlocked{Kind: "event", NodeID: n.NodeID, CorrelationKey: key}
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
			v.Unhealthy = &RunUnhealthy{Kind: "engine-heartbeat-stale", LastHeartbeatAt: iso(last)}
		}
	default:
		v.State = "unknown"
	}
	return v
}
