package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"testing"
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
