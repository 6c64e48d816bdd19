package host

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
)

// ErrSessionEnded is returned by step commits of an activation that has
// parked, finished or been detached; the executor drops the late result.
var ErrSessionEnded = errors.New("run activation has ended")

type nodeKey struct {
	id        string
	iteration int
}

// Session is one activation of a run: the engine's side of a workflow
// function executing in the executor. Step methods commit one transaction
// each (node state, attempt, events) before they return, so the executor
// resolves a ctx promise only after its step is durable. All methods are
// safe for concurrent use.
type Session struct {
	g     *Gateway
	runID string

	mu        sync.Mutex
	run       Run
	wf        WorkflowDef
	journal   map[nodeKey]Node
	values    []string
	unsaved   []int  // indexes of values not yet journaled
	started   bool   // handed to the executor; deliveries go straight there
	queued    []Node // deliveries that arrived while activating
	ended     bool   // parked, terminal or detached: no more commits
	detaching bool
	rewake    bool // a wake arrived while detaching

	// Private holds the executor's state for this activation.
	Private any
}

func newSession(g *Gateway, runID string) *Session {
	return &Session{g: g, runID: runID, journal: map[nodeKey]Node{}}
}

func (s *Session) load(run Run, wf WorkflowDef, nodes []Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.run = run
	s.wf = wf
	for _, n := range nodes {
		s.journal[nodeKey{n.NodeID, n.Iteration}] = n
	}
}

func (s *Session) markDetaching() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.detaching {
		return false
	}
	s.detaching = true
	s.ended = true
	return true
}

// RunID is the run's id.
func (s *Session) RunID() string { return s.runID }

// Run returns the run row as it was when the activation began.
func (s *Session) Run() Run {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.run
}

// Workflow returns the run's workflow definition.
func (s *Session) Workflow() WorkflowDef {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wf
}

// Logger returns a logger carrying the run id and workflow key.
func (s *Session) Logger() *slog.Logger {
	return s.g.log.With("runId", s.runID, "workflow", s.Workflow().Key)
}

// NowMs is the engine's clock in Unix milliseconds.
func (s *Session) NowMs() int64 { return s.g.nowMs() }

// JournalSize is the number of nodes the activation started with or created.
func (s *Session) JournalSize() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.journal)
}

// Lookup returns the journaled node (runId, nodeID, iteration).
func (s *Session) Lookup(nodeID string, iteration int) (Node, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.journal[nodeKey{nodeID, iteration}]
	return n, ok
}

// Value returns the journaled ctx.now/random/uuid value number index (call
// order within a pass), or adopts fresh under that index when the run has
// none yet. kind ("now", "random", "uuid") is journaled with the value: a
// replay that asks for another kind at that position fails with
// NONDETERMINISM. A fresh value is written with the activation's next
// commit: anything durable that could depend on it (a task start, a wait, a
// park) is such a commit, so a crash before it loses nothing observable.
func (s *Session) Value(index int, kind, fresh string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if index < len(s.values) {
		var v struct {
			K string          `json:"k"`
			V json.RawMessage `json:"v"`
		}
		if err := json.Unmarshal([]byte(s.values[index]), &v); err != nil || v.K != kind {
			return "", Errorf(CodeNondeterminism, "ctx.%s() call number %d of this run was journaled as ctx.%s(); the workflow no longer calls them in the same order (nondeterministic workflow code?)", kind, index+1, v.K)
		}
		return string(v.V), nil
	}
	for len(s.values) < index {
		s.values = append(s.values, `{"k":"","v":null}`)
	}
	s.values = append(s.values, string(mustJSON(map[string]any{"k": kind, "v": json.RawMessage(fresh)})))
	s.unsaved = append(s.unsaved, index)
	return fresh, nil
}

// takeUnsaved returns the values that still have to be journaled.
func (s *Session) takeUnsaved() ([]int, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.unsaved) == 0 {
		return nil, nil
	}
	idx := s.unsaved
	vals := make([]string, len(idx))
	for i, n := range idx {
		vals[i] = s.values[n]
	}
	s.unsaved = nil
	return idx, vals
}

// Ended reports whether the activation has ended (parked, finished,
// detached); the executor ignores an Activate or Deliver of an ended session.
func (s *Session) Ended() bool { return s.isEnded() }

func (s *Session) isEnded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// commit runs fn in one transaction against the run's current row; it fails
// with ErrSessionEnded after the activation ended and with ErrRunTerminal
// when the run has finished.
func (s *Session) commit(fn func(tx Tx, r *Run) error) error {
	if s.isEnded() {
		return ErrSessionEnded
	}
	idx, vals := s.takeUnsaved()
	err := s.g.update(context.Background(), func(tx Tx) error {
		r, ok, err := tx.GetRun(s.runID)
		if err != nil {
			return err
		}
		if !ok || r.Status.Terminal() {
			return ErrRunTerminal
		}
		for i, n := range idx {
			if err := tx.PutValue(s.runID, n, vals[i]); err != nil {
				return err
			}
		}
		return fn(tx, &r)
	})
	if err != nil && len(idx) > 0 {
		s.mu.Lock()
		s.unsaved = append(idx, s.unsaved...)
		s.mu.Unlock()
	}
	return err
}

// commitNode is commit for a step that ends by storing node n; the journal
// is updated after the commit succeeded.
func (s *Session) commitNode(fn func(tx Tx, r *Run) (Node, error)) (Node, error) {
	var out Node
	err := s.commit(func(tx Tx, r *Run) error {
		n, err := fn(tx, r)
		out = n
		return err
	})
	if err != nil {
		return Node{}, err
	}
	s.mu.Lock()
	// A decision delivered while this commit returned may already have
	// settled the node in the journal; never move it back.
	if old, ok := s.journal[nodeKey{out.NodeID, out.Iteration}]; !ok || !old.State.Settled() || out.State.Settled() {
		s.journal[nodeKey{out.NodeID, out.Iteration}] = out
	}
	s.mu.Unlock()
	return out, nil
}

func nodeEvent(tx Tx, name string, n Node, at int64, extra map[string]any) error {
	p := map[string]any{"runId": n.RunID, "nodeId": n.NodeID, "state": string(n.State)}
	for k, v := range extra {
		p[k] = v
	}
	_, err := tx.AppendEvent(n.RunID, name, mustJSON(p), at)
	return err
}

// createNode stores a new node (or returns the existing one, so a retried
// step is idempotent) and appends node.pending.
func (s *Session) createNode(tx Tx, n Node, now int64) (Node, bool, error) {
	if old, ok, err := tx.GetNode(n.RunID, n.NodeID, n.Iteration); err != nil || ok {
		return old, false, err
	}
	n.RunID = s.runID
	n.CreatedAtMs, n.UpdatedAtMs = now, now
	state := n.State
	n.State = NodePending
	if err := nodeEvent(tx, "node.pending", n, now, nil); err != nil {
		return n, false, err
	}
	n.State = state
	return n, true, tx.PutNode(n)
}

// CreateTask journals a new task node in state pending (node.pending).
func (s *Session) CreateTask(nodeID string, iteration int, label, metaJSON string) (Node, error) {
	now := s.g.nowMs()
	return s.commitNode(func(tx Tx, _ *Run) (Node, error) {
		n, _, err := s.createNode(tx, Node{RunID: s.runID, NodeID: nodeID, Iteration: iteration, Kind: KindTask, State: NodePending, Label: label, MetaJSON: metaJSON}, now)
		return n, err
	})
}

// StartAttempt begins the task's next attempt: attempt row in-progress,
// node in-progress, node.started. It returns the node and attempt number.
func (s *Session) StartAttempt(nodeID string, iteration int) (Node, int, error) {
	now := s.g.nowMs()
	n, err := s.commitNode(func(tx Tx, _ *Run) (Node, error) {
		return s.startAttempt(tx, nodeID, iteration, now)
	})
	return n, n.Attempts, err
}

// BeginTask journals a new task node and starts its first attempt in one
// transaction (node.pending, node.started): CreateTask and StartAttempt for
// a task that need not wait for a concurrency slot.
func (s *Session) BeginTask(nodeID string, iteration int, label, metaJSON string) (Node, int, error) {
	now := s.g.nowMs()
	n, err := s.commitNode(func(tx Tx, _ *Run) (Node, error) {
		if _, _, err := s.createNode(tx, Node{RunID: s.runID, NodeID: nodeID, Iteration: iteration, Kind: KindTask, State: NodePending, Label: label, MetaJSON: metaJSON}, now); err != nil {
			return Node{}, err
		}
		return s.startAttempt(tx, nodeID, iteration, now)
	})
	return n, n.Attempts, err
}

func (s *Session) startAttempt(tx Tx, nodeID string, iteration int, now int64) (Node, error) {
	n, ok, err := tx.GetNode(s.runID, nodeID, iteration)
	if err != nil {
		return n, err
	}
	if !ok {
		return n, Errorf(CodeNodeNotFound, "node %s not found", nodeID)
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
	return n, nodeEvent(tx, "node.started", n, now, nil)
}

// FinishTask settles the task with its output (node.finished).
func (s *Session) FinishTask(nodeID string, iteration, attempt int, outputJSON string) (Node, error) {
	now := s.g.nowMs()
	return s.commitNode(func(tx Tx, _ *Run) (Node, error) {
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
		return n, nodeEvent(tx, "node.finished", n, now, nil)
	})
}

// FailAttempt records a failed attempt. When final, the node fails
// (node.failed); otherwise it goes back to pending until the next attempt.
func (s *Session) FailAttempt(nodeID string, iteration, attempt int, errJSON string, final bool) (Node, error) {
	now := s.g.nowMs()
	return s.commitNode(func(tx Tx, _ *Run) (Node, error) {
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
			return n, tx.PutNode(n)
		}
		n.State = NodeFailed
		n.ErrorJSON = errJSON
		if err := tx.PutNode(n); err != nil {
			return n, err
		}
		return n, nodeEvent(tx, "node.failed", n, now, map[string]any{"error": json.RawMessage(orNull(errJSON))})
	})
}

func (s *Session) settleAttempt(tx Tx, nodeID string, iteration, attempt int, state, errJSON string, now int64) error {
	a, ok, err := tx.GetAttempt(s.runID, nodeID, iteration, attempt)
	if err != nil {
		return err
	}
	if !ok {
		a = Attempt{RunID: s.runID, NodeID: nodeID, Iteration: iteration, Attempt: attempt, StartedAtMs: now}
	}
	a.State = state
	a.FinishedAtMs = now
	a.ErrorJSON = errJSON
	return tx.PutAttempt(a)
}

// StaticTask journals a task whose body is a value: pending, one attempt,
// finished, in one transaction.
func (s *Session) StaticTask(nodeID string, iteration int, label, metaJSON, outputJSON string) (Node, error) {
	now := s.g.nowMs()
	return s.commitNode(func(tx Tx, _ *Run) (Node, error) {
		n, created, err := s.createNode(tx, Node{NodeID: nodeID, Iteration: iteration, Kind: KindTask, State: NodePending, Label: label, MetaJSON: metaJSON}, now)
		if err != nil || !created {
			return n, err
		}
		n.Attempts = 1
		n.State = NodeInProgress
		if err := nodeEvent(tx, "node.started", n, now, nil); err != nil {
			return n, err
		}
		if err := tx.PutAttempt(Attempt{RunID: s.runID, NodeID: nodeID, Iteration: iteration, Attempt: 1, State: AttemptFinished, StartedAtMs: now, FinishedAtMs: now}); err != nil {
			return n, err
		}
		n.State = NodeFinished
		n.OutputJSON = outputJSON
		if err := tx.PutNode(n); err != nil {
			return n, err
		}
		return n, nodeEvent(tx, "node.finished", n, now, nil)
	})
}

// ApprovalSpec is what ctx.approval journals.
type ApprovalSpec struct {
	Label string
	// RequestJSON is the approval's stored request: {title, summary,
	// metadata, mode, options, allowedScopes, allowedUsers, autoApprove}.
	RequestJSON string
	// OnDeny is "fail" (default), "continue" or "skip".
	OnDeny    string
	TimeoutMs int64
}

// ApprovalMeta is the node meta of an approval node.
type ApprovalMeta struct {
	OnDeny    string `json:"onDeny"`
	TimeoutMs int64  `json:"timeoutMs,omitempty"`
}

// RequestApproval journals an approval node waiting for a decision:
// node.pending, approval.requested, node.waiting_approval.
func (s *Session) RequestApproval(nodeID string, iteration int, spec ApprovalSpec) (Node, error) {
	now := s.g.nowMs()
	n, err := s.commitNode(func(tx Tx, _ *Run) (Node, error) {
		n := Node{NodeID: nodeID, Iteration: iteration, Kind: KindApproval, State: NodeWaitingApproval, Label: spec.Label,
			MetaJSON: string(mustJSON(ApprovalMeta{OnDeny: spec.OnDeny, TimeoutMs: spec.TimeoutMs}))}
		if spec.TimeoutMs > 0 {
			n.FiresAtMs = now + spec.TimeoutMs
		}
		n, created, err := s.createNode(tx, n, now)
		if err != nil || !created {
			return n, err
		}
		if err := tx.PutApproval(Approval{RunID: s.runID, NodeID: nodeID, Iteration: iteration, Status: ApprovalRequested, RequestedAtMs: now, RequestJSON: spec.RequestJSON}); err != nil {
			return n, err
		}
		if _, err := tx.AppendEvent(s.runID, "approval.requested", mustJSON(map[string]any{"runId": s.runID, "nodeId": nodeID, "iteration": iteration}), now); err != nil {
			return n, err
		}
		return n, nodeEvent(tx, "node.waiting_approval", n, now, nil)
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
// upstream field names (CONTRACT.md §5.6).
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
	n, err := s.commitNode(func(tx Tx, _ *Run) (Node, error) {
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
	return n, nodeEvent(tx, "node.finished", n, now, nil)
}

// StartTimer journals a durable timer node that fires at firesAtMs. A timer
// already due finishes at once.
func (s *Session) StartTimer(nodeID string, iteration int, label string, firesAtMs int64) (Node, error) {
	now := s.g.nowMs()
	n, err := s.commitNode(func(tx Tx, _ *Run) (Node, error) {
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
		return n, nodeEvent(tx, "node.finished", n, now, nil)
	})
	if err == nil && n.State == NodeWaitingTimer {
		s.g.timers.arm(timerEntry{at: n.FiresAtMs, runID: s.runID, nodeID: nodeID, iteration: iteration})
	}
	return n, err
}

// Emit appends a task.output event with a chunk of a task's output.
func (s *Session) Emit(nodeID string, text, stream string) error {
	now := s.g.nowMs()
	return s.commit(func(tx Tx, _ *Run) error {
		_, err := tx.AppendEvent(s.runID, "task.output", mustJSON(map[string]any{"runId": s.runID, "nodeId": nodeID, "output": text, "stream": stream}), now)
		return err
	})
}

// Heartbeat records a task heartbeat on the attempt and appends
// task.heartbeat.
func (s *Session) Heartbeat(nodeID string, iteration, attempt int, dataJSON string) error {
	now := s.g.nowMs()
	return s.commit(func(tx Tx, _ *Run) error {
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
		_, err = tx.AppendEvent(s.runID, "task.heartbeat", mustJSON(map[string]any{"runId": s.runID, "nodeId": nodeID, "iteration": iteration, "attempt": attempt}), now)
		return err
	})
}

// RecordProcess remembers a t.exec child's process group until
// ForgetProcess, so that a gateway killed meanwhile kills it at next start.
func (s *Session) RecordProcess(p Process) error {
	p.RunID = s.runID
	_, err := s.g.store.Update(context.Background(), func(tx Tx) error { return tx.InsertProcess(p) })
	return err
}

// ForgetProcess drops the record of an exited process group.
func (s *Session) ForgetProcess(pgid int) error {
	_, err := s.g.store.Update(context.Background(), func(tx Tx) error { return tx.DeleteProcess(pgid) })
	return err
}

// Complete ends the activation: the run finished with outputJSON as its
// output ("" for undefined).
func (s *Session) Complete(outputJSON string) {
	if !s.endOnce() {
		return
	}
	s.g.finishRun(s.runID, RunFinished, outputJSON, "")
	s.g.release(s)
}

// Fail ends the activation: the run failed with errJSON.
func (s *Session) Fail(errJSON string) {
	if !s.endOnce() {
		return
	}
	s.g.finishRun(s.runID, RunFailed, "", errJSON)
	s.g.release(s)
}

func (s *Session) endOnce() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	s.ended = true
	return true
}

// Park ends an activation whose workflow waits only on approvals, signals or
// timers: the run's status becomes waiting-approval, waiting-event or
// waiting-timer and it leaves the executor. The status is derived from the
// nodes in the store inside the park's transaction, so it can never
// contradict a decision, signal or timer committed just before it (those
// set the run back to running in their own transaction). Park reports
// false, and the activation stays live, when no node is waiting any more (a
// delivery is on its way to the executor).
func (s *Session) Park() (bool, error) {
	parked := false
	err := s.commit(func(tx Tx, r *Run) error {
		nodes, err := tx.ListNodes(s.runID)
		if err != nil {
			return err
		}
		status := RunStatus("")
		for _, n := range nodes {
			switch {
			case n.State == NodeWaitingApproval:
				status = RunWaitingApproval
			case n.State == NodeWaitingEvent && status != RunWaitingApproval:
				status = RunWaitingEvent
			case n.State == NodeWaitingTimer && status == "":
				status = RunWaitingTimer
			}
		}
		if status == "" {
			return nil
		}
		parked = true
		r.Status = status
		return tx.UpdateRun(*r)
	})
	if errors.Is(err, ErrRunTerminal) {
		err, parked = nil, true
	}
	if err != nil || !parked {
		return false, err
	}
	s.g.release(s)
	return true, nil
}

// Rewake asks the engine to activate the run again; the executor calls it
// when a delivery reaches an activation that has already ended.
func (s *Session) Rewake() { s.g.wake(s.runID, nil) }

// Restart ends the activation and activates the run again from its journal.
// The executor calls it when it lost the activation's JavaScript state (its
// worker was rebuilt), after every goroutine of the activation returned.
func (s *Session) Restart() {
	s.mu.Lock()
	if s.detaching {
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.g.release(s)
	s.g.wake(s.runID, nil)
}
