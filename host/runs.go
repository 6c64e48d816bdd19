package host

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// LaunchInput is a request to start a run.
type LaunchInput struct {
	Workflow string
	// InputJSON is the run input, a JSON object ("" means {}).
	InputJSON      string
	RunID          string
	IdempotencyKey string
	Auth           Identity
	// TriggeredBy overrides the recorded trigger (default: the caller's
	// userId, else "gateway").
	TriggeredBy string
}

// LaunchRun creates a run and activates it. An idempotency key that already
// maps to a run of the workflow returns that run; a runId naming an existing
// run of the same workflow returns it, of another workflow fails with Busy.
// created is false when an existing run was returned.
func (g *Gateway) LaunchRun(ctx context.Context, in LaunchInput) (run Run, created bool, err error) {
	wf, ok := g.workflows[in.Workflow]
	if !ok {
		return Run{}, false, Errorf(CodeNotFound, "Unknown workflow: %s", in.Workflow)
	}
	if in.RunID != "" && !ValidRunID(in.RunID) {
		return Run{}, false, Errorf(CodeInvalidInput, "runId must match ^[a-z0-9_-]{1,64}$.")
	}
	if err := checkTexts(map[string]string{"idempotencyKey": in.IdempotencyKey, "userId": in.Auth.UserID}); err != nil {
		return Run{}, false, err
	}
	now := g.now()
	err = g.update(ctx, func(tx Tx) error {
		run, created, err = g.insertLaunch(tx, wf, in, now)
		return err
	})
	if err != nil {
		return Run{}, false, err
	}
	if created {
		g.started(run, true)
	}
	return run, created, nil
}

// insertLaunch is LaunchRun's transaction, for callers that create a run
// together with other writes (a cron slot, a webhook delivery): it returns
// the existing run for a known idempotency key or runId, else inserts a new
// one (created true). The caller calls started after the commit.
func (g *Gateway) insertLaunch(tx Tx, wf WorkflowDef, in LaunchInput, now time.Time) (Run, bool, error) {
	if in.IdempotencyKey != "" {
		r, ok, err := tx.RunByIdempotencyKey(wf.Key, in.IdempotencyKey)
		if err != nil || ok {
			return r, false, err
		}
	}
	runID := in.RunID
	if runID == "" {
		// A fresh random id names no run: nothing to look up.
		runID = uuid.NewString()
	} else {
		r, ok, err := tx.GetRun(runID)
		if err != nil {
			return Run{}, false, err
		}
		if ok {
			if r.WorkflowKey != wf.Key {
				return Run{}, false, Errorf(CodeBusy, "Run %s already exists for workflow %s", runID, r.WorkflowKey)
			}
			return r, false, nil
		}
	}
	run := g.newRunRow(wf, in, runID, now)
	return run, true, tx.InsertRun(run)
}

// newRunRow is the row of a new run, owned by this process and running.
func (g *Gateway) newRunRow(wf WorkflowDef, in LaunchInput, runID string, now time.Time) Run {
	if in.InputJSON == "" {
		in.InputJSON = "{}"
	}
	triggeredBy := in.TriggeredBy
	if triggeredBy == "" {
		triggeredBy = in.Auth.UserID
	}
	if triggeredBy == "" {
		triggeredBy = "gateway"
	}
	role := in.Auth.Role
	if role == "" {
		role = "operator"
	}
	scopes := in.Auth.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	auth := map[string]any{"triggeredBy": triggeredBy, "scopes": scopes, "role": role, "tokenId": nullable(in.Auth.TokenID),
		"userId": nullable(in.Auth.UserID), "createdAt": now.UTC().Format(time.RFC3339Nano)}
	config := mustJSON(map[string]any{"gatewayWorkflowKey": wf.Key, "gatewayTriggeredBy": triggeredBy, "auth": auth})
	ms := now.UnixMilli()
	run := Run{RunID: runID, WorkflowKey: wf.Key, WorkflowPath: g.exec.ModulePath(), WorkflowHash: g.exec.BundleHash(),
		Status: RunRunning, CreatedAtMs: ms, StartedAtMs: ms, HeartbeatAtMs: ms,
		RuntimeOwnerID: g.instance, LeaseEpoch: 1, ConfigJSON: string(config),
		InputJSON: in.InputJSON, IdempotencyKey: in.IdempotencyKey}
	if wf.TimeoutMs > 0 {
		run.DeadlineAtMs = ms + wf.TimeoutMs
	}
	return run
}

// started arms a run's deadline and activates it, once its row is
// committed. created says insertLaunch created the run, so its journal is
// empty and run is its row as committed: the activation need not read them.
func (g *Gateway) started(run Run, created bool) {
	if run.DeadlineAtMs > 0 {
		g.timers.arm(timerEntry{at: run.DeadlineAtMs, runID: run.RunID, deadline: true})
	}
	if created {
		g.wakeNew(run)
		return
	}
	g.wake(run.RunID, nil)
}

// systemIdentity is the auth of runs the gateway starts itself (crons,
// webhooks): role system, every scope.
func systemIdentity() Identity { return Identity{Role: "system", Scopes: []string{"*"}} }

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// RunDetail is a run with what getRun adds: its RunStateView (the node
// summary is Run.NodeCounts).
type RunDetail struct {
	Run   Run
	State RunStateView
}

// GetRun returns the run with its summary and state view, or NOT_FOUND:
// one read of the store (the counts of the summary are kept on the run's
// row, and only a waiting run's blocking node is read besides).
func (g *Gateway) GetRun(ctx context.Context, runID string) (RunDetail, error) {
	v, ok, err := g.store.GetRunView(ctx, runID)
	if err != nil {
		return RunDetail{}, fmt.Errorf("get run %s: %w", runID, err)
	}
	if !ok {
		return RunDetail{}, Errorf(CodeNotFound, "Run not found: %s", runID)
	}
	return RunDetail{Run: v.Run, State: ComputeRunState(v.Run, v.WaitingOn, g.now())}, nil
}

// ListRuns returns runs newest first; status "running" also matches
// "continued" as upstream does. f.Statuses, when status is set, is replaced.
func (g *Gateway) ListRuns(ctx context.Context, status string, f RunFilter) ([]Run, error) {
	f.Statuses = nil
	if status != "" {
		f.Statuses = []RunStatus{RunStatus(status)}
		if status == string(RunRunning) {
			f.Statuses = append(f.Statuses, RunContinued)
		}
	}
	return g.store.ListRuns(ctx, f)
}

// CancelRun cancels any non-terminal run. A parked run is cancelled before
// CancelRun returns; an active one once its in-flight work has stopped.
// Unknown runs fail with NOT_FOUND, terminal ones with RUN_NOT_ACTIVE.
func (g *Gateway) CancelRun(ctx context.Context, runID string) error {
	now := g.nowMs()
	err := g.update(ctx, func(tx Tx) error {
		r, err := getRunTx(tx, runID)
		if err != nil {
			return err
		}
		if r.Status.Terminal() {
			return Errorf(CodeRunNotActive, "Run is not currently active")
		}
		if r.CancelRequestedAtMs == 0 {
			r.CancelRequestedAtMs = now
			return tx.UpdateRun(r)
		}
		return nil
	})
	if err != nil {
		return err
	}
	finish := func() { g.finishRun(runID, finishGuard{}, RunCancelled, "", cancelledErrorJSON()) }
	done := g.detach(runID, Errorf(CodeCancelled, "Run was cancelled"), finish)
	if done == nil {
		finish()
		return nil
	}
	// In-flight work stops promptly (contexts cancelled, exec groups
	// killed); wait a little so that a caller usually sees the final
	// status, without holding the request hostage.
	select {
	case <-done:
	case <-ctx.Done():
	case <-time.After(2 * time.Second):
	}
	return nil
}

// getRunTx reads a run in a transaction; NOT_FOUND when there is none.
func getRunTx(tx Tx, runID string) (Run, error) {
	r, ok, err := tx.GetRun(runID)
	if err != nil {
		return Run{}, err
	}
	if !ok {
		return Run{}, Errorf(CodeNotFound, "Run not found: %s", runID)
	}
	return r, nil
}

// Resume outcomes of ResumeRun.
const (
	ResumeAlreadyTerminal = "already_terminal"
	ResumeRequested       = "resume_requested"
)

// ResumeRun makes a non-terminal run progress again. With force, a run
// parked by versionPolicy "strict" adopts the current module.
func (g *Gateway) ResumeRun(ctx context.Context, runID string, force bool) (string, error) {
	var status string
	err := g.update(ctx, func(tx Tx) error {
		r, err := getRunTx(tx, runID)
		if err != nil {
			return err
		}
		if r.Status.Terminal() {
			status = ResumeAlreadyTerminal
			return nil
		}
		held := ErrorCodeOfJSON(r.ErrorJSON) == CodeVersionMismatch && r.WorkflowHash != g.exec.BundleHash()
		if held && !force {
			return Errorf(CodeVersionMismatch, "Run %s is held by versionPolicy \"strict\": the module changed since it started. "+
				"Resume it with options.force to replay it under the new code.", runID)
		}
		status = ResumeRequested
		if force && r.WorkflowHash != g.exec.BundleHash() {
			r.WorkflowHash = g.exec.BundleHash()
			if ErrorCodeOfJSON(r.ErrorJSON) == CodeVersionMismatch {
				r.ErrorJSON = ""
			}
			return tx.UpdateRun(r)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if status == ResumeRequested {
		g.wake(runID, nil)
	}
	return status, nil
}

// timeoutRun fails a run whose timeoutMs ran out (RUN_TIMEOUT).
func (g *Gateway) timeoutRun(runID string) {
	r, ok, err := g.store.GetRun(context.Background(), runID)
	if err != nil || !ok || r.Status.Terminal() || r.DeadlineAtMs == 0 {
		return
	}
	if now := g.nowMs(); r.DeadlineAtMs > now {
		// The deadline moved (the run was retried): fire at the new one.
		g.timers.arm(timerEntry{at: r.DeadlineAtMs, runID: runID, deadline: true})
		return
	}
	errJSON := errorJSON(CodeRunTimeout, "Run exceeded its timeoutMs")
	// The finishing transaction checks the deadline again: a retry that
	// moved it meanwhile wins.
	finish := func() { g.finishRun(runID, finishGuard{deadlineBy: g.nowMs()}, RunFailed, "", errJSON) }
	if g.detach(runID, Errorf(CodeRunTimeout, "Run exceeded its timeoutMs"), finish) == nil {
		finish()
	}
}
