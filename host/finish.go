package host

import (
	"encoding/json"
	"errors"
	"strings"
)

// finishGuard says when finishRun must leave the run as it is: epoch, when
// not 0, is the lease epoch of the activation finishing it (a run claimed
// since, by another process, is not its to finish); deadlineBy, when not
// 0, finishes the run only if its timeoutMs deadline is set and at or
// before it (a retry may have moved it).
type finishGuard struct {
	epoch      int64
	deadlineBy int64
}

// finishRun commits a terminal status for the run (when it is not terminal
// yet): settles the nodes still unsettled as cancelled, and appends
// run.completed, the run's last event. The guard says when the run must be
// left as it is (see finishGuard).
func (g *Gateway) finishRun(runID string, guard finishGuard, status RunStatus, outputJSON, errJSON string) {
	now := g.nowMs()
	workflow := ""
	err := g.updateHeld(runID, nil, func(tx Tx) error {
		return g.commitFinish(tx, runID, guard, status, outputJSON, errJSON, now, &workflow)
	})
	if err != nil {
		// The run stays "running" without a session; the reconciler
		// (or the next start) replays it, which finishes it again.
		if !errors.Is(err, errAbandoned) && !errors.Is(err, errLeaseLost) {
			g.log.Error("finish run", "runId", runID, "status", status, "err", err)
		}
		return
	}
	if workflow == "" {
		return // it was already terminal
	}
	log := g.log.With("runId", runID, "workflow", workflow)
	switch status {
	case RunFinished:
		log.Info("run finished")
	default:
		code, msg := errorSummary(errJSON)
		log.Warn("run "+string(status), "code", code, "error", msg)
	}
	if g.observer != nil {
		g.observer.RunCompleted(workflow, status)
	}
}

// commitFinish is finishRun's transaction.
func (g *Gateway) commitFinish(tx Tx, runID string, guard finishGuard, status RunStatus, outputJSON, errJSON string, now int64, workflow *string) error {
	*workflow = ""
	r, ok, err := tx.GetRun(runID)
	if err != nil || !ok || r.Status.Terminal() {
		return err
	}
	if guard.epoch != 0 && (r.RuntimeOwnerID != g.instance || r.LeaseEpoch != guard.epoch) {
		return errLeaseLost
	}
	if guard.deadlineBy != 0 && (r.DeadlineAtMs == 0 || r.DeadlineAtMs > guard.deadlineBy) {
		return nil // the deadline moved since the timer fired
	}
	*workflow = r.WorkflowKey
	r.Status = status
	r.FinishedAtMs = now
	r.OutputJSON = outputJSON
	r.ErrorJSON = errJSON
	if err := tx.UpdateRun(r); err != nil {
		return err
	}
	// Waits nothing will settle any more (a cancelled or failed run, or
	// a wait the workflow abandoned, e.g. the loser of a Promise.race)
	// are closed so that listApprovals no longer offers them. The run's
	// node counts say whether there are any, so that a run whose nodes
	// all settled (most) does not read them.
	if c := r.NodeCounts; c.Of(NodePending)+c.Of(NodeWaitingApproval)+c.Of(NodeWaitingEvent)+c.Of(NodeWaitingTimer)+c.Of(NodeInProgress) > 0 {
		nodes, err := tx.ListNodes(runID)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if n.State.Settled() {
				continue
			}
			n.State = NodeCancelled
			n.UpdatedAtMs = now
			if err := tx.PutNode(n); err != nil {
				return err
			}
			if n.Kind == KindTask && n.Attempts > 0 {
				// The attempt that was running ends with the run: its
				// body was stopped (cancel, timeout) or never finished.
				a, ok, err := tx.GetAttempt(runID, n.NodeID, n.Iteration, n.Attempts)
				if err != nil {
					return err
				}
				if ok && a.State == AttemptInProgress {
					a.State = AttemptFailed
					a.FinishedAtMs = now
					a.ErrorJSON = orEmpty(errJSON, errorJSON(CodeCancelled, "the run ended while this attempt ran"))
					if err := tx.PutAttempt(a); err != nil {
						return err
					}
				}
			}
			if n.Kind == KindApproval {
				a, ok, err := tx.GetApproval(runID, n.NodeID, n.Iteration)
				if err != nil {
					return err
				}
				if ok && a.Status == ApprovalRequested {
					a.Status = ApprovalDenied
					a.DecidedAtMs = now
					a.Note = "run " + string(status)
					if err := tx.PutApproval(a); err != nil {
						return err
					}
				}
			}
		}
	}
	payload := runCompletedPayload{RunID: runID, Status: status}
	if errJSON != "" && status != RunFinished {
		payload.Error = json.RawMessage(errJSON)
	}
	return appendEvent(tx, runID, EventRunCompleted, payload, now)
}

// runTrigger is the recorded trigger of a run (a user id, "gateway",
// "cron:gateway", "webhook:<key>").
func runTrigger(configJSON string) string {
	var cfg struct {
		TriggeredBy string `json:"gatewayTriggeredBy"`
	}
	_ = json.Unmarshal([]byte(configJSON), &cfg)
	return cfg.TriggeredBy
}

// runSource classifies a run's trigger for metrics (docs/operations.md).
func runSource(configJSON string) string { return sourceOf(runTrigger(configJSON)) }

// sourceOf classifies a trigger (runTrigger) for metrics.
func sourceOf(by string) string {
	switch {
	case strings.HasPrefix(by, "cron:"):
		return "cron"
	case strings.HasPrefix(by, "webhook:"):
		return "webhook"
	case by == "gateway":
		return "gateway"
	}
	return "user"
}
