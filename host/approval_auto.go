package host

// AutoApprove is ctx.approval's autoApprove option after the workflow
// evaluated its functions (their results are journaled with the request,
// so a replay decides the same way).
type AutoApprove struct {
	// After is how many of the node's previous manual decisions, in other
	// runs of the workflow, must all be approvals; <= 0 approves at once.
	After int `json:"after,omitempty"`
	// Condition is the condition's result (true when absent); false: no
	// auto-approval.
	Condition bool `json:"condition"`
	// RevertOn is revertOn's result (false when absent); true: no
	// auto-approval.
	RevertOn bool `json:"revertOn"`
	Audit    bool `json:"audit,omitempty"`
}

// Who and why of an auto-approval.
const (
	AutoDecidedBy = "smithers:auto"
	autoNote      = "Auto-approved"
)

// EventApprovalAutoApproved announces an approval the engine decided by its
// autoApprove rule: {runId, nodeId, iteration}.
const EventApprovalAutoApproved = "approval.auto_approved"

// autoApproves applies the rule: no auto-approval when revertOn is true or
// the condition false; approve at once when after <= 0; otherwise approve
// when the node's previous after manual decisions in other runs of the
// workflow were all approvals (auto-approvals do not count, a denial among
// them resets the count).
func autoApproves(tx Tx, rule AutoApprove, workflowKey, runID, nodeID string) (bool, error) {
	if rule.RevertOn || !rule.Condition {
		return false, nil
	}
	if rule.After <= 0 {
		return true, nil
	}
	recent, err := tx.RecentManualDecisions(workflowKey, nodeID, runID, rule.After)
	if err != nil || len(recent) < rule.After {
		return false, err
	}
	for _, a := range recent {
		if a.Status != ApprovalApproved {
			return false, nil
		}
	}
	return true, nil
}

// autoDecision is the decision the engine records for an auto-approval:
// select takes the first option, rank the options in their order.
func autoDecision(requestJSON string) decision {
	d := decision{approved: true, note: autoNote, decidedBy: AutoDecidedBy, auto: true, value: "null"}
	req := parseApprovalRequest(requestJSON)
	keys := make([]string, 0, len(req.Options))
	for _, o := range req.Options {
		keys = append(keys, o.Key)
	}
	var value map[string]any
	switch {
	case req.Mode == "select" && len(keys) > 0:
		value = map[string]any{"selected": keys[0]}
	case req.Mode == "rank" && len(keys) > 0:
		value = map[string]any{"ranked": keys}
	}
	payload := map[string]any{"approved": true, "note": autoNote, "autoApproved": true}
	for k, v := range value {
		payload[k] = v
	}
	d.payload = string(mustJSON(payload))
	if value != nil {
		d.value = string(mustJSON(value))
	}
	return d
}

// maybeAutoApprove decides a just-requested approval by its autoApprove
// rule, in the transaction that requested it: approval.auto_approved,
// approval.decided, node.finished.
func maybeAutoApprove(tx Tx, n Node, a Approval, rule *AutoApprove, workflowKey string, now int64) (Node, error) {
	if rule == nil {
		return n, nil
	}
	ok, err := autoApproves(tx, *rule, workflowKey, n.RunID, n.NodeID)
	if err != nil || !ok {
		return n, err
	}
	if err := appendEvent(tx, n.RunID, EventApprovalAutoApproved, approvalPayload{RunID: n.RunID, NodeID: n.NodeID, Iteration: n.Iteration}, now); err != nil {
		return n, err
	}
	return decideApproval(tx, n, a, autoDecision(a.RequestJSON), now)
}
