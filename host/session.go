package host

import (
	"encoding/json"
	"errors"
	"fmt"
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
	rewake    bool   // a wake arrived while detaching
	wokenBy   string // the node whose settling activated a parked run
	slotsHeld int    // concurrency slots granted and not yet released
	// slotsClosed: the activation ended; a slot granted late goes back.
	slotsClosed bool
	slotPool    *slotKey // the run's concurrency pool, once computed
	// fresh is the row of a run this process has just created, which
	// activate uses instead of reading it and its (empty) journal back.
	fresh *Run

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
		// A decision, signal or timer delivered while the journal was
		// loading is fresher than the row read before it: never replace
		// a settled entry with an unsettled one.
		k := nodeKey{n.NodeID, n.Iteration}
		if old, ok := s.journal[k]; ok && old.State.Settled() && !n.State.Settled() {
			continue
		}
		s.journal[k] = n
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

// claimed reports whether the activation was handed to the executor, and
// the lease epoch it claimed.
func (s *Session) claimed() (bool, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.started, s.run.LeaseEpoch
}

// epoch is the lease epoch the activation claimed.
func (s *Session) epoch() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.run.LeaseEpoch
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

// commit runs fn in one transaction, once the run's lease says the step is
// this activation's to commit; it fails with ErrSessionEnded after the
// activation ended and with ErrRunTerminal when the run has finished.
func (s *Session) commit(fn func(tx Tx) error) error {
	if s.isEnded() {
		return ErrSessionEnded
	}
	idx, vals := s.takeUnsaved()
	err := s.g.updateHeld(s.runID, s.isEnded, func(tx Tx) error {
		l, ok, err := tx.RunLease(s.runID)
		if err != nil {
			return err
		}
		if !ok || l.Status.Terminal() {
			return ErrRunTerminal
		}
		if l.RuntimeOwnerID != s.g.instance || l.LeaseEpoch != s.epoch() {
			return errLeaseLost
		}
		for i, n := range idx {
			if err := tx.PutValue(s.runID, n, vals[i]); err != nil {
				return err
			}
		}
		return fn(tx)
	})
	if errors.Is(err, errAbandoned) {
		// Storage stayed unavailable until the activation ended or the
		// gateway began to stop: nothing was written, the run replays.
		err = ErrSessionEnded
	}
	if errors.Is(err, errStaleJournal) {
		// Replay again from the store's journal rather than act on an old
		// one: nothing was written.
		s.g.replayAfresh(s)
		err = ErrSessionEnded
	}
	if errors.Is(err, errLeaseLost) {
		// Another gateway process claimed the run (this one was paused or
		// cut off past its lease): nothing was written, and this
		// activation goes.
		s.g.loseLease(s)
		err = ErrSessionEnded
	}
	if err != nil && len(idx) > 0 {
		s.mu.Lock()
		s.unsaved = append(idx, s.unsaved...)
		s.mu.Unlock()
	}
	return err
}

// commitNode is commit for a step that ends by storing node n; the journal
// is updated after the commit succeeded.
func (s *Session) commitNode(fn func(tx Tx) (Node, error)) (Node, error) {
	var out Node
	err := s.commit(func(tx Tx) error {
		n, err := fn(tx)
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

// createNode stores a new node (or returns the existing one, so a retried
// step is idempotent) and appends node.pending.
func (s *Session) createNode(tx Tx, n Node, now int64) (Node, bool, error) {
	n, created, err := s.newNode(tx, n, now)
	if err != nil || !created {
		return n, false, err
	}
	return n, true, tx.PutNode(n)
}

// newNode is createNode without the write of a new node, for a caller that
// changes the node further in the same transaction and writes it once.
func (s *Session) newNode(tx Tx, n Node, now int64) (Node, bool, error) {
	if old, ok, err := tx.GetNode(n.RunID, n.NodeID, n.Iteration); err != nil || ok {
		return old, false, err
	}
	n.RunID = s.runID
	n.CreatedAtMs, n.UpdatedAtMs = now, now
	state := n.State
	n.State = NodePending
	if err := nodeEvent(tx, EventNodePending, n, now); err != nil {
		return n, false, err
	}
	n.State = state
	return n, true, nil
}

// Complete ends the activation: the run finished with outputJSON as its
// output ("" for undefined).
func (s *Session) Complete(outputJSON string) {
	if !s.endOnce() {
		return
	}
	if len(outputJSON) > s.g.maxOutput {
		s.g.finishRun(s.runID, finishGuard{epoch: s.epoch()}, RunFailed, "", errorJSON(CodeOutputTooLarge,
			fmt.Sprintf("the workflow's return value is %d bytes of JSON, over the gateway's limit of %d (SMITHERS_GATEWAY_MAX_OUTPUT_BYTES)", len(outputJSON), s.g.maxOutput)))
		s.g.release(s)
		return
	}
	s.g.finishRun(s.runID, finishGuard{epoch: s.epoch()}, RunFinished, outputJSON, "")
	s.g.release(s)
}

// Fail ends the activation: the run failed with errJSON.
func (s *Session) Fail(errJSON string) {
	if !s.endOnce() {
		return
	}
	s.g.finishRun(s.runID, finishGuard{epoch: s.epoch()}, RunFailed, "", errJSON)
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

// NodeRef names a node of a run's journal.
type NodeRef struct {
	NodeID    string
	Iteration int
}

// Park ends an activation whose workflow waits only on approvals, signals or
// timers: the run's status becomes waiting-approval, waiting-event or
// waiting-timer and it leaves the executor. awaiting lists the waits the
// workflow still awaits. The status is derived from the nodes in the store
// inside the park's transaction, so it can never contradict a decision,
// signal or timer committed just before it (those set the run back to
// running in their own transaction).
//
// Park does not park, and the activation stays live, when a wait it awaits
// is already settled in the store (a decision that landed while the park
// was on its way, here or on another process): those nodes are returned
// for the executor to deliver, since a delivery may be lost with the
// activation otherwise. It does not park either when no node is waiting
// any more (a delivery is on its way).
func (s *Session) Park(awaiting []NodeRef) (parked bool, settled []Node, err error) {
	var waitingFor RunStatus
	err = s.commit(func(tx Tx) error {
		parked, settled, waitingFor = false, nil, ""
		nodes, err := tx.ListNodes(s.runID)
		if err != nil {
			return err
		}
		awaited := make(map[NodeRef]bool, len(awaiting))
		for _, k := range awaiting {
			awaited[k] = true
		}
		status := RunStatus("")
		for _, n := range nodes {
			if awaited[NodeRef{n.NodeID, n.Iteration}] && n.State.Settled() {
				settled = append(settled, n)
			}
			switch {
			case n.State == NodeWaitingApproval:
				status = RunWaitingApproval
			case n.State == NodeWaitingEvent && status != RunWaitingApproval:
				status = RunWaitingEvent
			case n.State == NodeWaitingTimer && status == "":
				status = RunWaitingTimer
			}
		}
		if status == "" || len(settled) > 0 {
			return nil
		}
		r, ok, err := tx.GetRun(s.runID)
		if err != nil || !ok {
			return err
		}
		parked, waitingFor = true, status
		r.Status = status
		return tx.UpdateRun(r)
	})
	if errors.Is(err, ErrRunTerminal) {
		err, parked, settled = nil, true, nil
	}
	if err != nil || !parked {
		if err != nil {
			settled = nil
		}
		return false, settled, err
	}
	if waitingFor != "" {
		s.Logger().Info("run parked", "waiting", waitingFor)
	}
	s.g.release(s)
	return true, nil, nil
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
