package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/smithers-orchestrator/smithers-go/host"
)

// TestReplicasStartingTogetherMigrateOnce: three stores opened at once on
// a fresh database all start, and each migration is applied once.
func TestReplicasStartingTogetherMigrateOnce(t *testing.T) {
	url := pg.Cluster(t).NewDatabase(t)
	ctx := context.Background()
	stores := make([]*Store, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Go(func() { stores[i], errs[i] = Open(ctx, url, Options{}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	versions := func() []int {
		t.Helper()
		rows, err := stores[0].pool.Query(ctx, "SELECT version FROM schema_migrations ORDER BY version")
		vs, err := collect(rows, err, func(r pgx.Row) (int, error) {
			var v int
			return v, r.Scan(&v)
		})
		if err != nil {
			t.Fatal(err)
		}
		return vs
	}
	want := make([]int, len(migrations))
	for i := range want {
		want[i] = i + 1
	}
	if got := versions(); !slices.Equal(got, want) {
		t.Fatalf("schema_migrations = %v, want %v", got, want)
	}
	// Every store works on the one schema.
	for i, s := range stores {
		id := fmt.Sprintf("r%d", i)
		if _, err := s.Update(ctx, func(tx host.Tx) error { return tx.InsertRun(newRun(id, "deploy", 1)) }); err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
	}
	if runs, err := stores[2].ListRuns(ctx, host.RunFilter{}); err != nil || len(runs) != 3 {
		t.Fatalf("ListRuns = %d runs, %v; want 3", len(runs), err)
	}

	// Reopening migrates nothing more; a newer schema is refused.
	openDB(t, url, Options{})
	if got := versions(); !slices.Equal(got, want) {
		t.Fatalf("after reopen schema_migrations = %v", got)
	}
	if _, err := stores[0].pool.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(ctx, url, Options{}); err == nil {
		s.Close()
		t.Fatal("Open of a database with a newer schema succeeded")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open error = %v, want it to say the schema is newer", err)
	}
}
