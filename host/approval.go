package host

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
)

// DecisionInput is a submitApproval request after the API decoded it.
type DecisionInput struct {
	RunID     string
	NodeID    string
	Iteration int
	Approved  bool
	// Decision is params.decision as the caller sent it (nil when absent).
	Decision json.RawMessage
	Note     string
	By       Identity
	// ScopesAllow reports whether By's scopes satisfy an approval's
	// allowedScopes (the scope rules live with the API's auth). It is
	// called inside the decision's transaction; nil denies any approval
	// that restricts scopes.
	ScopesAllow func(allowedScopes []string) bool
}

type decision struct {
	approved  bool
	payload   string // stored decisionJson
	value     string // what ctx.approval resolves as `value`
	note      string
	decidedBy string
	auto      bool
}

// SubmitApproval decides a pending approval and wakes its run. It fails with
// NOT_FOUND for an unknown run, AlreadyDecided (with runId, nodeId,
// iteration, status) when decided before, INVALID_INPUT when the node is not
// waiting for approval, INVALID_REQUEST when a select/rank decision is
// malformed.
func (g *Gateway) SubmitApproval(ctx context.Context, in DecisionInput) error {
	if err := checkTexts(map[string]string{"note": in.Note, "userId": in.By.UserID}); err != nil {
		return err
	}
	d, err := decodeDecision(in)
	if err != nil {
		return err
	}
	now := g.nowMs()
	var settled Node
	err = g.update(ctx, func(tx Tx) error {
		if _, err := getRunTx(tx, in.RunID); err != nil {
			return err
		}
		a, aok, err := tx.GetApproval(in.RunID, in.NodeID, in.Iteration)
		if err != nil {
			return err
		}
		if aok && a.Status != ApprovalRequested {
			return &Error{Code: CodeAlreadyDecided, Message: fmt.Sprintf("Approval for %s has already been decided", in.NodeID),
				Extra: map[string]any{"runId": in.RunID, "nodeId": in.NodeID, "iteration": in.Iteration, "status": string(a.Status)}}
		}
		n, ok, err := tx.GetNode(in.RunID, in.NodeID, in.Iteration)
		if err != nil {
			return err
		}
		if !ok || n.State != NodeWaitingApproval || !aok {
			return Errorf(CodeInvalidInput, "Node %s is not waiting for approval.", in.NodeID)
		}
		// The restrictions are checked against the row being decided, in
		// the transaction that decides it: a caller outside the lists can
		// never slip in between a check and the decision.
		if err := checkRestrictions(a, in); err != nil {
			return err
		}
		if d.approved {
			if err := validateModeDecision(a.RequestJSON, in.Decision); err != nil {
				return err
			}
		}
		if settled, err = decideApproval(tx, n, a, d, now); err != nil {
			return err
		}
		return g.markRunning(tx, in.RunID, now)
	})
	if err != nil {
		return err
	}
	g.wake(in.RunID, &settled)
	return nil
}

// approvalRequest is the part of an approval's stored request the engine
// acts on.
type approvalRequest struct {
	Mode          string   `json:"mode"`
	AllowedScopes []string `json:"allowedScopes"`
	AllowedUsers  []string `json:"allowedUsers"`
	Options       []struct {
		Key string `json:"key"`
	} `json:"options"`
}

func parseApprovalRequest(requestJSON string) approvalRequest {
	var req approvalRequest
	_ = json.Unmarshal([]byte(requestJSON), &req)
	return req
}

// checkRestrictions applies an approval's allowedUsers (the caller's user
// id must be listed) and allowedScopes (the caller's scopes must satisfy
// one entry); FORBIDDEN otherwise.
func checkRestrictions(a Approval, in DecisionInput) error {
	req := parseApprovalRequest(a.RequestJSON)
	if len(req.AllowedUsers) > 0 && !slices.Contains(req.AllowedUsers, in.By.UserID) {
		return Errorf(CodeForbidden, "User is not allowed to decide this approval")
	}
	if len(req.AllowedScopes) > 0 && (in.ScopesAllow == nil || !in.ScopesAllow(req.AllowedScopes)) {
		return Errorf(CodeForbidden, "Connection is missing required approval scope")
	}
	return nil
}

// decodeDecision derives the stored decision payload and the value handed to
// the workflow: decision.value when the decision object has one; else the
// decision object without approved/note (null when nothing is left); else a
// legacy non-object decision payload as given.
func decodeDecision(in DecisionInput) (decision, error) {
	d := decision{approved: in.Approved, note: in.Note, decidedBy: in.By.UserID, payload: "", value: "null"}
	raw := in.Decision
	if len(raw) == 0 || string(raw) == "null" {
		return d, nil
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) == nil && obj != nil {
		if v, ok := obj["value"]; ok {
			d.payload, d.value = string(v), string(v)
			return d, nil
		}
		d.payload = string(raw)
		rest := map[string]json.RawMessage{}
		for k, v := range obj {
			if k != "approved" && k != "note" {
				rest[k] = v
			}
		}
		if len(rest) > 0 {
			d.value = string(mustJSON(rest))
		}
		return d, nil
	}
	d.payload, d.value = string(raw), string(raw)
	return d, nil
}

// validateModeDecision applies the select/rank rules of docs/rpc.md.
func validateModeDecision(requestJSON string, raw json.RawMessage) error {
	req := parseApprovalRequest(requestJSON)
	if req.Mode != "select" && req.Mode != "rank" {
		return nil
	}
	keys := map[string]bool{}
	for _, o := range req.Options {
		if o.Key != "" {
			keys[o.Key] = true
		}
	}
	var dec struct {
		Selected any   `json:"selected"`
		Ranked   []any `json:"ranked"`
	}
	_ = json.Unmarshal(raw, &dec)
	if req.Mode == "select" {
		sel, ok := dec.Selected.(string)
		if !ok {
			return Errorf(CodeInvalidRequest, "select approvals require decision.selected")
		}
		if len(keys) > 0 && !keys[sel] {
			return Errorf(CodeInvalidRequest, "Unknown selection: %s", sel)
		}
		return nil
	}
	if len(dec.Ranked) == 0 {
		return Errorf(CodeInvalidRequest, "rank approvals require decision.ranked")
	}
	for _, r := range dec.Ranked {
		s, ok := r.(string)
		if !ok {
			return Errorf(CodeInvalidRequest, "rank approvals require decision.ranked")
		}
		if len(keys) > 0 && !keys[s] {
			return Errorf(CodeInvalidRequest, "rank approval included unknown options")
		}
	}
	return nil
}

// decideApproval records the decision on the approval row and settles the
// node per its onDeny policy: approval.decided, then node.finished (or
// node.failed when denied with onDeny "fail").
func decideApproval(tx Tx, n Node, a Approval, d decision, now int64) (Node, error) {
	if d.approved {
		a.Status = ApprovalApproved
	} else {
		a.Status = ApprovalDenied
	}
	a.DecidedAtMs = now
	a.Note = d.note
	a.DecidedBy = d.decidedBy
	a.DecisionJSON = d.payload
	a.AutoApproved = d.auto
	if err := tx.PutApproval(a); err != nil {
		return n, err
	}
	approved := d.approved
	if err := appendEvent(tx, n.RunID, EventApprovalDecided, approvalPayload{RunID: n.RunID, NodeID: n.NodeID, Iteration: n.Iteration, Approved: &approved}, now); err != nil {
		return n, err
	}
	result := string(mustJSON(map[string]any{"approved": d.approved, "note": nullable(d.note), "decidedBy": nullable(d.decidedBy),
		"decidedAtMs": now, "value": json.RawMessage(orNull(d.value))}))
	policy := "continue"
	if !d.approved {
		var meta ApprovalMeta
		_ = json.Unmarshal([]byte(n.MetaJSON), &meta)
		policy = meta.OnDeny
	}
	msg := fmt.Sprintf("Approval %s was denied", n.NodeID)
	if d.note != "" {
		msg += ": " + d.note
	}
	errJSON := string(mustJSON(map[string]any{"name": "SmithersError", "code": CodeApprovalDenied, "message": msg,
		"details": map[string]any{"note": nullable(d.note), "decidedBy": nullable(d.decidedBy), "decidedAtMs": now}}))
	return settleByPolicy(tx, n, policy, result, errJSON, now)
}

// ListApprovals returns pending approvals, oldest first.
func (g *Gateway) ListApprovals(ctx context.Context, runID, workflow string, limit int) ([]Approval, error) {
	return g.store.ListApprovals(ctx, ApprovalFilter{RunID: runID, WorkflowKey: workflow, Status: ApprovalRequested, Limit: limit})
}
