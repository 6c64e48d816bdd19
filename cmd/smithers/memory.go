package main

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// gatewayGCPercent is the gateway's GOGC unless the environment sets one:
// the heap may grow to three times what is live before a collection, not
// twice. The gateway's live heap is small (about 10 MiB) and every step
// allocates, so at Go's default of 100 collection was the third largest
// cost under load; at 200, measured with smithers bench on 2 cores, a
// one-task run costs about 18 % less CPU and a ten-task workflow does
// about 12 % more steps per second, for a peak RSS under that load of
// 46-54 MiB instead of 43-48 (at 400 it passed 60). The memory limit
// (SMITHERS_GATEWAY_MAX_HEAP_MB or GOMEMLIMIT) still bounds the heap.
const gatewayGCPercent = 200

// benchGCPercent is the load generator's GOGC unless the environment sets
// one: it often shares the machine with the gateway it measures, and
// every core it spends collecting is taken from the gateway.
const benchGCPercent = 400

// startupMemoryDelay is how long after the listener is up the gateway
// gives back the memory that start-up alone used: long enough for the
// resumed runs' first steps, short enough that an idle gateway shows its
// idle size.
const startupMemoryDelay = 2 * time.Second

// idleTrimEvery is how often the gateway looks for heap a burst left
// behind while it was idle since (idleTrim).
const idleTrimEvery = 5 * time.Second

// idleTrimBytes is how much freed heap the gateway keeps while idle before
// giving it back.
const idleTrimBytes = 8 << 20

// releaseStartupMemory returns to the operating system what start-up
// used and the gateway does not need to keep: the heap freed after
// bundling the module (esbuild's syntax trees) and migrating, and the
// binary's code and tables that only start-up ran (releaseStartupPages).
// Nothing of it is lost: freed heap is reused or reallocated, and a code
// page used again is mapped back from the page cache on its next touch.
func releaseStartupMemory() {
	debug.FreeOSMemory()
	releaseStartupPages()
}

// idleTrim gives back the heap a burst left behind (a run with a 4 MiB
// output copies it several times over: JSON, the store, the runtime) once
// the gateway has been idle for a while: when no garbage collection ran
// since the last look, Go would keep that memory until its next periodic
// collection, minutes later. A busy gateway collects on its own; this
// never runs then. gcCycles is the count the last look saw.
func idleTrim(gcCycles *uint64) {
	s := []metrics.Sample{
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
	}
	metrics.Read(s)
	cycles := s[0].Value.Uint64()
	idle := cycles == *gcCycles
	*gcCycles = cycles
	// Heap held beyond what the last collection found live: garbage not
	// collected yet, and freed memory not returned.
	held := s[2].Value.Uint64() + s[3].Value.Uint64() + s[4].Value.Uint64()
	if live := s[1].Value.Uint64(); idle && held > live+idleTrimBytes {
		debug.FreeOSMemory()
		*gcCycles++ // the collection FreeOSMemory ran
	}
}

// releaseMemoryLater releases the start-up memory after
// startupMemoryDelay, then trims the heap when idle (idleTrim), until the
// gateway stops (a closer stops and waits for it).
func (m *Main) releaseMemoryLater() {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTimer(startupMemoryDelay)
		defer t.Stop()
		select {
		case <-stop:
			return
		case <-t.C:
			releaseStartupMemory()
		}
		var cycles uint64
		tick := time.NewTicker(idleTrimEvery)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				idleTrim(&cycles)
			}
		}
	}()
	m.closers = append(m.closers, func() error { close(stop); <-done; return nil })
}
