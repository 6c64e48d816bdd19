package host_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/host/sqlite"
	"github.com/smithers-orchestrator/smithers-go/testkit"
)

// holdExec delivers like jsruntime: a delivery that reaches an activation
// while its Park commits is held, and after a successful Park the engine is
// asked (Rewake) to activate the run again.
type holdExec struct {
	*fakeExec
	mu      sync.Mutex
	parking map[*host.Session][]host.Node
}

func (h *holdExec) Deliver(s *host.Session, n host.Node) {
	h.mu.Lock()
	if held, ok := h.parking[s]; ok {
		h.parking[s] = append(held, n)
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	go func() {
		if s.Ended() {
			s.Rewake()
		}
	}()
}

func (h *holdExec) beginPark(s *host.Session) {
	h.mu.Lock()
	h.parking[s] = nil
	h.mu.Unlock()
}

func (h *holdExec) heldCount(s *host.Session) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.parking[s])
}

func (h *holdExec) endPark(s *host.Session) []host.Node {
	h.mu.Lock()
	defer h.mu.Unlock()
	held := h.parking[s]
	delete(h.parking, s)
	return held
}

// TestRegressDecisionDuringParkIsLostAcrossARestart: Promise.race of two
// approvals. Approval "a" is decided while the activation is parking (the
// run is still "running", so markRunning does nothing); Park's transaction
// sees "b" still waiting and commits waiting-approval. The decision of "a"
// now lives only in memory (the held delivery and the Rewake). The gateway
// stops before the Rewake activates the run (graceful Close drops it, a crash
// loses it): at the next start the run is not resumed (it is not
// "running"), and it waits for "b" for ever although "a" decided the race.
func TestRegressDecisionDuringParkIsLostAcrossARestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "smithers.db")
	spec := host.ApprovalSpec{RequestJSON: `{"mode":"gate"}`, OnDeny: "fail"}
	var gw *host.Gateway
	parkedWithHeld := make(chan struct{})
	proceed := make(chan struct{})
	var first sync.Once
	var ex *holdExec
	script := func(s *host.Session) {
		a, ok := s.Lookup("a", 0)
		if !ok {
			var err error
			if a, err = s.RequestApproval("a", 0, spec); err != nil {
				return
			}
		}
		b, ok := s.Lookup("b", 0)
		if !ok {
			var err error
			if b, err = s.RequestApproval("b", 0, spec); err != nil {
				return
			}
		}
		if a.State.Settled() || b.State.Settled() {
			s.Complete(`"race decided"`)
			return
		}
		ex.beginPark(s)
		first.Do(func() {
			// The decision lands while the park is on its way.
			if err := gw.SubmitApproval(ctx, host.DecisionInput{RunID: s.RunID(), NodeID: "a", Approved: true}); err != nil {
				t.Error(err)
			}
			// Both deliveries of the decision (wake's, and the commit
			// hook's deliverSettled) reach the activation while its Park
			// is still queued behind other writers: both are held.
			for i := 0; i < 500 && ex.heldCount(s) < 2; i++ {
				time.Sleep(time.Millisecond)
			}
		})
		parked, settled, err := s.Park([]host.NodeRef{{NodeID: "a"}, {NodeID: "b"}})
		held := append(ex.endPark(s), settled...)
		if err != nil {
			return
		}
		if parked {
			if len(held) > 0 {
				close(parkedWithHeld)
				<-proceed
				s.Rewake()
			}
			return
		}
		for range held {
			s.Complete(`"race decided"`)
			return
		}
	}
	open := func() (*sqlite.Store, *host.Gateway) {
		st, err := sqlite.Open(ctx, path, sqlite.Options{OnCommit: func(evs []host.Event) {
			if gw != nil {
				gw.Committed(evs)
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		ex = &holdExec{fakeExec: &fakeExec{script: script, wfs: []host.WorkflowDef{{Key: "wf", VersionPolicy: host.VersionReplay}}},
			parking: map[*host.Session][]host.Node{}}
		g, err := host.New(host.Config{Store: st, Executor: ex, InstanceID: "me", Logger: slog.New(slog.NewJSONHandler(&testkit.Buffer{}, nil)),
			HeartbeatInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		gw = g
		if err := g.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return st, g
	}
	st, g := open()
	r, _, err := g.LaunchRun(ctx, host.LaunchInput{Workflow: "wf"})
	if err != nil {
		t.Fatal(err)
	}
	// Park must refuse to park a run whose awaited wait is already
	// decided, and hand the decision back: the run then finishes in this
	// activation. (Parking with the decision only in memory is the bug:
	// the rest of the test shows what that costs across a stop.)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-parkedWithHeld:
			deadline = time.Now()
		default:
		}
		if r1, _, _ := st.GetRun(ctx, r.RunID); r1.Status == host.RunFinished {
			_ = g.Close()
			_ = st.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-parkedWithHeld:
	default:
		t.Fatal("the run neither finished nor parked with a held delivery")
	}
	got, _, _ := st.GetRun(ctx, r.RunID)
	nodes, _ := st.ListNodes(ctx, r.RunID)
	t.Logf("durable state right after Park: run %s, nodes %s=%s %s=%s", got.Status, nodes[0].NodeID, nodes[0].State, nodes[1].NodeID, nodes[1].State)
	// Graceful stop (a deploy) before the Rewake reaches the engine.
	_ = g.Close()
	close(proceed)
	time.Sleep(50 * time.Millisecond)
	_ = st.Close()

	st2, g2 := open()
	defer func() { _ = g2.Close(); _ = st2.Close() }()
	deadline = time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if r2, _, _ := st2.GetRun(ctx, r.RunID); r2.Status == host.RunFinished {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r2, _, _ := st2.GetRun(ctx, r.RunID)
	t.Fatalf("3 s after the restart the run is %s: approval a was decided before the stop, the race is over, but nothing resumes the run", r2.Status)
}
