package jsruntime

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/dop251/goja"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// Options configures Load.
type Options struct {
	// ModulePath is the workflow module (SMITHERS_GATEWAY_MODULE).
	ModulePath string
	// Source, when set, is the module's code held in memory (an example
	// embedded in the binary); ModulePath then only names it.
	Source string
	// Workers is the number of event-loop workers (default
	// min(GOMAXPROCS, 4)).
	Workers int
	// TurnBudget bounds one JavaScript turn (default 2 s).
	TurnBudget time.Duration
	// MaxCallStackSize bounds JavaScript call depth (default 4096).
	MaxCallStackSize int
	Logger           *slog.Logger
	// LookupEnv reads the process environment for t.env (default
	// os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// HTTPClient serves t.fetch (default: a client with sane timeouts).
	HTTPClient *http.Client
	// MaxOutputBytes is the cap on what one step may hand the journal
	// (SMITHERS_GATEWAY_MAX_OUTPUT_BYTES, default host.DefaultMaxOutputBytes):
	// a task body's return value and the workflow's as JSON, one t.emit
	// text or t.heartbeat payload; over it the step fails with
	// OUTPUT_TOO_LARGE. It also bounds what t.exec keeps of each of a
	// child's stdout and stderr (the tail) and what an attempt streams as
	// task.output events. t.fetch reads a response body of up to 16 MiB, or
	// MaxOutputBytes when that is larger.
	MaxOutputBytes int
	// MaxHeapBytes arms the heap watchdog: when a GC finds the live heap
	// over it, the longest running JavaScript turn is interrupted (default
	// 2 GiB; negative disables). Garbage does not count.
	MaxHeapBytes int64
}

// Executor runs workflow modules on a pool of goja event-loop workers. It
// implements host.Executor.
type Executor struct {
	log        *slog.Logger
	path       string
	bundle     *Bundle
	program    *goja.Program
	budget     time.Duration
	maxStack   int
	lookupEnv  func(string) (string, bool)
	httpClient *http.Client
	maxOutput  int
	maxHeap    int64
	workflows  []host.WorkflowDef
	heapStop   chan struct{}
	heapDone   chan struct{}

	mu      sync.Mutex
	workers []*worker
	acts    map[*host.Session]*activation
	closed  bool
}

var _ host.Executor = (*Executor)(nil)

// Load bundles the module, evaluates it once per worker, and calls its
// register(gateway) (or default export) to collect the workflows. A module
// that does not exist gives an Executor with no workflows and a logged
// warning; every other load failure is returned as a *LoadError naming
// file:line.
func Load(opts Options) (*Executor, error) {
	return LoadContext(context.Background(), opts)
}

// LoadContext is Load that gives up when ctx ends (a SIGTERM while an async
// register(gateway) is still settling).
func LoadContext(ctx context.Context, opts Options) (*Executor, error) {
	ex := &Executor{log: opts.Logger, path: opts.ModulePath, budget: opts.TurnBudget, maxStack: opts.MaxCallStackSize,
		lookupEnv: opts.LookupEnv, httpClient: opts.HTTPClient, maxOutput: opts.MaxOutputBytes, acts: map[*host.Session]*activation{}}
	if ex.log == nil {
		ex.log = slog.Default()
	}
	if ex.budget <= 0 {
		ex.budget = 2 * time.Second
	}
	if ex.maxStack <= 0 {
		ex.maxStack = 4096
	}
	if ex.lookupEnv == nil {
		ex.lookupEnv = os.LookupEnv
	}
	if ex.httpClient == nil {
		ex.httpClient = &http.Client{Timeout: 10 * time.Minute}
	}
	if ex.maxOutput <= 0 {
		ex.maxOutput = host.DefaultMaxOutputBytes
	}
	ex.maxHeap = opts.MaxHeapBytes
	if ex.maxHeap == 0 {
		ex.maxHeap = 2 << 30
	}
	n := opts.Workers
	if n <= 0 {
		n = min(runtime.GOMAXPROCS(0), 4)
	}
	var err error
	if opts.Source != "" {
		ex.bundle, err = BuildBundleSource(opts.ModulePath, opts.Source)
	} else {
		ex.bundle, err = BuildBundle(opts.ModulePath)
	}
	if errors.Is(err, fs.ErrNotExist) {
		ex.log.Warn("workflow module not found; starting with no workflows", "module", opts.ModulePath)
		ex.bundle = &Bundle{Path: opts.ModulePath}
		n = 0
	} else if err != nil {
		return nil, err
	}
	if ex.bundle.Code != "" {
		ex.program, err = ex.bundle.Compile()
		if err != nil {
			return nil, &LoadError{File: opts.ModulePath, Message: err.Error()}
		}
	}
	for i := 0; i < n; i++ {
		w := newWorker(i, ex)
		go w.loop()
		ex.workers = append(ex.workers, w)
		defs, err := w.register(ctx)
		if err != nil {
			ex.Close()
			return nil, err
		}
		if i == 0 {
			ex.workflows = defs
			continue
		}
		if len(defs) != len(ex.workflows) {
			ex.Close()
			return nil, &LoadError{File: opts.ModulePath, Message: "register(gateway) registered different workflows on a second evaluation; registration must not depend on timing or randomness"}
		}
	}
	if n > 0 && len(ex.workflows) == 0 {
		ex.log.Warn("workflow module registered no workflow", "module", opts.ModulePath)
	}
	if ex.maxHeap > 0 && n > 0 {
		ex.heapStop, ex.heapDone = make(chan struct{}), make(chan struct{})
		go ex.watchHeap(ex.heapStop)
	}
	return ex, nil
}

// minFetchBody is the smallest bound on a t.fetch response body: a body is
// input that a task body usually reduces, so it may be larger than the
// output cap.
const minFetchBody = 16 << 20

// maxFetchBody bounds a t.fetch response body.
func (ex *Executor) maxFetchBody() int { return max(ex.maxOutput, minFetchBody) }

// Workflows lists the registered workflows, sorted by key.
func (ex *Executor) Workflows() []host.WorkflowDef { return ex.workflows }

// BundleHash is the SHA-256 of the bundled module ("" when there is none).
func (ex *Executor) BundleHash() string { return ex.bundle.Hash }

// ModulePath is the module's path as configured.
func (ex *Executor) ModulePath() string { return ex.path }

// Activate starts the session's workflow on the least loaded worker.
func (ex *Executor) Activate(s *host.Session) {
	ex.mu.Lock()
	if ex.closed || len(ex.workers) == 0 {
		ex.mu.Unlock()
		return
	}
	// The least loaded worker that is still usable (if none is, the
	// least loaded: its runs fail, and say why).
	w := ex.workers[0]
	for _, c := range ex.workers[1:] {
		if cu, wu := c.unusable.Load(), w.unusable.Load(); (wu && !cu) || (wu == cu && c.load < w.load) {
			w = c
		}
	}
	a := newActivation(ex, w, s)
	ex.acts[s] = a
	w.load++
	ex.mu.Unlock()
	if !w.post(a, a.start) {
		ex.forget(a)
	}
}

// anyUsableWorker reports whether some worker still takes runs.
func (ex *Executor) anyUsableWorker() bool {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	for _, w := range ex.workers {
		if !w.unusable.Load() {
			return true
		}
	}
	return false
}

// Deliver hands a settled node to the live activation of s.
func (ex *Executor) Deliver(s *host.Session, n host.Node) {
	ex.mu.Lock()
	a := ex.acts[s]
	ex.mu.Unlock()
	if a == nil {
		if s.Ended() {
			s.Rewake()
		}
		return
	}
	// The job runs as a turn of the activation (its timers and logs are
	// attributed to it), also after it ended: then the engine activates the
	// run again, from a journal that already holds n.
	a.w.enqueue(job{act: a, always: true, fn: func() {
		if a.ended {
			if s.Ended() {
				s.Rewake()
			}
			return
		}
		a.deliver(n)
	}})
}

// Detach abandons the activation of s and calls done once its goroutines
// have returned.
func (ex *Executor) Detach(s *host.Session, reason error, done func()) {
	ex.mu.Lock()
	a := ex.acts[s]
	ex.mu.Unlock()
	if a == nil {
		go done()
		return
	}
	finish := func() {
		go func() {
			a.wg.Wait()
			done()
		}()
	}
	if !a.w.post(nil, func() {
		a.abandon(reason)
		finish()
	}) {
		a.cancel()
		finish()
	}
}

func (ex *Executor) forget(a *activation) {
	ex.mu.Lock()
	if ex.acts[a.s] == a {
		delete(ex.acts, a.s)
		a.w.load--
	}
	ex.mu.Unlock()
}

// Close abandons every live activation, kills their child processes, and
// stops the workers.
func (ex *Executor) Close() error {
	ex.mu.Lock()
	if ex.closed {
		ex.mu.Unlock()
		return nil
	}
	ex.closed = true
	acts := make([]*activation, 0, len(ex.acts))
	for _, a := range ex.acts {
		acts = append(acts, a)
	}
	workers := ex.workers
	ex.mu.Unlock()
	if ex.heapStop != nil {
		close(ex.heapStop)
		<-ex.heapDone
	}
	for _, a := range acts {
		a := a
		if !a.w.post(nil, func() { a.abandon(errors.New("gateway shutting down")) }) {
			a.cancel()
		}
	}
	for _, w := range workers {
		w.stop()
	}
	done := make(chan struct{})
	go func() {
		for _, a := range acts {
			a.cancel()
			a.wg.Wait()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("close executor: in-flight task work did not stop within 10s")
	}
	return nil
}
