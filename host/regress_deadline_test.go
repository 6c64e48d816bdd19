package host_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/host/sqlite"
	"github.com/smithers-orchestrator/smithers-go/testkit"
)

// TestRegressRetriedRunIsFailedByItsOldDeadline: retryFailedRun gives the run
// a fresh timeoutMs deadline and arms it, but the first attempt's deadline
// entry is still in the timer wheel. When it comes due, timeoutRun fails the
// run without comparing the entry with the run's current DeadlineAtMs.
func TestRegressRetriedRunIsFailedByItsOldDeadline(t *testing.T) {
	ctx := context.Background()
	const timeout = 600 // ms
	hold := make(chan struct{})
	defer close(hold)
	script := func(s *host.Session) {
		n, ok := s.Lookup("a", 0)
		if !ok {
			_, attempt, err := s.BeginTask("a", 0, "", "")
			if err != nil {
				return
			}
			if _, err := s.FailAttempt("a", 0, attempt, `{"code":"TASK_FAILED","message":"boom"}`, true); err != nil {
				return
			}
			s.Fail(`{"code":"TASK_FAILED","message":"boom"}`)
			return
		}
		if n.State == host.NodePending { // retried: the body now takes a while
			_, attempt, err := s.StartAttempt("a", 0)
			if err != nil {
				return
			}
			<-hold
			if _, err := s.FinishTask("a", 0, attempt, `1`); err == nil {
				s.Complete(`1`)
			}
		}
	}
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "smithers.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ex := &fakeExec{script: script, wfs: []host.WorkflowDef{{Key: "wf", VersionPolicy: host.VersionReplay, TimeoutMs: timeout}}}
	g, err := host.New(host.Config{Store: st, Executor: ex, InstanceID: "me", Logger: slog.New(slog.NewJSONHandler(&testkit.Buffer{}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	launched := time.Now()
	r, _, err := g.LaunchRun(ctx, host.LaunchInput{Workflow: "wf"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if got, _, _ := st.GetRun(ctx, r.RunID); got.Status == host.RunFailed {
			break
		}
		if i > 500 {
			t.Fatal("the first attempt never failed")
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(time.Until(launched.Add(timeout / 2 * time.Millisecond)))
	if _, err := g.RetryFailedRun(ctx, r.RunID); err != nil {
		t.Fatal(err)
	}
	retried, _, _ := st.GetRun(ctx, r.RunID)
	time.Sleep(time.Until(launched.Add(timeout * 5 / 4 * time.Millisecond))) // past the old deadline, before the new one
	got, _, _ := st.GetRun(ctx, r.RunID)
	if got.Status != host.RunRunning {
		t.Fatalf("%d ms after launch (the retry's deadline is %d ms after launch) the retried run is %s: %s",
			time.Since(launched).Milliseconds(), retried.DeadlineAtMs-launched.UnixMilli(), got.Status, got.ErrorJSON)
	}
}
