package jsruntime_test

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// BenchmarkParkedRunMemory parks b.N quickstart runs on their approval and
// reports the live heap each parked run keeps (after a full GC): a parked
// run holds no goroutine and no JavaScript state, only its journal rows in
// SQLite.
func BenchmarkParkedRunMemory(b *testing.B) {
	h := newHarnessTB(b, exampleSourceTB(b, "quickstart"))
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutines := runtime.NumGoroutine()
	b.ResetTimer()
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = h.launch("quickstart", map[string]any{"name": "x"})
	}
	for _, id := range ids {
		h.waitStatus(id, host.RunWaitingApproval)
	}
	for h.gw.ActiveRuns() > 0 {
		runtime.Gosched()
	}
	b.StopTimer()
	runtime.GC()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "live-bytes/parked-run")
	b.ReportMetric(float64(runtime.NumGoroutine()-goroutines), "extra-goroutines")
}

// BenchmarkLaunchToParked measures the engine's throughput from launch to
// a parked run (the quickstart's first task, then its approval: six
// commits and one JavaScript activation per run), b.N runs in flight.
func BenchmarkLaunchToParked(b *testing.B) {
	h := newHarnessTB(b, exampleSourceTB(b, "quickstart"))
	b.ReportAllocs()
	b.ResetTimer()
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = h.launch("quickstart", map[string]any{"name": "x"})
	}
	for _, id := range ids {
		h.waitStatus(id, host.RunWaitingApproval)
	}
}

// BenchmarkLaunchToCompleted runs the workflows of examples/bench from
// launch to run.completed with a fixed number in flight (a new run is
// launched as one completes): one-task with 16 in flight, ten-tasks with
// 64. It reports runs/s and durable steps/s; with -cpuprofile it shows the
// engine's cost per run without HTTP in the way.
func BenchmarkLaunchToCompleted(b *testing.B) {
	for _, bc := range []struct {
		workflow string
		inFlight int
		steps    int
	}{{"one-task", 16, 1}, {"ten-tasks", 64, 10}} {
		b.Run(bc.workflow, func(b *testing.B) {
			var mu sync.Mutex
			done := map[string]chan struct{}{}
			completed := func(id string) chan struct{} {
				mu.Lock()
				defer mu.Unlock()
				ch, ok := done[id]
				if !ok {
					ch = make(chan struct{})
					done[id] = ch
				}
				return ch
			}
			h := newHarnessOpts(b, exampleSourceTB(b, "bench"), harnessOpts{onCommit: func(events []host.Event) {
				for _, e := range events {
					if e.Name == host.EventRunCompleted {
						close(completed(e.RunID))
					}
				}
			}})
			b.ReportAllocs()
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range bc.inFlight {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						id := h.launch(bc.workflow, map[string]any{})
						<-completed(id)
						mu.Lock()
						delete(done, id)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "runs/s")
			b.ReportMetric(float64(b.N*bc.steps)/b.Elapsed().Seconds(), "steps/s")
		})
	}
}
