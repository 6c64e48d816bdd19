package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

func TestMigrationsRunOnceAndRefuseNewerSchema(t *testing.T) {
	s, path := openTemp(t, Options{})
	insertRuns(t, s, newRun("r1", "deploy", 1))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	userVersion := func() int {
		t.Helper()
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var v int
		if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := userVersion(); v != len(migrations) {
		t.Fatalf("user_version = %d, want %d", v, len(migrations))
	}

	// Reopening keeps the data and does not migrate again.
	s = openAt(t, path, Options{})
	if _, found, err := s.GetRun(ctx, "r1"); err != nil || !found {
		t.Fatalf("run lost across reopen: %v, %v", found, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := Open(ctx, path, Options{}); err == nil {
		s.Close()
		t.Fatal("Open of a database with a newer schema succeeded")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open error = %v, want it to say the schema is newer", err)
	}
}

func TestOpenSetsPragmas(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	type queryRower interface {
		QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	}
	// The writer's connection may be used here: the writer goroutine is idle.
	for _, db := range []queryRower{s.rdb, s.wconn} {
		var mode string
		var fk, sync, busy int
		if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk)
		db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync)
		db.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy)
		if mode != "wal" || fk != 1 || sync != 1 || busy != busyTimeoutMs {
			t.Errorf("pragmas: journal_mode %s foreign_keys %d synchronous %d busy_timeout %d", mode, fk, sync, busy)
		}
	}
	if _, err := s.rdb.ExecContext(ctx, "DELETE FROM runs"); err == nil {
		t.Error("the read pool accepted a write")
	}
}

// TestNodeCountsMigrationCountsExistingNodes: a database of schema 5, whose
// runs already have nodes, gets their counts when migration 6 adds them.
func TestNodeCountsMigrationCountsExistingNodes(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/old.db"
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for v, m := range migrations[:5] {
		if _, err := db.ExecContext(ctx, m); err != nil {
			t.Fatalf("migration %d: %v", v+1, err)
		}
	}
	for _, q := range []string{
		"PRAGMA user_version = 5",
		`INSERT INTO runs (run_id, workflow_key, status, created_at_ms) VALUES ('r1', 'w', 'waiting-approval', 1), ('r2', 'w', 'running', 2)`,
		`INSERT INTO nodes (run_id, node_id, iteration, kind, state) VALUES
			('r1', 'a', 0, 'task', 'finished'), ('r1', 'b', 0, 'task', 'finished'), ('r1', 'c', 0, 'approval', 'waiting-approval'),
			('r2', 'a', 0, 'task', 'in-progress')`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	s := openAt(t, path, Options{})
	var want host.NodeCounts
	want.Add(host.NodeFinished, 2)
	want.Add(host.NodeWaitingApproval, 1)
	v, ok, err := s.GetRunView(ctx, "r1")
	if err != nil || !ok || v.Run.NodeCounts != want || v.WaitingOn == nil || v.WaitingOn.NodeID != "c" {
		t.Fatalf("r1 after migration: %+v, %v, %v", v, ok, err)
	}
	if r, _, _ := s.GetRun(ctx, "r2"); r.NodeCounts.Of(host.NodeInProgress) != 1 || r.NodeCounts.Summary()["in-progress"] != 1 || len(r.NodeCounts.Summary()) != 1 {
		t.Fatalf("r2 after migration: %v", r.NodeCounts)
	}
}

// TestRunKeyMigrationKeepsEveryRow: a database of schema 7 with a run of
// every part (nodes, attempts, approvals, signals, events, values) reads
// the same after migration 8 rekeys those tables by run_key; the state
// version carries on past events already trimmed; deleting a run still
// takes its parts; a run created later gets a higher key than every
// migrated one.
func TestRunKeyMigrationKeepsEveryRow(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/old.db"
	db, err := sql.Open("sqlite", path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	for v, m := range migrations[:7] {
		if _, err := db.ExecContext(ctx, m); err != nil {
			t.Fatalf("migration %d: %v", v+1, err)
		}
	}
	for _, q := range []string{
		"PRAGMA user_version = 7",
		// r2 was created first: migrated keys follow creation order.
		`INSERT INTO runs (run_id, workflow_key, status, created_at_ms, last_seq) VALUES
			('r1', 'w', 'waiting-approval', 20, 7), ('r2', 'w', 'finished', 10, 0)`,
		`INSERT INTO nodes (run_id, node_id, iteration, kind, state, output_json) VALUES
			('r1', 'a', 0, 'task', 'finished', '{"x":1}'), ('r1', 'b', 0, 'approval', 'waiting-approval', NULL),
			('r2', 'a', 0, 'task', 'finished', '2')`,
		`INSERT INTO attempts (run_id, node_id, iteration, attempt, state) VALUES ('r1', 'a', 0, 1, 'failed'), ('r1', 'a', 0, 2, 'finished')`,
		`INSERT INTO approvals (run_id, node_id, iteration, status, requested_at_ms) VALUES ('r1', 'b', 0, 'pending', 5)`,
		`INSERT INTO signals (run_id, seq, name, payload_json) VALUES ('r1', 0, 'go', '1'), ('r1', 1, 'go', '2')`,
		`INSERT INTO run_values (run_id, idx, value) VALUES ('r1', 0, '0.5'), ('r1', 1, '"u"')`,
		// Events 1-5 and 8 were written; 6 and 7 (and r1's seq 1-2) trimmed.
		`INSERT INTO events (id, run_id, seq, name, at_ms) VALUES
			(1, 'r2', 1, 'run.created', 1), (3, 'r1', 3, 'node.started', 1), (4, 'r1', 4, 'node.finished', 1),
			(5, 'r1', 5, 'node.started', 1), (8, 'r1', 7, 'approval.requested', 1)`,
		`UPDATE sqlite_sequence SET seq = 9 WHERE name = 'events'`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s := openAt(t, path, Options{})
	v, ok, err := s.GetRunView(ctx, "r1")
	var counts host.NodeCounts
	counts.Add(host.NodeFinished, 1)
	counts.Add(host.NodeWaitingApproval, 1)
	if err != nil || !ok || v.Run.LastSeq != 7 || v.Run.NodeCounts != counts || v.WaitingOn == nil || v.WaitingOn.NodeID != "b" {
		t.Fatalf("r1 after migration: %+v, %v, %v", v, ok, err)
	}
	if nodes, err := s.ListNodes(ctx, "r1"); err != nil || len(nodes) != 2 || nodes[0].OutputJSON != `{"x":1}` {
		t.Errorf("r1 nodes: %+v, %v", nodes, err)
	}
	if as, err := s.ListAttempts(ctx, "r1", "a", 0); err != nil || len(as) != 2 || as[1].State != "finished" {
		t.Errorf("r1 attempts: %+v, %v", as, err)
	}
	if ap, err := s.ListApprovals(ctx, host.ApprovalFilter{RunID: "r1"}); err != nil || len(ap) != 1 || ap[0].WorkflowKey != "w" {
		t.Errorf("r1 approvals: %+v, %v", ap, err)
	}
	if sig, err := s.ListSignals(ctx, "r1"); err != nil || len(sig) != 2 || sig[1].PayloadJSON != "2" {
		t.Errorf("r1 signals: %+v, %v", sig, err)
	}
	if vals, err := s.ListValues(ctx, "r1"); err != nil || len(vals) != 2 || vals[1] != `"u"` {
		t.Errorf("r1 values: %v, %v", vals, err)
	}
	if ev, err := s.ListEvents(ctx, "r1", 0, 0); err != nil || len(ev) != 4 || ev[3].StateVersion != 8 || ev[3].Seq != 7 {
		t.Errorf("r1 events: %+v, %v", ev, err)
	}
	if sv, err := s.StateVersion(ctx); err != nil || sv != 9 {
		t.Errorf("state version after migration = %d, %v; want 9 (the counter, not the newest row)", sv, err)
	}

	// New writes: the next event of r1 continues both counters, and a new
	// signal takes r1's next signal seq.
	ev := appendEvents(t, s, "r1", 1)
	if ev[0].Seq != 8 || ev[0].StateVersion != 10 {
		t.Errorf("first event after migration = %+v, want seq 8 version 10", ev[0])
	}
	update(t, s, func(tx host.Tx) error {
		sig, err := tx.InsertSignal(host.Signal{RunID: "r1", Name: "go"})
		if err == nil && sig.Seq != 2 {
			err = fmt.Errorf("new signal seq %d, want 2", sig.Seq)
		}
		return err
	})
	insertRuns(t, s, newRun("r3", "w", 30))
	var keys []string
	rows, err := s.rdb.QueryContext(ctx, "SELECT run_id FROM runs ORDER BY run_key")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		keys = append(keys, id)
	}
	rows.Close()
	if strings.Join(keys, ",") != "r2,r1,r3" {
		t.Errorf("runs in key order: %v, want r2,r1,r3 (creation order)", keys)
	}

	// Deleting a run still takes its parts (foreign keys are back on).
	update(t, s, func(tx host.Tx) error {
		_, err := tx.DeleteRun("r1")
		return err
	})
	for _, table := range []string{"nodes", "attempts", "approvals", "signals", "events", "run_values"} {
		var n int
		if err := s.rdb.QueryRowContext(ctx, "SELECT count(*) FROM "+table+" WHERE run_id = 'r1'").Scan(&n); err != nil || n != 0 {
			t.Errorf("%s rows of the deleted run: %d, %v", table, n, err)
		}
	}
	if nodes, err := s.ListNodes(ctx, "r2"); err != nil || len(nodes) != 1 {
		t.Errorf("r2's nodes after deleting r1: %+v, %v", nodes, err)
	}
}
