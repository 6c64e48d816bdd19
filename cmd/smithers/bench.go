package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"github.com/smithers-orchestrator/smithers-go/bench"
)

// runBench runs `smithers bench`: a load generator speaking the v1 protocol
// against any gateway.
func runBench(args []string, env func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("smithers bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:7331", "gateway base URL")
	token := fs.String("token", env("SMITHERS_TOKEN"), "bearer token (default $SMITHERS_TOKEN)")
	duration := fs.Duration("duration", 10*time.Second, "how long each timed scenario starts new operations (those in flight then finish and count)")
	conc := fs.Int("concurrency", 32, "concurrent callers")
	workflow := fs.String("workflow", "quickstart", "workflow to launch (approvals it asks for are approved)")
	input := fs.String("input", `{"name":"bench"}`, "run input (JSON object)")
	subs := fs.Int("subscribers", 50, "sockets in the fanout and stream scenarios")
	rate := fs.Int("rate", 100, "signals per second the stream scenario sends")
	parked := fs.Int("parked", 0, "runs to park in the memory scenario (0 skips it)")
	scenarios := fs.String("scenarios", "", "comma-separated: rpc,runs,launch,fanout,stream,parked (default: rpc,runs,fanout, and parked with --parked)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if env("GOGC") == "" {
		debug.SetGCPercent(benchGCPercent)
	}
	if !json.Valid([]byte(*input)) {
		fmt.Fprintln(stderr, "smithers bench: --input must be JSON")
		return 2
	}
	o := bench.Options{URL: *url, Token: *token, Duration: *duration, Concurrency: *conc, Workflow: *workflow,
		Input: json.RawMessage(*input), Subscribers: *subs, Rate: *rate, Parked: *parked}
	if *scenarios != "" {
		o.Scenarios = strings.Split(*scenarios, ",")
	}
	results, err := bench.Run(context.Background(), o)
	bench.Print(stdout, results)
	if err != nil {
		fmt.Fprintf(stderr, "smithers bench: %v\n", err)
		return 1
	}
	return 0
}
