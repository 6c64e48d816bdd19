package bench

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smithers-orchestrator/smithers-go/api/client"
)

// streamWorkflow is the emitter of the stream scenario (examples/bench):
// it waits for input.count "tick" signals, each settling wait tick-<i>.
const streamWorkflow = "ticks"

// streamFanout measures one run's events fanned out to many sockets:
// Subscribers sockets subscribed to one run of the ticks workflow, a driver
// sending Rate signals per second for Duration, one at a time. The i-th
// signal settles wait tick-<i>, whose node.finished every socket must
// receive; a sample is its receive time minus the signal's send time (the
// RPC, the commit, the fan-out and the socket write). Ops counts frames
// received; deliveries that never came are reported as dropped.
func streamFanout(ctx context.Context, o Options) (Result, error) {
	c := client.New(o.URL, o.Token)
	count := max(1, int(float64(o.Rate)*o.Duration.Seconds()))
	var launched struct {
		RunID string `json:"runId"`
	}
	if err := c.Call(ctx, "launchRun", map[string]any{"workflow": streamWorkflow, "input": map[string]any{"count": count}}, &launched); err != nil {
		return Result{}, err
	}
	// Whatever happens, the run does not outlive the scenario.
	defer func() { _ = c.Call(context.Background(), "cancelRun", map[string]any{"runId": launched.RunID}, nil) }()

	sent := make([]atomic.Int64, count) // UnixNano of each signal's send
	lat := &latencies{d: make([]time.Duration, 0, count*o.Subscribers)}
	var received atomic.Int64
	// record runs on each socket's reader goroutine: a node.finished of
	// wait tick-<i> is one sample. The node id is found in the payload
	// without decoding it, so that the load generator, which shares the
	// machine, spends little per frame.
	tick := []byte(`"nodeId":"tick-`)
	record := func(ev client.Event) {
		if ev.Name != "node.finished" {
			return
		}
		at := bytes.Index(ev.Payload, tick)
		if at < 0 {
			return
		}
		digits := ev.Payload[at+len(tick):]
		end := bytes.IndexByte(digits, '"')
		if end < 0 {
			return
		}
		i, err := strconv.Atoi(string(digits[:end]))
		if err != nil || i < 0 || i >= count {
			return
		}
		if at := sent[i].Load(); at != 0 {
			lat.add(ev.Received.Sub(time.Unix(0, at)))
			received.Add(1)
		}
	}
	subs := make([]*client.Conn, o.Subscribers)
	var dialErr atomic.Value
	var dialing sync.WaitGroup
	next := atomic.Int64{}
	for range min(16, o.Subscribers) {
		dialing.Add(1)
		go func() {
			defer dialing.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(subs) {
					return
				}
				conn, _, err := client.Dial(ctx, o.URL, o.Token, client.DialOptions{Subscribe: []string{launched.RunID}, OnEvent: record})
				if err != nil {
					dialErr.CompareAndSwap(nil, err)
					return
				}
				subs[i] = conn
			}
		}()
	}
	dialing.Wait()
	defer func() {
		for _, s := range subs {
			if s != nil {
				s.Close()
				<-s.Done()
			}
		}
	}()
	if err, _ := dialErr.Load().(error); err != nil {
		return Result{}, err
	}

	// The driver: one signal at a time, paced at Rate; a slow answer delays
	// the next send rather than sending two at once (the i-th committed
	// signal settles tick-<i> only if they commit in send order).
	start := time.Now()
	var errs int64
	var firstErr error
	interval := time.Second / time.Duration(o.Rate)
	for i := 0; i < count && ctx.Err() == nil; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		sent[i].Store(time.Now().UnixNano())
		if err := c.Call(ctx, "submitSignal", map[string]any{"runId": launched.RunID, "signalName": "tick", "data": map[string]any{"i": i}}, nil); err != nil {
			errs++
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	el := time.Since(start)
	// Let the last deliveries arrive: every socket must have every frame.
	want := int64(count * o.Subscribers)
	deadline := time.Now().Add(5 * time.Second)
	for received.Load() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	closed := 0 // sockets the gateway closed (a slow consumer cut off)
	for _, s := range subs {
		select {
		case <-s.Done():
			closed++
		default:
		}
	}
	p50, p99 := lat.percentiles()
	note := fmt.Sprintf("%d signals at %.0f/s; %d of %d frames dropped", count, float64(count)/el.Seconds(), want-received.Load(), want)
	if closed > 0 {
		note += fmt.Sprintf("; %d sockets closed by the gateway", closed)
	}
	if firstErr != nil {
		note += "; first error: " + firstErr.Error()
	}
	return Result{Name: fmt.Sprintf("stream 1 run → %d sockets", o.Subscribers), Ops: received.Load(), Errors: errs, Elapsed: el, P50: p50, P99: p99, Note: note}, nil
}
