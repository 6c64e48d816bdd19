package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/api/client"
)

// BenchmarkStartup measures start-up of the real binary on the
// examples/bench module: the time from exec to the first GET /health 200
// (polled every millisecond) and the resident memory 3 s later, idle. The
// database is empty, or holds 20 000 runs parked on an approval (made
// once, before timing).
//
//	go test ./e2e -run XXX -bench Startup -benchtime 5x
func BenchmarkStartup(b *testing.B) {
	module := filepath.Join(moduleRoot, "examples", "bench", "gateway.mjs")
	for _, parked := range []int{0, 20000} {
		b.Run(fmt.Sprintf("parked=%d", parked), func(b *testing.B) {
			dir := b.TempDir()
			env := append(baseEnv(dir), "HOST=127.0.0.1", "SMITHERS_GATEWAY_MODULE="+module,
				"SMITHERS_DB_PATH="+filepath.Join(dir, "smithers.db"), "SMITHERS_TOKEN_STORE="+filepath.Join(dir, "tokens.json"))
			if parked > 0 {
				parkRuns(b, dir, env, parked)
			}
			var total time.Duration
			var rss int64
			b.ResetTimer()
			for range b.N {
				port := benchPort(b)
				start := time.Now()
				p, err := spawn(dir, append(env, "PORT="+strconv.Itoa(port)), "gateway")
				if err != nil {
					b.Fatal(err)
				}
				url := fmt.Sprintf("http://127.0.0.1:%d/health", port)
				waitHealth(b, p, url)
				total += time.Since(start)
				b.StopTimer()
				time.Sleep(3 * time.Second)
				rss += residentKiB(b, p.cmd.Process.Pid)
				_ = p.cmd.Process.Signal(syscall.SIGTERM)
				<-p.done
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms-to-health")
			b.ReportMetric(float64(rss)/1024/float64(b.N), "idle-RSS-MiB")
		})
	}
}

// waitHealth polls url every millisecond until it answers 200.
func waitHealth(b *testing.B, p *process, url string) {
	c := http.Client{Timeout: time.Second}
	deadline := time.Now().Add(startTimeout)
	for {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if p.exited() || time.Now().After(deadline) {
			p.kill()
			b.Fatalf("no /health 200 within %v\nstderr:\n%s", startTimeout, p.stderr.String())
		}
		time.Sleep(time.Millisecond)
	}
}

func benchPort(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// residentKiB is VmRSS of pid.
func residentKiB(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// parkRuns starts a gateway on dir, launches n runs of the park workflow,
// waits until none is running, and stops it.
func parkRuns(b *testing.B, dir string, env []string, n int) {
	store := filepath.Join(dir, "tokens.json")
	tok, err := spawn(dir, baseEnv(dir), "token", "issue", "--scopes", "*", "--store", store)
	if err != nil {
		b.Fatal(err)
	}
	<-tok.done
	token, _, _ := strings.Cut(tok.stdout.String(), "\n")
	port := benchPort(b)
	p, err := spawn(dir, append(env, "PORT="+strconv.Itoa(port)), "gateway")
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		<-p.done
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitHealth(b, p, base+"/health")
	c := client.New(base, strings.TrimSpace(token))
	ctx := context.Background()
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := c.Call(ctx, "launchRun", map[string]any{"workflow": "park", "input": map[string]any{}}, nil); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Minute); ; {
		var running []map[string]any
		if err := c.Call(ctx, "listRuns", map[string]any{"status": "running", "limit": 1}, &running); err != nil {
			b.Fatal(err)
		}
		if len(running) == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("runs still running after 5 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
