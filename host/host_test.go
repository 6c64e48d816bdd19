package host

import (
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestComputeRunState(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	approval := &Node{NodeID: "early", State: NodeWaitingApproval, CreatedAtMs: 800_000}
	timer := &Node{NodeID: "t1", State: NodeWaitingTimer, FiresAtMs: 1_500_000}
	event := &Node{NodeID: "ev", State: NodeWaitingEvent, MetaJSON: `{"waitForEvent":{"signalName":"pay","correlationId":"o-1"}}`}
	for _, tc := range []struct {
		run       Run
		waitingOn *Node
		state     string
		blockedID string
		unhealthy bool
	}{
		{Run{Status: RunFinished}, nil, "succeeded", "", false},
		{Run{Status: RunContinued}, nil, "succeeded", "", false},
		{Run{Status: RunFailed}, nil, "failed", "", false},
		{Run{Status: RunCancelled}, nil, "cancelled", "", false},
		{Run{Status: RunWaitingApproval}, approval, "waiting-approval", "early", false},
		{Run{Status: RunWaitingApproval}, nil, "waiting-approval", "", false},
		// A node in another state blocks nothing.
		{Run{Status: RunWaitingApproval}, timer, "waiting-approval", "", false},
		{Run{Status: RunWaitingTimer}, timer, "waiting-timer", "t1", false},
		{Run{Status: RunWaitingEvent}, event, "waiting-event", "ev", false},
		{Run{Status: RunRunning, HeartbeatAtMs: 990_000, RuntimeOwnerID: "me"}, nil, "running", "", false},
		{Run{Status: RunRunning}, nil, "unknown", "", false},
		{Run{Status: RunRunning, StartedAtMs: 100, RuntimeOwnerID: "me"}, nil, "stale", "", true},
		{Run{Status: RunRunning, StartedAtMs: 100}, nil, "orphaned", "", true},
	} {
		v := ComputeRunState(tc.run, tc.waitingOn, now)
		if v.State != tc.state {
			t.Fatalf("%s: state %s, want %s", tc.run.Status, v.State, tc.state)
		}
		got := ""
		if v.Blocked != nil {
			got = v.Blocked.NodeID
		}
		if got != tc.blockedID {
			t.Fatalf("%s: blocked %v, want node %q", tc.run.Status, v.Blocked, tc.blockedID)
		}
		if (v.Unhealthy != nil) != tc.unhealthy {
			t.Fatalf("%s: unhealthy %v", tc.state, v.Unhealthy)
		}
	}
	if v := ComputeRunState(Run{Status: RunWaitingEvent}, event, now); v.Blocked.CorrelationKey != "o-1" || v.Blocked.Kind != "event" {
		t.Fatalf("event blocked %v", v.Blocked)
	}
	if v := ComputeRunState(Run{Status: RunWaitingTimer}, timer, now); v.Blocked.WakeAt != "1970-01-01T00:25:00.000Z" || v.Blocked.Kind != "timer" {
		t.Fatalf("timer blocked %v", v.Blocked)
	}
}

func TestNodeCountsSummary(t *testing.T) {
	var c NodeCounts
	c.Add(NodeFinished, 2)
	c.Add(NodeWaitingApproval, 1)
	c.Add(NodeFinished, -1)
	c.Add(NodeState("unknown"), 5)
	if got := c.Summary(); len(got) != 2 || got["finished"] != 1 || got["waiting-approval"] != 1 {
		t.Fatalf("summary %v", got)
	}
	if c.Of(NodeFinished) != 1 || c.Of(NodePending) != 0 || len(NodeStates()) != len(c) {
		t.Fatalf("counts %v", c)
	}
}

func TestDecodeDecision(t *testing.T) {
	for _, tc := range []struct {
		decision       string
		payload, value string
	}{
		{``, "", "null"},
		{`{"approved":true,"value":{"x":1}}`, `{"x":1}`, `{"x":1}`},
		{`{"approved":true,"note":"ok"}`, `{"approved":true,"note":"ok"}`, "null"},
		{`{"approved":true,"selected":"a"}`, `{"approved":true,"selected":"a"}`, `{"selected":"a"}`},
		{`"legacy payload"`, `"legacy payload"`, `"legacy payload"`},
	} {
		d, err := decodeDecision(DecisionInput{Approved: true, Decision: json.RawMessage(tc.decision)})
		if err != nil {
			t.Fatal(err)
		}
		if d.payload != tc.payload || d.value != tc.value {
			t.Fatalf("%s: payload %q value %q, want %q %q", tc.decision, d.payload, d.value, tc.payload, tc.value)
		}
	}
}

func TestValidateModeDecision(t *testing.T) {
	sel := `{"mode":"select","options":[{"key":"a"},{"key":"b"}]}`
	rank := `{"mode":"rank","options":[{"key":"a"},{"key":"b"}]}`
	for _, tc := range []struct {
		req, decision, code string
	}{
		{`{"mode":"gate"}`, `{}`, ""},
		{sel, `{"selected":"a"}`, ""},
		{sel, `{}`, CodeInvalidRequest},
		{sel, `{"selected":"z"}`, CodeInvalidRequest},
		{rank, `{"ranked":["b","a"]}`, ""},
		{rank, `{"ranked":[]}`, CodeInvalidRequest},
		{rank, `{"ranked":["a","z"]}`, CodeInvalidRequest},
	} {
		err := validateModeDecision(tc.req, json.RawMessage(tc.decision))
		if ErrorCode(err) != tc.code {
			t.Fatalf("%s %s: %v, want %q", tc.req, tc.decision, err, tc.code)
		}
	}
}

// TestTimerWheelFiresInOrderAndLate: entries fire in due order, entries
// already due fire at once (late rather than never), and close stops it.
func TestTimerWheelFiresInOrderAndLate(t *testing.T) {
	var mu sync.Mutex
	var fired []string
	done := make(chan struct{}, 10)
	w := newTimerWheel(time.Now, func(e timerEntry) {
		mu.Lock()
		fired = append(fired, e.nodeID)
		mu.Unlock()
		done <- struct{}{}
	})
	now := time.Now().UnixMilli()
	w.arm(timerEntry{at: now + 60, nodeID: "c"})
	w.arm(timerEntry{at: now - 1000, nodeID: "a"}) // came due while down
	w.arm(timerEntry{at: now + 30, nodeID: "b"})
	w.start()
	defer w.close()
	for i := 0; i < 3; i++ {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("only %v fired", fired)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(fired) != 3 || fired[0] != "a" || fired[1] != "b" || fired[2] != "c" {
		t.Fatalf("fired %v", fired)
	}
}

func TestCronPatterns(t *testing.T) {
	for _, p := range []string{"0 8 * * 1-5", "*/5 * * * *", "0 0 12 * * MON", "@daily"} {
		if err := ValidateCronPattern(p); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	if err := ValidateCronPattern("not a cron"); ErrorCode(err) != CodeInvalidInput {
		t.Fatalf("bad pattern: %v", err)
	}
	from := time.Date(2026, 11, 24, 7, 0, 0, 0, time.UTC)
	next, err := NextCronTime("0 8 * * 1-5", from)
	if err != nil || !next.Equal(time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)) {
		t.Fatalf("next %v %v", next, err)
	}
}

func TestRunSourceAndValidators(t *testing.T) {
	for cfg, want := range map[string]string{
		`{"gatewayTriggeredBy":"cron:gateway"}`: "cron", `{"gatewayTriggeredBy":"webhook:gh"}`: "webhook",
		`{"gatewayTriggeredBy":"gateway"}`: "gateway", `{"gatewayTriggeredBy":"alice"}`: "user", ``: "user",
	} {
		if got := runSource(cfg); got != want {
			t.Fatalf("%s: %s, want %s", cfg, got, want)
		}
	}
	if !ValidRunID("run-1_a") || ValidRunID("Run") || ValidRunID("") {
		t.Fatal("run id pattern")
	}
	if !ValidStepID("ship:1") || ValidStepID("has space") {
		t.Fatal("step id pattern")
	}
	if !ValidWorkflowKey("a.b:c-d_e") || ValidWorkflowKey("a/b") {
		t.Fatal("workflow key pattern")
	}
}

// TestIDValidatorsMatchTheirPatterns: the hand-written validators accept
// exactly what the documented patterns accept.
func TestIDValidatorsMatchTheirPatterns(t *testing.T) {
	for _, tc := range []struct {
		valid   func(string) bool
		pattern string
	}{
		{ValidWorkflowKey, `^[A-Za-z0-9._:-]{1,128}$`},
		{ValidRunID, `^[a-z0-9_-]{1,64}$`},
		{ValidStepID, `^[A-Za-z0-9:_-]{1,128}$`},
	} {
		re := regexp.MustCompile(tc.pattern)
		inputs := []string{"", "a", "A", "z9", "a.b", "a:b", "a_b", "a-b", "a b", "é", "a/b", "a\x00", strings.Repeat("a", 64),
			strings.Repeat("a", 65), strings.Repeat("Z", 128), strings.Repeat("Z", 129), "run-1_x", "Run", "x.y:z-w_v"}
		for c := 0; c < 256; c++ {
			inputs = append(inputs, "k"+string(rune(c)), string([]byte{byte(c)}))
		}
		for _, in := range inputs {
			if got, want := tc.valid(in), re.MatchString(in); got != want {
				t.Errorf("%s: %q valid %v, pattern says %v", tc.pattern, in, got, want)
			}
		}
	}
}
