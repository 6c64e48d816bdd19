package host

import (
	"context"
	"errors"
	"strings"
	"time"
)

// EventCronTriggered is appended to the run a scheduled cron started (and
// broadcast like every run event): {cronId, workflow, runId}.
const EventCronTriggered = "cron.triggered"

type cronTriggeredPayload struct {
	CronID   string `json:"cronId"`
	Workflow string `json:"workflow"`
	RunID    string `json:"runId"`
}

// cronRecheck is the longest the cron loop sleeps without looking at the
// table again (a cron changed by another tool, a clock step).
const cronRecheck = time.Minute

// cronRetryAfterError is how long the loop waits after a storage failure
// before it looks again, so that a failing store is never hammered.
const cronRetryAfterError = time.Second

// syncSchedules upserts cron "gateway:<key>" for every workflow registered
// with a schedule: enabled, with the module's pattern. A slot missed while
// the gateway was down keeps its past nextRunAtMs and so starts one
// catch-up run at once (never one per missed slot); a changed pattern is
// rescheduled from now.
func (g *Gateway) syncSchedules(ctx context.Context) error {
	now := g.now()
	for _, wf := range g.Workflows() {
		if wf.Schedule == "" {
			continue
		}
		next, err := NextCronTime(wf.Schedule, now)
		if err != nil {
			return err
		}
		id := CronWorkflowPath(wf.Key)
		err = g.update(ctx, func(tx Tx) error {
			c, ok, err := tx.GetCron(id)
			if err != nil {
				return err
			}
			if !ok {
				c = Cron{CronID: id, CreatedAtMs: now.UnixMilli()}
			}
			if !ok || c.Pattern != wf.Schedule || c.NextRunAtMs == 0 {
				c.NextRunAtMs = next.UnixMilli()
			}
			c.Pattern = wf.Schedule
			c.WorkflowPath = id
			c.WorkflowKey = wf.Key
			c.Enabled = true
			return tx.PutCron(c)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// kickCrons tells the cron loop that the table changed.
func (g *Gateway) kickCrons() {
	select {
	case g.cronKick <- struct{}{}:
	default:
	}
}

// cronLoop starts the runs of due crons. It sleeps until the earliest
// nextRunAtMs (a seconds pattern fires on its second), at most cronRecheck,
// and wakes early when a cron is created, changed or deleted.
func (g *Gateway) cronLoop() {
	defer g.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-g.cronKick:
		case <-t.C:
		}
		wait := cronRecheck
		if !g.store.Exclusive() {
			// Other processes change crons too, and only this process's
			// changes kick the loop: look again every second.
			wait = time.Second
		}
		next, err := g.fireDueCrons()
		switch {
		case err != nil:
			if !errors.Is(err, ErrStorageUnavailable) {
				g.log.Error("fire crons", "err", err)
			}
			wait = cronRetryAfterError
		case next > 0:
			wait = min(wait, max(0, time.Duration(next-g.nowMs())*time.Millisecond))
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(wait)
	}
}

// firable reports whether the gateway fires cron c: enabled, of a
// "gateway:<key>" path whose workflow the module registers. Crons made by
// other tools are listed but never fired.
func (g *Gateway) firable(c Cron) (WorkflowDef, bool) {
	key, ok := strings.CutPrefix(c.WorkflowPath, cronPathPrefix)
	if !ok || !c.Enabled {
		return WorkflowDef{}, false
	}
	wf, ok := g.workflows[key]
	return wf, ok
}

// fireDueCrons fires every due firable cron and returns the earliest
// nextRunAtMs still ahead (0 when none).
func (g *Gateway) fireDueCrons() (int64, error) {
	crons, err := g.store.ListCrons(context.Background())
	if err != nil {
		return 0, err
	}
	var earliest int64
	for _, c := range crons {
		wf, ok := g.firable(c)
		if !ok {
			continue
		}
		next := c.NextRunAtMs
		if next == 0 || next <= g.nowMs() {
			if next, err = g.fireCron(c.CronID, wf); err != nil {
				return 0, err
			}
		}
		if next > 0 && (earliest == 0 || next < earliest) {
			earliest = next
		}
	}
	return earliest, nil
}

// fireCron starts the run of one due slot. Claiming the slot (lastRunAtMs,
// the next nextRunAtMs) and creating the run commit in one transaction, so
// a slot starts exactly one run, also across a crash. A run that cannot be
// started leaves its reason in errorJson and is tried again at the next
// slot. It returns the cron's nextRunAtMs after the attempt.
func (g *Gateway) fireCron(cronID string, wf WorkflowDef) (int64, error) {
	now := g.now()
	ms := now.UnixMilli()
	var next int64
	var run Run
	var created bool
	err := g.update(context.Background(), func(tx Tx) error {
		run, created, next = Run{}, false, 0 // fn may run again
		c, ok, err := tx.GetCron(cronID)
		if err != nil || !ok {
			return err
		}
		next = c.NextRunAtMs
		if !c.Enabled || (c.NextRunAtMs != 0 && c.NextRunAtMs > ms) {
			return nil // changed since it was listed
		}
		c.LastRunAtMs = ms
		nt, err := NextCronTime(c.Pattern, now)
		if err != nil {
			c.ErrorJSON = err.Error()
			c.NextRunAtMs = ms + cronRecheck.Milliseconds()
			next = c.NextRunAtMs
			return tx.PutCron(c)
		}
		c.NextRunAtMs = nt.UnixMilli()
		next = c.NextRunAtMs
		r, isNew, err := g.insertLaunch(tx, wf, LaunchInput{Workflow: wf.Key, InputJSON: "{}", Auth: systemIdentity(), TriggeredBy: "cron:gateway"}, now)
		if err != nil {
			var refused *Error
			if !errors.As(err, &refused) {
				// Not the launch refused (storage, say): the cron's
				// slot is not used up; the whole fire fails and is
				// tried again.
				return err
			}
			// Upstream keeps the plain message in errorJson.
			c.ErrorJSON = err.Error()
			return tx.PutCron(c)
		}
		c.ErrorJSON = ""
		if err := tx.PutCron(c); err != nil {
			return err
		}
		if err := appendEvent(tx, r.RunID, EventCronTriggered, cronTriggeredPayload{CronID: c.CronID, Workflow: wf.Key, RunID: r.RunID}, ms); err != nil {
			return err
		}
		run, created = r, isNew
		return nil
	})
	if err != nil {
		return 0, err
	}
	if created {
		g.log.Info("cron started a run", "cronId", cronID, "workflow", wf.Key, "runId", run.RunID)
		if g.observer != nil {
			g.observer.CronFired(wf.Key)
		}
		g.started(run, true)
	}
	return next, nil
}
