package postgres

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/host/postgres/pgtest"
)

// TestServerDownIsAStorageFailureThatClears: with the server stopped,
// writes and reads fail with host.ErrStorageUnavailable and Health says
// so; once it is back, the same stores commit again, Health clears, and
// the commit feed resumes without losing what was committed meanwhile.
func TestServerDownIsAStorageFailureThatClears(t *testing.T) {
	ctx := context.Background()
	c, err := pgtest.Start(ctx) // a cluster of its own: it is stopped
	if err != nil {
		pgtest.Unavailable(t, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	url, err := c.CreateDatabase(ctx, "down")
	if err != nil {
		t.Fatal(err)
	}
	var feedA feedLog
	a := openDB(t, url, Options{OnCommit: feedA.onCommit})
	b := openDB(t, url, Options{})
	update(t, a, func(tx host.Tx) error { return tx.InsertRun(newRun("r", "w", 1)) })
	appendEvent(t, b, "r", "node.started")
	waitFor(t, "A to see B's first event", func() bool { return feedA.len() == 1 })
	if err := a.Health(); err != nil {
		t.Fatalf("Health before = %v", err)
	}

	if err := c.StopServer(); err != nil {
		t.Fatal(err)
	}
	_, err = a.Update(ctx, func(tx host.Tx) error {
		err := tx.AppendEvent("r", "node.started", nil, 1)
		return err
	})
	if !errors.Is(err, host.ErrStorageUnavailable) {
		t.Fatalf("Update with the server down = %v, want ErrStorageUnavailable", err)
	}
	if _, _, err := a.GetRun(ctx, "r"); !errors.Is(err, host.ErrStorageUnavailable) {
		t.Errorf("GetRun with the server down = %v, want ErrStorageUnavailable", err)
	}
	if err := a.Health(); !errors.Is(err, host.ErrStorageUnavailable) {
		t.Errorf("Health with the server down = %v, want ErrStorageUnavailable", err)
	}
	waitFor(t, "B's Health to notice", func() bool { return errors.Is(b.Health(), host.ErrStorageUnavailable) })

	if err := c.StartServer(ctx); err != nil {
		t.Fatal(err)
	}
	// B commits as soon as the server is back, before A's listener is.
	waitFor(t, "B to commit again", func() bool {
		_, err := b.Update(ctx, func(tx host.Tx) error {
			err := tx.AppendEvent("r", "node.finished", nil, 2)
			return err
		})
		return err == nil
	})
	waitFor(t, "A to commit again", func() bool {
		_, err := a.Update(ctx, func(tx host.Tx) error {
			err := tx.AppendEvent("r", "node.finished", nil, 3)
			return err
		})
		return err == nil
	})
	if err := a.Health(); err != nil {
		t.Errorf("A's Health after a commit = %v", err)
	}
	waitFor(t, "B's Health to clear", func() bool { return b.Health() == nil })
	want, total := stored(t, a)
	waitFor(t, "A to see every event", func() bool { return feedA.len() >= total })
	a.Close()
	feedA.check(t, "store A", want)
}

func TestStorageErrorClassification(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		storage bool
	}{
		{"disk full", &pgconn.PgError{Code: "53100"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"i/o error", &pgconn.PgError{Code: "58030"}, true},
		{"read-only standby", &pgconn.PgError{Code: "25006"}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"foreign key", &pgconn.PgError{Code: "23503"}, false},
		{"syntax", &pgconn.PgError{Code: "42601"}, false},
		{"closed connection", pgconn.ErrConnClosed, true},
		{"cancelled by the caller", context.Canceled, false},
		{"plain error", errors.New("boom"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := storageError(tc.err)
			if got := errors.Is(err, host.ErrStorageUnavailable); got != tc.storage {
				t.Errorf("storageError(%v) = %v; storage %v, want %v", tc.err, err, got, tc.storage)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("storageError(%v) = %v does not wrap the cause", tc.err, err)
			}
		})
	}
}

func TestConflictsAreRetried(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "40001"}, true},
		{&pgconn.PgError{Code: "40P01"}, true},
		{&pgconn.PgError{Code: "23505", ConstraintName: "runs_idempotency"}, true},
		{&pgconn.PgError{Code: "23505", ConstraintName: "runs_pkey"}, false},
		{&pgconn.PgError{Code: "53100"}, false},
	} {
		if got := conflict(tc.err); got != tc.want {
			t.Errorf("conflict(%v %s) = %v, want %v", tc.err, tc.err.(*pgconn.PgError).ConstraintName, got, tc.want)
		}
	}
}
