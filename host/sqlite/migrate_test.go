package sqlite

import (
	"context"
	"database/sql"
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
