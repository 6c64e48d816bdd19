package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smithers-orchestrator/smithers-go/api"
	"github.com/smithers-orchestrator/smithers-go/api/auth"
	"github.com/smithers-orchestrator/smithers-go/examples"
	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/host/sqlite"
	"github.com/smithers-orchestrator/smithers-go/jsruntime"
	"github.com/smithers-orchestrator/smithers-go/stream"
)

// startGateway serves the quickstart on the real stack and returns its URL
// and a full-scope token.
func startGateway(t *testing.T) (string, string) {
	t.Helper()
	return startModule(t, examples.Quickstart, "quickstart")
}

// startModule serves a module whose workflows are named on the real stack.
func startModule(t *testing.T, source string, workflows ...string) (string, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	exec, err := jsruntime.Load(jsruntime.Options{ModulePath: filepath.Join(dir, "gateway.mjs"), Source: source, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	hub := stream.NewHub()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "smithers.db"), sqlite.Options{Logger: log, OnCommit: hub.Publish})
	if err != nil {
		t.Fatal(err)
	}
	metrics := api.NewMetrics(prometheus.NewRegistry(), workflows)
	gw, err := host.New(host.Config{Store: store, Executor: exec, Logger: log, InstanceID: "bench-test", Observer: metrics})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(dir, "tokens.json")
	res, err := auth.Issue(tokens, auth.IssueOptions{Scopes: []string{"*"}, TTL: time.Hour, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	ts := auth.OpenTokenStore(tokens, auth.TokenStoreOptions{Logger: log})
	srv := api.NewServer(api.Config{Gateway: gw, Reads: store, Auth: ts, Logger: log, Hub: hub, Metrics: metrics})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
		gw.Close()
		exec.Close()
		ts.Close()
		store.Close()
	})
	return hs.URL, res.Token
}

// TestScenariosProduceResults runs every scenario briefly against the real
// stack: each must complete operations without errors, and the report must
// name them.
func TestScenariosProduceResults(t *testing.T) {
	url, token := startGateway(t)
	results, err := Run(context.Background(), Options{URL: url, Token: token, Duration: 500 * time.Millisecond, Concurrency: 4,
		Subscribers: 5, Parked: 20, Scenarios: []string{"rpc", "runs", "fanout", "parked"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 5 {
		t.Fatalf("%d results", len(results))
	}
	for _, r := range results {
		if r.Ops == 0 || r.Errors != 0 {
			t.Fatalf("%s: %d ops, %d errors (%s)", r.Name, r.Ops, r.Errors, r.Note)
		}
	}
	if !strings.Contains(results[4].Note, "bytes per parked run") {
		t.Fatalf("parked note %q", results[4].Note)
	}
	if !strings.Contains(results[1].Note, "of /health's rate") {
		t.Fatalf("getRun note %q", results[1].Note)
	}
	var out bytes.Buffer
	Print(&out, results)
	for _, want := range []string{"GET /health", "rpc getRun", "launch→completed", "fan-out", "park 20 runs"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("report lacks %q:\n%s", want, out.String())
		}
	}
	if testing.Verbose() {
		_, _ = os.Stdout.Write(out.Bytes())
	}
}

// TestLaunchAndStreamScenarios runs the scenarios of examples/bench: launch
// counts every run and its durable steps, and stream delivers every signal's
// event to every socket.
func TestLaunchAndStreamScenarios(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "examples", "bench", "gateway.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	url, token := startModule(t, string(src), "one-task", "ten-tasks", "park", "ticks")
	results, err := Run(context.Background(), Options{URL: url, Token: token, Duration: 500 * time.Millisecond, Concurrency: 4,
		Workflow: "ten-tasks", Subscribers: 20, Rate: 50, Scenarios: []string{"launch", "stream"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 {
		t.Fatalf("%d results", len(results))
	}
	launch, stream := results[0], results[1]
	if launch.Ops == 0 || launch.Errors != 0 {
		t.Fatalf("launch: %d ops, %d errors (%s)", launch.Ops, launch.Errors, launch.Note)
	}
	// Every completed run took its ten steps (a run still in flight when
	// the scenario ended may add some): at least 10 per run.
	var steps float64
	if _, err := fmt.Sscanf(launch.Note, "%g steps/s", &steps); err != nil || steps*launch.Elapsed.Seconds() < float64(10*launch.Ops)-0.5 {
		t.Fatalf("launch note %q for %d runs in %s", launch.Note, launch.Ops, launch.Elapsed)
	}
	if !strings.Contains(launch.Note, "ms/run") {
		t.Fatalf("launch note %q lacks the CPU per run", launch.Note)
	}
	// 25 signals, each to 20 sockets, none dropped; each of the first 24
	// also puts the next wait's node.pending on the run, which every
	// socket counts too.
	if stream.Ops < (25+24)*20 || stream.Errors != 0 || !strings.Contains(stream.Note, " 0 of 500 node.finished frames dropped") ||
		!strings.Contains(stream.Note, "events/s on the run") {
		t.Fatalf("stream: %d frames, %d errors (%s)", stream.Ops, stream.Errors, stream.Note)
	}
}

func TestUnknownScenario(t *testing.T) {
	if _, err := Run(context.Background(), Options{URL: "http://127.0.0.1:1", Scenarios: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), "unknown scenario") {
		t.Fatalf("err %v", err)
	}
}
