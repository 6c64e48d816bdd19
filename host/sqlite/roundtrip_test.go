package sqlite

import (
	"context"
	"reflect"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// fullRun sets every field to a non-zero value.
func fullRun(id string) host.Run {
	return host.Run{
		RunID: id, ParentRunID: "parent-1", WorkflowKey: "deploy", WorkflowPath: "/w/gateway.mjs",
		WorkflowHash: "sha256:abc", Status: host.RunWaitingTimer, CreatedAtMs: 1000,
		StartedAtMs: 1001, FinishedAtMs: 1002, HeartbeatAtMs: 1003, RuntimeOwnerID: "owner-1",
		CancelRequestedAtMs: 1004, ErrorJSON: `{"code":"X"}`, ConfigJSON: `{"gatewayWorkflowKey":"deploy"}`,
		InputJSON: `{"a":1}`, OutputJSON: `null`, IdempotencyKey: "key-1", DeadlineAtMs: 99999,
	}
}

func TestRunRoundTrip(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	tests := []struct {
		name string
		run  host.Run
	}{
		{"every field set", fullRun("run-full")},
		{"optional fields zero", newRun("run-zero", "deploy", 5)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var inTx host.Run
			update(t, s, func(tx host.Tx) error {
				if err := tx.InsertRun(tt.run); err != nil {
					return err
				}
				r, ok, err := tx.GetRun(tt.run.RunID)
				if err != nil || !ok {
					t.Errorf("tx.GetRun = %v, %v", ok, err)
				}
				inTx = r
				return nil
			})
			got, ok, err := s.GetRun(ctx, tt.run.RunID)
			if err != nil || !ok {
				t.Fatalf("GetRun = %v, %v", ok, err)
			}
			if !reflect.DeepEqual(got, tt.run) {
				t.Errorf("GetRun = %+v, want %+v", got, tt.run)
			}
			if !reflect.DeepEqual(inTx, tt.run) {
				t.Errorf("tx.GetRun = %+v, want %+v", inTx, tt.run)
			}
		})
	}
	if _, ok, err := s.GetRun(ctx, "missing"); ok || err != nil {
		t.Errorf("GetRun(missing) = %v, %v; want false, nil", ok, err)
	}
}

func TestUpdateRunKeepsLastSeq(t *testing.T) {
	s, _ := openTemp(t, Options{})
	insertRuns(t, s, newRun("r1", "deploy", 1))
	appendEvents(t, s, "r1", 3)

	want := fullRun("r1")
	want.LastSeq = 99 // must be ignored
	update(t, s, func(tx host.Tx) error { return tx.UpdateRun(want) })

	got, _, err := s.GetRun(context.Background(), "r1")
	if err != nil {
		t.Fatal(err)
	}
	want.LastSeq = 3
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after UpdateRun: %+v, want %+v", got, want)
	}

	// Clearing optional fields stores them as unset again.
	cleared := newRun("r1", "deploy", 1)
	update(t, s, func(tx host.Tx) error { return tx.UpdateRun(cleared) })
	got, _, _ = s.GetRun(context.Background(), "r1")
	cleared.LastSeq = 3
	if !reflect.DeepEqual(got, cleared) {
		t.Errorf("after clearing UpdateRun: %+v, want %+v", got, cleared)
	}

	if _, err := s.Update(context.Background(), func(tx host.Tx) error {
		return tx.UpdateRun(newRun("nope", "deploy", 1))
	}); err == nil {
		t.Error("UpdateRun of a missing run succeeded")
	}
}

func TestNodeAndAttemptRoundTrip(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1))
	nodes := []host.Node{
		{RunID: "r1", NodeID: "build", Iteration: 0, Kind: host.KindTask, State: host.NodeFinished,
			Label: "Build", OutputJSON: `{"sha":"x"}`, ErrorJSON: `{"code":"E"}`, MetaJSON: `{"retries":2}`,
			Attempts: 2, CreatedAtMs: 10, UpdatedAtMs: 20, FiresAtMs: 30},
		{RunID: "r1", NodeID: "ship", Iteration: 1, Kind: host.KindApproval, State: host.NodePending,
			CreatedAtMs: 11},
	}
	attempts := []host.Attempt{
		{RunID: "r1", NodeID: "build", Iteration: 0, Attempt: 1, State: host.AttemptFailed,
			StartedAtMs: 1, FinishedAtMs: 2, HeartbeatAtMs: 3, HeartbeatDataJSON: `{"p":1}`,
			ErrorJSON: `{"code":"TASK_FAILED"}`, MetaJSON: `{"pgid":4}`},
		{RunID: "r1", NodeID: "build", Iteration: 0, Attempt: 2, State: host.AttemptInProgress},
	}
	update(t, s, func(tx host.Tx) error {
		for _, n := range nodes {
			if err := tx.PutNode(n); err != nil {
				return err
			}
		}
		for _, a := range attempts {
			if err := tx.PutAttempt(a); err != nil {
				return err
			}
		}
		for _, n := range nodes {
			got, ok, err := tx.GetNode(n.RunID, n.NodeID, n.Iteration)
			if err != nil || !ok || !reflect.DeepEqual(got, n) {
				t.Errorf("tx.GetNode = %+v, %v, %v; want %+v", got, ok, err, n)
			}
		}
		for _, a := range attempts {
			got, ok, err := tx.GetAttempt(a.RunID, a.NodeID, a.Iteration, a.Attempt)
			if err != nil || !ok || !reflect.DeepEqual(got, a) {
				t.Errorf("tx.GetAttempt = %+v, %v, %v; want %+v", got, ok, err, a)
			}
		}
		if _, ok, err := tx.GetNode("r1", "build", 7); ok || err != nil {
			t.Errorf("GetNode(missing iteration) = %v, %v", ok, err)
		}
		if _, ok, err := tx.GetAttempt("r1", "build", 0, 9); ok || err != nil {
			t.Errorf("GetAttempt(missing) = %v, %v", ok, err)
		}
		listed, err := tx.ListNodes("r1")
		if err != nil || !reflect.DeepEqual(listed, nodes) {
			t.Errorf("tx.ListNodes = %+v, %v", listed, err)
		}
		return nil
	})

	gotNodes, err := s.ListNodes(ctx, "r1")
	if err != nil || !reflect.DeepEqual(gotNodes, nodes) {
		t.Errorf("ListNodes = %+v, %v; want %+v", gotNodes, err, nodes)
	}
	gotAttempts, err := s.ListAttempts(ctx, "r1", "build", 0)
	if err != nil || !reflect.DeepEqual(gotAttempts, attempts) {
		t.Errorf("ListAttempts = %+v, %v; want %+v", gotAttempts, err, attempts)
	}

	// Put overwrites: settle the pending node and clear its timer.
	settled := nodes[1]
	settled.State, settled.OutputJSON, settled.UpdatedAtMs = host.NodeFinished, `true`, 50
	update(t, s, func(tx host.Tx) error { return tx.PutNode(settled) })
	gotNodes, _ = s.ListNodes(ctx, "r1")
	if len(gotNodes) != 2 || !reflect.DeepEqual(gotNodes[1], settled) {
		t.Errorf("after overwrite ListNodes = %+v", gotNodes)
	}

	// A node of a run that does not exist is refused (foreign key).
	if _, err := s.Update(ctx, func(tx host.Tx) error {
		return tx.PutNode(host.Node{RunID: "ghost", NodeID: "n", Kind: host.KindTask, State: host.NodePending})
	}); err == nil {
		t.Error("PutNode for a missing run succeeded")
	}
}

func TestApprovalRoundTrip(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	insertRuns(t, s, newRun("r1", "deploy", 1), newRun("r2", "audit", 2))
	approvals := []host.Approval{
		{RunID: "r1", NodeID: "ship", Iteration: 0, Status: host.ApprovalApproved, RequestedAtMs: 300,
			DecidedAtMs: 400, Note: "ok", DecidedBy: "alice", RequestJSON: `{"title":"Ship?"}`,
			DecisionJSON: `{"approved":true}`, AutoApproved: true, WorkflowKey: "deploy"},
		{RunID: "r2", NodeID: "check", Iteration: 0, Status: host.ApprovalRequested, RequestedAtMs: 100,
			WorkflowKey: "audit"},
		{RunID: "r1", NodeID: "gate", Iteration: 2, Status: host.ApprovalRequested, RequestedAtMs: 200,
			WorkflowKey: "deploy"},
	}
	update(t, s, func(tx host.Tx) error {
		for _, a := range approvals {
			stored := a
			stored.WorkflowKey = "ignored"
			if err := tx.PutApproval(stored); err != nil {
				return err
			}
		}
		got, ok, err := tx.GetApproval("r1", "ship", 0)
		if err != nil || !ok || !reflect.DeepEqual(got, approvals[0]) {
			t.Errorf("tx.GetApproval = %+v, %v, %v; want %+v", got, ok, err, approvals[0])
		}
		if _, ok, err := tx.GetApproval("r1", "ship", 1); ok || err != nil {
			t.Errorf("GetApproval(missing) = %v, %v", ok, err)
		}
		return nil
	})

	tests := []struct {
		name string
		f    host.ApprovalFilter
		want []host.Approval
	}{
		{"all, oldest request first", host.ApprovalFilter{}, []host.Approval{approvals[1], approvals[2], approvals[0]}},
		{"by run", host.ApprovalFilter{RunID: "r1"}, []host.Approval{approvals[2], approvals[0]}},
		{"by workflow", host.ApprovalFilter{WorkflowKey: "audit"}, []host.Approval{approvals[1]}},
		{"by status", host.ApprovalFilter{Status: host.ApprovalRequested}, []host.Approval{approvals[1], approvals[2]}},
		{"run and status", host.ApprovalFilter{RunID: "r1", Status: host.ApprovalRequested}, []host.Approval{approvals[2]}},
		{"limit", host.ApprovalFilter{Limit: 2}, []host.Approval{approvals[1], approvals[2]}},
		{"no match", host.ApprovalFilter{WorkflowKey: "nope"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListApprovals(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ListApprovals(%+v) =\n%+v\nwant\n%+v", tt.f, got, tt.want)
			}
		})
	}
}

func TestValuesRoundTrip(t *testing.T) {
	s, _ := openTemp(t, Options{})
	insertRuns(t, s, newRun("r1", "deploy", 1), newRun("r2", "deploy", 2))
	update(t, s, func(tx host.Tx) error {
		// Out of order on purpose: ListValues returns call order.
		for _, v := range []struct {
			i int
			v string
		}{{2, `"uuid"`}, {0, `1700000000000`}, {1, `0.5`}} {
			if err := tx.PutValue("r1", v.i, v.v); err != nil {
				return err
			}
		}
		return tx.PutValue("r2", 0, `"other"`)
	})
	got, err := s.ListValues(context.Background(), "r1")
	want := []string{`1700000000000`, `0.5`, `"uuid"`}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ListValues = %q, %v; want %q", got, err, want)
	}
	if got, err := s.ListValues(context.Background(), "none"); err != nil || len(got) != 0 {
		t.Errorf("ListValues(none) = %q, %v", got, err)
	}
}

func TestCronRoundTrip(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	crons := []host.Cron{
		{CronID: "gateway:a", Pattern: "0 8 * * 1-5", WorkflowPath: "gateway:a", WorkflowKey: "a",
			Enabled: true, CreatedAtMs: 1, LastRunAtMs: 2, NextRunAtMs: 3, ErrorJSON: "boom"},
		{CronID: "gateway:b", Pattern: "* * * * *", Enabled: false},
	}
	update(t, s, func(tx host.Tx) error {
		for _, c := range crons {
			if err := tx.PutCron(c); err != nil {
				return err
			}
		}
		got, ok, err := tx.GetCron("gateway:a")
		if err != nil || !ok || !reflect.DeepEqual(got, crons[0]) {
			t.Errorf("tx.GetCron = %+v, %v, %v", got, ok, err)
		}
		return nil
	})
	got, err := s.ListCrons(ctx)
	if err != nil || !reflect.DeepEqual(got, crons) {
		t.Errorf("ListCrons = %+v, %v; want %+v", got, err, crons)
	}

	crons[1].Enabled, crons[1].NextRunAtMs = true, 77
	update(t, s, func(tx host.Tx) error {
		if err := tx.PutCron(crons[1]); err != nil {
			return err
		}
		if ok, err := tx.DeleteCron("gateway:a"); err != nil || !ok {
			t.Errorf("DeleteCron(existing) = %v, %v", ok, err)
		}
		if ok, err := tx.DeleteCron("gateway:a"); err != nil || ok {
			t.Errorf("DeleteCron(deleted) = %v, %v", ok, err)
		}
		if _, ok, err := tx.GetCron("gateway:a"); ok || err != nil {
			t.Errorf("GetCron(deleted) = %v, %v", ok, err)
		}
		return nil
	})
	got, err = s.ListCrons(ctx)
	if err != nil || !reflect.DeepEqual(got, crons[1:]) {
		t.Errorf("ListCrons after delete = %+v, %v", got, err)
	}
}

func TestProcessRoundTrip(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	procs := []host.Process{
		{PGID: 4242, StartTime: 1 << 40, RunID: "r1", NodeID: "build", Attempt: 2, StartedAtMs: 1234},
		{PGID: 7, StartTime: 99},
	}
	update(t, s, func(tx host.Tx) error {
		for _, p := range procs {
			if err := tx.InsertProcess(p); err != nil {
				return err
			}
		}
		return nil
	})
	got, err := s.ListProcesses(ctx)
	want := []host.Process{procs[1], procs[0]}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ListProcesses = %+v, %v; want %+v", got, err, want)
	}
	// A recycled pgid replaces the stale record; deleting twice is fine.
	recycled := host.Process{PGID: 7, StartTime: 100, RunID: "r2"}
	update(t, s, func(tx host.Tx) error {
		if err := tx.InsertProcess(recycled); err != nil {
			return err
		}
		if err := tx.DeleteProcess("", 4242); err != nil {
			return err
		}
		return tx.DeleteProcess("", 4242)
	})
	got, err = s.ListProcesses(ctx)
	if err != nil || !reflect.DeepEqual(got, []host.Process{recycled}) {
		t.Errorf("ListProcesses after replace/delete = %+v, %v", got, err)
	}
}
