package host_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// slotTask is a one-task workflow whose body takes a concurrency slot and
// reports what runs at once.
type slotTask struct {
	mu      sync.Mutex
	running map[string]int // key value -> bodies running now
	max     map[string]int
	order   []string // run ids in the order their bodies started
	// hold, when set, keeps the first bodies running until it is closed.
	hold chan struct{}
}

func (st *slotTask) script(key func(s *host.Session) string) func(s *host.Session) {
	return func(s *host.Session) {
		if n, ok := s.Lookup("a", 0); ok && n.State == host.NodeFinished {
			s.Complete(`1`)
			return
		}
		_, attempt, err := s.BeginTask("a", 0, "", "")
		if err != nil {
			return
		}
		k := key(s)
		s.AcquireTaskSlot("a", 0, func() {
			go func() {
				st.mu.Lock()
				st.running[k]++
				st.max[k] = max(st.max[k], st.running[k])
				st.order = append(st.order, s.RunID())
				st.mu.Unlock()
				if st.hold != nil {
					<-st.hold
				}
				time.Sleep(15 * time.Millisecond)
				st.mu.Lock()
				st.running[k]--
				st.mu.Unlock()
				s.ReleaseTaskSlot()
				if _, err := s.FinishTask("a", 0, attempt, `1`); err == nil {
					s.Complete(`1`)
				}
			}()
		})
	}
}

type waitingObserver struct {
	peak atomic.Int64
}

func (o *waitingObserver) RunStarted(string, string, bool)     {}
func (o *waitingObserver) RunCompleted(string, host.RunStatus) {}
func (o *waitingObserver) CronFired(string)                    {}
func (o *waitingObserver) TasksWaiting(workflow string, waiting int) {
	for {
		cur := o.peak.Load()
		if int64(waiting) <= cur || o.peak.CompareAndSwap(cur, int64(waiting)) {
			return
		}
	}
}

func TestConcurrencyLimitCapsBodiesAcrossRuns(t *testing.T) {
	for _, limit := range []int{1, 2} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			st := &slotTask{running: map[string]int{}, max: map[string]int{}}
			obs := &waitingObserver{}
			// The first bodies hold their slots until every other run waits
			// in line, so that the order the waiters are served in is the
			// engine's choice, not the order their activations asked in.
			st.hold = make(chan struct{})
			e := newEngine(t, st.script(func(*host.Session) string { return "" }), engineOpts{concurrency: &host.ConcurrencyLimit{Limit: limit}, observer: obs})
			ctx := context.Background()
			var ids []string
			for i := 0; i < 10; i++ {
				r, _, err := e.gw.LaunchRun(ctx, host.LaunchInput{Workflow: "wf", RunID: fmt.Sprintf("run-%02d", i)})
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, r.RunID)
				time.Sleep(2 * time.Millisecond) // distinct creation times: launch order
			}
			e.waitFor("the other runs to wait for a slot", func() bool { return obs.peak.Load() == int64(10-limit) })
			close(st.hold)
			for _, id := range ids {
				e.waitStatus(id, host.RunFinished)
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			if st.max[""] != limit {
				t.Fatalf("%d task bodies ran at once under a limit of %d", st.max[""], limit)
			}
			if limit == 1 {
				// One slot: every release hands it to the head of the line,
				// so the waiters start in launch order.
				waited := st.order[1:]
				for i := 1; i < len(waited); i++ {
					if waited[i] < waited[i-1] {
						t.Fatalf("waiting runs were served in order %v, want launch order", waited)
					}
				}
			}
		})
	}
}

func TestConcurrencyLimitPerKey(t *testing.T) {
	st := &slotTask{running: map[string]int{}, max: map[string]int{}}
	tenant := func(s *host.Session) string {
		if strings.Contains(s.Run().InputJSON, `"a"`) {
			return "a"
		}
		return "b"
	}
	e := newEngine(t, st.script(tenant), engineOpts{concurrency: &host.ConcurrencyLimit{Limit: 1, Key: "tenant.id"}})
	ctx := context.Background()
	var ids []string
	for i := 0; i < 8; i++ {
		in := `{"tenant":{"id":"a"}}`
		if i%2 == 1 {
			in = `{"tenant":{"id":"b"}}`
		}
		r, _, err := e.gw.LaunchRun(ctx, host.LaunchInput{Workflow: "wf", InputJSON: in})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.RunID)
	}
	for _, id := range ids {
		e.waitStatus(id, host.RunFinished)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.max["a"] != 1 || st.max["b"] != 1 {
		t.Fatalf("bodies at once per tenant: %v, want 1 each", st.max)
	}
}

func TestConcurrencyQueueKeepsLaunchOrderAcrossARestart(t *testing.T) {
	st := &slotTask{running: map[string]int{}, max: map[string]int{}}
	base := time.Now().Add(-time.Minute).UnixMilli()
	var ids []string
	script := st.script(func(*host.Session) string { return "" })
	e := newEngine(t, func(s *host.Session) {
		// Older runs replay slower, as a long journal would: without the
		// settling of the queues, the newest run would take the slot first.
		var i int
		fmt.Sscanf(s.RunID(), "run-%d", &i)
		time.Sleep(time.Duration(10-i) * 15 * time.Millisecond)
		script(s)
	}, engineOpts{concurrency: &host.ConcurrencyLimit{Limit: 1}, beforeBoot: func(st *faultyStore) {
		// The previous process was killed with these runs waiting for a slot.
		for i := 0; i < 6; i++ {
			id := fmt.Sprintf("run-%d", i)
			ids = append(ids, id)
			insertRun(t, st, host.Run{RunID: id, Status: host.RunRunning, CreatedAtMs: base + int64(i), StartedAtMs: base + int64(i),
				RuntimeOwnerID: "dead", HeartbeatAtMs: base})
		}
	}})
	for _, id := range ids {
		e.waitStatus(id, host.RunFinished)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for i := 1; i < len(st.order); i++ {
		if st.order[i] < st.order[i-1] {
			t.Fatalf("after a restart the waiting runs started in order %v, want launch order", st.order)
		}
	}
}
