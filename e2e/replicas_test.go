package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host/postgres/pgtest"
)

// replicaModule's runs do a task, then (by input.kind) wait for an
// approval or a timer or nothing, then another task. Every task body first
// appends "start <runId> <nodeId> <attempt> <ms>" to input.log.
const replicaModule = `
export default function register(gateway) {
  const body = (ctx, id) => async (t) => {
    await t.exec("sh", ["-c", 'echo "start $1 $2 $3 $4" >> "$5"; sleep 0.03', "sh",
      ctx.runId, id, String(t.attempt), String(Date.now()), ctx.input.log]);
    return id;
  };
  gateway.register("mixed", async (ctx) => {
    const a = await ctx.task("a", body(ctx, "a"));
    if (ctx.input.kind === "approval") await ctx.approval("ok", { request: { title: "ok?" } });
    if (ctx.input.kind === "timer") await ctx.sleep("nap", 400);
    const b = await ctx.task("b", body(ctx, "b"));
    return { a, b, kind: ctx.input.kind };
  });
}
`

const (
	replicaRuns    = 300 // in all, the official client's included
	replicaClients = 12  // runs launched and followed by the official client
	replicaLeaseMs = 3000
)

// TestReplicasShareWorkAndSurviveKills runs three gateway processes on one
// PostgreSQL database behind Caddy (round-robin, WebSockets included):
// 300 runs of tasks, approvals and timers are launched through the proxy,
// some by the official client which follows its run through the proxy;
// two replicas are SIGKILLed at different moments while work is in flight.
// Every run must finish; no task body may start after its node was
// journaled finished; every official-client stream must see run.completed
// exactly once.
func TestReplicasShareWorkAndSurviveKills(t *testing.T) {
	t.Parallel()
	caddyBin := needTool(t, "caddy", "apt-get install caddy")
	client := prepareOfficialClient(t)
	ctx := context.Background()
	cluster, err := pgtest.Start(ctx)
	if err != nil {
		pgtest.Unavailable(t, err)
	}
	t.Cleanup(func() { _ = cluster.Close() })
	dbURL := cluster.NewDatabase(t)

	dir := t.TempDir()
	store := filepath.Join(dir, "tokens.json")
	token := issueToken(t, store)
	module := writeModule(t, replicaModule)
	bodyLog := filepath.Join(dir, "bodies.log")
	var replicas []*Gateway
	for i := 0; i < 3; i++ {
		replicas = append(replicas, startGatewayWith(t, gatewayConfig{module: module, databaseURL: dbURL, tokenStore: store, token: token,
			env: []string{"SMITHERS_GATEWAY_LEASE_MS=" + strconv.Itoa(replicaLeaseMs)}}))
	}
	proxy := startCaddyBalancer(t, caddyBin, replicas)
	front := &Gateway{t: t, URL: proxy, Token: token}

	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d", seed)
	kinds := []string{"task", "approval", "timer"}

	// The approver decides every pending approval, through the proxy.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			status, f, err := tryRPC(proxy, token, "listApprovals", map[string]any{})
			if err != nil || status != http.StatusOK {
				continue
			}
			var list []approvalSummary
			if json.Unmarshal(f.Payload, &list) != nil {
				continue
			}
			for _, a := range list {
				_, _, _ = tryRPC(proxy, token, "submitApproval", map[string]any{"runId": a.RunID, "nodeId": a.NodeID, "decision": map[string]any{"approved": true}})
			}
		}
	}()

	// The official client launches and follows some runs through the proxy.
	var clients []*clientProc
	for i := 0; i < replicaClients; i++ {
		clients = append(clients, startClient(t, client, front, "mixed", map[string]any{"kind": kinds[i%3], "log": bodyLog}))
	}

	// The rest are launched by idempotency key, retried through the proxy
	// until the gateway answers.
	var launched sync.Map // key -> runId
	var launches atomic.Int64
	keys := make(chan int)
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range keys {
				key := fmt.Sprintf("replica-%03d", i)
				params := map[string]any{"workflow": "mixed", "input": map[string]any{"kind": kinds[i%3], "log": bodyLog},
					"options": map[string]any{"idempotencyKey": key}}
				ok := false
				for deadline := time.Now().Add(60 * time.Second); !ok && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
					status, f, err := tryRPC(proxy, token, "launchRun", params)
					if err == nil && status == http.StatusOK && f.OK {
						var out struct {
							RunID string `json:"runId"`
						}
						_ = json.Unmarshal(f.Payload, &out)
						launched.Store(key, out.RunID)
						launches.Add(1)
						ok = true
					}
				}
				if !ok {
					t.Errorf("launch %s was not answered within 60 s", key)
				}
			}
		}()
	}
	go func() {
		for i := 0; i < replicaRuns-replicaClients; i++ {
			keys <- i
		}
		close(keys)
	}()

	// The official client does not retry a launch (upstream's does not
	// either): a replica killed while it answers the launch leaves the
	// client with a 502 and no run. So every client has its run before the
	// first kill; its stream then lives through both kills.
	for i, p := range clients {
		p.waitFor(fmt.Sprintf("official client %d's launch", i), func(l clientLine) bool { return l.Type == "launched" })
	}

	// Two replicas die while work is in flight, at different moments: one
	// after about a fifth of the launches, the other after about half.
	waitLaunches := func(n int64) {
		eventually(t, 120*time.Second, fmt.Sprintf("%d launches", n), func() bool { return launches.Load() >= n })
	}
	waitLaunches(int64(40 + rng.Intn(40)))
	replicas[0].kill9()
	t.Logf("killed replica 1 after %d launches", launches.Load())
	waitLaunches(int64(130 + rng.Intn(40)))
	time.Sleep(time.Duration(rng.Intn(300)) * time.Millisecond)
	replicas[1].kill9()
	t.Logf("killed replica 2 after %d launches", launches.Load())

	// Everything finishes on the last replica.
	survivor := replicas[2]
	var rows []runRow
	eventually(t, 180*time.Second, "every run to finish", func() bool {
		status, f, err := tryRPC(survivor.URL, token, "listRuns", map[string]any{"limit": 1000})
		if err != nil || status != http.StatusOK || json.Unmarshal(f.Payload, &rows) != nil {
			return false
		}
		if len(rows) < replicaRuns {
			return false
		}
		for _, r := range rows {
			if r.Status != "finished" {
				if isTerminal(r.Status) {
					t.Fatalf("run %s is %s: %s", r.RunID, r.Status, deref(r.ErrorJSON))
				}
				return false
			}
		}
		return true
	})
	close(stop)
	wg.Wait()
	if len(rows) != replicaRuns {
		t.Errorf("%d runs exist, want %d: a launch made two runs or was lost", len(rows), replicaRuns)
	}
	n := 0
	launched.Range(func(any, any) bool { n++; return true })
	if n != replicaRuns-replicaClients {
		t.Errorf("%d launches answered, want %d", n, replicaRuns-replicaClients)
	}

	// The official client saw each of its runs complete once.
	for i, p := range clients {
		completed := 0
		for _, l := range p.lines() {
			if f, ok := runEventOf(l); ok && f.Event == "run.completed" {
				completed++
			}
		}
		if code := p.wait(); code != 0 || completed != 1 {
			t.Errorf("official client %d: exit %d, %d run.completed frames, want 0 and exactly one", i, code, completed)
		}
	}

	checkNoBodyAfterFinished(t, survivor, token, rows, bodyLog)
}

// checkNoBodyAfterFinished reads the body log and every run's finished
// attempts: a body that started after its node's attempt was journaled
// finished ran a finished step again.
func checkNoBodyAfterFinished(t *testing.T, g *Gateway, token string, rows []runRow, bodyLog string) {
	t.Helper()
	starts := map[string][]int64{} // runId/node -> start times
	b, err := os.ReadFile(bodyLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 5 || f[0] != "start" {
			t.Fatalf("body log line %q", line)
		}
		ms, _ := strconv.ParseInt(f[4], 10, 64)
		starts[f[1]+"/"+f[2]] = append(starts[f[1]+"/"+f[2]], ms)
	}
	reruns := 0
	for _, r := range rows {
		for _, node := range []string{"a", "b"} {
			status, f, err := tryRPC(g.URL, token, "attempts.list", map[string]any{"runId": r.RunID, "nodeId": node})
			if err != nil || status != http.StatusOK {
				t.Fatalf("attempts.list %s/%s: %d %v", r.RunID, node, status, err)
			}
			var atts []struct {
				State        string `json:"state"`
				FinishedAtMs *int64 `json:"finishedAtMs"`
			}
			if err := json.Unmarshal(f.Payload, &atts); err != nil {
				t.Fatal(err)
			}
			var finished []int64
			for _, a := range atts {
				if a.State == "finished" && a.FinishedAtMs != nil {
					finished = append(finished, *a.FinishedAtMs)
				}
			}
			if len(finished) != 1 {
				t.Errorf("run %s node %s has %d finished attempts, want one", r.RunID, node, len(finished))
				continue
			}
			ss := starts[r.RunID+"/"+node]
			sort.Slice(ss, func(i, j int) bool { return ss[i] < ss[j] })
			if len(ss) == 0 {
				t.Errorf("run %s node %s finished without its body ever starting", r.RunID, node)
			}
			for _, s := range ss {
				if s > finished[0] {
					t.Errorf("run %s node %s: a body started at %d after its node was journaled finished at %d", r.RunID, node, s, finished[0])
				}
			}
			reruns += len(ss) - 1
		}
	}
	t.Logf("%d bodies ran again after a kill (at least once, before their node finished)", reruns)
}

// startCaddyBalancer runs Caddy in front of the replicas: round-robin,
// WebSockets passed through, a replica that stops answering /health taken
// out. It returns the proxy's URL. No passive health check: Caddy before
// 2.11.2 (Debian's) cannot resend a POST's body to another replica after a
// failed connection, and counts that failure against the healthy replica
// it tried, so with fail_duration the survivor of two kills was marked down
// too and every request answered 503 "no upstreams available".
func startCaddyBalancer(t *testing.T, bin string, replicas []*Gateway) string {
	t.Helper()
	port := freePort(t)
	var upstreams []string
	for _, g := range replicas {
		upstreams = append(upstreams, strings.TrimPrefix(g.URL, "http://"))
	}
	conf := fmt.Sprintf(`{
	admin off
	auto_https off
}
http://127.0.0.1:%d {
	reverse_proxy %s {
		lb_policy round_robin
		lb_retries 3
		lb_try_duration 3s
		health_uri /health
		health_interval 250ms
	}
}
`, port, strings.Join(upstreams, " "))
	file := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", file, "--adapter", "caddyfile")
	cmd.Env = append(baseEnv(t.TempDir()), "XDG_DATA_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("caddy output:\n%s", out.String())
		}
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	eventually(t, 10*time.Second, "caddy to answer", func() bool {
		resp, err := httpClient.Get(url + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return url
}
