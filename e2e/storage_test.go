package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSecondGatewayOnOneDatabaseIsRefused starts a second gateway on the
// database of a running one: it must stop at once, naming the file and the
// process that owns it, while the first keeps working.
func TestSecondGatewayOnOneDatabaseIsRefused(t *testing.T) {
	t.Parallel()
	g := startGateway(t, exampleModule("quickstart"))
	started := time.Now()
	code, _, stderr := runToExit(t, g.DataDir, g.env(), "gateway")
	took := time.Since(started)
	if code == 0 {
		t.Fatalf("a second gateway on %s started (exit 0); stderr:\n%s", g.DBPath, stderr)
	}
	if took > 5*time.Second {
		t.Errorf("the second gateway took %v to give up, want under 5 s", took)
	}
	g.mu.Lock()
	pid := g.proc.cmd.Process.Pid
	g.mu.Unlock()
	for _, want := range []string{g.DBPath, fmt.Sprintf("pid %d", pid)} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the refusal does not name %q:\n%s", want, stderr)
		}
	}
	// The owner is unaffected.
	runID := g.launch("quickstart", map[string]any{"name": "owner"})
	g.waitStatus(runID, "waiting-approval")
}

// httpPost posts a JSON body with the gateway's token and returns the
// status, the Retry-After header and the body.
func (g *Gateway) httpPost(path, body string) (int, string, string) {
	g.t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.URL+path, strings.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+g.Token)
	resp, err := httpClient.Do(req)
	if err != nil {
		g.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(raw)
}

// health returns /health's status and body.
func (g *Gateway) health() (int, string) {
	g.t.Helper()
	resp, err := httpClient.Get(g.URL + "/health")
	if err != nil {
		g.t.Fatalf("GET /health: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// waitHealth polls /health until its status is want and returns the body.
func (g *Gateway) waitHealth(want int, within time.Duration) string {
	g.t.Helper()
	deadline := time.Now().Add(within)
	for {
		status, body := g.health()
		if status == want {
			return body
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("/health is %d (%s) after %v, want %d", status, body, within, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDeletedDatabaseFileIsNoticed deletes the database file under a
// running gateway: /health fails with the reason, writes are refused with
// 503 instead of answering 200 and being lost at the next start, and the
// log says so.
func TestDeletedDatabaseFileIsNoticed(t *testing.T) {
	t.Parallel()
	g := startGateway(t, exampleModule("quickstart"))
	g.launch("quickstart", map[string]any{"name": "before"})
	if err := os.Remove(g.DBPath); err != nil {
		t.Fatal(err)
	}
	body := g.waitHealth(http.StatusServiceUnavailable, 5*time.Second)
	if !strings.Contains(body, "deleted") {
		t.Errorf("/health body does not say the database was deleted: %s", body)
	}
	status, retry, resp := g.httpPost("/v1/rpc/launchRun", `{"workflow":"quickstart","input":{"name":"after"}}`)
	if status != http.StatusServiceUnavailable || !strings.Contains(resp, "SERVICE_UNAVAILABLE") || retry == "" {
		t.Errorf("launchRun after the database was deleted: HTTP %d Retry-After %q %s, want 503 SERVICE_UNAVAILABLE with Retry-After", status, retry, resp)
	}
	if !strings.Contains(g.Stderr(), "deleted") {
		t.Errorf("the log does not say the database file was deleted:\n%s", g.Stderr())
	}
}

// fullDiskModule's run blocks in its first task until a gate file appears,
// then runs a second task.
const fullDiskModule = `
export default function register(gateway) {
  gateway.register("two-steps", async (ctx) => {
    const first = await ctx.task("first", async (t) => {
      await t.exec("sh", ["-c", 'echo started >> "$2"; while [ ! -f "$1" ]; do sleep 0.02; done', "sh", ctx.input.gate, ctx.input.log]);
      return 1;
    });
    const second = await ctx.task("second", async () => first + 1);
    return { first, second };
  });
}
`

// mountTmpfs mounts a tmpfs of size bytes at a new directory, for a disk
// that really fills up. It needs root (CAP_SYS_ADMIN): without it the test
// is skipped, except in CI where it must run.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("mounting a tmpfs failed (%v: %s): run the tests as root to test a full disk", err, bytes.TrimSpace(out))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillDisk writes to path until the file system is full.
func fillDisk(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatalf("fill %s: %v", path, err)
		}
	}
}

// TestFullDiskHoldsRunsAndRecovers fills the disk under the database while
// a run is between two steps: the run is held (never failed), writes answer
// 503 with Retry-After, /health says why; once space returns, the run
// finishes without a restart and its finished step is not run again.
func TestFullDiskHoldsRunsAndRecovers(t *testing.T) {
	t.Parallel()
	disk := mountTmpfs(t, 4<<20)
	g := startGatewayWith(t, gatewayConfig{module: writeModule(t, fullDiskModule), env: []string{"SMITHERS_DB_PATH=" + filepath.Join(disk, "smithers.db")}})
	gate := filepath.Join(t.TempDir(), "gate")
	bodyLog := filepath.Join(t.TempDir(), "bodies.log")
	runID := g.launch("two-steps", map[string]any{"gate": gate, "log": bodyLog})
	eventually(t, 10*time.Second, "the first task to start", func() bool { b, _ := os.ReadFile(bodyLog); return len(b) > 0 })

	filler := filepath.Join(disk, "filler")
	fillDisk(t, filler)
	openGate(t, gate)

	body := g.waitHealth(http.StatusServiceUnavailable, 10*time.Second)
	if !strings.Contains(body, "full") {
		t.Errorf("/health does not say the disk is full: %s", body)
	}
	status, retry, resp := g.httpPost("/v1/rpc/launchRun", `{"workflow":"two-steps","input":{}}`)
	if status != http.StatusServiceUnavailable || !strings.Contains(resp, "SERVICE_UNAVAILABLE") || retry == "" {
		t.Errorf("launchRun on a full disk: HTTP %d Retry-After %q %s, want 503 SERVICE_UNAVAILABLE with Retry-After", status, retry, resp)
	}
	if r := g.getRun(runID); r.Status != "running" {
		t.Fatalf("run on a full disk is %s (%s), want it held running", r.Status, deref(r.ErrorJSON))
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	r := g.waitStatus(runID, "finished")
	assertJSON(t, "output", r.Output, `{"first":1,"second":2}`)
	g.waitHealth(http.StatusOK, 10*time.Second)
	if b, _ := os.ReadFile(bodyLog); strings.Count(string(b), "started") != 1 {
		t.Errorf("the first task's body ran %d times, want once:\n%s", strings.Count(string(b), "started"), b)
	}
}
