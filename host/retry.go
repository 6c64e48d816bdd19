package host

import "context"

// RetryFailedRun puts a failed run back to running under the current
// module: its finished steps replay from the journal and are not run again,
// every failed or cancelled task goes back to pending and gets a new
// attempt (its earlier attempts stay listed), every failed or cancelled
// wait (approval, signal, timer) is dropped from the journal so that the
// replay asks for it again, errorJson is cleared and the run's timeoutMs
// starts afresh. The stream continues with the next seqs and ends with a
// new run.completed. A run that is not failed answers like ResumeRun:
// already_terminal for finished and cancelled runs, resume_requested for
// live ones. Unknown runs fail with NOT_FOUND.
func (g *Gateway) RetryFailedRun(ctx context.Context, runID string) (string, error) {
	now := g.now()
	ms := now.UnixMilli()
	var status string
	var retried Run
	err := g.update(ctx, func(tx Tx) error {
		status, retried = "", Run{} // fn may run again after a conflict
		r, err := getRunTx(tx, runID)
		if err != nil {
			return err
		}
		switch {
		case r.Status == RunFailed:
		case r.Status.Terminal():
			status = ResumeAlreadyTerminal
			return nil
		default:
			status = ResumeRequested
			return nil
		}
		wf, ok := g.workflows[r.WorkflowKey]
		if !ok {
			return Errorf(CodeNotFound, "Unknown workflow: %s", r.WorkflowKey)
		}
		nodes, err := tx.ListNodes(runID)
		if err != nil {
			return err
		}
		for _, n := range nodes {
			if n.State != NodeFailed && n.State != NodeCancelled {
				continue
			}
			if n.Kind != KindTask {
				if err := tx.DeleteNode(runID, n.NodeID, n.Iteration); err != nil {
					return err
				}
				continue
			}
			n.State = NodePending
			n.ErrorJSON = ""
			n.UpdatedAtMs = ms
			if err := tx.PutNode(n); err != nil {
				return err
			}
		}
		r.Status = RunRunning
		r.ErrorJSON = ""
		r.OutputJSON = ""
		r.FinishedAtMs = 0
		r.CancelRequestedAtMs = 0
		r.HeartbeatAtMs = ms
		r.RuntimeOwnerID = g.instance
		// A new claim: an activation of the failed run still around
		// anywhere can commit nothing of the retried one.
		r.LeaseEpoch++
		r.WorkflowHash = g.exec.BundleHash()
		r.DeadlineAtMs = 0
		if wf.TimeoutMs > 0 {
			r.DeadlineAtMs = ms + wf.TimeoutMs
		}
		status, retried = ResumeRequested, r
		return tx.UpdateRun(r)
	})
	if err != nil {
		return "", err
	}
	if retried.RunID != "" {
		g.log.Info("retrying a failed run from its failed step", "runId", runID, "workflow", retried.WorkflowKey)
		g.started(retried, false)
	} else if status == ResumeRequested {
		g.wake(runID, nil)
	}
	return status, nil
}
