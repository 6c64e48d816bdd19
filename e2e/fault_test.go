package e2e

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver, to read the database after the final stop
)

// faultModule: a workflow of three sequential tasks. Each body appends a
// "start <runId> <nodeId> <attempt> <Date.now()>" line to the file named by
// SMITHERS_FAULT_LOG as the first thing it does, then works 10-50 ms.
const faultModule = `
export default function register(gateway) {
  gateway.register("fault", async (ctx) => {
    const done = [];
    for (const id of ["a", "b", "c"]) {
      done.push(await ctx.task(id, async (t) => {
        const line = ["start", t.runId, t.nodeId, t.attempt, Date.now()].join(" ");
        await t.exec("sh", ["-c", 'echo "$2" >> "$1"', "sh", t.env("SMITHERS_FAULT_LOG"), line]);
        await new Promise((r) => setTimeout(r, 10 + Math.floor(Math.random() * 40)));
        return t.nodeId;
      }));
    }
    return { n: ctx.input.n, done };
  }, { env: ["SMITHERS_FAULT_LOG"] });
}
`

const (
	faultRuns   = 200
	faultRounds = 8
	// faultLaunchers is how many launches are in flight at once.
	faultLaunchers = 4
	// faultSettle bounds how long the runs may take to finish after the
	// last restart; faultLaunchDeadline how long one launch may keep
	// failing because the gateway is down.
	faultSettle         = 90 * time.Second
	faultLaunchDeadline = 60 * time.Second
)

var faultNodes = []string{"a", "b", "c"}

// TestFaultKillRestartRounds launches 200 runs of a three-task workflow,
// each with its own idempotency key, while SIGKILLing and restarting the
// gateway on the same database 8 times at random moments; launches cut off
// by a kill are retried with the same key after the restart. Then every run
// must finish, no task body may have started after its node was journaled
// finished, there must be exactly one run per key, and the database must
// pass PRAGMA integrity_check after a clean stop.
//
// The kill moments come from a seeded RNG; SMITHERS_FAULT_SEED=<seed>
// replays the same moments (the interleaving still depends on timing).
func TestFaultKillRestartRounds(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SMITHERS_FAULT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SMITHERS_FAULT_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("kill moments from seed %d (SMITHERS_FAULT_SEED=%d reproduces them)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed>>32|1))
	began := time.Now()

	bodyLog := filepath.Join(t.TempDir(), "bodies.log")
	g := startGatewayWith(t, gatewayConfig{module: writeModule(t, faultModule), env: []string{"SMITHERS_FAULT_LOG=" + bodyLog}})
	l := newFaultLauncher(g.Token, g.URL)
	var wg sync.WaitGroup
	for range faultLaunchers {
		wg.Go(l.work)
	}
	launchersDone := make(chan struct{})
	go func() { wg.Wait(); close(launchersDone) }()
	// Whatever happens below, the launchers stop before the test returns.
	t.Cleanup(func() { l.stop(); <-launchersDone })

	for round := 1; round <= faultRounds; round++ {
		// The round's keys are handed out evenly over the delay, so that
		// runs are starting, running and finishing when the kill lands.
		delay := time.Duration(100+rng.IntN(501)) * time.Millisecond
		from, to := (round-1)*faultRuns/faultRounds, round*faultRuns/faultRounds
		start := time.Now()
		for k := from; k < to; k++ {
			// Not synchronisation: a schedule of launches, then a kill at a
			// random moment of the work.
			time.Sleep(time.Until(start.Add(delay * time.Duration(k-from) / time.Duration(to-from))))
			l.allow(k + 1)
		}
		time.Sleep(time.Until(start.Add(delay)))
		running := countRunning(g)
		g.kill9()
		g.restart()
		l.setURL(g.URL)
		t.Logf("round %d: SIGKILL %v after the start, %d runs running, %d keys launched", round, delay, running, l.launched())
	}

	select {
	case <-launchersDone:
	case <-time.After(faultLaunchDeadline):
		l.stop()
		<-launchersDone
	}
	runIDs, retried, failures := l.result()
	for _, f := range failures {
		t.Error(f)
	}
	if t.Failed() {
		t.FailNow()
	}

	rows := waitAllFinished(t, g, runIDs)
	if len(rows) != faultRuns {
		t.Errorf("listRuns lists %d runs after %d launches with distinct idempotency keys, want %d", len(rows), faultRuns, faultRuns)
	}
	// Launching every key again must answer the run it already made.
	for i, key := range faultKeys() {
		var out struct {
			RunID string `json:"runId"`
		}
		decode(t, g.rpc("launchRun", faultLaunchParams(i, key)), &out)
		if out.RunID != runIDs[key] {
			t.Errorf("launchRun with idempotency key %s answered run %s, but the first launch with that key answered run %s", key, out.RunID, runIDs[key])
		}
	}
	if code := g.terminate(); code != 0 {
		t.Fatalf("gateway exited %d on SIGTERM after the fault rounds, want 0", code)
	}

	db := openFaultDB(t, g.DBPath)
	checkIntegrity(t, db)
	checkRunsPerKey(t, db, runIDs)
	starts := readBodyStarts(t, bodyLog)
	interrupted := checkNoStartAfterFinish(t, db, runIDs, starts)
	t.Logf("%d runs, %d kill rounds, %d launch calls retried, %d task bodies started, %d of them interrupted by a kill and run again, %v in all",
		faultRuns, faultRounds, retried, len(starts), interrupted, time.Since(began).Round(time.Millisecond))
	if interrupted == 0 {
		t.Errorf("none of the %d kills interrupted a task body: the test did not exercise recovery (the work got faster than the kill delays?)", faultRounds)
	}
}

func faultKeys() []string {
	keys := make([]string, faultRuns)
	for i := range keys {
		keys[i] = fmt.Sprintf("fault-%03d", i)
	}
	return keys
}

func faultLaunchParams(n int, key string) map[string]any {
	return map[string]any{"workflow": "fault", "input": map[string]any{"n": n}, "options": map[string]any{"idempotencyKey": key}}
}

// faultLauncher launches the runs of faultKeys from several goroutines,
// up to a quota the test raises round by round. A launch that fails
// because the gateway is down is retried, with the same key, until it
// answers (at the URL of the restarted gateway).
type faultLauncher struct {
	token string
	keys  chan int
	quit  chan struct{}

	mu       sync.Mutex
	url      string
	next     int // keys below next have been handed to the launchers
	closed   bool
	runIDs   map[string]string
	retried  int
	failures []string
}

func newFaultLauncher(token, url string) *faultLauncher {
	return &faultLauncher{token: token, url: url, keys: make(chan int, faultRuns),
		quit: make(chan struct{}), runIDs: map[string]string{}}
}

// allow hands the keys below n to the launchers.
func (l *faultLauncher) allow(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for ; l.next < n; l.next++ {
		l.keys <- l.next
	}
	if l.next == faultRuns && !l.closed {
		l.closed = true
		close(l.keys)
	}
}

// stop makes the launchers give up.
func (l *faultLauncher) stop() {
	l.allow(faultRuns)
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.quit:
	default:
		close(l.quit)
	}
}

func (l *faultLauncher) setURL(url string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.url = url
}

func (l *faultLauncher) currentURL() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.url
}

func (l *faultLauncher) launched() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.runIDs)
}

// result returns the runId each key's launch answered, how many launch
// calls were retried, and what went wrong.
func (l *faultLauncher) result() (map[string]string, int, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	failures := slices.Clone(l.failures)
	keys := faultKeys()
	for _, key := range keys {
		if _, ok := l.runIDs[key]; !ok && len(l.failures) == 0 {
			failures = append(failures, fmt.Sprintf("launchRun with idempotency key %s never answered within %v of retrying", key, faultLaunchDeadline))
		}
	}
	return l.runIDs, l.retried, failures
}

func (l *faultLauncher) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, fmt.Sprintf(format, args...))
}

func (l *faultLauncher) work() {
	keys := faultKeys()
	for i := range l.keys {
		l.launch(i, keys[i])
	}
}

// launch calls launchRun for key until it answers; a transport error or
// 503 means that the gateway is down or restarting.
func (l *faultLauncher) launch(n int, key string) {
	deadline := time.Now().Add(faultLaunchDeadline)
	for {
		select {
		case <-l.quit:
			return
		default:
		}
		url := l.currentURL()
		status, f, err := tryRPC(url, l.token, "launchRun", faultLaunchParams(n, key))
		if err == nil && status == http.StatusOK && f.OK {
			var out struct {
				RunID    string `json:"runId"`
				Workflow string `json:"workflow"`
			}
			if err := json.Unmarshal(f.Payload, &out); err != nil || out.RunID == "" || out.Workflow != "fault" {
				l.fail("launchRun with idempotency key %s answered %s", key, f.Payload)
				return
			}
			l.mu.Lock()
			l.runIDs[key] = out.RunID
			l.mu.Unlock()
			return
		}
		if err == nil && status != http.StatusServiceUnavailable {
			l.fail("launchRun with idempotency key %s answered HTTP %d %+v, want the run or, while the gateway restarts, no answer or 503", key, status, f.Error)
			return
		}
		if time.Now().After(deadline) {
			l.fail("launchRun with idempotency key %s still failing after %v: HTTP %d, %v", key, faultLaunchDeadline, status, err)
			return
		}
		l.mu.Lock()
		l.retried++
		l.mu.Unlock()
		// Poll for the restarted gateway (or the same one, after a 503).
		for poll := time.Now().Add(50 * time.Millisecond); l.currentURL() == url && time.Now().Before(poll); {
			select {
			case <-l.quit:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

// countRunning is how many runs the gateway reports running (-1 when it
// does not answer): a figure for the log, showing work in flight at a kill.
func countRunning(g *Gateway) int {
	status, f, err := tryRPC(g.URL, g.Token, "listRuns", map[string]any{"status": "running", "limit": faultRuns})
	var rows []json.RawMessage
	if err != nil || status != http.StatusOK || json.Unmarshal(f.Payload, &rows) != nil {
		return -1
	}
	return len(rows)
}

// waitAllFinished polls listRuns until every run is terminal and fails the
// test unless each launched run is finished. It returns the listed runs.
func waitAllFinished(t *testing.T, g *Gateway, runIDs map[string]string) map[string]runRow {
	t.Helper()
	deadline := time.Now().Add(faultSettle)
	for {
		var list []runRow
		decode(t, g.rpc("listRuns", map[string]any{"limit": 10 * faultRuns}), &list)
		rows := map[string]runRow{}
		unsettled := 0
		for _, r := range list {
			rows[r.RunID] = r
			if !isTerminal(r.Status) {
				unsettled++
			}
		}
		if unsettled == 0 || time.Now().After(deadline) {
			for _, key := range faultKeys() {
				id := runIDs[key]
				r, ok := rows[id]
				switch {
				case !ok:
					t.Errorf("run %s (idempotency key %s) was launched but listRuns does not list it: the run was lost", id, key)
				case r.Status != "finished":
					t.Errorf("run %s (idempotency key %s) is %s %v after the last restart, want finished; errorJson: %s", id, key, r.Status, faultSettle, deref(r.ErrorJSON))
				}
			}
			if t.Failed() {
				t.FailNow()
			}
			return rows
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func openFaultDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=query_only(1)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatalf("open the database %s: %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func checkIntegrity(t *testing.T, db *sql.DB) {
	t.Helper()
	rows, err := db.Query("PRAGMA integrity_check")
	if err != nil {
		t.Fatalf("PRAGMA integrity_check: %v", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatalf("PRAGMA integrity_check: %v", err)
		}
		problems = append(problems, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("PRAGMA integrity_check: %v", err)
	}
	if len(problems) != 1 || problems[0] != "ok" {
		t.Errorf("the database is damaged after %d kill rounds and a clean stop: PRAGMA integrity_check says\n%s", faultRounds, strings.Join(problems, "\n"))
	}
}

// checkRunsPerKey: the database holds exactly one run per idempotency key,
// each the run its launch answered, finished with the workflow's output.
func checkRunsPerKey(t *testing.T, db *sql.DB, runIDs map[string]string) {
	t.Helper()
	rows, err := db.Query(`SELECT run_id, COALESCE(idempotency_key, ''), status, COALESCE(output_json, '') FROM runs`)
	if err != nil {
		t.Fatalf("read runs: %v", err)
	}
	defer rows.Close()
	byKey := map[string][]string{}
	n := 0
	for rows.Next() {
		var id, key, status, output string
		if err := rows.Scan(&id, &key, &status, &output); err != nil {
			t.Fatalf("read runs: %v", err)
		}
		n++
		byKey[key] = append(byKey[key], id)
		if status != "finished" {
			t.Errorf("run %s (idempotency key %q) is stored as %s after the clean stop, want finished", id, key, status)
			continue
		}
		num, _ := strconv.Atoi(strings.TrimPrefix(key, "fault-"))
		want := fmt.Sprintf(`{"n":%d,"done":["a","b","c"]}`, num)
		if !jsonEqual(output, want) {
			t.Errorf("run %s (idempotency key %s) finished with output %s, want %s", id, key, output, want)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read runs: %v", err)
	}
	if n != faultRuns {
		t.Errorf("the database holds %d runs after launching %d distinct idempotency keys, want %d", n, faultRuns, faultRuns)
	}
	for _, key := range faultKeys() {
		switch ids := byKey[key]; {
		case len(ids) != 1:
			t.Errorf("idempotency key %s has %d runs %v, want exactly one", key, len(ids), ids)
		case ids[0] != runIDs[key]:
			t.Errorf("idempotency key %s belongs to run %s, but its launch answered run %s", key, ids[0], runIDs[key])
		}
		delete(byKey, key)
	}
	for key, ids := range byKey {
		t.Errorf("runs %v have idempotency key %q, which the test never launched", ids, key)
	}
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

// bodyStart is one "start" line of the body log.
type bodyStart struct {
	runID, nodeID string
	attempt       int
	atMs          int64
}

func readBodyStarts(t *testing.T, path string) []bodyStart {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the body log: %v", err)
	}
	var starts []bodyStart
	for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		f := strings.Fields(line)
		var s bodyStart
		var err1, err2 error
		if len(f) == 5 && f[0] == "start" {
			s.runID, s.nodeID = f[1], f[2]
			s.attempt, err1 = strconv.Atoi(f[3])
			s.atMs, err2 = strconv.ParseInt(f[4], 10, 64)
		}
		if len(f) != 5 || f[0] != "start" || err1 != nil || err2 != nil {
			t.Fatalf("body log line %d is not %q: %q", i+1, "start <runId> <nodeId> <attempt> <ms>", line)
		}
		starts = append(starts, s)
	}
	return starts
}

// checkNoStartAfterFinish: every node of every run is finished with exactly
// one finished attempt; no body started after that attempt finished; every
// body start belongs to a journaled attempt, and the finished attempt's
// body did start. It returns how many body starts were not the finished
// attempt's (bodies interrupted by a kill and run again).
func checkNoStartAfterFinish(t *testing.T, db *sql.DB, runIDs map[string]string, starts []bodyStart) int {
	t.Helper()
	type nodeKey struct{ runID, nodeID string }
	type attemptKey struct {
		nodeKey
		attempt int
	}
	attempts := map[attemptKey]string{} // state
	finished := map[nodeKey][]int64{}   // finished_at_ms of finished attempts
	finishedAttempt := map[nodeKey]int{}
	rows, err := db.Query(`SELECT run_id, node_id, attempt, state, COALESCE(finished_at_ms, 0) FROM attempts WHERE iteration = 0`)
	if err != nil {
		t.Fatalf("read attempts: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k attemptKey
		var state string
		var finishedAt int64
		if err := rows.Scan(&k.runID, &k.nodeID, &k.attempt, &state, &finishedAt); err != nil {
			t.Fatalf("read attempts: %v", err)
		}
		attempts[k] = state
		if state == "finished" {
			finished[k.nodeKey] = append(finished[k.nodeKey], finishedAt)
			finishedAttempt[k.nodeKey] = k.attempt
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read attempts: %v", err)
	}

	started := map[attemptKey]bool{}
	interrupted := 0
	for _, s := range starts {
		k := attemptKey{nodeKey{s.runID, s.nodeID}, s.attempt}
		started[k] = true
		if s.attempt != finishedAttempt[k.nodeKey] {
			interrupted++
		}
		if _, ok := attempts[k]; !ok {
			t.Errorf("run %s node %s: a body started as attempt %d at %d, but no attempt %d was journaled", s.runID, s.nodeID, s.attempt, s.atMs, s.attempt)
		}
		if f := finished[k.nodeKey]; len(f) == 1 && s.atMs > f[0] {
			t.Errorf("run %s node %s: body (attempt %d) started at %d after its node was journaled finished at %d (attempt %d): a finished task ran again",
				s.runID, s.nodeID, s.attempt, s.atMs, f[0], finishedAttempt[k.nodeKey])
		}
	}
	for _, key := range faultKeys() {
		id := runIDs[key]
		for _, node := range faultNodes {
			k := nodeKey{id, node}
			switch f := finished[k]; {
			case len(f) != 1:
				t.Errorf("run %s node %s has %d finished attempts, want exactly 1", id, node, len(f))
			case !started[attemptKey{k, finishedAttempt[k]}]:
				t.Errorf("run %s node %s: attempt %d is journaled finished, but its body never started", id, node, finishedAttempt[k])
			}
		}
	}
	return interrupted
}
