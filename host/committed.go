package host

import (
	"context"
	"encoding/json"
)

// Committed is told about every committed event, of this process and, on a
// store shared by several gateway processes, of the others (wire it to the
// store's commit hook). A wait of a run active here that another process
// settled (a decision, a signal or a timer handled there) is delivered to
// the live activation as a local one would be. It must not block: it is
// called on the store's commit path.
func (g *Gateway) Committed(events []Event) {
	for _, e := range events {
		if e.Name != EventNodeFinished && e.Name != EventNodeFailed && e.Name != EventRunCompleted {
			continue
		}
		g.mu.Lock()
		s := g.active[e.RunID]
		g.mu.Unlock()
		if s == nil {
			continue
		}
		if e.Name == EventRunCompleted {
			// The run ended (a cancel or a timeout handled by another
			// process, or this activation's own finish, which has ended it
			// already): nothing of it may keep running here.
			if !s.isEnded() {
				g.endFinished(s)
			}
			continue
		}
		var p struct {
			NodeID string `json:"nodeId"`
		}
		if json.Unmarshal(e.Payload, &p) != nil || p.NodeID == "" {
			continue
		}
		if !s.waitsOn(p.NodeID) || !g.owned() {
			continue
		}
		go func(runID, nodeID string) {
			defer g.wg.Done()
			g.deliverSettled(runID, nodeID)
		}(e.RunID, p.NodeID)
	}
}

// waitsOn reports whether the activation's journal holds nodeID as an
// unsettled wait (approval, signal, timer), the only nodes settled outside
// the executor, or whether the activation has not started yet.
func (s *Session) waitsOn(nodeID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		// Still loading its journal, which may predate this settle: wake
		// queues the node for the activation when it starts.
		return true
	}
	for k, n := range s.journal {
		if k.id == nodeID && n.Kind != KindTask && !n.State.Settled() {
			return true
		}
	}
	return false
}

// deliverSettled reads the settled iterations of nodeID and wakes the run
// with each. It reads that node only: a run with thousands of nodes costs
// no more per settled wait than a small one.
func (g *Gateway) deliverSettled(runID, nodeID string) {
	nodes, err := g.store.ListNodeIterations(context.Background(), runID, nodeID)
	if err != nil {
		g.log.Error("deliver a wait settled elsewhere", "runId", runID, "nodeId", nodeID, "err", err)
		return
	}
	for _, n := range nodes {
		if n.State.Settled() {
			n := n
			g.wake(runID, &n)
		}
	}
}
