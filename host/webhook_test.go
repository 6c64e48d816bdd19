package host_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/host/sqlite"
	"github.com/smithers-orchestrator/smithers-go/testkit"
)

// TestBlankWebhookSecretRefusesStart: a webhook whose secret is blank (or
// only spaces) makes New fail naming the workflow, so start-up stops
// instead of refusing every delivery later.
func TestBlankWebhookSecretRefusesStart(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "smithers.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, secret := range []string{"", "  \t"} {
		exec := &fakeExec{wfs: []host.WorkflowDef{{Key: "fine", Webhook: &host.WebhookConfig{Secret: "s"}},
			{Key: "github-push", Webhook: &host.WebhookConfig{Secret: secret}}}}
		_, err := host.New(host.Config{Store: st, Executor: exec})
		if err == nil || !strings.Contains(err.Error(), `"github-push"`) || !strings.Contains(err.Error(), "secret") {
			t.Fatalf("secret %q: New = %v, want an error naming workflow \"github-push\" and its secret", secret, err)
		}
	}
	exec := &fakeExec{wfs: []host.WorkflowDef{{Key: "fine", Webhook: &host.WebhookConfig{Secret: "s"}}, {Key: "plain"}}}
	if _, err := host.New(host.Config{Store: st, Executor: exec}); err != nil {
		t.Fatalf("New with a set secret: %v", err)
	}
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newWebhookEngine is a gateway whose workflow "wf" (one task) has a
// run-creating webhook, on clk.
func newWebhookEngine(t *testing.T, clk *clock) *engine {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "smithers.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &engine{t: t, store: &faultyStore{Store: st}, logs: &testkit.Buffer{}}
	e.exec = &fakeExec{script: oneTask(nil), wfs: []host.WorkflowDef{{Key: "wf", Webhook: &host.WebhookConfig{Secret: "s"}}}}
	e.gw, err = host.New(host.Config{Store: e.store, Executor: e.exec, InstanceID: "me", Now: clk.now,
		Logger: slog.New(slog.NewJSONHandler(e.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.gw.Close()
		_ = st.Close()
	})
	return e
}

// TestWebhookDeliveryIDsExpire: a delivery id is a duplicate for
// WebhookDedupeWindow and a new delivery after it; expired records are
// swept by later deliveries.
func TestWebhookDeliveryIDsExpire(t *testing.T) {
	clk := &clock{t: time.Now()}
	e := newWebhookEngine(t, clk)
	ctx := context.Background()
	deliver := func(id string) host.WebhookResult {
		t.Helper()
		res, err := e.gw.DeliverWebhook(ctx, host.WebhookDelivery{Workflow: "wf", DeliveryID: id, Body: map[string]any{}})
		if err != nil {
			t.Fatalf("deliver %s: %v", id, err)
		}
		return res
	}
	first := deliver("d-1")
	if first.Duplicate || first.Started == nil {
		t.Fatalf("first delivery %+v", first)
	}
	clk.add(host.WebhookDedupeWindow - time.Millisecond)
	if again := deliver(" d-1 "); !again.Duplicate || again.Started == nil || again.Started.RunID != first.Started.RunID {
		t.Fatalf("retry within the window %+v, want the first result marked duplicate", again)
	}
	clk.add(2 * time.Millisecond)
	late := deliver("d-1")
	if late.Duplicate || late.Started == nil || late.Started.RunID == first.Started.RunID {
		t.Fatalf("retry after the window %+v, want a new delivery", late)
	}
	if n := len(e.runs()); n != 2 {
		t.Fatalf("%d runs, want 2", n)
	}

	// An expired record is deleted by the next delivery with an id.
	deliver("old")
	clk.add(host.WebhookDedupeWindow + time.Second)
	deliver("new")
	if _, err := e.store.Update(ctx, func(tx host.Tx) error {
		if _, found, err := tx.WebhookDelivery("wf", "old", 0); err != nil || found {
			t.Errorf("expired delivery record: found %v, err %v; want it swept", found, err)
		}
		if _, found, err := tx.WebhookDelivery("wf", "new", 0); err != nil || !found {
			t.Errorf("new delivery record: found %v, err %v", found, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// Without an id every delivery is new; a huge id is stored hashed and
	// still recognised.
	if a, b := deliver(""), deliver(""); a.Started.RunID == b.Started.RunID {
		t.Fatal("two deliveries without an id were taken as one")
	}
	huge := strings.Repeat("x", 10_000)
	if a, b := deliver(huge), deliver(huge); !b.Duplicate || a.Started.RunID != b.Started.RunID {
		t.Fatalf("a long delivery id is not recognised: %+v %+v", a, b)
	}
}
