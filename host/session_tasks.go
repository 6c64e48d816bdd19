package host

import "encoding/json"

// CreateTask journals a new task node in state pending (node.pending).
func (s *Session) CreateTask(nodeID string, iteration int, label, metaJSON string) (Node, error) {
	now := s.g.nowMs()
	return s.commitNode(func(tx Tx) (Node, error) {
		n, _, err := s.createNode(tx, Node{RunID: s.runID, NodeID: nodeID, Iteration: iteration, Kind: KindTask, State: NodePending, Label: label, MetaJSON: metaJSON}, now)
		return n, err
	})
}

// StartAttempt begins the task's next attempt: attempt row in-progress,
// node in-progress, node.started. It returns the node and attempt number.
func (s *Session) StartAttempt(nodeID string, iteration int) (Node, int, error) {
	now := s.g.nowMs()
	n, err := s.commitNode(func(tx Tx) (Node, error) {
		return s.startAttempt(tx, nodeID, iteration, now)
	})
	return n, n.Attempts, err
}

// BeginTask journals a new task node and starts its first attempt in one
// transaction (node.pending, node.started): CreateTask and StartAttempt for
// a task that need not wait for a concurrency slot, whose body runs once
// this returns (a node the journal has gets its next attempt). The
// JavaScript runtime runs a first attempt before journaling it instead
// (RanTask, BeginFirstAttempt); the engine's tests drive runs with this.
func (s *Session) BeginTask(nodeID string, iteration int, label, metaJSON string) (Node, int, error) {
	now := s.g.nowMs()
	n, err := s.commitNode(func(tx Tx) (Node, error) {
		// A new node is written once, already started (node.pending,
		// then node.started); one the journal already has starts its
		// next attempt.
		n, _, err := s.newNode(tx, Node{RunID: s.runID, NodeID: nodeID, Iteration: iteration, Kind: KindTask, State: NodePending, Label: label, MetaJSON: metaJSON}, now)
		if err != nil {
			return Node{}, err
		}
		return s.startAttemptOf(tx, n, now)
	})
	return n, n.Attempts, err
}

// BeginFirstAttempt journals a new task node started at startedAtMs, its
// first attempt in progress (node.pending, node.started), for a body that
// began before its start was journaled. The journal must not have the
// node: if it has, the activation acted on an old journal and the run
// replays from the store's, writing nothing.
func (s *Session) BeginFirstAttempt(nodeID string, iteration int, label, metaJSON string, startedAtMs int64) (Node, error) {
	now := s.g.nowMs()
	if startedAtMs <= 0 || startedAtMs > now {
		startedAtMs = now
	}
	return s.commitNode(func(tx Tx) (Node, error) {
		n := Node{RunID: s.runID, NodeID: nodeID, Iteration: iteration, Kind: KindTask, State: NodePending, Label: label, MetaJSON: metaJSON,
			CreatedAtMs: now, UpdatedAtMs: now}
		if err := nodeEvent(tx, EventNodePending, n, now); err != nil {
			return n, err
		}
		n.Attempts = 1
		n.State = NodeInProgress
		if err := insertNew(tx, n); err != nil {
			return n, err
		}
		if err := tx.PutAttempt(Attempt{RunID: s.runID, NodeID: nodeID, Iteration: iteration, Attempt: 1, State: AttemptInProgress, StartedAtMs: startedAtMs}); err != nil {
			return n, err
		}
		return n, nodeEvent(tx, EventNodeStarted, n, now)
	})
}

// insertNew writes a node the activation's journal does not have; the
// store having one means the journal is old (errStaleJournal: the run
// replays from the store's).
func insertNew(tx Tx, n Node) error {
	added, err := tx.InsertNode(n)
	if err != nil {
		return err
	}
	if !added {
		return errStaleJournal
	}
	return nil
}

func (s *Session) startAttempt(tx Tx, nodeID string, iteration int, now int64) (Node, error) {
	n, ok, err := tx.GetNode(s.runID, nodeID, iteration)
	if err != nil {
		return n, err
	}
	if !ok {
		return n, Errorf(CodeNodeNotFound, "node %s not found", nodeID)
	}
	return s.startAttemptOf(tx, n, now)
}

// startAttemptOf starts the next attempt of n, the node as the journal (or
// this transaction) has it.
func (s *Session) startAttemptOf(tx Tx, n Node, now int64) (Node, error) {
	nodeID, iteration := n.NodeID, n.Iteration
	if n.State.Settled() {
		// The activation's journal is older than the store: a step that
		// is settled must never run again.
		return n, errStaleJournal
	}
	if n.Attempts > 0 {
		// An attempt still in progress belonged to a gateway that
		// stopped while it ran: record it as abandoned.
		if prev, ok, err := tx.GetAttempt(s.runID, nodeID, iteration, n.Attempts); err != nil {
			return n, err
		} else if ok && prev.State == AttemptInProgress {
			prev.State = AttemptFailed
			prev.FinishedAtMs = now
			prev.ErrorJSON = errorJSON("ATTEMPT_ABANDONED", "this attempt's activation ended while it ran (gateway stopped or JavaScript worker rebuilt); it was run again")
			if err := tx.PutAttempt(prev); err != nil {
				return n, err
			}
		}
	}
	n.Attempts++
	n.State = NodeInProgress
	n.UpdatedAtMs = now
	if err := tx.PutNode(n); err != nil {
		return n, err
	}
	a := Attempt{RunID: s.runID, NodeID: nodeID, Iteration: iteration, Attempt: n.Attempts, State: AttemptInProgress, StartedAtMs: now}
	if err := tx.PutAttempt(a); err != nil {
		return n, err
	}
	return n, nodeEvent(tx, EventNodeStarted, n, now)
}

// FinishTask settles the task with its output (node.finished).
func (s *Session) FinishTask(nodeID string, iteration, attempt int, outputJSON string) (Node, error) {
	now := s.g.nowMs()
	return s.commitNode(func(tx Tx) (Node, error) {
		n, ok, err := tx.GetNode(s.runID, nodeID, iteration)
		if err != nil || !ok || n.State.Settled() {
			return n, err
		}
		if err := s.settleAttempt(tx, nodeID, iteration, attempt, AttemptFinished, "", now); err != nil {
			return n, err
		}
		n.State = NodeFinished
		n.OutputJSON = outputJSON
		n.ErrorJSON = ""
		n.UpdatedAtMs = now
		if err := tx.PutNode(n); err != nil {
			return n, err
		}
		return n, nodeEvent(tx, EventNodeFinished, n, now)
	})
}

// FailAttempt records a failed attempt. When final, the node fails
// (node.failed); otherwise it goes back to pending until the next attempt.
func (s *Session) FailAttempt(nodeID string, iteration, attempt int, errJSON string, final bool) (Node, error) {
	now := s.g.nowMs()
	n, err := s.commitNode(func(tx Tx) (Node, error) {
		n, ok, err := tx.GetNode(s.runID, nodeID, iteration)
		if err != nil || !ok || n.State.Settled() {
			return n, err
		}
		if err := s.settleAttempt(tx, nodeID, iteration, attempt, AttemptFailed, errJSON, now); err != nil {
			return n, err
		}
		n.UpdatedAtMs = now
		if !final {
			n.State = NodePending
			if err := tx.PutNode(n); err != nil {
				return n, err
			}
			return n, appendEvent(tx, s.runID, EventNodeRetrying, nodeRetryingPayload{RunID: s.runID, NodeID: nodeID, Iteration: iteration,
				Attempt: attempt, Error: json.RawMessage(orNull(errJSON))}, now)
		}
		n.State = NodeFailed
		n.ErrorJSON = errJSON
		if err := tx.PutNode(n); err != nil {
			return n, err
		}
		return n, nodeFailedEvent(tx, n, errJSON, now)
	})
	if err == nil {
		code, msg := errorSummary(errJSON)
		if final {
			s.Logger().Warn("task failed", "nodeId", nodeID, "attempt", attempt, "code", code, "error", msg)
		} else {
			s.Logger().Info("task attempt failed; it will be retried", "nodeId", nodeID, "attempt", attempt, "code", code, "error", msg)
		}
	}
	return n, err
}

func (s *Session) settleAttempt(tx Tx, nodeID string, iteration, attempt int, state, errJSON string, now int64) error {
	if ok, err := tx.SettleAttempt(s.runID, nodeID, iteration, attempt, state, errJSON, now); err != nil || ok {
		return err
	}
	return tx.PutAttempt(Attempt{RunID: s.runID, NodeID: nodeID, Iteration: iteration, Attempt: attempt,
		StartedAtMs: now, State: state, FinishedAtMs: now, ErrorJSON: errJSON})
}

// StaticTask journals a task whose body is a value: pending, one attempt,
// finished, in one transaction. A node the journal already has is
// returned as it is (the step is idempotent).
func (s *Session) StaticTask(nodeID string, iteration int, label, metaJSON, outputJSON string) (Node, error) {
	return s.finishedTask(nodeID, iteration, label, metaJSON, 0, outputJSON, false)
}

// RanTask journals a new task whose first attempt's body began at
// startedAtMs and settled with outputJSON before the task's start was
// journaled (in the JavaScript turn that called ctx.task, awaiting
// nothing): node.pending, node.started and node.finished, the attempt and
// the output in one transaction, as StaticTask does. The journal must
// not have the node: if it has, the activation acted on an old journal
// and the run replays from the store's.
func (s *Session) RanTask(nodeID string, iteration int, label, metaJSON string, startedAtMs int64, outputJSON string) (Node, error) {
	return s.finishedTask(nodeID, iteration, label, metaJSON, startedAtMs, outputJSON, true)
}

// finishedTask is StaticTask and RanTask: a task journaled finished, with
// one attempt, in one transaction. startedAtMs 0 means now.
func (s *Session) finishedTask(nodeID string, iteration int, label, metaJSON string, startedAtMs int64, outputJSON string, mustBeNew bool) (Node, error) {
	now := s.g.nowMs()
	if startedAtMs <= 0 || startedAtMs > now {
		startedAtMs = now
	}
	return s.commitNode(func(tx Tx) (Node, error) {
		// The new node is written once, finished (after node.pending).
		n := Node{RunID: s.runID, NodeID: nodeID, Iteration: iteration, Kind: KindTask, State: NodePending, Label: label, MetaJSON: metaJSON}
		if mustBeNew {
			// The activation's journal has no such node, which the insert
			// below checks instead of a read first.
			n.CreatedAtMs, n.UpdatedAtMs = now, now
			if err := nodeEvent(tx, EventNodePending, n, now); err != nil {
				return n, err
			}
		} else {
			var created bool
			var err error
			if n, created, err = s.newNode(tx, n, now); err != nil || !created {
				return n, err
			}
		}
		n.Attempts = 1
		n.State = NodeInProgress
		if err := nodeEvent(tx, EventNodeStarted, n, now); err != nil {
			return n, err
		}
		if err := tx.PutAttempt(Attempt{RunID: s.runID, NodeID: nodeID, Iteration: iteration, Attempt: 1, State: AttemptFinished, StartedAtMs: startedAtMs, FinishedAtMs: now}); err != nil {
			return n, err
		}
		n.State = NodeFinished
		n.OutputJSON = outputJSON
		if mustBeNew {
			if err := insertNew(tx, n); err != nil {
				return n, err // its events and attempt go with the function's rollback
			}
		} else if err := tx.PutNode(n); err != nil {
			return n, err
		}
		return n, nodeEvent(tx, EventNodeFinished, n, now)
	})
}

// Emit appends a task.output event with a chunk of a task's output.
func (s *Session) Emit(nodeID string, text, stream string) error {
	now := s.g.nowMs()
	return s.commit(func(tx Tx) error {
		return appendEvent(tx, s.runID, EventTaskOutput, taskOutputPayload{RunID: s.runID, NodeID: nodeID, Output: text, Stream: stream}, now)
	})
}

// Heartbeat records a task heartbeat on the attempt and appends
// task.heartbeat.
func (s *Session) Heartbeat(nodeID string, iteration, attempt int, dataJSON string) error {
	now := s.g.nowMs()
	return s.commit(func(tx Tx) error {
		a, ok, err := tx.GetAttempt(s.runID, nodeID, iteration, attempt)
		if err != nil {
			return err
		}
		if ok {
			a.HeartbeatAtMs = now
			a.HeartbeatDataJSON = dataJSON
			if err := tx.PutAttempt(a); err != nil {
				return err
			}
		}
		return appendEvent(tx, s.runID, EventTaskHeartbeat, taskHeartbeatPayload{RunID: s.runID, NodeID: nodeID, Iteration: iteration, Attempt: attempt}, now)
	})
}

// RecordProcess remembers a t.exec child's process group until
// ForgetProcess, so that a gateway killed meanwhile kills it at next start.
func (s *Session) RecordProcess(p Process) error {
	p.RunID = s.runID
	p.Owner = s.g.instance
	return s.g.updateHeld(s.runID, s.isEnded, func(tx Tx) error { return tx.InsertProcess(p) })
}

// ForgetProcess drops the record of an exited process group.
func (s *Session) ForgetProcess(pgid int) error {
	return s.g.updateHeld(s.runID, nil, func(tx Tx) error { return tx.DeleteProcess(s.g.instance, pgid) })
}
