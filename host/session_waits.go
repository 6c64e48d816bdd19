package host

// ApprovalSpec is what ctx.approval journals.
type ApprovalSpec struct {
	Label string
	// RequestJSON is the approval's stored request: {title, summary,
	// metadata, mode, options, allowedScopes, allowedUsers, autoApprove}.
	RequestJSON string
	// OnDeny is "fail" (default), "continue" or "skip".
	OnDeny    string
	TimeoutMs int64
	// AutoApprove, when set, may decide the approval as it is requested.
	AutoApprove *AutoApprove
}

// ApprovalMeta is the node meta of an approval node.
type ApprovalMeta struct {
	OnDeny    string `json:"onDeny"`
	TimeoutMs int64  `json:"timeoutMs,omitempty"`
}

// RequestApproval journals an approval node waiting for a decision:
// node.pending, approval.requested, node.waiting_approval. When its
// autoApprove rule approves, the node is decided in the same commit
// (approval.auto_approved, approval.decided, node.finished) and returned
// settled.
func (s *Session) RequestApproval(nodeID string, iteration int, spec ApprovalSpec) (Node, error) {
	now := s.g.nowMs()
	n, err := s.commitNode(func(tx Tx) (Node, error) {
		n := Node{NodeID: nodeID, Iteration: iteration, Kind: KindApproval, State: NodeWaitingApproval, Label: spec.Label,
			MetaJSON: string(mustJSON(ApprovalMeta{OnDeny: spec.OnDeny, TimeoutMs: spec.TimeoutMs}))}
		if spec.TimeoutMs > 0 {
			n.FiresAtMs = now + spec.TimeoutMs
		}
		n, created, err := s.createNode(tx, n, now)
		if err != nil || !created {
			return n, err
		}
		a := Approval{RunID: s.runID, NodeID: nodeID, Iteration: iteration, Status: ApprovalRequested, RequestedAtMs: now, RequestJSON: spec.RequestJSON}
		if err := tx.PutApproval(a); err != nil {
			return n, err
		}
		if err := appendEvent(tx, s.runID, EventApprovalRequested, approvalPayload{RunID: s.runID, NodeID: nodeID, Iteration: iteration}, now); err != nil {
			return n, err
		}
		if err := nodeEvent(tx, EventNodeWaitingApproval, n, now); err != nil {
			return n, err
		}
		return maybeAutoApprove(tx, n, a, spec.AutoApprove, s.Workflow().Key, now)
	})
	if err == nil && n.State == NodeWaitingApproval && n.FiresAtMs > 0 {
		s.g.timers.arm(timerEntry{at: n.FiresAtMs, runID: s.runID, nodeID: nodeID, iteration: iteration})
	}
	return n, err
}

// EventSpec is what ctx.waitForEvent journals.
type EventSpec struct {
	Label         string
	SignalName    string
	CorrelationID *string
	// OnTimeout is "fail" (default), "continue" or "skip".
	OnTimeout string
	TimeoutMs int64
}

// EventMeta is the node meta of a waitForEvent node. WaitForEvent keeps the
// upstream field names (docs/rpc.md).
type EventMeta struct {
	WaitForEvent struct {
		SignalName    string  `json:"signalName"`
		CorrelationID *string `json:"correlationId"`
	} `json:"waitForEvent"`
	OnTimeout string `json:"onTimeout"`
	TimeoutMs int64  `json:"timeoutMs,omitempty"`
}

// WaitForEvent journals a node waiting for a signal. A matching signal that
// was buffered before the wait is consumed at once and the node finishes in
// the same transaction.
func (s *Session) WaitForEvent(nodeID string, iteration int, spec EventSpec) (Node, error) {
	now := s.g.nowMs()
	var meta EventMeta
	meta.WaitForEvent.SignalName = spec.SignalName
	meta.WaitForEvent.CorrelationID = spec.CorrelationID
	meta.OnTimeout = spec.OnTimeout
	meta.TimeoutMs = spec.TimeoutMs
	n, err := s.commitNode(func(tx Tx) (Node, error) {
		n := Node{NodeID: nodeID, Iteration: iteration, Kind: KindEvent, State: NodeWaitingEvent, Label: spec.Label, MetaJSON: string(mustJSON(meta))}
		if spec.TimeoutMs > 0 {
			n.FiresAtMs = now + spec.TimeoutMs
		}
		n, created, err := s.createNode(tx, n, now)
		if err != nil || !created {
			return n, err
		}
		sig, ok, err := tx.OldestUnconsumedSignal(s.runID, spec.SignalName, spec.CorrelationID)
		if err != nil || !ok {
			return n, err
		}
		return consumeSignal(tx, n, sig, now)
	})
	if err == nil && n.State == NodeWaitingEvent && n.FiresAtMs > 0 {
		s.g.timers.arm(timerEntry{at: n.FiresAtMs, runID: s.runID, nodeID: nodeID, iteration: iteration})
	}
	return n, err
}

// consumeSignal settles a waiting event node with the signal's payload.
func consumeSignal(tx Tx, n Node, sig Signal, now int64) (Node, error) {
	if err := tx.ConsumeSignal(sig.RunID, sig.Seq, n.NodeID); err != nil {
		return n, err
	}
	n.State = NodeFinished
	n.OutputJSON = sig.PayloadJSON
	n.FiresAtMs = 0
	n.UpdatedAtMs = now
	if err := tx.PutNode(n); err != nil {
		return n, err
	}
	return n, nodeEvent(tx, EventNodeFinished, n, now)
}

// StartTimer journals a durable timer node that fires at firesAtMs. A timer
// already due finishes at once.
func (s *Session) StartTimer(nodeID string, iteration int, label string, firesAtMs int64) (Node, error) {
	now := s.g.nowMs()
	n, err := s.commitNode(func(tx Tx) (Node, error) {
		n := Node{NodeID: nodeID, Iteration: iteration, Kind: KindTimer, State: NodeWaitingTimer, Label: label,
			FiresAtMs: firesAtMs, MetaJSON: string(mustJSON(map[string]any{"timer": map[string]any{"firesAtMs": firesAtMs}}))}
		n, created, err := s.createNode(tx, n, now)
		if err != nil || !created || firesAtMs > now {
			return n, err
		}
		n.State = NodeFinished
		n.FiresAtMs = 0
		if err := tx.PutNode(n); err != nil {
			return n, err
		}
		return n, nodeEvent(tx, EventNodeFinished, n, now)
	})
	if err == nil && n.State == NodeWaitingTimer {
		s.g.timers.arm(timerEntry{at: n.FiresAtMs, runID: s.runID, nodeID: nodeID, iteration: iteration})
	}
	return n, err
}
