package host_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/host/sqlite"
	"github.com/smithers-orchestrator/smithers-go/testkit"
)

// pausingStore is a shared (not exclusive) store whose ListValues can be
// held, to stop an activation between its journal read and its load.
type pausingStore struct {
	host.Store
	pause   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (p *pausingStore) Exclusive() bool { return false }

func (p *pausingStore) ListValues(ctx context.Context, runID string) ([]string, error) {
	if p.pause.CompareAndSwap(true, false) {
		close(p.entered)
		<-p.release
	}
	return p.Store.ListValues(ctx, runID)
}

// TestRegressDecisionOnAnotherReplicaDuringActivationIsLost: replica a is
// activating the run (woken by its timer) and has read the journal, in
// which approval "ship" still waits; replica b decides "ship" now. a's
// Committed asks the activating session whether it waits on "ship": its
// journal is not loaded yet, so no; b's own activation is refused (a owns
// the run). a then loads the stale journal; Park finds nothing waiting in
// the store and leaves the activation live for a delivery that never comes.
func TestRegressDecisionOnAnotherReplicaDuringActivationIsLost(t *testing.T) {
	ctx := context.Background()
	var gws []*host.Gateway
	var mu sync.Mutex
	base, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "smithers.db"), sqlite.Options{OnCommit: func(evs []host.Event) {
		mu.Lock()
		list := append([]*host.Gateway(nil), gws...)
		mu.Unlock()
		for _, g := range list {
			g.Committed(evs)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	spec := host.ApprovalSpec{RequestJSON: `{"mode":"gate"}`, OnDeny: "fail"}
	script := func(s *host.Session) {
		ship, ok := s.Lookup("ship", 0)
		if !ok {
			if ship, err = s.RequestApproval("ship", 0, spec); err != nil {
				return
			}
		}
		nap, ok := s.Lookup("nap", 0)
		if !ok {
			if nap, err = s.StartTimer("nap", 0, "", s.NowMs()+300); err != nil {
				return
			}
		}
		for {
			if ship.State.Settled() && nap.State.Settled() {
				s.Complete(`"shipped"`)
				return
			}
			parked, _, err := s.Park(nil)
			if err != nil || parked {
				return
			}
			// Not parked: a delivery is on its way (it lands in the journal).
			for i := 0; i < 1000 && !s.Ended(); i++ {
				ship, _ = s.Lookup("ship", 0)
				nap, _ = s.Lookup("nap", 0)
				if ship.State.Settled() && nap.State.Settled() {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if s.Ended() || !(ship.State.Settled() && nap.State.Settled()) {
				return
			}
		}
	}
	newGW := func(st host.Store, instance string) *host.Gateway {
		ex := &fakeExec{script: script, wfs: []host.WorkflowDef{{Key: "wf", VersionPolicy: host.VersionReplay}}}
		g, err := host.New(host.Config{Store: st, Executor: ex, InstanceID: instance,
			Logger: slog.New(slog.NewJSONHandler(&testkit.Buffer{}, nil)), HeartbeatInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		gws = append(gws, g)
		mu.Unlock()
		if err := g.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = g.Close() })
		return g
	}
	stA := &pausingStore{Store: base, entered: make(chan struct{}), release: make(chan struct{})}
	stB := &faultyStore{Store: base, shared: true}
	a := newGW(stA, "a")
	b := newGW(stB, "b")

	r, _, err := a.LaunchRun(ctx, host.LaunchInput{Workflow: "wf"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if got, _, _ := base.GetRun(ctx, r.RunID); got.Status == host.RunWaitingApproval {
			break
		}
		if i > 1000 {
			t.Fatal("the run never parked")
		}
		time.Sleep(2 * time.Millisecond)
	}
	stA.pause.Store(true) // the timer's activation on a stops after its journal read
	select {
	case <-stA.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the timer never woke the run on a")
	}
	if err := b.SubmitApproval(ctx, host.DecisionInput{RunID: r.RunID, NodeID: "ship", Approved: true}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // b's activation is refused; a's Committed has run
	close(stA.release)
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		if got, _, _ := base.GetRun(ctx, r.RunID); got.Status == host.RunFinished {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	got, _, _ := base.GetRun(ctx, r.RunID)
	nodes, _ := base.ListNodes(ctx, r.RunID)
	t.Fatalf("4 s after the decision the run is %s (owner %s, a has %d live activation(s)); store nodes: %s=%s %s=%s",
		got.Status, got.RuntimeOwnerID, a.ActiveRuns(), nodes[0].NodeID, nodes[0].State, nodes[1].NodeID, nodes[1].State)
}
