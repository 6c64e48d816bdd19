package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smithers-orchestrator/smithers-go/api/client"
)

// Options configure a benchmark run.
type Options struct {
	URL         string
	Token       string
	Duration    time.Duration // per timed scenario (default 10 s)
	Concurrency int           // concurrent callers (default 32)
	Workflow    string        // workflow to launch (default "quickstart")
	Input       json.RawMessage
	Subscribers int // sockets for the fan-out and stream scenarios (default 50)
	// Rate is the signals per second the stream scenario sends (default
	// 100); each puts two events on the run.
	Rate      int
	Parked    int // runs to park for the memory scenario (0 skips it)
	Scenarios []string
}

// Result is one row of the report.
type Result struct {
	Name     string
	Ops      int64
	Elapsed  time.Duration
	P50, P99 time.Duration
	Errors   int64
	Note     string
}

// Rate is operations per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Ops) / r.Elapsed.Seconds()
}

func (o *Options) defaults() {
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	if o.Workflow == "" {
		o.Workflow = "quickstart"
	}
	if len(o.Input) == 0 {
		o.Input = json.RawMessage(`{"name":"bench"}`)
	}
	if o.Subscribers <= 0 {
		o.Subscribers = 50
	}
	if o.Rate <= 0 {
		o.Rate = 100
	}
	if len(o.Scenarios) == 0 {
		o.Scenarios = []string{"rpc", "runs", "fanout"}
		if o.Parked > 0 {
			o.Scenarios = append(o.Scenarios, "parked")
		}
	}
}

// Run runs the selected scenarios in order and returns their results.
func Run(ctx context.Context, o Options) ([]Result, error) {
	o.defaults()
	var out []Result
	for _, s := range o.Scenarios {
		var rs []Result
		var err error
		one := func(r Result, e error) { rs, err = []Result{r}, e }
		switch s {
		case "rpc":
			rs, err = rpcThroughput(ctx, o)
		case "runs":
			one(runThroughput(ctx, o))
		case "launch":
			one(launchThroughput(ctx, o))
		case "fanout":
			one(fanout(ctx, o))
		case "stream":
			one(streamFanout(ctx, o))
		case "parked":
			one(parked(ctx, o))
		default:
			return out, fmt.Errorf("unknown scenario %q (rpc, runs, launch, fanout, stream, parked)", s)
		}
		if err != nil {
			return out, fmt.Errorf("%s: %w", s, err)
		}
		out = append(out, rs...)
	}
	return out, nil
}

// Print writes the results as a table.
func Print(w io.Writer, results []Result) {
	fmt.Fprintf(w, "%-34s %10s %12s %10s %10s %7s  %s\n", "scenario", "ops", "rate/s", "p50", "p99", "errors", "notes")
	for _, r := range results {
		fmt.Fprintf(w, "%-34s %10d %12.1f %10s %10s %7d  %s\n", r.Name, r.Ops, r.Rate(), round(r.P50), round(r.P99), r.Errors, r.Note)
	}
}

func round(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// latencies collects samples from many goroutines, and the first error a
// worker met, so a report with errors says what they were.
type latencies struct {
	mu       sync.Mutex
	d        []time.Duration
	firstErr error
}

func (l *latencies) fail(err error) {
	l.mu.Lock()
	if l.firstErr == nil {
		l.firstErr = err
	}
	l.mu.Unlock()
}

// errNote appends the first error to a report note.
func (l *latencies) errNote(note string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.firstErr == nil {
		return note
	}
	if note != "" {
		note += "; "
	}
	return note + "first error: " + l.firstErr.Error()
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) percentiles() (p50, p99 time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0, 0
	}
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	at := func(p float64) time.Duration { return l.d[min(len(l.d)-1, int(p*float64(len(l.d))))] }
	return at(0.50), at(0.99)
}

// drainGrace bounds how long timed waits for the operations still in flight
// when Duration ends.
const drainGrace = 30 * time.Second

// timed runs worker on Concurrency goroutines: each starts operations until
// Duration has passed, and the operations in flight then are allowed to
// finish (within drainGrace) rather than cut off, so a slow operation (a
// whole run) is counted and never miscounted as an error. Elapsed runs until
// the last one ends.
func timed(ctx context.Context, o Options, worker func(ctx context.Context, lat *latencies) error) (ops, errs int64, elapsed time.Duration, lat *latencies) {
	return timedEach(ctx, o, func() func(context.Context, *latencies) error { return worker })
}

// timedEach is timed with a worker of its own for each caller (its own
// connection, say), made by newWorker on the caller's goroutine.
func timedEach(ctx context.Context, o Options, newWorker func() func(ctx context.Context, lat *latencies) error) (ops, errs int64, elapsed time.Duration, lat *latencies) {
	lat = &latencies{}
	start := time.Now()
	stopAt := start.Add(o.Duration)
	ctx, cancel := context.WithDeadline(ctx, stopAt.Add(drainGrace))
	defer cancel()
	var wg sync.WaitGroup
	var nOps, nErr atomic.Int64
	for i := 0; i < o.Concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			worker := newWorker()
			for ctx.Err() == nil && time.Now().Before(stopAt) {
				if err := worker(ctx, lat); err != nil {
					nErr.Add(1)
					lat.fail(err)
					continue
				}
				nOps.Add(1)
			}
		}()
	}
	wg.Wait()
	return nOps.Load(), nErr.Load(), time.Since(start), lat
}

// rpcThroughput measures GET /health, then getRun over HTTP on one
// existing run, with the same callers on the same gateway: /health is the
// yardstick (the HTTP stack and nothing else), so the getRun row says what
// share of it a real read keeps. Each caller holds one keep-alive
// connection and sends a prepared request (rawConn), so that the load
// generator, which shares the machine, spends little, and the same, on
// both.
func rpcThroughput(ctx context.Context, o Options) ([]Result, error) {
	c := client.New(o.URL, o.Token)
	var launched struct {
		RunID string `json:"runId"`
	}
	if err := c.Call(ctx, "launchRun", map[string]any{"workflow": o.Workflow, "input": o.Input}, &launched); err != nil {
		return nil, err
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(map[string]any{"runId": launched.RunID})
	if err != nil {
		return nil, err
	}
	measure := func(name string, req []byte, ok func(status int, body []byte) error) Result {
		var mu sync.Mutex
		var conns []*rawConn
		defer func() {
			for _, c := range conns {
				c.close()
			}
		}()
		ops, errs, el, lat := timedEach(ctx, o, func() func(context.Context, *latencies) error {
			conn, err := newRawConn(c.BaseURL)
			if err == nil {
				mu.Lock()
				conns = append(conns, conn)
				mu.Unlock()
			}
			return func(ctx context.Context, lat *latencies) error {
				if err != nil {
					return err
				}
				t := time.Now()
				status, body, err := conn.do(ctx, req)
				lat.add(time.Since(t))
				if err != nil {
					return err
				}
				return ok(status, body)
			}
		})
		p50, p99 := lat.percentiles()
		return Result{Name: fmt.Sprintf("%s (c=%d)", name, o.Concurrency), Ops: ops, Errors: errs, Elapsed: el, P50: p50, P99: p99, Note: lat.errNote("")}
	}
	health := measure("GET /health", rawRequest(u.Host, "GET", u.Path+"/health", "", nil), func(status int, body []byte) error {
		if status != 200 {
			return fmt.Errorf("GET /health: HTTP %d: %.200s", status, body)
		}
		return nil
	})
	get := measure("rpc getRun over HTTP", rawRequest(u.Host, "POST", u.Path+"/v1/rpc/getRun", o.Token, body), func(status int, body []byte) error {
		// The frame's ok, without decoding its payload.
		if status != 200 || !bytes.Contains(body, []byte(`"ok":true`)) {
			return fmt.Errorf("getRun: HTTP %d: %.200s", status, body)
		}
		return nil
	})
	if health.Rate() > 0 && health.P99 > 0 {
		note := fmt.Sprintf("%.0f%% of /health's rate, p99 %.1fx /health's", 100*get.Rate()/health.Rate(), float64(get.P99)/float64(health.P99))
		if get.Note != "" {
			note += "; " + get.Note
		}
		get.Note = note
	}
	return []Result{health, get}, nil
}

// runThroughput launches runs and drives each to completion: every worker
// holds one socket, follows its run with streamRunEvents, approves any
// approval the run asks for, and waits for run.completed.
func runThroughput(ctx context.Context, o Options) (Result, error) {
	c := client.New(o.URL, o.Token)
	ops, errs, el, lat := timed(ctx, o, func(ctx context.Context, lat *latencies) error {
		return driveRun(ctx, c, o, lat)
	})
	p50, p99 := lat.percentiles()
	return Result{Name: fmt.Sprintf("launch→completed %s (c=%d)", o.Workflow, o.Concurrency), Ops: ops, Errors: errs, Elapsed: el, P50: p50, P99: p99,
		Note: lat.errNote("launch, stream, approve, run.completed")}, nil
}

// driveRun follows one run the way the official client's
// streamRunEventsResilient does: a fresh socket subscribed to the run
// (upstream 0.32.0 pushes live stream frames only to sockets whose filter
// admits the run, has no unsubscribe, and caps open streams per user),
// streamRunEvents from seq 0, approvals approved as they are requested.
func driveRun(ctx context.Context, c *client.Client, o Options, lat *latencies) error {
	start := time.Now()
	var launched struct {
		RunID string `json:"runId"`
	}
	if err := c.Call(ctx, "launchRun", map[string]any{"workflow": o.Workflow, "input": o.Input}, &launched); err != nil {
		return err
	}
	conn, _, err := client.Dial(ctx, o.URL, o.Token, client.DialOptions{Subscribe: []string{launched.RunID}})
	if err != nil {
		return err
	}
	defer conn.Close()
	st, err := conn.StreamRunEvents(ctx, launched.RunID, 0)
	if err != nil {
		return err
	}
	approved := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-conn.Events():
			if !ok {
				return fmt.Errorf("socket closed")
			}
			if ev.Name != "run.event" {
				continue
			}
			var re client.RunEvent
			if json.Unmarshal(ev.Payload, &re) != nil || re.StreamID != st.StreamID {
				continue
			}
			switch re.Event {
			case "approval.requested":
				var p struct {
					NodeID    string `json:"nodeId"`
					Iteration int    `json:"iteration"`
				}
				_ = json.Unmarshal(re.Payload, &p)
				if approved[p.NodeID] {
					continue
				}
				approved[p.NodeID] = true
				if err := approve(ctx, conn.Call, map[string]any{"runId": launched.RunID, "nodeId": p.NodeID, "iteration": p.Iteration,
					"decision": map[string]any{"approved": true}}); err != nil {
					return err
				}
			case "run.completed":
				lat.add(time.Since(start))
				return nil
			}
		}
	}
}

// fanout measures broadcast delivery: Subscribers unfiltered sockets; a
// driver launches runs and approves them; each socket's receive time of
// approval.decided minus the time the approval was sent is one sample.
func fanout(ctx context.Context, o Options) (Result, error) {
	c := client.New(o.URL, o.Token)
	var sent sync.Map // runId -> time the decision was sent
	lat := &latencies{}
	var delivered atomic.Int64
	subs := make([]*client.Conn, o.Subscribers)
	var wg sync.WaitGroup
	for i := range subs {
		conn, _, err := client.Dial(ctx, o.URL, o.Token, client.DialOptions{})
		if err != nil {
			return Result{}, err
		}
		subs[i] = conn
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range conn.Events() {
				if ev.Name != "approval.decided" {
					continue
				}
				var p struct {
					RunID string `json:"runId"`
				}
				_ = json.Unmarshal(ev.Payload, &p)
				if t, ok := sent.Load(p.RunID); ok {
					lat.add(ev.Received.Sub(t.(time.Time)))
					delivered.Add(1)
				}
			}
		}()
	}
	driver, _, err := client.Dial(ctx, o.URL, o.Token, client.DialOptions{Subscribe: []string{"bench-no-broadcasts"}})
	if err != nil {
		return Result{}, err
	}
	defer driver.Close()
	fo := o
	fo.Concurrency = 1
	ops, errs, el, driverLat := timed(ctx, fo, func(ctx context.Context, _ *latencies) error {
		var launched struct {
			RunID string `json:"runId"`
		}
		if err := c.Call(ctx, "launchRun", map[string]any{"workflow": o.Workflow, "input": o.Input}, &launched); err != nil {
			return err
		}
		node, err := waitApproval(ctx, c, launched.RunID)
		if err != nil {
			return err
		}
		sent.Store(launched.RunID, time.Now())
		return approve(ctx, c.Call, map[string]any{"runId": launched.RunID, "nodeId": node, "decision": map[string]any{"approved": true}})
	})
	time.Sleep(500 * time.Millisecond) // let the last broadcasts arrive
	for _, s := range subs {
		s.Close()
	}
	wg.Wait()
	p50, p99 := lat.percentiles()
	return Result{Name: fmt.Sprintf("fan-out approval.decided (%d sockets)", o.Subscribers), Ops: delivered.Load(), Errors: errs, Elapsed: el, P50: p50, P99: p99,
		Note: driverLat.errNote(fmt.Sprintf("%d decisions; rate = frames delivered/s", ops))}, nil
}

// approve submits an approval, retrying while the gateway says the node is
// not waiting yet (upstream 0.32.0 announces approvals before it accepts
// decisions; this gateway never does).
func approve(ctx context.Context, call func(context.Context, string, any, any) error, params map[string]any) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := call(ctx, "submitApproval", params, nil)
		if err == nil || !strings.Contains(err.Error(), "not waiting for approval") || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitApproval polls listApprovals until the run asks for one.
func waitApproval(ctx context.Context, c *client.Client, runID string) (string, error) {
	for {
		var list []struct {
			NodeID string `json:"nodeId"`
		}
		if err := c.Call(ctx, "listApprovals", map[string]any{"runId": runID}, &list); err != nil {
			return "", err
		}
		if len(list) > 0 {
			return list[0].NodeID, nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// parked launches Parked runs that park on their approval and reports how
// much the gateway's resident memory grew (process_resident_memory_bytes of
// /metrics), then cancels them.
func parked(ctx context.Context, o Options) (Result, error) {
	c := client.New(o.URL, o.Token)
	before, err := residentMemory(ctx, o.URL)
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	ids := make([]string, o.Parked)
	var idx atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for w := 0; w < o.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(idx.Add(1)) - 1
				if i >= o.Parked {
					return
				}
				var launched struct {
					RunID string `json:"runId"`
				}
				if err := c.Call(ctx, "launchRun", map[string]any{"workflow": o.Workflow, "input": o.Input}, &launched); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				ids[i] = launched.RunID
			}
		}()
	}
	wg.Wait()
	defer func() { // leave no parked run behind, also on failure
		for _, id := range ids {
			if id != "" {
				_ = c.Call(context.Background(), "cancelRun", map[string]any{"runId": id}, nil)
			}
		}
	}()
	if err, _ := firstErr.Load().(error); err != nil {
		return Result{}, err
	}
	// Wait until each of our runs parked.
	deadline := time.Now().Add(5 * time.Minute)
	for _, id := range ids {
		for {
			var run struct {
				Status string `json:"status"`
			}
			if err := c.Call(ctx, "getRun", map[string]any{"runId": id}, &run); err != nil {
				return Result{}, err
			}
			if run.Status != "running" {
				break
			}
			if time.Now().After(deadline) {
				return Result{}, fmt.Errorf("run %s did not park within 5 minutes", id)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	el := time.Since(start)
	after, err := residentMemory(ctx, o.URL)
	if err != nil {
		return Result{}, err
	}
	grow := after - before
	return Result{Name: fmt.Sprintf("park %d runs", o.Parked), Ops: int64(o.Parked), Elapsed: el,
		Note: fmt.Sprintf("RSS %.1f MiB -> %.1f MiB (%.0f bytes per parked run)", before/(1<<20), after/(1<<20), grow/float64(o.Parked))}, nil
}
