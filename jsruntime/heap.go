package jsruntime

import (
	"runtime"
	"runtime/metrics"
	"time"
)

// Heap figures the watchdog reads (runtime/metrics names).
const (
	// heapObjects is the heap's object bytes: live objects and garbage not
	// yet swept. Cheap to read, but over the limit it may be garbage.
	heapObjects = "/memory/classes/heap/objects:bytes"
	// heapLive is the live heap as the last GC marked it.
	heapLive = "/gc/heap/live:bytes"
	// gcCycles counts completed GC cycles.
	gcCycles = "/gc/cycles/total:gc-cycles"
)

const (
	// heapTick is how often the watchdog looks at the heap.
	heapTick = 50 * time.Millisecond
	// forcedGCEvery rate-limits the watchdog's own collections while the
	// heap stays over the limit with little of it live, so that a heap
	// that sits near the limit does not cost a GC every tick.
	forcedGCEvery = time.Second
)

// watchHeap is the process-level heap watchdog: when the live heap passes
// maxHeap while JavaScript runs, the worker running the oldest turn is
// interrupted; its run fails with JS_INTERRUPTED and the worker is rebuilt
// (the garbage goes with it). It stops when stop is closed.
//
// Only the live heap is held against a turn: a turn that churns through
// short-lived garbage is innocent. When the cheap figure passes the limit,
// the watchdog blames a turn only if a GC then finds the live heap still
// over it: one that Go ran since the last look, or else one it forces (at
// most once per forcedGCEvery).
func (ex *Executor) watchHeap(stop <-chan struct{}) {
	defer close(ex.heapDone)
	samples := []metrics.Sample{{Name: heapObjects}, {Name: heapLive}, {Name: gcCycles}}
	read := func() (objects, live, cycles uint64) {
		metrics.Read(samples)
		for i, v := range []*uint64{&objects, &live, &cycles} {
			if samples[i].Value.Kind() == metrics.KindUint64 {
				*v = samples[i].Value.Uint64()
			}
		}
		return objects, live, cycles
	}
	limit := uint64(ex.maxHeap)
	var lastCycles uint64
	var lastForced time.Time
	t := time.NewTicker(heapTick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		objects, live, cycles := read()
		freshGC := cycles != lastCycles
		lastCycles = cycles
		if objects <= limit {
			continue
		}
		if !freshGC || live <= limit {
			// The figure may be garbage: collect it and look again.
			if time.Since(lastForced) < forcedGCEvery {
				continue
			}
			runtime.GC()
			lastForced = time.Now()
			_, live, lastCycles = read()
			if live <= limit {
				continue
			}
		}
		victim, id := ex.oldestTurn()
		if victim == nil || !victim.interruptTurn(id, errHeapLimit) {
			continue
		}
		ex.log.Warn("live heap over its limit: interrupted the longest JavaScript turn", "limitMiB", ex.maxHeap>>20, "liveMiB", live>>20, "worker", victim.id)
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
		lastForced = time.Now()
		_, _, lastCycles = read()
	}
}

// oldestTurn returns the worker running the oldest JavaScript turn (not a
// rebuild) and that turn's number; nil when no turn runs.
func (ex *Executor) oldestTurn() (*worker, uint64) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	var victim *worker
	var oldest int64
	for _, w := range ex.workers {
		if st := w.turnStart.Load(); st != 0 && !w.rebuilding.Load() && (victim == nil || st < oldest) {
			victim, oldest = w, st
		}
	}
	if victim == nil {
		return nil, 0
	}
	return victim, victim.turnID.Load()
}
