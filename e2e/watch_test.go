package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// examples/watch.mjs, the WebSocket client of docs/websocket.md, run with
// Node.js against the real binary: once on Node's built-in WebSocket, once
// on the ws package (what the docs tell Node.js 20 users to install).

// watchPackageJSON is what the ws variant installs with npmInstall.
const watchPackageJSON = `{
  "name": "smithers-go-e2e-watch",
  "private": true,
  "description": "The ws package for examples/watch.mjs (see e2e/watch_test.go).",
  "type": "module",
  "dependencies": { "ws": "8.23.1" }
}
`

// watchScript says how to run examples/watch.mjs.
type watchScript struct {
	node  string
	flags []string // node flags that give (or take away) the global WebSocket
	path  string   // the script
}

// watchLine is one line of `watch.mjs --json`.
type watchLine struct {
	Type       string          `json:"type"`
	RunID      string          `json:"runId"`
	StreamID   string          `json:"streamId"`
	AfterSeq   *int64          `json:"afterSeq"`
	CurrentSeq int64           `json:"currentSeq"`
	Seq        int64           `json:"seq"`
	Event      string          `json:"event"`
	Payload    json.RawMessage `json:"payload"`
	Status     string          `json:"status"`
	Reason     string          `json:"reason"`
}

// watchProc is one running watch.mjs.
type watchProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdout *lineBuffer
	stderr *lockedBuffer
	done   chan struct{}
	err    error // set before done is closed
}

// skipWithout skips the test with one line saying what is missing, except
// with CI=true, where the machine is meant to have everything.
func skipWithout(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: required)")
	}
	t.Skip(msg)
}

func TestWatchExample(t *testing.T) {
	t.Parallel()
	node := needTool(t, "node", "install Node.js 20 or later (Debian: apt-get install nodejs)")
	script := filepath.Join(moduleRoot, "examples", "watch.mjs")

	t.Run("builtin-websocket", func(t *testing.T) {
		t.Parallel()
		c := officialClient{node: node}
		if err := c.detectWebSocket(); err != nil {
			skipWithout(t, err.Error())
		}
		w := watchScript{node: node, flags: c.nodeFlags, path: script}
		g, runID, seqs := testWatchAcrossRestart(t, w)

		// Following the finished run by id, configured through the
		// environment, prints the same events and exits 0 at once.
		p := w.start(t, []string{"SMITHERS_URL=" + g.URL, "SMITHERS_TOKEN=" + g.Token}, "--json", runID)
		if code := p.wait(); code != 0 {
			t.Fatalf("watch.mjs <finished run> exited %d, want 0", code)
		}
		if got := eventSeqs(t, p.lines()); fmt.Sprint(got) != fmt.Sprint(seqs) {
			t.Fatalf("following the finished run printed %v, the live follow printed %v", got, seqs)
		}

		// A refused token is a usage error: exit 2, saying why.
		p = w.start(t, nil, "--url", g.URL, "--token", "smithers_not-a-token", runID)
		if code := p.wait(); code != 2 || !strings.Contains(p.stderr.String(), "UNAUTHORIZED") {
			t.Fatalf("watch.mjs with a bad token exited %d with stderr %q, want 2 and UNAUTHORIZED", code, p.stderr.String())
		}
	})

	t.Run("ws-package", func(t *testing.T) {
		t.Parallel()
		npm := needTool(t, "npm", "install npm (Debian: apt-get install npm)")
		flags, ok := withoutBuiltinWebSocket(node)
		if !ok {
			t.Skip("this Node.js cannot run without its built-in WebSocket, so the ws fallback cannot be exercised")
		}
		dir, err := npmInstall(npm, "watch-ws", []byte(watchPackageJSON), "node_modules/ws/package.json")
		if err != nil {
			skipWithout(t, fmt.Sprintf("npm could not install the ws package (no registry access?): %v", err))
		}
		// ESM resolves "ws" from the script's own directory: run a copy
		// that sits next to node_modules.
		src, err := os.ReadFile(script)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(src)
		copyPath := filepath.Join(dir, "watch-"+hex.EncodeToString(sum[:8])+".mjs")
		if _, err := os.Stat(copyPath); err != nil {
			tmp := fmt.Sprintf("%s.%d.tmp", copyPath, os.Getpid())
			if err := os.WriteFile(tmp, src, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, copyPath); err != nil {
				t.Fatal(err)
			}
		}
		testWatchAcrossRestart(t, watchScript{node: node, flags: flags, path: copyPath})
	})
}

// testWatchAcrossRestart launches the quickstart with watch.mjs, SIGKILLs
// and restarts the gateway while the run waits for its approval, approves
// it, and checks that the script printed every event of the run once, in
// seq order, resumed after the last seq it had printed, and exited 0 at
// run.completed. It returns the gateway, the run and the seqs printed.
func testWatchAcrossRestart(t *testing.T, w watchScript) (*Gateway, string, []int64) {
	g := startGateway(t, exampleModule("quickstart"))
	p := w.start(t, nil, "--json", "--url", g.URL, "--token", g.Token, "--launch", "quickstart", `{"name":"watch"}`)

	runID := p.waitFor("the launched line", func(l watchLine) bool { return l.Type == "launched" }).RunID
	waiting := p.waitFor("node.waiting_approval", func(l watchLine) bool { return l.Type == "event" && l.Event == "node.waiting_approval" })

	g.kill9()
	reconnect := p.waitFor("a reconnect line", func(l watchLine) bool { return l.Type == "reconnect" })
	if reconnect.AfterSeq == nil || *reconnect.AfterSeq != waiting.Seq {
		t.Fatalf("watch.mjs resumes after seq %v, want %d (the last seq it printed)", reconnect.AfterSeq, waiting.Seq)
	}
	g.restartOnSamePort()
	g.approve(runID, "ship")

	if code := p.wait(); code != 0 {
		t.Fatalf("watch.mjs exited %d, want 0 after the run finished", code)
	}
	lines := p.lines()
	seqs := eventSeqs(t, lines)
	var last watchLine
	decidedAfterDrop, streams := false, 0
	for _, l := range lines {
		switch l.Type {
		case "event":
			last = l
			if l.Event == "approval.decided" && l.Seq > waiting.Seq {
				decidedAfterDrop = true
			}
		case "stream":
			streams++
		}
	}
	if last.Event != "run.completed" || !strings.Contains(string(last.Payload), `"status":"finished"`) {
		t.Fatalf("the last event printed is %s %s, want run.completed finished", last.Event, last.Payload)
	}
	if !decidedAfterDrop || streams < 2 {
		t.Fatalf("watch.mjs opened %d streams and printed approval.decided after the drop: %v", streams, decidedAfterDrop)
	}
	if done := lines[len(lines)-1]; done.Type != "completed" || done.Status != "finished" || done.RunID != runID {
		t.Fatalf("the last line is %+v, want completed finished for %s", done, runID)
	}
	r := g.waitStatus(runID, "finished")
	assertJSON(t, "output", r.Output, `{"shipped":true,"greeting":"Hello, watch!","publishedBy":"`+approverID+`","key":"`+runID+`:publish:0"}`)
	return g, runID, seqs
}

// eventSeqs returns the seqs of the printed events, failing the test unless
// they are 1, 2, 3 ... without a gap or a repeat.
func eventSeqs(t *testing.T, lines []watchLine) []int64 {
	t.Helper()
	var seqs []int64
	for _, l := range lines {
		if l.Type != "event" {
			continue
		}
		if want := int64(len(seqs) + 1); l.Seq != want {
			t.Fatalf("event %s has seq %d, want %d (every seq once, in order); events so far %v", l.Event, l.Seq, want, seqs)
		}
		seqs = append(seqs, l.Seq)
	}
	if len(seqs) == 0 {
		t.Fatal("watch.mjs printed no event")
	}
	return seqs
}

// withoutBuiltinWebSocket returns node flags under which globalThis
// WebSocket is absent (Node.js 20 has none by default; later versions turn
// it off with --no-experimental-websocket).
func withoutBuiltinWebSocket(node string) ([]string, bool) {
	for _, flags := range [][]string{nil, {"--no-experimental-websocket"}} {
		args := append(append([]string{}, flags...), "-e", "process.stdout.write(typeof WebSocket)")
		if out, err := exec.Command(node, args...).Output(); err == nil && string(out) == "undefined" {
			return flags, true
		}
	}
	return nil, false
}

// start runs the script with args in a fresh working directory (so no
// .smithers/dev-token is found) with env added to the base environment.
func (w watchScript) start(t *testing.T, env []string, args ...string) *watchProc {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(w.node, append(append(append([]string{}, w.flags...), w.path), args...)...)
	cmd.Dir = home
	cmd.Env = append(baseEnv(home), env...)
	p := &watchProc{t: t, cmd: cmd, stdout: newLineBuffer(), stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start watch.mjs: %v", err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("watch.mjs %v stdout:\n%s\nstderr:\n%s", args, p.stdout.String(), p.stderr.String())
		}
	})
	return p
}

// lines decodes the lines printed so far; a line that is not JSON fails
// the test.
func (p *watchProc) lines() []watchLine {
	p.t.Helper()
	var out []watchLine
	for _, s := range p.stdout.Lines() {
		var l watchLine
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			p.t.Fatalf("watch.mjs --json printed a line that is not JSON: %q", s)
		}
		out = append(out, l)
	}
	return out
}

// waitFor waits until the script printed a line satisfying match.
func (p *watchProc) waitFor(what string, match func(watchLine) bool) watchLine {
	p.t.Helper()
	var found watchLine
	_, ok := p.stdout.waitLine(clientWait, p.done, func(s string) bool {
		var l watchLine
		if json.Unmarshal([]byte(s), &l) != nil || !match(l) {
			return false
		}
		found = l
		return true
	})
	if !ok {
		p.t.Fatalf("watch.mjs printed no %s within %v (exited: %v)", what, clientWait, p.exited())
	}
	return found
}

func (p *watchProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for the script to exit and returns its exit status.
func (p *watchProc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(clientWait):
		p.t.Fatalf("watch.mjs did not exit within %v", clientWait)
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if p.err != nil {
		return -1
	}
	return 0
}
