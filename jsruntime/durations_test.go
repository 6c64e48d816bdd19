package jsruntime_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// durationsModule calls the entry point named by ctx.input.call with the
// duration ctx.input.value (the strings "NaN" and "Infinity" stand for those
// numbers) and returns what it threw.
const durationsModule = `
export default function (gateway) {
  gateway.register("dur", async (ctx) => {
    const raw = ctx.input.value;
    const v = raw === "NaN" ? NaN : raw === "Infinity" ? Infinity : raw;
    const calls = {
      "task.timeoutMs": () => ctx.task("build", () => "accepted", { timeoutMs: v }),
      "task.backoffMs": () => ctx.task("build", () => "accepted", { backoffMs: v }),
      "sleep": () => ctx.sleep("wait", v),
      "timer.durationMs": () => ctx.timer("tick", { durationMs: v }),
      "timer.untilMs": () => ctx.timer("tick", { untilMs: v }),
      "approval.timeoutMs": () => ctx.approval("ship", { timeoutMs: v }),
      "waitForEvent.timeoutMs": () => ctx.waitForEvent("deployed", { event: "deploy.done", timeoutMs: v }),
      "signal.timeoutMs": () => ctx.signal("go", { timeoutMs: v }),
      "exec.timeoutMs": () => ctx.task("run", async (t) => {
        try { await t.exec("true", [], { timeoutMs: v }); } catch (e) { return { name: e.name, code: e.code, message: e.message }; }
        return "accepted";
      }),
    };
    try {
      const r = await calls[ctx.input.call]();
      return r === undefined ? "accepted" : r;
    } catch (e) { return { name: e.name, code: e.code, message: e.message }; }
  });
}`

// TestDurationsAreValidated: every duration workflow code gives is refused
// when it is not a finite whole number of milliseconds from 0 to 100 years,
// with a TypeError (code INVALID_DURATION) naming the option, the value and
// the maximum, at the call that gave it. A timeoutMs of 1e13 once overflowed
// time.Duration and timed out at once.
func TestDurationsAreValidated(t *testing.T) {
	h := newHarness(t, durationsModule)
	const above = "duration 10000000000000 ms is above the maximum of 3153600000000 ms (100 years)"
	farAhead := time.Now().UnixMilli() + 2*host.MaxDurationMs
	for _, tc := range []struct {
		call  string
		value any
		want  string
	}{
		{"task.timeoutMs", 1e13, `ctx.task("build") options.timeoutMs: ` + above},
		{"task.timeoutMs", 0, `ctx.task("build") options.timeoutMs: duration 0 ms must be greater than 0`},
		{"task.backoffMs", 1e13, `ctx.task("build") options.backoffMs: ` + above},
		{"task.backoffMs", -1, `ctx.task("build") options.backoffMs: duration -1 ms is negative`},
		{"sleep", 1e13, `ctx.sleep("wait", ms): ` + above},
		{"sleep", -1, `ctx.sleep("wait", ms): duration -1 ms is negative`},
		{"sleep", "NaN", `ctx.sleep("wait", ms): duration NaN ms is not a finite number`},
		{"sleep", "Infinity", `ctx.sleep("wait", ms): duration Infinity ms is not a finite number`},
		{"sleep", 1.5, `ctx.sleep("wait", ms): duration 1.5 ms is not a whole number of milliseconds`},
		{"sleep", "5", `ctx.sleep("wait", ms): a duration must be a number of milliseconds, got string "5"`},
		{"sleep", 1e300, `ctx.sleep("wait", ms): duration 1e+300 ms is above the maximum of 3153600000000 ms (100 years)`},
		{"timer.durationMs", 1e13, `ctx.timer("tick") options.durationMs: ` + above},
		{"timer.untilMs", farAhead, `ctx.timer("tick") options.untilMs: time ` + strconv.FormatInt(farAhead, 10) + ` is `},
		{"timer.untilMs", "NaN", `ctx.timer("tick") options.untilMs: time NaN is not a finite number`},
		{"approval.timeoutMs", 1e13, `ctx.approval("ship") options.timeoutMs: ` + above},
		{"waitForEvent.timeoutMs", 1e13, `ctx.waitForEvent("deployed") options.timeoutMs: ` + above},
		{"signal.timeoutMs", 1e13, `ctx.signal("go") options.timeoutMs: ` + above},
		{"signal.timeoutMs", -3, `ctx.signal("go") options.timeoutMs: duration -3 ms is negative`},
		{"exec.timeoutMs", 1e13, `t.exec("true") options.timeoutMs: ` + above},
	} {
		t.Run(tc.call+" "+strconv.Quote(toString(tc.value)), func(t *testing.T) {
			out, ok := h.output(h.launch("dur", map[string]any{"call": tc.call, "value": tc.value})).(map[string]any)
			if !ok {
				t.Fatalf("%s(%v) was accepted; want a TypeError", tc.call, tc.value)
			}
			msg, _ := out["message"].(string)
			if out["name"] != "TypeError" || out["code"] != host.CodeInvalidDuration || len(msg) < len(tc.want) || msg[:len(tc.want)] != tc.want {
				t.Fatalf("%s(%v) threw %v\nwant a TypeError, code INVALID_DURATION, message starting %q", tc.call, tc.value, out, tc.want)
			}
		})
	}
	// The bounds themselves are accepted: a century-long task timeout does
	// not time out at once, and an untilMs in the past is due at once.
	for _, tc := range []struct {
		call  string
		value any
	}{
		{"task.timeoutMs", host.MaxDurationMs},
		{"exec.timeoutMs", host.MaxDurationMs},
		{"timer.untilMs", time.Now().UnixMilli() - 1000},
		{"timer.untilMs", -1e300},
		{"sleep", 0},
	} {
		jsonEqual(t, h.output(h.launch("dur", map[string]any{"call": tc.call, "value": tc.value})), `"accepted"`)
	}
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return strconv.Itoa(v.(int))
}

// TestSetTimeoutBeyondACenturyDoesNotFireAtOnce: a setTimeout delay too
// large for a time.Duration once wrapped around and fired at once.
func TestSetTimeoutBeyondACenturyDoesNotFireAtOnce(t *testing.T) {
	h := newHarness(t, `
export default function (gateway) {
  gateway.register("wf", async () => new Promise((resolve) => {
    setTimeout(() => resolve("fired"), 1e300);
    setTimeout(() => resolve("waited"), 50);
  }));
}`)
	jsonEqual(t, h.output(h.launch("wf", nil)), `"waited"`)
}
