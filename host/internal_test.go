package host

import (
	"math"
	"sync/atomic"
	"testing"
	"time"
)

func TestJournalLoadKeepsADecisionDeliveredWhileLoading(t *testing.T) {
	s := newSession(nil, "r1")
	// A decision arrived (wake put the settled node in the journal) after
	// activate read the nodes, which still show the approval waiting.
	s.journal[nodeKey{"ship", 0}] = Node{RunID: "r1", NodeID: "ship", State: NodeFinished, OutputJSON: `{"approved":true}`}
	s.load(Run{RunID: "r1"}, WorkflowDef{Key: "wf"}, []Node{
		{RunID: "r1", NodeID: "ship", State: NodeWaitingApproval},
		{RunID: "r1", NodeID: "build", State: NodeFinished},
	})
	if n, _ := s.Lookup("ship", 0); n.State != NodeFinished {
		t.Fatalf("journal entry of the decided approval is %s after load, want it kept finished", n.State)
	}
	if _, ok := s.Lookup("build", 0); !ok {
		t.Fatal("load dropped a node")
	}
}

func TestTimerWheelDoesNotSpinOnAFarFutureEntry(t *testing.T) {
	var looks atomic.Int64
	now := func() time.Time { looks.Add(1); return time.Now() }
	w := newTimerWheel(now, func(timerEntry) { t.Error("a timer centuries away fired") })
	w.arm(timerEntry{at: math.MaxInt64 / 2, runID: "r1", nodeID: "sleep"})
	w.start()
	time.Sleep(200 * time.Millisecond)
	w.close()
	if n := looks.Load(); n > 5 {
		t.Fatalf("the timer loop looked at the clock %d times in 200 ms: it spins", n)
	}
}
