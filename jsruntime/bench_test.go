package jsruntime_test

import (
	"runtime"
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
