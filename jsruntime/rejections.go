package jsruntime

import (
	"github.com/dop251/goja"
)

// Unhandled promise rejections. A promise of module code that is rejected
// while nothing awaits or catches it (a ctx.task whose failure nobody
// awaits, a stray Promise.reject) would otherwise vanish without a trace:
// each is logged once, at the end of the turn in which it stayed
// unhandled, with the run, workflow and node it happened in when known.
// Like console output, it is not logged while the run replays.

// asyncContext is what JavaScript was running for: the activation and,
// inside a task body, the node. It follows promise reactions (the code
// after an await), so that a rejection in a task body's continuation is
// told apart from the workflow's own.
type asyncContext struct {
	act  *activation
	node string
}

// rejection is a promise rejected with no handler in the running turn.
type rejection struct {
	p         *goja.Promise
	at        asyncContext
	replaying bool
}

// asyncContextNow is the context of the JavaScript running now: the
// promise reaction's while one runs, else the turn's.
func (w *worker) asyncContextNow() asyncContext {
	if w.reaction != nil {
		return *w.reaction
	}
	return asyncContext{act: w.current, node: w.node}
}

// asyncTracker carries an asyncContext from where a promise reaction is
// registered (then, await) to where it runs. Loop-only, as goja calls it.
type asyncTracker struct{ w *worker }

func (t asyncTracker) Grab() any {
	c := t.w.asyncContextNow()
	return &c
}

func (t asyncTracker) Resumed(c any) { t.w.reaction, _ = c.(*asyncContext) }

// Exited ends the reaction; reactions do not nest (goja runs each from the
// job queue), so the turn's context applies again.
func (t asyncTracker) Exited() { t.w.reaction = nil }

// trackRejection is the runtime's promise rejection tracker: a promise
// rejected without a handler is noted, and forgotten again if a handler is
// added before the turn ends.
func (w *worker) trackRejection(p *goja.Promise, op goja.PromiseRejectionOperation) {
	switch op {
	case goja.PromiseRejectionReject:
		c := w.asyncContextNow()
		w.rejections = append(w.rejections, rejection{p: p, at: c, replaying: c.act != nil && c.act.replaying})
	case goja.PromiseRejectionHandle:
		for i, r := range w.rejections {
			if r.p == p {
				w.rejections = append(w.rejections[:i], w.rejections[i+1:]...)
				break
			}
		}
	}
}

// reportRejections logs the rejections still unhandled at the end of a
// turn, once each, and forgets them (no promise is kept past its turn).
func (w *worker) reportRejections() {
	rs := w.rejections
	w.rejections = nil
	for _, r := range rs {
		if r.replaying {
			continue
		}
		log := w.log
		if r.at.act != nil {
			log = r.at.act.log
		}
		attrs := []any{"source", "unhandledRejection", "err", describeJSError(w.rt, r.p.Result())}
		if r.at.node != "" {
			attrs = append(attrs, "nodeId", r.at.node)
		}
		log.Warn("unhandled promise rejection in module code: a promise was rejected and nothing awaited or caught it", attrs...)
	}
}
