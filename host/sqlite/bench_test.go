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
				err := tx.AppendEvent(runID, "node.started", payload, 1)
				return err
			}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGetRunView measures getRun's read of a parked run (its row with
// the node counts, and the node it waits on) from parallel callers: from
// the view cache, and from the database (a run whose view a commit
// invalidated).
func BenchmarkGetRunView(b *testing.B) {
	s, _ := openTemp(b, Options{})
	r := newRun("parked", "bench", 1)
	r.Status = host.RunWaitingApproval
	r.ConfigJSON = `{"gatewayWorkflowKey":"bench","gatewayTriggeredBy":"gateway"}`
	r.InputJSON = `{"name":"bench"}`
	insertRuns(b, s, r)
	if _, err := s.Update(context.Background(), func(tx host.Tx) error {
		if err := tx.PutNode(host.Node{RunID: "parked", NodeID: "draft", Kind: host.KindTask, State: host.NodeFinished, OutputJSON: `{"ok":true}`, CreatedAtMs: 1}); err != nil {
			return err
		}
		return tx.PutNode(host.Node{RunID: "parked", NodeID: "ship", Kind: host.KindApproval, State: host.NodeWaitingApproval, CreatedAtMs: 2})
	}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		read func(context.Context, string) (host.RunView, bool, error)
	}{{"cached", s.GetRunView}, {"database", s.readRunView}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					v, ok, err := bc.read(ctx, "parked")
					if err != nil || !ok || v.WaitingOn == nil {
						b.Errorf("GetRunView = %+v, %v, %v", v, ok, err)
						return
					}
				}
			})
		})
	}
}
