package host_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// taskStep runs task id like workflow code would: a finished node is
// replayed, an unsettled one gets its next attempt, a failing body fails the
// node and the run.
func taskStep(s *host.Session, id string, body func() error) bool {
	n, found := s.Lookup(id, 0)
	if found && n.State == host.NodeFinished {
		return true
	}
	var attempt int
	var err error
	if found {
		_, attempt, err = s.StartAttempt(id, 0)
	} else {
		_, attempt, err = s.BeginTask(id, 0, "", "")
	}
	if err != nil {
		return false
	}
	if berr := body(); berr != nil {
		errJSON := `{"name":"SmithersError","code":"TASK_FAILED","message":"` + berr.Error() + `"}`
		if _, err := s.FailAttempt(id, 0, attempt, errJSON, true); err == nil {
			s.Fail(errJSON)
		}
		return false
	}
	_, err = s.FinishTask(id, 0, attempt, `1`)
	return err == nil
}

func TestRetryFailedRunContinuesFromTheFailedStep(t *testing.T) {
	var aBodies, bBodies atomic.Int32
	var bFails atomic.Bool
	bFails.Store(true)
	e := newEngine(t, func(s *host.Session) {
		if !taskStep(s, "a", func() error { aBodies.Add(1); return nil }) {
			return
		}
		if !taskStep(s, "b", func() error {
			bBodies.Add(1)
			if bFails.Load() {
				return errors.New("deploy target down")
			}
			return nil
		}) {
			return
		}
		s.Complete(`"shipped"`)
	}, engineOpts{})
	ctx := context.Background()
	r, _, err := e.gw.LaunchRun(ctx, host.LaunchInput{Workflow: "wf"})
	if err != nil {
		t.Fatal(err)
	}
	failed := e.waitStatus(r.RunID, host.RunFailed)
	if failed.ErrorJSON == "" {
		t.Fatal("failed run has no errorJson")
	}
	evsBefore, _ := e.store.ListEvents(ctx, r.RunID, 0, 0)

	// Without the option the answer stays upstream's.
	if st, err := e.gw.ResumeRun(ctx, r.RunID, false); err != nil || st != host.ResumeAlreadyTerminal {
		t.Fatalf("ResumeRun of a failed run = %q, %v; want already_terminal", st, err)
	}
	bFails.Store(false)
	if st, err := e.gw.RetryFailedRun(ctx, r.RunID); err != nil || st != host.ResumeRequested {
		t.Fatalf("RetryFailedRun = %q, %v; want resume_requested", st, err)
	}
	done := e.waitStatus(r.RunID, host.RunFinished)
	if done.ErrorJSON != "" || done.OutputJSON != `"shipped"` {
		t.Fatalf("retried run: errorJson %q output %q", done.ErrorJSON, done.OutputJSON)
	}
	if n := aBodies.Load(); n != 1 {
		t.Errorf("the finished first task ran %d times, want once", n)
	}
	if n := bBodies.Load(); n != 2 {
		t.Errorf("the failed task ran %d times, want twice (failed, then retried)", n)
	}
	atts, _ := e.store.ListAttempts(ctx, r.RunID, "b", 0)
	if len(atts) != 2 || atts[0].State != host.AttemptFailed || atts[1].State != host.AttemptFinished {
		t.Errorf("attempts of b = %+v, want the failed one kept and a finished second", atts)
	}
	evs, _ := e.store.ListEvents(ctx, r.RunID, 0, 0)
	completed := 0
	for i, ev := range evs {
		if ev.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d: the stream's seqs do not continue", i, ev.Seq)
		}
		if ev.Name == host.EventRunCompleted {
			completed++
		}
	}
	if completed != 2 || len(evs) <= len(evsBefore) || evs[len(evs)-1].Name != host.EventRunCompleted {
		t.Errorf("events after the retry: %d run.completed, last %q; want a second run.completed at the end", completed, evs[len(evs)-1].Name)
	}
}

func TestRetryFailedRunOfOtherRuns(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, oneTask(nil), engineOpts{})
	if _, err := e.gw.RetryFailedRun(ctx, "nope"); host.ErrorCode(err) != host.CodeNotFound {
		t.Fatalf("unknown run: %v", err)
	}
	r, _, _ := e.gw.LaunchRun(ctx, host.LaunchInput{Workflow: "wf"})
	e.waitStatus(r.RunID, host.RunFinished)
	if st, err := e.gw.RetryFailedRun(ctx, r.RunID); err != nil || st != host.ResumeAlreadyTerminal {
		t.Fatalf("finished run: %q %v, want already_terminal", st, err)
	}
}
