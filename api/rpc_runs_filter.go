package api

import (
	"math"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// runListFilter reads listRuns' optional filters, which go beyond upstream
// (its clients never send them) and serve the console: workflow,
// createdFromMs/createdToMs (a time range on createdAtMs), runIdPrefix
// (search by run id) and cursor {createdAtMs, runId}, the last run of the
// previous page. Each may be a top-level param or sit in filter.
func runListFilter(p, f params) (host.RunFilter, error) {
	var out host.RunFilter
	out.WorkflowKey, _ = p.strOr("workflow", f)
	out.RunIDPrefix, _ = p.strOr("runIdPrefix", f)
	var err error
	if out.CreatedFromMs, err = msParam(p, f, "createdFromMs"); err != nil {
		return out, err
	}
	if out.CreatedToMs, err = msParam(p, f, "createdToMs"); err != nil {
		return out, err
	}
	cur := p.obj("cursor")
	if cur == nil {
		cur = f.obj("cursor")
	}
	if cur != nil {
		raw, present := cur["createdAtMs"]
		at, ok := jsNumber(raw)
		id, idOK := cur.str("runId")
		if !present || raw == nil || !ok || at < 0 || at != math.Trunc(at) || !idOK || id == "" {
			return out, errInvalidInput("cursor must be {createdAtMs, runId} of the last run of the previous page.")
		}
		out.After = &host.RunCursor{CreatedAtMs: int64(at), RunID: id}
	}
	return out, nil
}

// msParam reads an optional non-negative integer millisecond time.
func msParam(p, f params, key string) (int64, error) {
	v, ok := p[key]
	if !ok && f != nil {
		v, ok = f[key]
	}
	if !ok || v == nil {
		return 0, nil
	}
	n, isNum := jsNumber(v)
	if !isNum || n < 0 || n != math.Trunc(n) || n > math.MaxInt64/2 {
		return 0, errInvalidInput("%s must be a time in Unix milliseconds.", key)
	}
	return int64(n), nil
}
