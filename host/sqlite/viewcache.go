package sqlite

import (
	"sync"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// Bounds of the run-view cache: a view larger than viewCacheMaxView (a run
// with a large input or output) is never cached, and the cache is emptied
// when it would exceed viewCacheBytes or viewCacheViews.
const (
	viewCacheBytes   = 4 << 20
	viewCacheViews   = 4096
	viewCacheMaxView = 64 << 10
)

// viewCache keeps the committed views GetRunView read, so that a run polled
// by many callers (a console, a CLI following it) costs one read per
// change. It is exact, never stale: this process is the database's only
// writer (the owner lock), and the writer invalidates the views of every
// run a batch touched after its COMMIT and before it answers the batch's
// callers or publishes its events. A reader caches what it read only if no
// batch committed since it looked the run up (gen), so a view read from a
// snapshot older than a commit is never kept.
type viewCache struct {
	mu    sync.Mutex
	gen   uint64 // batches that touched runs, so far
	views map[string]host.RunView
	bytes int
}

// get returns the cached view of runID, or false and the generation a
// reader must pass to put.
func (c *viewCache) get(runID string) (host.RunView, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.views[runID]
	if ok && v.WaitingOn != nil {
		n := *v.WaitingOn // the caller may keep or change its copy
		v.WaitingOn = &n
	}
	return v, c.gen, ok
}

// put caches v, read after get returned gen, unless a batch committed since.
func (c *viewCache) put(runID string, v host.RunView, gen uint64) {
	size := viewSize(v)
	if size > viewCacheMaxView {
		return
	}
	if v.WaitingOn != nil {
		n := *v.WaitingOn
		v.WaitingOn = &n
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if _, ok := c.views[runID]; ok {
		return
	}
	if c.views == nil || c.bytes+size > viewCacheBytes || len(c.views) >= viewCacheViews {
		c.views, c.bytes = map[string]host.RunView{}, 0
	}
	c.views[runID] = v
	c.bytes += size
}

// invalidate drops the views of runs (the writer calls it after a COMMIT
// that touched them) and starts a new generation.
func (c *viewCache) invalidate(runs map[string]struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for id := range runs {
		if v, ok := c.views[id]; ok {
			c.bytes -= viewSize(v)
			delete(c.views, id)
		}
	}
}

// viewSize estimates the memory a cached view holds.
func viewSize(v host.RunView) int {
	r := v.Run
	n := 256 + len(r.RunID) + len(r.ParentRunID) + len(r.WorkflowKey) + len(r.WorkflowPath) + len(r.WorkflowHash) +
		len(r.Status) + len(r.RuntimeOwnerID) + len(r.ErrorJSON) + len(r.ConfigJSON) + len(r.InputJSON) + len(r.OutputJSON) +
		len(r.IdempotencyKey)
	if w := v.WaitingOn; w != nil {
		n += 128 + len(w.NodeID) + len(w.Label) + len(w.OutputJSON) + len(w.ErrorJSON) + len(w.MetaJSON)
	}
	return n
}
