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
// RPC, the commit, the fan-out and the socket write). Each signal puts two
// events on the run (tick-<i> finished, tick-<i+1> pending), so the run's
// event rate is twice the signal rate. Ops counts every event frame
// received; node.finished deliveries that never came are reported as
// dropped.
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
	var received, events atomic.Int64
	// record runs on each socket's reader goroutine and reads what it
	// measures from the frame's bytes, so that the load generator, which
	// shares the machine, spends little per frame: every event frame
	// counts, and a node.finished of wait tick-<i> is one sample.
	isEvent := []byte(`"type":"event"`)
	finished := []byte(`"event":"node.finished"`)
	tick := []byte(`"nodeId":"tick-`)
	record := func(data []byte, at time.Time) bool {
		if !bytes.Contains(data, isEvent) {
			return false // a response: the client decodes it
		}
		events.Add(1)
		if !bytes.Contains(data, finished) {
			return true
		}
		i := bytes.Index(data, tick)
		if i < 0 {
			return true
		}
		digits := data[i+len(tick):]
		end := bytes.IndexByte(digits, '"')
		if end < 0 {
			return true
		}
		n, err := strconv.Atoi(string(digits[:end]))
		if err != nil || n < 0 || n >= count {
			return true
		}
		if sentAt := sent[n].Load(); sentAt != 0 {
			lat.add(at.Sub(time.Unix(0, sentAt)))
			received.Add(1)
		}
		return true
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
				conn, _, err := client.Dial(ctx, o.URL, o.Token, client.DialOptions{Subscribe: []string{launched.RunID}, OnFrame: record})
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
	events0 := events.Load() // the connect challenges
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
	frames := events.Load() - events0
	note := fmt.Sprintf("%d signals at %.0f/s = %.0f events/s on the run; %d of %d node.finished frames dropped",
		count, float64(count)/el.Seconds(), float64(frames)/float64(o.Subscribers)/el.Seconds(), want-received.Load(), want)
	if closed > 0 {
		note += fmt.Sprintf("; %d sockets closed by the gateway", closed)
	}
	if firstErr != nil {
		note += "; first error: " + firstErr.Error()
	}
	return Result{Name: fmt.Sprintf("stream 1 run → %d sockets", o.Subscribers), Ops: frames, Errors: errs, Elapsed: el, P50: p50, P99: p99, Note: note}, nil
}
