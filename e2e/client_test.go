package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The official client: @smithers-orchestrator/gateway-client from npm,
// driven by e2e/testdata/client/client.mjs (see its header for the line
// protocol between it and these tests).

const (
	// npmTimeout bounds `npm install` (a cold install takes ~15 s here);
	// npmFetchTimeout bounds each of its requests, which npm does not
	// retry, so that an unreachable registry fails the install in seconds.
	npmTimeout      = 2 * time.Minute
	npmFetchTimeout = 10 * time.Second
	// clientWait bounds every wait for a line of the client script.
	clientWait = 30 * time.Second
)

// officialClient is the bundled client script and how to run it, prepared
// once per test binary run.
type officialClient struct {
	node      string
	nodeFlags []string
	bundle    string
}

var (
	officialClientOnce sync.Once
	officialClientVal  officialClient
	officialClientErr  error
)

// prepareOfficialClient installs the npm package (cached across runs in the
// user cache dir, keyed by package.json) and bundles client.mjs with esbuild.
// A machine without node, npm or the npm registry skips the test with one
// line, except with CI=true.
func prepareOfficialClient(t *testing.T) officialClient {
	t.Helper()
	needTool(t, "node", "apt-get install nodejs npm (Node.js 20 or later)")
	needTool(t, "npm", "apt-get install npm")
	officialClientOnce.Do(func() {
		start := time.Now()
		officialClientVal, officialClientErr = buildOfficialClient()
		if officialClientErr == nil {
			fmt.Fprintf(os.Stderr, "e2e: official gateway client ready in %v (%s)\n", time.Since(start).Round(time.Millisecond), officialClientVal.bundle)
		}
	})
	if officialClientErr != nil {
		// npm could not install it (no registry here): a machine without
		// the registry skips, CI must have it.
		msg := fmt.Sprintf("cannot prepare the official gateway client (npm registry needed): %v", officialClientErr)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return officialClientVal
}

func buildOfficialClient() (officialClient, error) {
	var c officialClient
	node, err := exec.LookPath("node")
	if err != nil {
		return c, fmt.Errorf("node is not installed (Node.js >= 20 and npm are required by this test): %v", err)
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return c, fmt.Errorf("npm is not installed (Node.js >= 20 and npm are required by this test): %v", err)
	}
	c.node = node
	if err := c.detectWebSocket(); err != nil {
		return c, err
	}

	src := filepath.Join(moduleRoot, "e2e", "testdata", "client")
	pkg, err := os.ReadFile(filepath.Join(src, "package.json"))
	if err != nil {
		return c, err
	}
	script, err := os.ReadFile(filepath.Join(src, "client.mjs"))
	if err != nil {
		return c, err
	}
	dir, err := npmInstall(npm, "gateway-client", pkg, "node_modules/.bin/esbuild", "node_modules/@smithers-orchestrator/gateway-client/package.json")
	if err != nil {
		return c, err
	}

	// Bundle (the package ships TypeScript sources) next to node_modules,
	// under a name derived from the script, so an edited script is rebuilt.
	sum := sha256.Sum256(script)
	c.bundle = filepath.Join(dir, "client-"+hex.EncodeToString(sum[:8])+".bundle.mjs")
	if _, err := os.Stat(c.bundle); err == nil {
		return c, nil
	}
	entry := filepath.Join(dir, "client.mjs")
	if err := os.WriteFile(entry, script, 0o644); err != nil {
		return c, err
	}
	tmp := fmt.Sprintf("%s.%d.tmp.mjs", c.bundle, os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	esbuild := exec.CommandContext(ctx, filepath.Join(dir, "node_modules", ".bin", "esbuild"), entry,
		"--bundle", "--platform=node", "--target=node20", "--format=esm", "--log-level=warning", "--outfile="+tmp)
	esbuild.Dir = dir
	if out, err := esbuild.CombinedOutput(); err != nil {
		return c, fmt.Errorf("esbuild: %v\n%s", err, out)
	}
	return c, os.Rename(tmp, c.bundle)
}

// detectWebSocket finds how to get a global WebSocket: Node 22+ has one,
// Node 20 needs --experimental-websocket.
func (c *officialClient) detectWebSocket() error {
	probe := func(flags ...string) (string, error) {
		args := append(append([]string{}, flags...), "-e", `process.stdout.write(process.versions.node + " " + typeof WebSocket)`)
		out, err := exec.Command(c.node, args...).Output()
		return strings.TrimSpace(string(out)), err
	}
	out, err := probe()
	if err != nil {
		return fmt.Errorf("node does not run: %v", err)
	}
	version, kind, _ := strings.Cut(out, " ")
	if major, _ := strconv.Atoi(strings.SplitN(version, ".", 2)[0]); major < 20 {
		return fmt.Errorf("node %s is too old: the official client needs Node.js >= 20", version)
	}
	if kind == "function" {
		return nil
	}
	if out, err := probe("--experimental-websocket"); err == nil && strings.HasSuffix(out, " function") {
		c.nodeFlags = []string{"--experimental-websocket"}
		return nil
	}
	return fmt.Errorf("node %s has no WebSocket, not even with --experimental-websocket (Node.js >= 20.10 is needed)", version)
}

// npmInstall installs the dependencies of pkg (a package.json) into a
// directory of the user cache named prefix-<hash of pkg and the platform>,
// and returns it; want are paths under it that a complete install has. A
// directory is only ever complete: the install happens in a temp dir that
// is renamed into place. npm prefers its own cache and gives up on a
// request after npmFetchTimeout without retrying, so an offline machine
// fails in seconds rather than minutes.
func npmInstall(npm, prefix string, pkg []byte, want ...string) (string, error) {
	cacheRoot, err := os.UserCacheDir()
	if err != nil {
		cacheRoot = os.TempDir()
	}
	cacheRoot = filepath.Join(cacheRoot, "smithers-e2e")
	key := sha256.Sum256(append(pkg, runtime.GOOS+"/"+runtime.GOARCH...))
	dir := filepath.Join(cacheRoot, prefix+"-"+hex.EncodeToString(key[:8]))
	installed := func(d string) bool {
		for _, p := range want {
			if _, err := os.Stat(filepath.Join(d, p)); err != nil {
				return false
			}
		}
		return true
	}
	if installed(dir) {
		return dir, nil
	}
	if err := os.MkdirAll(cacheRoot, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(cacheRoot, "install-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if err := os.WriteFile(filepath.Join(tmp, "package.json"), pkg, 0o644); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), npmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "install", "--prefer-offline", "--no-audit", "--fund=false", "--loglevel=error",
		fmt.Sprintf("--fetch-timeout=%d", npmFetchTimeout.Milliseconds()), "--fetch-retries=0")
	cmd.Dir = tmp
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm install (in %s) failed: %v\n%s", tmp, err, out)
	}
	if !installed(tmp) {
		return "", fmt.Errorf("npm install (in %s) left no %s", tmp, strings.Join(want, " or "))
	}
	if err := os.Rename(tmp, dir); err != nil {
		if installed(dir) { // another run won the race
			return dir, nil
		}
		os.RemoveAll(dir) // an incomplete leftover
		if err := os.Rename(tmp, dir); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// clientProc is one running client script.
type clientProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *lineBuffer
	stderr *lockedBuffer
	done   chan struct{}
	err    error // set before done is closed
}

// clientLine is one line the script printed (see client.mjs).
type clientLine struct {
	Type      string          `json:"type"`
	RunID     string          `json:"runId"`
	Event     string          `json:"event"`
	Seq       int64           `json:"seq"`
	Payload   json.RawMessage `json:"payload"`
	NodeID    string          `json:"nodeId"`
	AfterSeq  *int64          `json:"afterSeq"`
	Attempt   int             `json:"attempt"`
	BackoffMs int             `json:"backoffMs"`
	Reason    string          `json:"reason"`
	Where     string          `json:"where"`
	Code      string          `json:"code"`
	Message   string          `json:"message"`
	Error     *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Run json.RawMessage `json:"run"`
}

// streamFrame is the payload of a frame yielded by streamRunEventsResilient:
// a RunEvent (run.event), a Heartbeat or a GapResync.
type streamFrame struct {
	APIVersion string          `json:"apiVersion"`
	Type       string          `json:"type"`
	StreamID   string          `json:"streamId"`
	RunID      string          `json:"runId"`
	Event      string          `json:"event"`
	Seq        int64           `json:"seq"`
	Payload    json.RawMessage `json:"payload"`
}

// startClient runs the client script against g: it launches workflow with
// input and follows the run.
func startClient(t *testing.T, c officialClient, g *Gateway, workflow string, input any) *clientProc {
	t.Helper()
	in, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	cmd := exec.Command(c.node, append(append([]string{}, c.nodeFlags...), c.bundle)...)
	cmd.Dir = home
	cmd.Env = append(baseEnv(home),
		"GATEWAY_URL="+g.URL, "GATEWAY_TOKEN="+g.Token, "WORKFLOW="+workflow, "INPUT="+string(in))
	p := &clientProc{t: t, cmd: cmd, stdout: newLineBuffer(), stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout = p.stdout
	cmd.Stderr = p.stderr
	cmd.WaitDelay = 2 * time.Second
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the client script: %v", err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("client script stdout:\n%s\nclient script stderr:\n%s", p.stdout.String(), p.stderr.String())
		}
	})
	return p
}

func (p *clientProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(exitTimeout):
	}
}

// lines decodes every line printed so far; a line that is not JSON fails
// the test.
func (p *clientProc) lines() []clientLine {
	p.t.Helper()
	var out []clientLine
	for _, l := range p.stdout.Lines() {
		var cl clientLine
		if err := json.Unmarshal([]byte(l), &cl); err != nil {
			p.t.Fatalf("the client script printed a line that is not JSON: %q", l)
		}
		out = append(out, cl)
	}
	return out
}

// waitFor waits until the script printed a line satisfying match and
// returns it. An "error" line, the script's exit or the deadline fails the
// test.
func (p *clientProc) waitFor(what string, match func(clientLine) bool) clientLine {
	p.t.Helper()
	var found clientLine
	var failed *clientLine
	_, ok := p.stdout.waitLine(clientWait, p.done, func(l string) bool {
		var cl clientLine
		if json.Unmarshal([]byte(l), &cl) != nil {
			return false
		}
		if cl.Type == "error" {
			failed = &cl
			return true
		}
		if match(cl) {
			found = cl
			return true
		}
		return false
	})
	switch {
	case failed != nil:
		p.t.Fatalf("waiting for %s: the client script reported an error in %s: %s %s", what, failed.Where, failed.Code, failed.Message)
	case !ok:
		how := fmt.Sprintf("not within %v", clientWait)
		select {
		case <-p.done:
			how = fmt.Sprintf("the script exited (%v)", p.err)
		default:
		}
		p.t.Fatalf("waiting for %s from the client script: %s", what, how)
	}
	return found
}

// send writes one command line to the script.
func (p *clientProc) send(command string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, command+"\n"); err != nil {
		p.t.Fatalf("send %q to the client script: %v", command, err)
	}
}

// wait waits for the script to exit and returns its exit status.
func (p *clientProc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(clientWait):
		p.t.Fatalf("the client script did not exit within %v", clientWait)
	}
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// restartOnSamePort starts the gateway again on its data dir and on the
// port it listened on before, so that clients reconnect to the same URL.
// The previous process must have exited. Should the port be taken for a
// moment, starting is retried until startTimeout.
func (g *Gateway) restartOnSamePort() {
	g.t.Helper()
	g.mu.Lock()
	prev := g.proc
	g.mu.Unlock()
	if !prev.exited() {
		g.t.Fatalf("restart: the previous gateway process is still running")
	}
	u, err := url.Parse(g.URL)
	if err != nil || u.Port() == "" {
		g.t.Fatalf("restart: cannot tell the port of %q", g.URL)
	}
	// Later entries of an exec.Cmd's Env win: this overrides PORT=0.
	env := append(g.env(), "PORT="+u.Port())
	deadline := time.Now().Add(startTimeout)
	for {
		p, err := spawn(g.DataDir, env, g.cfg.command)
		if err != nil {
			g.t.Fatalf("restart smithers %s: %v", g.cfg.command, err)
		}
		g.mu.Lock()
		g.proc = p
		g.logs = append(g.logs, p.stderr)
		g.mu.Unlock()
		line, ok := p.stdout.waitLine(time.Until(deadline), p.done, func(l string) bool { return listeningLine.MatchString(l) })
		if ok {
			if got := listeningLine.FindStringSubmatch(line)[1]; got != g.URL {
				g.t.Fatalf("restarted gateway listens on %s, want %s", got, g.URL)
			}
			return
		}
		p.kill()
		if !strings.Contains(p.stderr.String(), "address already in use") || time.Now().After(deadline) {
			g.t.Fatalf("restart smithers %s on port %s: it did not listen (exit status %d)\nstdout:\n%s\nstderr:\n%s",
				g.cfg.command, u.Port(), p.exitCode(), p.stdout.String(), p.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestOfficialClientResumesAcrossRestart drives the real binary with the
// official npm client: the script launches the quickstart run and follows
// it with streamRunEventsResilient; while the run waits for its approval
// the gateway is stopped (SIGKILL or SIGTERM) and restarted on the same
// port and data; the script approves through the client. The resilient
// stream must resume where it stopped: run.event seqs 1..N without gap or
// duplicate, one run.completed, and the run finished with its output.
func TestOfficialClientResumesAcrossRestart(t *testing.T) {
	t.Parallel()
	c := prepareOfficialClient(t)
	for _, tc := range []struct {
		name string
		stop func(g *Gateway)
		// waitResumed: approve only once the client streams again (its
		// frames after the approval are then live); otherwise approve at
		// once, usually while the client is still backing off (they are
		// then replayed from afterSeq).
		waitResumed bool
	}{
		{name: "kill9", stop: func(g *Gateway) { g.kill9() }},
		{name: "sigterm", stop: func(g *Gateway) {
			if code := g.terminate(); code != 0 {
				g.t.Fatalf("gateway exited %d after SIGTERM, want 0", code)
			}
		}, waitResumed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testOfficialClientRestart(t, c, tc.stop, tc.waitResumed)
		})
	}
}

func testOfficialClientRestart(t *testing.T, c officialClient, stop func(*Gateway), waitResumed bool) {
	g := startGateway(t, exampleModule("quickstart"))
	p := startClient(t, c, g, "quickstart", map[string]any{"name": "client"})

	runID := p.waitFor("launched", func(l clientLine) bool { return l.Type == "launched" }).RunID
	if runID == "" {
		t.Fatal("the client's launchRun answered no runId")
	}
	waiting := p.waitFor("the approval to be requested", func(l clientLine) bool {
		f, ok := runEventOf(l)
		return ok && (f.Event == "approval.requested" || f.Event == "node.waiting_approval")
	})
	g.waitStatus(runID, "waiting-approval")
	before, _ := runEventOf(waiting)

	stop(g)
	g.restartOnSamePort()
	reconnect := p.waitFor("the stream to reconnect", func(l clientLine) bool { return l.Type == "reconnect" })
	if waitResumed {
		p.waitFor("the stream to resume", func(l clientLine) bool {
			f, ok := frameOf(l)
			return ok && f.StreamID != before.StreamID
		})
	}
	p.send("approve ship")
	approved := p.waitFor("the approval answer", func(l clientLine) bool { return l.Type == "approved" })
	assertJSON(t, "submitApproval payload", approved.Payload,
		`{"runId":"`+runID+`","nodeId":"ship","iteration":0,"approved":true}`)
	done := p.waitFor("the run to complete", func(l clientLine) bool { return l.Type == "done" })
	if code := p.wait(); code != 0 {
		t.Fatalf("the client script exited %d, want 0", code)
	}

	// The stream: every run.event of this run exactly once, in order.
	lines := p.lines()
	var seqs []int64
	var names []string
	var lastBeforeReconnect int64
	completed := 0
	sawReconnect := false
	for _, l := range lines {
		switch l.Type {
		case "error":
			t.Errorf("the client script reported an error in %s: %s %s", l.Where, l.Code, l.Message)
		case "reconnect":
			sawReconnect = true
			why := l.Reason
			if l.Error != nil {
				why += ": " + strings.TrimSpace(l.Error.Code+" "+l.Error.Message)
			}
			t.Logf("client reconnect: attempt %d, afterSeq %s, backoff %d ms, %s", l.Attempt, deref64(l.AfterSeq), l.BackoffMs, why)
		}
		f, ok := frameOf(l)
		if !ok {
			continue
		}
		if f.RunID != runID || f.APIVersion != "v1" || f.StreamID == "" {
			t.Errorf("frame %s has runId %q apiVersion %q streamId %q, want run %s, v1 and a streamId", l.Event, f.RunID, f.APIVersion, f.StreamID, runID)
		}
		switch l.Event {
		case "run.event":
			if f.Type != "RunEvent" {
				t.Errorf("run.event payload type %q, want RunEvent", f.Type)
			}
			seqs = append(seqs, f.Seq)
			names = append(names, f.Event)
			if !sawReconnect {
				lastBeforeReconnect = f.Seq
			}
			if f.Event == "run.completed" {
				completed++
				var rc struct {
					RunID  string `json:"runId"`
					Status string `json:"status"`
				}
				decode(t, f.Payload, &rc)
				if rc.RunID != runID || rc.Status != "finished" {
					t.Errorf("run.completed payload %s, want run %s finished", f.Payload, runID)
				}
			}
		case "run.heartbeat":
			if f.Type != "Heartbeat" {
				t.Errorf("run.heartbeat payload type %q, want Heartbeat", f.Type)
			}
		case "run.gap_resync":
			t.Errorf("unexpected run.gap_resync (the window holds every event of this run): %s", l.Payload)
		default:
			t.Errorf("streamRunEventsResilient yielded a %q frame", l.Event)
		}
	}
	t.Logf("run.event seqs %v: %v", seqs, names)
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("run.event seqs %v: position %d has seq %d, want %d (strictly increasing by 1 from 1, no gap, no duplicate)", seqs, i, s, i+1)
		}
	}
	if len(names) == 0 {
		t.Fatal("streamRunEventsResilient yielded no run.event")
	}
	if last := names[len(names)-1]; completed != 1 || last != "run.completed" {
		t.Errorf("run.completed seen %d times (last event %q), want exactly once, as the last event", completed, last)
	}
	if !containsInOrder(names, "approval.requested", "approval.decided", "run.completed") {
		t.Errorf("events %v lack approval.requested, approval.decided, run.completed in this order", names)
	}
	if reconnect.AfterSeq == nil || *reconnect.AfterSeq != lastBeforeReconnect || lastBeforeReconnect < before.Seq {
		t.Errorf("first reconnect %+v: afterSeq want %d (the last seq yielded before the restart)", reconnect, lastBeforeReconnect)
	}

	// The run as the client's getRun and ours see it.
	var r runRow
	decode(t, done.Run, &r)
	want := `{"shipped":true,"greeting":"Hello, client!","publishedBy":"` + approverID + `","key":"` + runID + `:publish:0"}`
	if r.RunID != runID || r.Status != "finished" {
		t.Fatalf("client getRun: run %s is %q, want %s finished", r.RunID, r.Status, runID)
	}
	assertJSON(t, "client getRun output", r.Output, want)
	assertJSON(t, "getRun output", g.getRun(runID).Output, want)
}

// frameOf decodes the payload of a "frame" line.
func frameOf(l clientLine) (streamFrame, bool) {
	var f streamFrame
	if l.Type != "frame" || json.Unmarshal(l.Payload, &f) != nil {
		return f, false
	}
	return f, true
}

// runEventOf decodes a "frame" line that is a run.event.
func runEventOf(l clientLine) (streamFrame, bool) {
	f, ok := frameOf(l)
	return f, ok && l.Event == "run.event"
}

// containsInOrder reports whether want is a subsequence of list.
func containsInOrder(list []string, want ...string) bool {
	for _, s := range list {
		if len(want) > 0 && s == want[0] {
			want = want[1:]
		}
	}
	return len(want) == 0
}

func deref64(p *int64) string {
	if p == nil {
		return "<none>"
	}
	return strconv.FormatInt(*p, 10)
}
