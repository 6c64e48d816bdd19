package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/testkit"
)

const (
	// startTimeout bounds how long a gateway may take to print its URL.
	startTimeout = 15 * time.Second
	// exitTimeout bounds how long a signalled or failing gateway may take
	// to exit.
	exitTimeout = 10 * time.Second
	// approverID is the user id of the tokens the helpers issue; an
	// approval's decidedBy is the deciding caller's user id.
	approverID = "e2e-approver"
)

var listeningLine = regexp.MustCompile(`^smithers (?:gateway|dev) listening on (http://\S+)$`)

// gatewayConfig says how to start a gateway process.
type gatewayConfig struct {
	// command is the subcommand: "gateway" (default) or "dev".
	command string
	// module is SMITHERS_GATEWAY_MODULE; empty leaves it unset.
	module string
	// noToken leaves the token store file absent (no token is issued).
	noToken bool
	// env adds KEY=value settings to the process environment.
	env []string
	// databaseURL, when set, is SMITHERS_DATABASE_URL (PostgreSQL) instead
	// of a SQLite file in the data dir.
	databaseURL string
	// tokenStore, when set, is the token store (shared by several
	// gateways); the token is issued into it once by the caller.
	tokenStore, token string
}

// Gateway is one smithers server under test. Its data dir (database and
// token store) survives kill9 and restart; the process is killed in
// t.Cleanup, and every start's stderr is printed when the test failed.
type Gateway struct {
	t       *testing.T
	cfg     gatewayConfig
	DataDir string
	DBPath  string
	Store   string
	Token   string
	URL     string

	mu   sync.Mutex
	logs []*lockedBuffer
	proc *process
}

// startGateway starts `smithers gateway` on module with a fresh data dir
// and a full-scope token, and waits until it listens.
func startGateway(t *testing.T, module string) *Gateway {
	t.Helper()
	return startGatewayWith(t, gatewayConfig{module: module})
}

func startGatewayWith(t *testing.T, cfg gatewayConfig) *Gateway {
	t.Helper()
	if cfg.command == "" {
		cfg.command = "gateway"
	}
	dataDir := t.TempDir()
	g := &Gateway{t: t, cfg: cfg, DataDir: dataDir,
		DBPath: filepath.Join(dataDir, "smithers.db"), Store: filepath.Join(dataDir, "tokens.json")}
	if cfg.command == "dev" {
		// `smithers dev` keeps its data in ./.smithers of its working directory.
		g.DBPath = filepath.Join(dataDir, ".smithers", "smithers.db")
		g.Store = filepath.Join(dataDir, ".smithers", "tokens.json")
	}
	if cfg.tokenStore != "" {
		g.Store, g.Token = cfg.tokenStore, cfg.token
	} else if !cfg.noToken && cfg.command == "gateway" {
		g.Token = issueToken(t, g.Store)
	}
	t.Cleanup(g.cleanup)
	g.start()
	return g
}

func (g *Gateway) env() []string {
	env := baseEnv(g.DataDir)
	env = append(env, "PORT=0")
	if g.cfg.command == "gateway" {
		env = append(env, "HOST=127.0.0.1", "SMITHERS_TOKEN_STORE="+g.Store)
		if g.cfg.databaseURL != "" {
			env = append(env, "SMITHERS_DATABASE_URL="+g.cfg.databaseURL)
		} else {
			env = append(env, "SMITHERS_DB_PATH="+g.DBPath)
		}
	}
	if g.cfg.module != "" {
		env = append(env, "SMITHERS_GATEWAY_MODULE="+g.cfg.module)
	}
	return append(env, g.cfg.env...)
}

// start launches the process and waits for its "listening on" line.
func (g *Gateway) start() {
	g.t.Helper()
	p, err := spawn(g.DataDir, g.env(), g.cfg.command)
	if err != nil {
		g.t.Fatalf("start smithers %s: %v", g.cfg.command, err)
	}
	g.mu.Lock()
	g.proc = p
	g.logs = append(g.logs, p.stderr)
	g.mu.Unlock()
	line, ok := p.stdout.waitLine(startTimeout, p.done, func(l string) bool { return listeningLine.MatchString(l) })
	if !ok {
		how := fmt.Sprintf("it did not print its listening line within %v", startTimeout)
		if p.exited() {
			how = fmt.Sprintf("it exited with status %d before listening", p.exitCode())
		}
		p.kill()
		g.t.Fatalf("smithers %s: %s\nstdout:\n%s", g.cfg.command, how, p.stdout.String())
	}
	g.URL = listeningLine.FindStringSubmatch(line)[1]
}

// waitStdout waits for a stdout line of the current process matching
// match and returns it.
func (g *Gateway) waitStdout(match func(string) bool) string {
	g.t.Helper()
	g.mu.Lock()
	p := g.proc
	g.mu.Unlock()
	line, ok := p.stdout.waitLine(5*time.Second, p.done, match)
	if !ok {
		g.t.Fatalf("no matching stdout line; stdout:\n%s", p.stdout.String())
	}
	return line
}

// Stderr returns everything the gateway logged, over all its starts.
func (g *Gateway) Stderr() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var b strings.Builder
	for _, l := range g.logs {
		b.WriteString(l.String())
	}
	return b.String()
}

// kill9 SIGKILLs the gateway and waits until it is gone.
func (g *Gateway) kill9() {
	g.t.Helper()
	g.mu.Lock()
	p := g.proc
	g.mu.Unlock()
	p.kill()
	if !p.exited() {
		g.t.Fatalf("gateway did not exit after SIGKILL")
	}
}

// terminate sends SIGTERM and returns the exit status; the test fails when
// the process does not exit within exitTimeout.
func (g *Gateway) terminate() int {
	g.t.Helper()
	return g.stopWith(syscall.SIGTERM)
}

// stopWith sends sig and returns the exit status.
func (g *Gateway) stopWith(sig syscall.Signal) int {
	g.t.Helper()
	g.mu.Lock()
	p := g.proc
	g.mu.Unlock()
	if err := p.cmd.Process.Signal(sig); err != nil {
		g.t.Fatalf("%v: %v", sig, err)
	}
	select {
	case <-p.done:
	case <-time.After(exitTimeout):
		p.kill()
		g.t.Fatalf("gateway did not exit within %v of %v", exitTimeout, sig)
	}
	return p.exitCode()
}

// restart starts the gateway again on the same data dir; the previous
// process must have exited.
func (g *Gateway) restart() {
	g.t.Helper()
	g.mu.Lock()
	p := g.proc
	g.mu.Unlock()
	if !p.exited() {
		g.t.Fatalf("restart: the previous gateway process is still running")
	}
	g.start()
}

func (g *Gateway) cleanup() {
	g.mu.Lock()
	p := g.proc
	g.mu.Unlock()
	if p != nil {
		p.kill()
	}
	if g.t.Failed() {
		g.mu.Lock()
		defer g.mu.Unlock()
		for i, l := range g.logs {
			g.t.Logf("smithers %s stderr (start %d of %d):\n%s", g.cfg.command, i+1, len(g.logs), l.String())
		}
	}
}

// process is one running smithers child.
type process struct {
	cmd     *exec.Cmd
	stdout  *lineBuffer
	stderr  *lockedBuffer
	done    chan struct{}
	exitErr error // set before done is closed
}

// spawn starts `smithers args...` in dir with exactly env.
func spawn(dir string, env []string, args ...string) (*process, error) {
	cmd := exec.Command(binPath, args...)
	cmd.Dir = dir
	cmd.Env = env
	p := &process{cmd: cmd, stdout: newLineBuffer(), stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout = p.stdout
	cmd.Stderr = p.stderr
	// Should anything inherit the output pipes, Wait still returns.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.exitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill SIGKILLs the process (if still running) and waits for it.
func (p *process) kill() {
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	select {
	case <-p.done:
	case <-time.After(exitTimeout):
	}
}

// exitCode is the exit status after done; -1 when killed by a signal.
func (p *process) exitCode() int {
	<-p.done
	var ee *exec.ExitError
	if errors.As(p.exitErr, &ee) {
		return ee.ExitCode()
	}
	if p.exitErr != nil {
		return -1
	}
	return 0
}

// runToExit runs `smithers args...` and waits for it to exit within
// exitTimeout, returning the exit status and output.
func runToExit(t *testing.T, dir string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	p, err := spawn(dir, env, args...)
	if err != nil {
		t.Fatalf("start smithers %v: %v", args, err)
	}
	select {
	case <-p.done:
	case <-time.After(exitTimeout):
		p.kill()
		t.Fatalf("smithers %v did not exit within %v\nstdout:\n%s\nstderr:\n%s", args, exitTimeout, p.stdout.String(), p.stderr.String())
	}
	return p.exitCode(), p.stdout.String(), p.stderr.String()
}

// baseEnv is the minimal environment of every child: nothing of the
// developer's SMITHERS_* configuration leaks in.
func baseEnv(home string) []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "TMPDIR=" + os.TempDir()}
}

// issueToken runs `smithers token issue` against store and returns the
// full-scope token it printed.
func issueToken(t *testing.T, store string) string {
	t.Helper()
	dir := filepath.Dir(store)
	code, out, errOut := runToExit(t, dir, baseEnv(dir), "token", "issue", "--scopes", "*", "--user-id", approverID, "--store", store)
	if code != 0 {
		t.Fatalf("smithers token issue exited %d: %s", code, errOut)
	}
	tok, _, _ := strings.Cut(out, "\n")
	if tok = strings.TrimSpace(tok); tok == "" {
		t.Fatalf("smithers token issue printed no token; stderr: %s", errOut)
	}
	return tok
}

// revokeToken runs `smithers token revoke` against store.
func revokeToken(t *testing.T, store, token string) {
	t.Helper()
	dir := filepath.Dir(store)
	code, out, errOut := runToExit(t, dir, baseEnv(dir), "token", "revoke", token, "--store", store)
	if code != 0 || !strings.HasPrefix(out, "revoked ") {
		t.Fatalf("smithers token revoke exited %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// lockedBuffer is a process's output, written by its goroutines and read by
// the test.
type lockedBuffer = testkit.Buffer

// lineBuffer collects a process's output as lines.
type lineBuffer struct {
	mu      sync.Mutex
	all     bytes.Buffer
	lines   []string
	partial []byte
	notify  chan struct{}
}

func newLineBuffer() *lineBuffer { return &lineBuffer{notify: make(chan struct{}, 1)} }

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.all.Write(p)
	b.partial = append(b.partial, p...)
	for {
		i := bytes.IndexByte(b.partial, '\n')
		if i < 0 {
			break
		}
		b.lines = append(b.lines, strings.TrimRight(string(b.partial[:i]), "\r"))
		b.partial = b.partial[i+1:]
	}
	select {
	case b.notify <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.all.String()
}

// Lines returns the complete lines so far.
func (b *lineBuffer) Lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.lines...)
}

// waitLine waits until a line satisfies match, the process exits (done
// closed) or timeout passes.
func (b *lineBuffer) waitLine(timeout time.Duration, done <-chan struct{}, match func(string) bool) (string, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		for _, l := range b.Lines() {
			if match(l) {
				return l, true
			}
		}
		select {
		case <-b.notify:
		case <-done:
			// The copier has finished: one last look.
			for _, l := range b.Lines() {
				if match(l) {
					return l, true
				}
			}
			return "", false
		case <-deadline.C:
			return "", false
		}
	}
}
