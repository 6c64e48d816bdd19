package jsruntime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dop251/goja"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// execResult is what a finished child process left.
type execResult struct {
	code     int
	stdout   string
	stderr   string
	err      error // failed to start, or killed
	timedOut bool
}

// exec is t.exec(cmd, args, {cwd, env, input, timeoutMs, allowFailure}):
// the child runs in its own process group with only PATH, HOME and env;
// its output streams as task.output events; the group is killed on
// cancel, timeout, or attempt end. It resolves to {code, stdout, stderr};
// a non-zero exit rejects with SmithersError EXEC_FAILED unless
// allowFailure.
func (t *taskRun) exec(at *attemptRun, call goja.FunctionCall) goja.Value {
	a := t.a
	w := a.w
	rt := w.rt
	name, ok := call.Argument(0).Export().(string)
	if !ok || name == "" {
		panic(rt.NewTypeError("t.exec(cmd, args, opts): cmd must be a non-empty string, got %s", describeValue(call.Argument(0))))
	}
	var args []string
	if present(call.Argument(1)) {
		args = stringArray(rt, call.Argument(1), "t.exec args")
	}
	const what = "t.exec options"
	o := optionsObject(rt, call.Argument(2), what)
	where := func(f string) string { return what + "." + f }
	cwd := optString(rt, o, "cwd", where)
	input := optString(rt, o, "input", where)
	allowFailure := optBool(rt, o, "allowFailure", what)
	var timeout time.Duration
	env := []string{}
	for _, k := range []string{"PATH", "HOME"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if o != nil {
		if v := o.Get("timeoutMs"); present(v) {
			timeout = millis(durationMs(rt, v, fmt.Sprintf("t.exec(%q) options.timeoutMs", name), true))
		}
		if ev := o.Get("env"); present(ev) {
			eo := optionsObject(rt, ev, what+".env")
			for _, k := range eo.Keys() {
				env = append(env, k+"="+eo.Get(k).String())
			}
		}
	}
	p, resolve, reject := rt.NewPromise()
	limit := a.ex.maxOutput
	a.async(func(context.Context) func() {
		ctx := at.ctx
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		res := t.runChild(ctx, at, name, args, cwd, input, env, limit)
		res.timedOut = timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded)
		return func() { t.execSettled(at, name, res, allowFailure, timeout, resolve, reject) }
	})
	return rt.ToValue(p)
}

func (t *taskRun) execSettled(at *attemptRun, name string, res execResult, allowFailure bool, timeout time.Duration, resolve, reject func(any) error) {
	w := t.a.w
	rt := w.rt
	result := rt.NewObject()
	must(result.Set("code", res.code))
	must(result.Set("stdout", res.stdout))
	must(result.Set("stderr", res.stderr))
	var err error
	switch {
	case at.signal.aborted:
		err = reject(at.signal.reason)
	case res.err != nil || res.timedOut || (res.code != 0 && !allowFailure):
		msg := fmt.Sprintf("%s exited with code %d", name, res.code)
		if res.timedOut {
			msg = fmt.Sprintf("%s timed out after %s and was killed", name, timeout)
		} else if res.err != nil {
			msg = fmt.Sprintf("%s: %v", name, res.err)
		}
		details := map[string]any{"code": res.code, "stdout": res.stdout, "stderr": res.stderr, "timedOut": res.timedOut}
		e := w.smithersError(host.CodeExecFailed, msg, details).(*goja.Object)
		must(e.Set("exitCode", res.code))
		must(e.Set("stdout", res.stdout))
		must(e.Set("stderr", res.stderr))
		err = reject(e)
	default:
		err = resolve(result)
	}
	if err != nil {
		w.uncatchable(err)
	}
}

// runChild starts and waits for the child on the calling goroutine.
func (t *taskRun) runChild(ctx context.Context, at *attemptRun, name string, args []string, cwd, input string, env []string, limit int) execResult {
	a := t.a
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = cwd
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	if input != "" {
		cmd.Stdin = strings.NewReader(input)
	}
	stdout := newOutputStream(t, at, "stdout", limit)
	stderr := newOutputStream(t, at, "stderr", limit)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		return execResult{code: -1, err: err}
	}
	pgid := cmd.Process.Pid
	start, _ := host.ProcessStartTime(pgid)
	if err := a.s.RecordProcess(host.Process{PGID: pgid, StartTime: start, NodeID: t.key.id, Attempt: at.number, StartedAtMs: time.Now().UnixMilli()}); err != nil {
		a.log.Error("record t.exec process group", "pgid", pgid, "err", err)
	}
	err := cmd.Wait()
	// Kill what the child may have left in its group (background jobs).
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if ferr := a.s.ForgetProcess(pgid); ferr != nil {
		a.log.Error("forget t.exec process group", "pgid", pgid, "err", ferr)
	}
	res := execResult{code: cmd.ProcessState.ExitCode(), stdout: stdout.text(), stderr: stderr.text()}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		res.err = err
	}
	if ctx.Err() != nil && res.code < 0 {
		res.err = fmt.Errorf("killed: %w", ctx.Err())
	}
	return res
}

// outputStream keeps up to limit bytes of a child's output and streams it
// as task.output events. Write hands each chunk to the worker's loop and
// waits while too many chunks are still queued there, so a child writing
// faster than the gateway can commit is slowed down through its pipe
// instead of growing queues.
type outputStream struct {
	t      *taskRun
	at     *attemptRun
	stream string
	limit  int
	slots  chan struct{} // chunks handed to the loop and not yet taken

	mu        sync.Mutex
	buf       strings.Builder
	truncated bool
}

func newOutputStream(t *taskRun, at *attemptRun, stream string, limit int) *outputStream {
	return &outputStream{t: t, at: at, stream: stream, limit: limit, slots: make(chan struct{}, 4)}
}

func (s *outputStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	room := s.limit - s.buf.Len()
	if room > 0 {
		if len(p) > room {
			s.buf.Write(p[:room])
			s.truncated = true
		} else {
			s.buf.Write(p)
		}
	} else if len(p) > 0 {
		s.truncated = true
	}
	s.mu.Unlock()
	select {
	case s.slots <- struct{}{}:
	case <-s.at.ctx.Done():
		return len(p), nil
	}
	chunk := string(p)
	a := s.t.a
	if !a.w.post(a, func() {
		<-s.slots
		s.t.emit(s.at, chunk, s.stream)
	}) {
		<-s.slots
	}
	return len(p), nil
}

func (s *outputStream) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}
