package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/smithers-orchestrator/smithers-go/api/client"
)

// metricValue reads the first of names found in the gateway's /metrics.
func metricValue(ctx context.Context, url string, names ...string) (float64, error) {
	c := client.New(url, "")
	body, err := c.Get(ctx, "/metrics")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(body, "\n") {
		for _, name := range names {
			if rest, ok := strings.CutPrefix(line, name+" "); ok {
				var v float64
				_, err := fmt.Sscanf(rest, "%g", &v)
				return v, err
			}
		}
	}
	return 0, fmt.Errorf("/metrics has none of %s", strings.Join(names, ", "))
}

// residentMemory is the gateway's resident memory in bytes. This gateway
// exports the standard process_resident_memory_bytes; upstream 0.32.0
// exports smithers_process_memory_rss_bytes.
func residentMemory(ctx context.Context, url string) (float64, error) {
	return metricValue(ctx, url, "process_resident_memory_bytes", "smithers_process_memory_rss_bytes")
}

// processCPU is the gateway's CPU time in seconds (user + system), from
// the Prometheus process collector; ok is false when the gateway does not
// export it, and the report then leaves CPU per run out.
func processCPU(ctx context.Context, url string) (float64, bool) {
	v, err := metricValue(ctx, url, "process_cpu_seconds_total")
	return v, err == nil
}

// peakMemory samples the gateway's resident memory every second until stop
// is called, which returns the highest sample (ok false when the gateway
// exports no resident-memory figure).
func peakMemory(ctx context.Context, url string) (stop func() (peak float64, ok bool)) {
	var (
		mu      sync.Mutex
		highest float64
		seen    bool
	)
	sample := func() {
		if v, err := residentMemory(ctx, url); err == nil {
			mu.Lock()
			if v > highest {
				highest = v
			}
			seen = true
			mu.Unlock()
		}
	}
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second) // a scrape costs the gateway a few ms: rarely enough not to weigh on CPU per run
		defer t.Stop()
		for {
			sample()
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	}()
	return func() (float64, bool) {
		close(quit)
		<-done
		sample()
		mu.Lock()
		defer mu.Unlock()
		return highest, seen
	}
}
