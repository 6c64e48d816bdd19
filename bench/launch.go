package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smithers-orchestrator/smithers-go/api/client"
)

// completions routes the run.completed broadcasts of one watching socket to
// the callers waiting for them; a run may complete before its caller has
// read the launch answer, so an early completion is kept until asked for.
type completions struct {
	mu      sync.Mutex
	waiting map[string]chan string // runId -> its final status
	early   map[string]string
}

func (c *completions) completed(runID, status string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.waiting[runID]; ok {
		delete(c.waiting, runID)
		ch <- status
		return
	}
	c.early[runID] = status
}

// wait returns the channel that receives the run's final status.
func (c *completions) wait(runID string) chan string {
	ch := make(chan string, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.early[runID]; ok {
		delete(c.early, runID)
		ch <- st
		return ch
	}
	c.waiting[runID] = ch
	return ch
}

func (c *completions) forget(runID string) {
	c.mu.Lock()
	delete(c.waiting, runID)
	c.mu.Unlock()
}

// launchThroughput launches runs over HTTP, Concurrency at a time, and
// waits for each one's run.completed on one socket without a filter (it
// receives every run's broadcasts). Besides runs/s it reports durable
// steps/s (the node.finished events seen while it ran) and, when the
// gateway exports process_cpu_seconds_total, its CPU time per run.
func launchThroughput(ctx context.Context, o Options) (Result, error) {
	c := client.New(o.URL, o.Token)
	watch, _, err := client.Dial(ctx, o.URL, o.Token, client.DialOptions{EventBuffer: 1 << 16})
	if err != nil {
		return Result{}, err
	}
	done := &completions{waiting: map[string]chan string{}, early: map[string]string{}}
	var steps atomic.Int64
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for ev := range watch.Events() {
			switch ev.Name {
			case "node.finished":
				steps.Add(1)
			case "run.completed":
				var p struct {
					RunID  string `json:"runId"`
					Status string `json:"status"`
				}
				if json.Unmarshal(ev.Payload, &p) == nil {
					done.completed(p.RunID, p.Status)
				}
			}
		}
	}()
	defer func() {
		watch.Close()
		<-watched
	}()
	cpu0, cpuOK := processCPU(ctx, o.URL)
	stopSampling := peakMemory(ctx, o.URL)
	steps.Store(0)
	params := map[string]any{"workflow": o.Workflow, "input": o.Input}
	ops, errs, el, lat := timed(ctx, o, func(ctx context.Context, lat *latencies) error {
		start := time.Now()
		var launched struct {
			RunID string `json:"runId"`
		}
		if err := c.Call(ctx, "launchRun", params, &launched); err != nil {
			return err
		}
		select {
		case st := <-done.wait(launched.RunID):
			if st != "finished" {
				return fmt.Errorf("run %s ended %s", launched.RunID, st)
			}
			lat.add(time.Since(start))
			return nil
		case <-watch.Done():
			return fmt.Errorf("the watching socket closed (code %d)", watch.CloseCode())
		case <-ctx.Done():
			done.forget(launched.RunID)
			return ctx.Err()
		}
	})
	nSteps := steps.Load()
	cpu1, cpu1OK := processCPU(ctx, o.URL)
	peak, peakOK := stopSampling()
	p50, p99 := lat.percentiles()
	note := fmt.Sprintf("%.0f steps/s", float64(nSteps)/el.Seconds())
	if cpuOK && cpu1OK && ops > 0 {
		note += fmt.Sprintf(", gateway CPU %.3f ms/run", (cpu1-cpu0)*1000/float64(ops))
	}
	if peakOK {
		note += fmt.Sprintf(", gateway RSS peak %.1f MiB", peak/(1<<20))
	}
	return Result{Name: fmt.Sprintf("launch→completed %s (c=%d)", o.Workflow, o.Concurrency), Ops: ops, Errors: errs, Elapsed: el, P50: p50, P99: p99,
		Note: lat.errNote(note)}, nil
}
