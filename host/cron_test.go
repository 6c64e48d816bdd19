package host_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
)

func (e *engine) runs() []host.Run {
	e.t.Helper()
	runs, err := e.store.ListRuns(context.Background(), host.RunFilter{})
	if err != nil {
		e.t.Fatal(err)
	}
	return runs
}

func (e *engine) cron(id string) host.Cron {
	e.t.Helper()
	crons, _ := e.store.ListCrons(context.Background())
	for _, c := range crons {
		if c.CronID == id {
			return c
		}
	}
	e.t.Fatalf("no cron %s", id)
	return host.Cron{}
}

func TestScheduleStartsRunsOnTime(t *testing.T) {
	e := newEngine(t, oneTask(nil), engineOpts{schedule: "* * * * * *"})
	c := e.cron("gateway:wf")
	if !c.Enabled || c.Pattern != "* * * * * *" || c.WorkflowPath != "gateway:wf" || c.NextRunAtMs <= 0 {
		t.Fatalf("cron of the schedule = %+v", c)
	}
	start := time.Now()
	e.waitFor("a scheduled run", func() bool { return len(e.runs()) > 0 })
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the first run of an every-second schedule took %v", d)
	}
	r := e.runs()[0]
	var cfg struct {
		TriggeredBy string `json:"gatewayTriggeredBy"`
		Auth        struct {
			Role   string   `json:"role"`
			Scopes []string `json:"scopes"`
		} `json:"auth"`
	}
	_ = json.Unmarshal([]byte(r.ConfigJSON), &cfg)
	if cfg.TriggeredBy != "cron:gateway" || cfg.Auth.Role != "system" || r.InputJSON != "{}" {
		t.Errorf("scheduled run config %s input %s, want triggeredBy cron:gateway, role system, input {}", r.ConfigJSON, r.InputJSON)
	}
	evs, _ := e.store.ListEvents(context.Background(), r.RunID, 0, 0)
	if len(evs) == 0 || evs[0].Name != host.EventCronTriggered || !strings.Contains(string(evs[0].Payload), `"cronId":"gateway:wf"`) {
		t.Errorf("first event of the scheduled run = %+v, want cron.triggered", evs)
	}
	e.waitStatus(r.RunID, host.RunFinished)
	c = e.cron("gateway:wf")
	if c.LastRunAtMs < r.CreatedAtMs || c.NextRunAtMs <= c.LastRunAtMs || c.ErrorJSON != "" {
		t.Errorf("after a fire: lastRunAtMs %d nextRunAtMs %d (run created %d) errorJson %q", c.LastRunAtMs, c.NextRunAtMs, r.CreatedAtMs, c.ErrorJSON)
	}
	// One run per slot: over ~2.5 s at most 4 slots have passed.
	time.Sleep(1500 * time.Millisecond)
	runs := e.runs()
	slots := int(time.Since(start)/time.Second) + 2
	if len(runs) < 2 || len(runs) > slots {
		t.Errorf("%d runs after %v of an every-second schedule", len(runs), time.Since(start))
	}
}

func TestMissedSlotsStartOneCatchUpRun(t *testing.T) {
	start := time.Now()
	hourAgo := start.Add(-time.Hour).UnixMilli()
	e := newEngine(t, oneTask(nil), engineOpts{schedule: "0 * * * * *", beforeBoot: func(st *faultyStore) {
		// The gateway was down for an hour: sixty minute-slots missed.
		if _, err := st.Update(context.Background(), func(tx host.Tx) error {
			return tx.PutCron(host.Cron{CronID: "gateway:wf", Pattern: "0 * * * * *", WorkflowPath: "gateway:wf", WorkflowKey: "wf",
				Enabled: true, CreatedAtMs: hourAgo, NextRunAtMs: hourAgo})
		}); err != nil {
			t.Fatal(err)
		}
	}})
	e.waitFor("the catch-up run", func() bool { return len(e.runs()) > 0 })
	time.Sleep(300 * time.Millisecond)
	// A slot that came due while the test ran fires too (the schedule is
	// every minute at second 0).
	want := 1 + int(time.Now().Truncate(time.Minute).Sub(start.Truncate(time.Minute))/time.Minute)
	if n := len(e.runs()); n != want {
		t.Fatalf("%d runs after 60 missed slots, want one catch-up run (and %d slots that came due meanwhile)", n, want-1)
	}
	if c := e.cron("gateway:wf"); c.NextRunAtMs <= time.Now().UnixMilli() {
		t.Fatalf("nextRunAtMs %d is not in the future after the catch-up", c.NextRunAtMs)
	}
}

func TestCronsThatMustNotFire(t *testing.T) {
	ctx := context.Background()
	past := time.Now().Add(-time.Minute).UnixMilli()
	e := newEngine(t, oneTask(nil), engineOpts{beforeBoot: func(st *faultyStore) {
		if _, err := st.Update(ctx, func(tx host.Tx) error {
			for _, c := range []host.Cron{
				{CronID: "disabled", Pattern: "* * * * * *", WorkflowPath: "gateway:wf", WorkflowKey: "wf", NextRunAtMs: past},
				{CronID: "other-tool", Pattern: "* * * * * *", WorkflowPath: "/srv/flows/wf.tsx", Enabled: true, NextRunAtMs: past},
				{CronID: "unknown-workflow", Pattern: "* * * * * *", WorkflowPath: "gateway:gone", Enabled: true, NextRunAtMs: past},
			} {
				if err := tx.PutCron(c); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}})
	time.Sleep(1500 * time.Millisecond)
	if runs := e.runs(); len(runs) != 0 {
		t.Fatalf("crons that must not fire started %d runs", len(runs))
	}
	// Enabling the disabled one through the API makes it fire.
	if _, err := e.gw.CreateCron(ctx, host.CronInput{CronID: "disabled", Workflow: "wf", Pattern: "* * * * * *", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the enabled cron to fire", func() bool { return len(e.runs()) > 0 })
}
