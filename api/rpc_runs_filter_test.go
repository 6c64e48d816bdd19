package api

import (
	"context"
	"fmt"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// TestListRunsConsoleFilters covers listRuns' optional filters: workflow,
// run id prefix, time range and the keyset cursor.
func TestListRunsConsoleFilters(t *testing.T) {
	g := newTestGateway(t)
	var gates []string
	for i := 0; i < 5; i++ {
		gates = append(gates, g.launch("gate", map[string]any{}))
	}
	echo := g.launch("echo", map[string]any{"n": 1})
	ids := func(v any) []string {
		var out []string
		for _, r := range v.([]any) {
			out = append(out, r.(map[string]any)["runId"].(string))
		}
		return out
	}
	if got := ids(g.ok("listRuns", map[string]any{"workflow": "echo"})); len(got) != 1 || got[0] != echo {
		t.Fatalf("workflow filter: %v, want [%s]", got, echo)
	}
	if got := ids(g.ok("listRuns", map[string]any{"filter": map[string]any{"runIdPrefix": gates[2][:12]}})); len(got) != 1 || got[0] != gates[2] {
		t.Fatalf("run id prefix: %v, want [%s]", got, gates[2])
	}
	// Two pages of two, then one, then none: each run exactly once.
	seen := map[string]bool{}
	params := map[string]any{"workflow": "gate", "limit": 2}
	for page := 0; page < 4; page++ {
		rows := g.ok("listRuns", params).([]any)
		for _, r := range rows {
			id := r.(map[string]any)["runId"].(string)
			if seen[id] {
				t.Fatalf("run %s on two pages", id)
			}
			seen[id] = true
		}
		if len(rows) == 0 {
			break
		}
		last := rows[len(rows)-1].(map[string]any)
		params["cursor"] = map[string]any{"createdAtMs": last["createdAtMs"], "runId": last["runId"]}
	}
	if len(seen) != 5 {
		t.Fatalf("paging listed %d of 5 gate runs", len(seen))
	}
	if got := g.ok("listRuns", map[string]any{"createdFromMs": 1, "createdToMs": 2}).([]any); len(got) != 0 {
		t.Fatalf("a time range in 1970 listed %d runs", len(got))
	}
	wantError(t, g.rpc(tokAll, "listRuns", map[string]any{"cursor": map[string]any{"runId": "x"}}), 400, "INVALID_INPUT")
	wantError(t, g.rpc(tokAll, "listRuns", map[string]any{"createdFromMs": "yesterday"}), 400, "INVALID_INPUT")
}

func TestListRunsLimitIsBounded(t *testing.T) {
	var st host.Store
	g := newTestGatewayStore(t, Config{}, func(s host.Store) host.Store { st = s; return s })
	if _, err := st.Update(context.Background(), func(tx host.Tx) error {
		for i := 0; i < maxListRuns+5; i++ {
			if err := tx.InsertRun(host.Run{RunID: fmt.Sprintf("r%04d", i), WorkflowKey: "echo", Status: host.RunFinished, CreatedAtMs: int64(i + 1)}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := g.ok("listRuns", map[string]any{"limit": 1e9}).([]any); len(got) != maxListRuns {
		t.Fatalf("listRuns with limit 1e9 answered %d rows, want the bound %d", len(got), maxListRuns)
	}
}
