package e2e

import (
	"math/rand"
	"sort"
	"testing"
	"time"
)

// scheduledModule registers a workflow that fires every two seconds.
const scheduledModule = `
export default function register(gateway) {
  gateway.register("tick", async (ctx) => {
    return await ctx.task("work", async () => ({ at: Date.now() }));
  }, { schedule: "*/2 * * * * *" });
}
`

// TestScheduleFiresOnTimeAndOncePerSlotAcrossKills runs an every-two-
// seconds schedule through SIGKILLs: each slot starts its run within a
// second of its time, and no slot ever starts two runs (claiming a slot and
// creating its run are one commit).
func TestScheduleFiresOnTimeAndOncePerSlotAcrossKills(t *testing.T) {
	t.Parallel()
	const slotMs = 2000
	g := startGateway(t, writeModule(t, scheduledModule))
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	t.Logf("kill moments from seed %d", seed)

	listTicks := func() []runRow {
		var rows []runRow
		decode(t, g.rpc("listRuns", map[string]any{"limit": 1000}), &rows)
		sort.Slice(rows, func(i, j int) bool { return rows[i].CreatedAtMs < rows[j].CreatedAtMs })
		return rows
	}
	eventually(t, 5*time.Second, "the first scheduled run", func() bool { return len(listTicks()) > 0 })
	first := listTicks()[0]
	if late := first.CreatedAtMs % slotMs; late > 1000 {
		t.Errorf("the first run started %d ms after its slot, want within 1 s", late)
	}

	for round := 0; round < 3; round++ {
		// Kill at a random moment, sometimes right after a fire.
		time.Sleep(time.Duration(200+rng.Intn(2500)) * time.Millisecond)
		g.kill9()
		time.Sleep(time.Duration(rng.Intn(2500)) * time.Millisecond)
		g.restart()
	}
	time.Sleep(3 * time.Second)

	rows := listTicks()
	perSlot := map[int64][]string{}
	for _, r := range rows {
		slot := r.CreatedAtMs / slotMs
		perSlot[slot] = append(perSlot[slot], r.RunID)
	}
	for slot, ids := range perSlot {
		if len(ids) > 1 {
			t.Errorf("slot at %s started %d runs: %v", time.UnixMilli(slot*slotMs).Format(time.RFC3339), len(ids), ids)
		}
	}
	if len(rows) < 4 {
		t.Errorf("only %d scheduled runs over the test, want one per slot the gateway was up for", len(rows))
	}
	for _, r := range rows {
		if r.Status != "finished" && r.Status != "running" {
			t.Errorf("scheduled run %s is %s", r.RunID, r.Status)
		}
	}
}
