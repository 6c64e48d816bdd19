package host_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// TestRanTaskOnAStaleJournalReplays: a task whose body ran before its
// start was journaled (RanTask, or BeginFirstAttempt when it still runs)
// finds the node already journaled by another writer: nothing of it is written (no events, no attempt, the
// node as the other writer left it) and the run replays from the store's
// journal, which answers the step.
func TestRanTaskOnAStaleJournalReplays(t *testing.T) {
	for name, journal := range map[string]func(s *host.Session) error{
		"RanTask":           func(s *host.Session) error { _, err := s.RanTask("a", 0, "", "", 0, `1`); return err },
		"BeginFirstAttempt": func(s *host.Session) error { _, err := s.BeginFirstAttempt("a", 0, "", "", 0); return err },
	} {
		t.Run(name, func(t *testing.T) { testStaleFirstAttempt(t, journal) })
	}
}

func testStaleFirstAttempt(t *testing.T, journal func(s *host.Session) error) {
	var (
		once   sync.Once
		ranErr = make(chan error, 1)
		st     host.Store
	)
	script := func(s *host.Session) {
		if _, ok := s.Lookup("a", 0); !ok {
			once.Do(func() {
				// Behind this activation's back, as a second writer would.
				_, err := st.Update(context.Background(), func(tx host.Tx) error {
					return tx.PutNode(host.Node{RunID: s.RunID(), NodeID: "a", Kind: host.KindTask, State: host.NodeFinished, OutputJSON: `7`, Attempts: 1})
				})
				if err != nil {
					panic(err)
				}
				ranErr <- journal(s)
			})
			return
		}
		s.Complete(`{"ok":true}`)
	}
	e := newEngine(t, script, engineOpts{})
	st = e.store
	ctx := context.Background()
	r, _, err := e.gw.LaunchRun(ctx, host.LaunchInput{Workflow: "wf"})
	if err != nil {
		t.Fatal(err)
	}
	e.waitStatus(r.RunID, host.RunFinished)
	select {
	case err := <-ranErr:
		if !errors.Is(err, host.ErrSessionEnded) {
			t.Fatalf("journaling a first attempt on a stale journal = %v, want ErrSessionEnded (the run replays)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the workflow never journaled its first attempt")
	}
	nodes, _ := e.store.ListNodes(ctx, r.RunID)
	if len(nodes) != 1 || nodes[0].OutputJSON != `7` {
		t.Fatalf("nodes %+v, want a as the other writer left it", nodes)
	}
	if atts, _ := e.store.ListAttempts(ctx, r.RunID, "a", 0); len(atts) != 0 {
		t.Fatalf("attempts of a = %+v, want none", atts)
	}
	events, _ := e.store.ListEvents(ctx, r.RunID, 0, 0)
	for _, ev := range events {
		if ev.Name != host.EventRunCompleted {
			t.Fatalf("events %+v, want only run.completed", events)
		}
	}
}
