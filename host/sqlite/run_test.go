package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

func TestDeletedRunsFreeSpaceForNewOnes(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	payload := json.RawMessage(`"` + strings.Repeat("x", 8<<10) + `"`)
	fill := func(prefix string) {
		for i := 0; i < 100; i++ {
			id := fmt.Sprintf("%s-%d", prefix, i)
			r := newRun(id, "deploy", int64(i))
			r.Status, r.FinishedAtMs = host.RunFinished, int64(i+1)
			insertRuns(t, s, r)
			update(t, s, func(tx host.Tx) error {
				for j := 0; j < 5; j++ {
					if err := tx.AppendEvent(id, "task.output", payload, 1); err != nil {
						return err
					}
				}
				return nil
			})
		}
	}
	pages := func() int {
		var n int
		if err := s.rdb.QueryRowContext(ctx, "PRAGMA page_count").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	fill("a")
	full := pages()
	ids, err := s.ListExpiredRuns(ctx, 1000, 1000)
	if err != nil || len(ids) != 100 {
		t.Fatalf("ListExpiredRuns = %d ids, %v; want the 100 finished runs", len(ids), err)
	}
	update(t, s, func(tx host.Tx) error {
		for _, id := range ids {
			if ok, err := tx.DeleteRun(id); err != nil || !ok {
				return fmt.Errorf("delete %s: %v %v", id, ok, err)
			}
		}
		return nil
	})
	if evs, _ := s.ListEvents(ctx, "a-0", 0, 0); len(evs) != 0 {
		t.Fatalf("a deleted run kept %d events", len(evs))
	}
	fill("b")
	if after := pages(); after > full+full/20 {
		t.Fatalf("the database grew from %d to %d pages refilling what was deleted: freed pages are not reused", full, after)
	}
}
