package e2e

// The replicated deployment run for real: three `smithers gateway`
// processes with the environment deploy/replicated/docker-compose.yml gives
// its gateway services, on one throwaway PostgreSQL database, behind Caddy
// running deploy/replicated/Caddyfile with the upstreams moved to the
// replicas' loopback ports.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/gorilla/websocket"
	"github.com/smithers-orchestrator/smithers-go/host/postgres/pgtest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestDeployReplicatedOnPostgres starts the compose file's three gateway
// services together (the image's ENV, then the service's environment and
// env file; the token store issued by the tokens service as
// deploy/README.md says, then read-only; the module read-only) on one
// PostgreSQL database, and Caddy in front with the replicated Caddyfile.
// The schema is migrated once although the three start together. Through
// Caddy, requests are spread over all three replicas; runs launched
// through Caddy are seen waiting for their approval by every replica, each
// is approved through a different replica and read finished, with the same
// output, from every one; a WebSocket opened through Caddy follows a run
// approved through a replica to its run.completed with every event once.
// With one replica killed, Caddy keeps answering from the others. Last, a
// gateway with the Kubernetes Deployment's pod environment
// (deploy/replicated/k8s) joins the same database and sees the same runs.
func TestDeployReplicatedOnPostgres(t *testing.T) {
	t.Parallel()
	caddy := needTool(t, "caddy", "apt-get install caddy")
	ctx := context.Background()
	cluster, err := pgtest.Start(ctx)
	if err != nil {
		pgtest.Unavailable(t, err)
	}
	// Registered first, so it runs after every process is killed.
	t.Cleanup(func() {
		if err := cluster.Close(); err != nil {
			t.Error(err)
		}
	})

	p := replicatedCompose(t, nil, true)
	imageEnv, _ := parseDockerfile(t).final().env(t)
	composeURL := parseDatabaseURL(t, "gateway.env", containerEnv(t, imageEnv, composeService(t, p, replicatedGateways[0]))["SMITHERS_DATABASE_URL"])
	// The compose file's database, on the throwaway server.
	dbURL, err := cluster.CreateDatabase(ctx, strings.Trim(composeURL.Path, "/"))
	if err != nil {
		t.Fatal(err)
	}

	// The volumes: the module directory copied read-only, the token volume
	// one local directory shared by every service that mounts it.
	root := t.TempDir()
	remap := pathRemap{}
	var tokenDir string
	for _, name := range append([]string{"tokens"}, replicatedGateways...) {
		for _, v := range composeService(t, p, name).Volumes {
			if _, done := remap[v.Target]; done {
				continue
			}
			local := filepath.Join(root, strings.ReplaceAll(strings.Trim(v.Target, "/"), "/", "_"))
			if err := os.Mkdir(local, 0o755); err != nil {
				t.Fatal(err)
			}
			remap[v.Target] = local
			if v.Type == types.VolumeTypeBind {
				entries, err := os.ReadDir(v.Source)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range entries {
					if e.Type().IsRegular() {
						copyFile(t, filepath.Join(v.Source, e.Name()), filepath.Join(local, e.Name()), 0o444)
					}
				}
				makeReadOnlyDir(t, local)
			} else {
				tokenDir = local
			}
		}
	}
	if tokenDir == "" {
		t.Fatalf("no service mounts a named volume (the token store)")
	}
	// processEnv is a service's container environment for a local process:
	// loopback, a free port, the volumes remapped, the throwaway database.
	processEnv := func(home string, env map[string]string) []string {
		out := baseEnv(home)
		for k, v := range env {
			switch k {
			case "HOST":
				v = "127.0.0.1"
			case "PORT":
				v = "0"
			case "SMITHERS_DATABASE_URL":
				v = dbURL
			default:
				v = remap.apply(v)
			}
			out = append(out, k+"="+v)
		}
		return out
	}
	newHome := func(name string) string {
		home := filepath.Join(root, "home-"+name)
		if err := os.Mkdir(home, 0o700); err != nil {
			t.Fatal(err)
		}
		return home
	}

	// docker compose -f deploy/replicated/docker-compose.yml run --rm tokens \
	//   token issue --scopes run:read,run:write,approval:submit --ttl 90d
	home := newHome("tokens")
	code, out, errOut := runToExit(t, home, processEnv(home, containerEnv(t, imageEnv, composeService(t, p, "tokens"))),
		"token", "issue", "--scopes", "run:read,run:write,approval:submit", "--ttl", "90d")
	token, _, _ := strings.Cut(out, "\n")
	if code != 0 || token == "" {
		t.Fatalf("token issue with the tokens service's environment exited %d: %s %s", code, out, errOut)
	}
	makeReadOnlyDir(t, tokenDir)

	// docker compose up: the three replicas start together once the
	// database is up.
	var envs [][]string
	for _, name := range replicatedGateways {
		home := newHome(name)
		envs = append(envs, processEnv(home, containerEnv(t, imageEnv, composeService(t, p, name))))
	}
	replicas := startGatewaysTogether(t, root, envs)
	migrated := map[string]int{}
	versionField := regexp.MustCompile(`"version":(\d+)`)
	for i, g := range replicas {
		g.Token = token
		// stderr is copied apart from the listening line on stdout.
		eventually(t, 5*time.Second, replicatedGateways[i]+" to log that it listens with a postgres:// database", func() bool {
			return hasLog(g.Stderr(), "INFO", "gateway listening", "postgres://")
		})
		for _, l := range strings.Split(g.Stderr(), "\n") {
			if strings.Contains(l, "schema migrated") {
				if m := versionField.FindStringSubmatch(l); m != nil {
					migrated[m[1]]++
				}
			}
		}
	}
	if len(migrated) == 0 {
		t.Errorf("no replica logged a schema migration of the new database")
	}
	for v, n := range migrated {
		if n != 1 {
			t.Errorf("schema version %s was migrated %d times by replicas starting together, want once", v, n)
		}
	}
	entries, err := os.ReadDir(tokenDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".db") || strings.Contains(e.Name(), ".db-") {
			t.Errorf("a SQLite file %s appeared in the token volume", e.Name())
		}
	}

	// Caddy with the replicated Caddyfile, its upstreams on loopback.
	text := readText(t, replicatedFile("Caddyfile"))
	port := composeEnv(t, composeService(t, p, replicatedGateways[0]))["PORT"]
	for i, name := range replicatedGateways {
		addr := name + ":" + port
		if n := strings.Count(text, addr); n != 1 {
			t.Fatalf("deploy/replicated/Caddyfile names %s %d times, want once (the upstream)", addr, n)
		}
		u, err := url.Parse(replicas[i].URL)
		if err != nil {
			t.Fatal(err)
		}
		text = strings.Replace(text, addr, u.Host, 1)
	}
	caddyfile := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(caddyfile, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	site := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	base := "http://" + site
	startCaddy(t, caddy, caddyfile, caddyEnv(t, map[string]string{"SMITHERS_DOMAIN": base, "SMITHERS_CADDY_ADMIN": "off", "SMITHERS_CADDY_BIND": "127.0.0.1"}), base)
	proxy := &Gateway{t: t, URL: base, Token: token}
	checkHealth(t, base)

	// Round-robin: every replica answers some of the calls through Caddy.
	before := make([]float64, len(replicas))
	for i, g := range replicas {
		before[i] = rpcCalls(t, g.URL, "listWorkflows")
	}
	const calls = 9
	for range calls {
		proxy.rpc("listWorkflows", map[string]any{})
	}
	total := 0.0
	for i, g := range replicas {
		d := rpcCalls(t, g.URL, "listWorkflows") - before[i]
		total += d
		if d == 0 {
			t.Errorf("%s answered none of %d listWorkflows calls through Caddy", replicatedGateways[i], calls)
		}
	}
	if total != calls {
		t.Errorf("the replicas answered %v listWorkflows calls, want the %d sent through Caddy", total, calls)
	}

	// A run per replica, launched through Caddy, approved through that
	// replica, read by all.
	var runs []string
	for range replicas {
		runs = append(runs, proxy.launch("quickstart", map[string]any{"name": "replicated"}))
	}
	for _, run := range runs {
		for j, g := range replicas {
			g.waitStatus(run, "waiting-approval")
			found := false
			for _, a := range g.listApprovals() {
				found = found || (a.RunID == run && a.NodeID == "ship")
			}
			if !found {
				t.Errorf("%s does not list the approval of run %s", replicatedGateways[j], run)
			}
		}
	}
	for i, run := range runs {
		replicas[i].approve(run, "ship")
	}
	for _, run := range runs {
		var first json.RawMessage
		for j, g := range replicas {
			r := g.waitStatus(run, "finished")
			if first == nil {
				first = r.Output
				var out struct {
					Shipped bool `json:"shipped"`
				}
				decode(t, r.Output, &out)
				if !out.Shipped {
					t.Errorf("run %s finished with %s, want shipped", run, r.Output)
				}
			} else {
				assertJSON(t, fmt.Sprintf("run %s's output read from %s", run, replicatedGateways[j]), r.Output, string(first))
			}
		}
	}

	// A WebSocket through Caddy follows a run decided through a replica.
	run := proxy.launch("quickstart", map[string]any{"name": "socket"})
	proxy.waitStatus(run, "waiting-approval")
	followRunThroughProxy(t, site, token, run, func() { replicas[len(replicas)-1].approve(run, "ship") })

	// One replica gone: Caddy answers from the others. A request it sends
	// to the dead replica fails to connect and is tried on another
	// (lb_try_duration) until the health checks take that replica out
	// (health_interval 5s, health_timeout 2s; fail_duration after one
	// failure). Caddy before 2.11.2 cannot resend a request's body after a
	// failed connection (caddyserver/caddy#7546) and answers such a POST
	// 502 instead: with it, POSTs may fail until the replica is out.
	replicas[1].kill9()
	for range 2 * len(replicas) {
		checkHealth(t, base)
	}
	resendsBodies := compareVersions(caddyVersion(t, caddy), "2.11.2") >= 0
	deadline := time.Now().Add(10 * time.Second)
	for ok := 0; ok < 2*len(replicas); {
		status, f, err := tryRPC(base, token, "listWorkflows", map[string]any{})
		switch {
		case err == nil && status == http.StatusOK && f.OK:
			ok++
		case resendsBodies || time.Now().After(deadline):
			t.Fatalf("with %s killed, listWorkflows through Caddy answered %d %+v (%v)", replicatedGateways[1], status, f.Error, err)
		default:
			ok = 0
			time.Sleep(100 * time.Millisecond)
		}
	}
	run = proxy.launch("quickstart", map[string]any{"name": "two-left"})
	proxy.waitStatus(run, "waiting-approval")
	proxy.approve(run, "ship")
	proxy.waitStatus(run, "finished")
	runs = append(runs, run)

	// A pod of deploy/replicated/k8s joins the same database.
	m := loadK8sManifestsIn(t, replicatedFile("k8s"))
	c := k8sGet[*appsv1.Deployment](t, m, "Deployment", "smithers-gateway").Spec.Template.Spec.Containers[0]
	podEnv := map[string]string{}
	for k, v := range imageEnv {
		podEnv[k] = v
	}
	for k, v := range k8sGet[*corev1.ConfigMap](t, m, "ConfigMap", c.EnvFrom[0].ConfigMapRef.Name).Data {
		podEnv[k] = v
	}
	for _, e := range c.Env {
		podEnv[e.Name] = e.Value // SMITHERS_DATABASE_URL (from the Secret) is replaced below
	}
	podRemap := pathRemap{}
	for _, vm := range c.VolumeMounts {
		switch vm.MountPath {
		case path.Dir(podEnv["SMITHERS_TOKEN_STORE"]):
			podRemap[vm.MountPath] = tokenDir
		case path.Dir(podEnv["SMITHERS_GATEWAY_MODULE"]):
			podRemap[vm.MountPath] = remap.apply(path.Dir(composeEnv(t, composeService(t, p, replicatedGateways[0]))["SMITHERS_GATEWAY_MODULE"]))
		}
	}
	if len(podRemap) != 2 {
		t.Fatalf("the pod's token store and module are not mounted where its environment says: %+v", c.VolumeMounts)
	}
	podHome := newHome("pod")
	var podProcEnv []string
	for _, kv := range processEnv(podHome, podEnv) {
		k, v, _ := strings.Cut(kv, "=")
		podProcEnv = append(podProcEnv, k+"="+podRemap.apply(v))
	}
	pod := startBinaryGateway(t, binPath, podHome, podProcEnv, c.Args...)
	pod.Token = token
	checkHealth(t, pod.URL)
	for _, run := range runs {
		pod.waitStatus(run, "finished")
	}
}

// startGatewaysTogether starts one `smithers gateway` per environment at
// once, as `docker compose up` starts replicas, and waits until each
// listens.
func startGatewaysTogether(t *testing.T, dir string, envs [][]string) []*Gateway {
	t.Helper()
	var gs []*Gateway
	for _, env := range envs {
		p, err := spawn(dir, env, "gateway")
		if err != nil {
			t.Fatalf("start smithers gateway: %v", err)
		}
		g := &Gateway{t: t, cfg: gatewayConfig{command: "gateway"}, DataDir: dir, proc: p, logs: []*lockedBuffer{p.stderr}}
		t.Cleanup(g.cleanup)
		gs = append(gs, g)
	}
	for i, g := range gs {
		line, ok := g.proc.stdout.waitLine(startTimeout, g.proc.done, listeningLine.MatchString)
		if !ok {
			t.Fatalf("replica %d did not listen (exited: %v)\nstdout:\n%s\nstderr:\n%s", i+1, g.proc.exited(), g.proc.stdout.String(), g.proc.stderr.String())
		}
		g.URL = listeningLine.FindStringSubmatch(line)[1]
	}
	return gs
}

// caddyVersion is the version `caddy version` prints, without its "v".
func caddyVersion(t *testing.T, caddy string) string {
	t.Helper()
	out, err := exec.Command(caddy, "version").Output()
	if err != nil {
		t.Fatalf("caddy version: %v", err)
	}
	v, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), " ")
	if v == "" {
		t.Fatalf("caddy version printed %q", out)
	}
	return v
}

// rpcCalls reads smithers_gateway_rpc_calls_total for method over HTTP from
// a gateway's /metrics.
func rpcCalls(t *testing.T, base, method string) float64 {
	t.Helper()
	resp, body := doHTTP(t, http.MethodGet, base+"/metrics", "", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/metrics = %d", base, resp.StatusCode)
	}
	prefix := `smithers_gateway_rpc_calls_total{method="` + method + `",transport="http"} `
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, prefix); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return n
		}
	}
	t.Fatalf("%s/metrics has no %s", base, strings.TrimSpace(prefix))
	return 0
}

// followRunThroughProxy opens a WebSocket through the proxy at site,
// connects with token, streams run from its first event, calls decide,
// and reads until run.completed: the run seqs must come 1, 2, 3 ... with
// no gap and no repeat.
func followRunThroughProxy(t *testing.T, site, token, run string, decide func()) {
	t.Helper()
	dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := dialer.Dial("ws://"+site+"/", nil)
	if err != nil {
		how := ""
		if resp != nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			how = fmt.Sprintf(" (HTTP %s: %s)", resp.Status, b)
		}
		t.Fatalf("WebSocket upgrade through Caddy: %v%s", err, how)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(runTimeout))
	type wsFrame struct {
		Type    string          `json:"type"`
		ID      string          `json:"id"`
		OK      bool            `json:"ok"`
		Event   string          `json:"event"`
		Payload json.RawMessage `json:"payload"`
		Error   *wireError      `json:"error"`
	}
	request := func(id, method string, params any) json.RawMessage {
		t.Helper()
		if err := conn.WriteJSON(map[string]any{"type": "req", "id": id, "method": method, "params": params}); err != nil {
			t.Fatalf("send %s through Caddy: %v", method, err)
		}
		for {
			var f wsFrame
			if err := conn.ReadJSON(&f); err != nil {
				t.Fatalf("read the %s answer through Caddy: %v", method, err)
			}
			if f.Type == "res" && f.ID == id {
				if !f.OK {
					t.Fatalf("%s through Caddy: %+v", method, f.Error)
				}
				return f.Payload
			}
		}
	}
	request("c1", "connect", map[string]any{"minProtocol": 1, "maxProtocol": 1,
		"client": map[string]any{"id": "e2e", "version": "0", "platform": "go"}, "auth": map[string]any{"token": token}})
	var stream struct {
		StreamID string `json:"streamId"`
	}
	decode(t, request("s1", "streamRunEvents", map[string]any{"runId": run, "afterSeq": 0}), &stream)
	decide()
	var seqs []int64
	for {
		var f wsFrame
		if err := conn.ReadJSON(&f); err != nil {
			t.Fatalf("read run %s's events through Caddy (seqs so far %v): %v", run, seqs, err)
		}
		if f.Type != "event" || f.Event != "run.event" {
			continue
		}
		var ev struct {
			StreamID string `json:"streamId"`
			Event    string `json:"event"`
			Seq      int64  `json:"seq"`
		}
		decode(t, f.Payload, &ev)
		if ev.StreamID != stream.StreamID {
			continue
		}
		seqs = append(seqs, ev.Seq)
		if ev.Seq != int64(len(seqs)) {
			t.Fatalf("run %s's events through Caddy came with seqs %v, want 1, 2, 3 ...", run, seqs)
		}
		if ev.Event == "run.completed" {
			return
		}
	}
}
