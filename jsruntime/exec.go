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
	"unicode/utf8"

	"github.com/dop251/goja"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// execResult is what a finished child process left.
type execResult struct {
	code           int
	stdout, stderr *outputStream // nil when the child did not start
	err            error         // failed to start, or killed
	timedOut       bool
}

// exec is t.exec(cmd, args, {cwd, env, input, timeoutMs, allowFailure}):
// the child runs in its own process group with only PATH, HOME and env;
// its output streams as task.output events; the group is killed on
// cancel, timeout, or attempt end. It resolves to {code, stdout, stderr};
// a non-zero exit rejects with SmithersError EXEC_FAILED unless
// allowFailure.
//
// Output kept: the result's stdout and stderr are each the last
// MaxOutputBytes bytes the child wrote to that stream, preceded, when more
// was written, by a note saying how many bytes were cut
// ("[… 31457280 bytes cut …]\n"): the end of a command's output is where
// its result and its error usually are. EXEC_FAILED carries less, the last
// host.MaxErrorOutputBytes of each stream (with the same note), in its
// details and its stdout and stderr properties: the error is stored in the
// attempt, the node and the run and travels in node.failed and
// run.completed, so one failing command must not fill them. Use
// allowFailure: true to get the longer output of a failing command.
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
		stdout, stderr := res.stdout.tail(host.MaxErrorOutputBytes), res.stderr.tail(host.MaxErrorOutputBytes)
		details := map[string]any{"code": res.code, "stdout": stdout, "stderr": stderr, "timedOut": res.timedOut}
		e := w.smithersError(host.CodeExecFailed, msg, details).(*goja.Object)
		must(e.Set("exitCode", res.code))
		must(e.Set("stdout", stdout))
		must(e.Set("stderr", stderr))
		err = reject(e)
	default:
		result := rt.NewObject()
		must(result.Set("code", res.code))
		must(result.Set("stdout", res.stdout.tail(res.stdout.limit)))
		must(result.Set("stderr", res.stderr.tail(res.stderr.limit)))
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
		return execResult{code: -1, stdout: stdout, stderr: stderr, err: err}
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
	res := execResult{code: cmd.ProcessState.ExitCode(), stdout: stdout, stderr: stderr}
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		res.err = err
	}
	if ctx.Err() != nil && res.code < 0 {
		res.err = fmt.Errorf("killed: %w", ctx.Err())
	}
	return res
}

// outputStream keeps the last limit bytes of a child's output and streams
// it as task.output events. Write hands each chunk to the worker's loop and
// waits while too many chunks are still queued there, so a child writing
// faster than the gateway can commit is slowed down through its pipe
// instead of growing queues.
type outputStream struct {
	t      *taskRun
	at     *attemptRun
	stream string
	limit  int
	slots  chan struct{} // chunks handed to the loop and not yet taken

	mu    sync.Mutex
	buf   []byte // the end of the output: at most 2*limit bytes, the last limit of which are kept
	total int64  // bytes written
}

func newOutputStream(t *taskRun, at *attemptRun, stream string, limit int) *outputStream {
	return &outputStream{t: t, at: at, stream: stream, limit: limit, slots: make(chan struct{}, 4)}
}

func (s *outputStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.total += int64(len(p))
	if len(p) >= s.limit {
		s.buf = append(s.buf[:0], p[len(p)-s.limit:]...)
	} else {
		s.buf = append(s.buf, p...)
		if len(s.buf) > 2*s.limit {
			// Drop the head once the buffer is twice what is kept, so
			// that keeping the tail costs amortised O(1) per byte.
			s.buf = s.buf[:copy(s.buf, s.buf[len(s.buf)-s.limit:])]
		}
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

// tail returns the last max bytes written (fewer, so as to start on a
// UTF-8 character), preceded by a note saying how many bytes were cut when
// any were. max must not exceed the stream's limit.
func (s *outputStream) tail(max int) string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return tailWithNote(s.buf, s.total, max)
}

// tailWithNote keeps the last max bytes of buf, the end of an output of
// total bytes, starting on a UTF-8 character, and prefixes a note saying
// how many bytes of the output were cut, when any were.
func tailWithNote(buf []byte, total int64, max int) string {
	kept := buf
	if len(kept) > max {
		kept = kept[len(kept)-max:]
	}
	if total > int64(len(kept)) {
		// Something precedes: do not start inside a character.
		for n := 1; n < utf8.UTFMax && len(kept) > 0 && !utf8.RuneStart(kept[0]); n++ {
			kept = kept[1:]
		}
	}
	if cut := total - int64(len(kept)); cut > 0 {
		return fmt.Sprintf("[… %d bytes cut …]\n", cut) + string(kept)
	}
	return string(kept)
}
