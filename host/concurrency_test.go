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
	st := &slotTask{running: map[string]int{}, max: map[string]int{}}
	obs := &waitingObserver{}
	e := newEngine(t, st.script(func(*host.Session) string { return "" }), engineOpts{concurrency: &host.ConcurrencyLimit{Limit: 2}, observer: obs})
	ctx := context.Background()
	var ids []string
	for i := 0; i < 10; i++ {
		r, _, err := e.gw.LaunchRun(ctx, host.LaunchInput{Workflow: "wf", RunID: fmt.Sprintf("run-%02d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.RunID)
		time.Sleep(time.Millisecond) // distinct creation times: launch order
	}
	for _, id := range ids {
		e.waitStatus(id, host.RunFinished)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.max[""] > 2 {
		t.Fatalf("%d task bodies ran at once under a limit of 2", st.max[""])
	}
	if st.max[""] < 2 {
		t.Errorf("at most %d body ran at once: the limit of 2 was never used", st.max[""])
	}
	if obs.peak.Load() == 0 {
		t.Error("the waiting count was never reported")
	}
	// Waiters are served in launch order: the last two launched start last.
	last := st.order[len(st.order)-2:]
	for _, id := range last {
		if id != ids[8] && id != ids[9] {
			t.Errorf("bodies started in order %v: the last launched runs did not start last", st.order)
			break
		}
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
