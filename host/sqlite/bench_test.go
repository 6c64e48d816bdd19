package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// BenchmarkUpdateAppendEvent measures the commit path: concurrent Updates,
// each appending one event to one of 16 runs, grouped by the writer.
func BenchmarkUpdateAppendEvent(b *testing.B) {
	s, _ := openTemp(b, Options{EventWindow: 1000})
	const runs = 16
	var rs []host.Run
	for i := range runs {
		rs = append(rs, newRun(fmt.Sprintf("r%d", i), "bench", int64(i)))
	}
	insertRuns(b, s, rs...)
	payload := json.RawMessage(`{"nodeId":"build","iteration":0,"attempt":1}`)
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			runID := rs[next.Add(1)%runs].RunID
			if _, err := s.Update(ctx, func(tx host.Tx) error {
				_, err := tx.AppendEvent(runID, "node.started", payload, 1)
				return err
			}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
