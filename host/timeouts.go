package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// onTimer handles a due timerEntry: a sleep finishes, an approval times out
// (denied with note "timeout"), an event wait times out (onTimeout), or the
// run's timeoutMs fails it.
func (g *Gateway) onTimer(e timerEntry) {
	if e.deadline {
		g.timeoutRun(e.runID)
		return
	}
	now := g.nowMs()
	var settled *Node
	err := g.update(context.Background(), func(tx Tx) error {
		settled = nil // fn may run again after a conflict
		r, ok, err := tx.GetRun(e.runID)
		if err != nil || !ok || r.Status.Terminal() {
			return err
		}
		n, ok, err := tx.GetNode(e.runID, e.nodeID, e.iteration)
		if err != nil || !ok || !n.State.Waiting() || n.FiresAtMs == 0 || n.FiresAtMs > now {
			return err
		}
		switch n.Kind {
		case KindTimer:
			n.State = NodeFinished
			n.FiresAtMs = 0
			n.UpdatedAtMs = now
			if err := tx.PutNode(n); err != nil {
				return err
			}
			if err := nodeEvent(tx, EventNodeFinished, n, now); err != nil {
				return err
			}
		case KindApproval:
			a, ok, err := tx.GetApproval(e.runID, e.nodeID, e.iteration)
			if err != nil {
				return err
			}
			if !ok {
				a = Approval{RunID: e.runID, NodeID: e.nodeID, Iteration: e.iteration, Status: ApprovalRequested}
			}
			n, err = decideApproval(tx, n, a, decision{approved: false, note: "timeout"}, now)
			if err != nil {
				return err
			}
		case KindEvent:
			var meta EventMeta
			_ = json.Unmarshal([]byte(n.MetaJSON), &meta)
			n, err = settleByPolicy(tx, n, meta.OnTimeout, "null",
				errorJSON(CodeEventTimeout, fmt.Sprintf("Timed out waiting for event %q", meta.WaitForEvent.SignalName)), now)
			if err != nil {
				return err
			}
		default:
			return nil
		}
		settled = &n
		return g.markRunning(tx, e.runID, now)
	})
	if err != nil {
		// Late rather than never: try again in a second. The store logs
		// storage failures itself.
		if !errors.Is(err, ErrStorageUnavailable) {
			g.log.Error("fire timer; retrying in 1s", "runId", e.runID, "nodeId", e.nodeID, "err", err)
		}
		e.at = g.nowMs() + 1000
		g.timers.arm(e)
		return
	}
	if settled != nil {
		g.wake(e.runID, settled)
	}
}

// settleByPolicy settles a waiting node the way its onDeny / onTimeout
// policy says: "continue" finishes it with outputJSON, "skip" skips it
// (resolving to undefined), anything else ("fail") fails it with errJSON.
func settleByPolicy(tx Tx, n Node, policy, outputJSON, errJSON string, now int64) (Node, error) {
	n.FiresAtMs = 0
	n.UpdatedAtMs = now
	switch policy {
	case "continue":
		n.State = NodeFinished
		n.OutputJSON = outputJSON
	case "skip":
		n.State = NodeSkipped
		n.OutputJSON = ""
	default:
		n.State = NodeFailed
		n.ErrorJSON = errJSON
	}
	if err := tx.PutNode(n); err != nil {
		return n, err
	}
	if n.State == NodeFailed {
		return n, nodeFailedEvent(tx, n, errJSON, now)
	}
	return n, nodeEvent(tx, EventNodeFinished, n, now)
}
