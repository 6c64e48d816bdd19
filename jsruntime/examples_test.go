package jsruntime_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/examples"
	"github.com/smithers-orchestrator/smithers-go/host"
)

func exampleSource(t *testing.T, name string) string { return exampleSourceTB(t, name) }

func exampleSourceTB(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "examples", name, "gateway.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestExampleQuickstart(t *testing.T) {
	src := exampleSource(t, "quickstart")
	if src != examples.Quickstart {
		t.Fatal("the embedded quickstart differs from examples/quickstart/gateway.mjs")
	}
	h := newHarness(t, src)
	id := h.launch("quickstart", map[string]any{"name": "Ada"})
	h.waitStatus(id, host.RunWaitingApproval)
	if err := h.approve(id, "ship", true, nil); err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, h.output(id), `{"shipped":true,"greeting":"Hello, Ada!","publishedBy":"alice","key":"`+id+`:publish:0"}`)

	denied := h.launch("quickstart", nil)
	h.waitStatus(denied, host.RunWaitingApproval)
	if err := h.approve(denied, "ship", false, map[string]any{"approved": false, "note": "not today"}); err != nil {
		t.Fatal(err)
	}
	out := h.output(denied).(map[string]any)
	if out["shipped"] != false || out["greeting"] != "Hello, world!" {
		t.Fatalf("denied output %v", out)
	}
}

func TestExampleSignal(t *testing.T) {
	h := newHarness(t, exampleSource(t, "signal"))
	id := h.launch("order", map[string]any{"orderId": "o-42", "amount": 30})
	h.waitStatus(id, host.RunWaitingEvent)
	h.signal(id, "payment", strp("o-41"), map[string]any{"paid": 1})
	h.signal(id, "payment", strp("o-42"), map[string]any{"paid": 30})
	jsonEqual(t, h.output(id), `{"orderId":"o-42","paid":30,"settled":true}`)
}

func TestExampleTimer(t *testing.T) {
	h := newHarness(t, exampleSource(t, "timer"))
	id := h.launch("reminder", map[string]any{"delayMs": 1000, "message": "stand up"})
	h.waitStatus(id, host.RunWaitingTimer)
	out := h.output(id).(map[string]any)
	if out["message"] != "stand up" || out["delayMs"] != float64(1000) || out["waitedMs"].(float64) < 1000 {
		t.Fatalf("output %v: the sleep must have lasted at least delayMs", out)
	}
}

// TestExampleBench: the workflows of smithers bench do what bench/doc.go
// says: one step, ten steps, a run that parks, and a run that settles one
// wait per tick signal without parking.
func TestExampleBench(t *testing.T) {
	h := newHarness(t, exampleSource(t, "bench"))
	jsonEqual(t, h.output(h.launch("one-task", nil)), `{"ok":true}`)
	ten := h.launch("ten-tasks", nil)
	jsonEqual(t, h.output(ten), `{"steps":10}`)
	if n := len(h.nodes(ten)); n != 10 {
		t.Fatalf("ten-tasks journaled %d nodes", n)
	}
	h.waitStatus(h.launch("park", nil), host.RunWaitingApproval)
	ticks := h.launch("ticks", map[string]any{"count": 3})
	for range 3 {
		h.signal(ticks, "tick", nil, map[string]any{})
	}
	jsonEqual(t, h.output(ticks), `{"ticks":3}`)
}
