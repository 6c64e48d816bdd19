package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// BenchmarkUpdateAppendEvent measures the commit path: concurrent Updates,
// each reading one of 16 runs (locking it) and appending one event to it,
// with the commit feed on.
func BenchmarkUpdateAppendEvent(b *testing.B) {
	s, _ := openNew(b, Options{EventWindow: 1000, OnCommit: func([]host.Event) {}})
	const runs = 16
	for i := range runs {
		update(b, s, func(tx host.Tx) error { return tx.InsertRun(newRun(fmt.Sprintf("r%d", i), "bench", int64(i))) })
	}
	payload := json.RawMessage(`{"nodeId":"build","iteration":0,"attempt":1}`)
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			runID := fmt.Sprintf("r%d", next.Add(1)%runs)
			if _, err := s.Update(ctx, func(tx host.Tx) error {
				if _, _, err := tx.GetRun(runID); err != nil {
					return err
				}
				err := tx.AppendEvent(runID, "node.started", payload, 1)
				return err
			}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGetRun measures a read of one run by id.
func BenchmarkGetRun(b *testing.B) {
	s, _ := openNew(b, Options{})
	r := newRun("r", "bench", 1)
	r.InputJSON, r.ConfigJSON = `{"repo":"smithers","ref":"main"}`, `{"gatewayWorkflowKey":"bench"}`
	update(b, s, func(tx host.Tx) error { return tx.InsertRun(r) })
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok, err := s.GetRun(ctx, "r"); err != nil || !ok {
				b.Errorf("GetRun = %v, %v", ok, err)
				return
			}
		}
	})
}
