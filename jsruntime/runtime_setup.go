package jsruntime

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/dop251/goja"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// installRuntime prepares a fresh runtime for the module: the prelude
// (SmithersError), the plain globals, console, timers, and helpers.
func (w *worker) installRuntime() error {
	rt := w.rt
	if err := installPrelude(rt); err != nil {
		return err
	}
	if err := installGlobals(rt); err != nil {
		return err
	}
	h, err := newHelpers(rt)
	if err != nil {
		return err
	}
	w.helpers = h
	console := rt.NewObject()
	for name, level := range map[string]slog.Level{"log": slog.LevelInfo, "info": slog.LevelInfo, "debug": slog.LevelDebug, "warn": slog.LevelWarn, "error": slog.LevelError} {
		level := level
		must(console.Set(name, func(call goja.FunctionCall) goja.Value {
			w.consoleLog(level, call.Arguments)
			return goja.Undefined()
		}))
	}
	must(rt.Set("console", console))
	must(rt.Set("setTimeout", w.setTimeout))
	must(rt.Set("clearTimeout", w.clearTimeout))
	w.rejections, w.reaction = nil, nil
	rt.SetPromiseRejectionTracker(w.trackRejection)
	rt.SetAsyncContextTracker(asyncTracker{w})
	return nil
}

// consoleLog routes console.* to slog, with the run (and node) of the turn
// that logged; it is muted while a run replays.
func (w *worker) consoleLog(level slog.Level, args []goja.Value) {
	msg := ""
	for i, a := range args {
		if i > 0 {
			msg += " "
		}
		if o, ok := a.(*goja.Object); ok && o.ClassName() != "Error" {
			if s, err := w.helpers.stringify(a); err == nil && s != "" {
				msg += s
				continue
			}
		}
		msg += describeJSError(w.rt, a)
	}
	log := w.log
	if a := w.current; a != nil {
		if a.replaying {
			return
		}
		log = a.log
	}
	log.Log(context.Background(), level, msg, "source", "console")
}

// jsTimer is a non-durable setTimeout of module code. A pending timer keeps
// its run active (it cannot park while JavaScript still has work queued).
type jsTimer struct {
	timer *time.Timer
	act   *activation
}

func (w *worker) setTimeout(call goja.FunctionCall) goja.Value {
	fn, ok := goja.AssertFunction(call.Argument(0))
	if !ok {
		panic(w.rt.NewTypeError("setTimeout: callback must be a function, got %s", describeValue(call.Argument(0))))
	}
	delay := 0.0
	if present(call.Argument(1)) {
		delay = call.Argument(1).ToFloat()
		if delay != delay || delay < 0 {
			delay = 0
		}
		// Not durable, but bounded like every other duration, so that
		// the conversion below cannot overflow and fire at once.
		delay = min(delay, float64(host.MaxDurationMs))
	}
	var extra []goja.Value
	if len(call.Arguments) > 2 {
		extra = append(extra, call.Arguments[2:]...)
	}
	w.timerSeq++
	id := w.timerSeq
	act := w.current
	if act != nil {
		act.inflight++
	}
	gen := w.gen
	t := &jsTimer{act: act}
	t.timer = time.AfterFunc(time.Duration(delay*float64(time.Millisecond)), func() {
		w.post(act, func() {
			if _, live := w.timers[id]; !live || w.gen != gen {
				return
			}
			delete(w.timers, id)
			if act != nil {
				act.inflight--
			}
			if _, err := w.call(fn, goja.Undefined(), extra...); err != nil && w.broken == nil {
				w.log.Warn("setTimeout callback threw", "err", describeErr(w.rt, err))
			}
		})
	})
	w.timers[id] = t
	return w.rt.ToValue(id)
}

func (w *worker) clearTimeout(call goja.FunctionCall) goja.Value {
	id := call.Argument(0).ToInteger()
	if t, ok := w.timers[id]; ok {
		t.timer.Stop()
		delete(w.timers, id)
		if t.act != nil {
			t.act.inflight--
		}
	}
	return goja.Undefined()
}

// dropTimers stops the pending timers of an activation that ended.
func (w *worker) dropTimers(a *activation) {
	for id, t := range w.timers {
		if t.act == a {
			t.timer.Stop()
			delete(w.timers, id)
		}
	}
}

func describeErr(rt *goja.Runtime, err error) string {
	if ex, ok := err.(*goja.Exception); ok {
		return describeJSError(rt, ex.Value())
	}
	return fmt.Sprint(err)
}
