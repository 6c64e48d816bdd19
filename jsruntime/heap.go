package jsruntime

import (
	"runtime"
	"runtime/metrics"
	"time"
)

// heapSample is the runtime/metrics name of the live heap estimate.
const heapSample = "/memory/classes/heap/objects:bytes"

// watchHeap is the process-level heap watchdog: when the heap passes
// maxHeap while JavaScript runs, the worker running the oldest turn is
// interrupted; its run fails with JS_INTERRUPTED and the worker is rebuilt
// (the garbage goes with it). It stops when stop is closed.
func (ex *Executor) watchHeap(stop <-chan struct{}) {
	defer close(ex.heapDone)
	sample := []metrics.Sample{{Name: heapSample}}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 || sample[0].Value.Uint64() <= uint64(ex.maxHeap) {
			continue
		}
		ex.mu.Lock()
		var victim *worker
		var oldest int64
		for _, w := range ex.workers {
			if st := w.turnStart.Load(); st != 0 && !w.rebuilding.Load() && (victim == nil || st < oldest) {
				victim, oldest = w, st
			}
		}
		ex.mu.Unlock()
		if victim == nil {
			continue
		}
		id := victim.turnID.Load()
		if !victim.interruptTurn(id, errHeapLimit) {
			continue
		}
		ex.log.Warn("heap over its limit: interrupted the longest JavaScript turn", "limitMiB", ex.maxHeap>>20, "worker", victim.id)
		// Let that turn unwind (native code may run a while before goja
		// sees the interrupt), then collect its garbage before looking
		// again, so an innocent next turn is not blamed for it.
		deadline := time.Now().Add(5 * time.Second)
		for (victim.turnID.Load() == id || victim.rebuilding.Load()) && time.Now().Before(deadline) {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		runtime.GC()
	}
}
