// Command smithers is the Smithers gateway: it loads a workflow module,
// runs its workflows durably on SQLite, and serves the Gateway v1 API.
//
//	smithers gateway   the server (the Docker image's entrypoint)
//	smithers dev       the server on an embedded default, for trying it out
//	smithers token     issue, revoke and list tokens of a token store
//	smithers init      write a starter workflow module with its types
//	smithers runs      list, show, follow and act on the runs of a gateway
//	smithers bench     load-test a gateway over the v1 protocol
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `Usage: smithers <command> [flags]

Commands:
  gateway   serve the Gateway v1 API (configuration: env vars or flags; see --help)
  dev       serve on 127.0.0.1:7331 with local data in ./.smithers and the quickstart example
  token     issue, revoke or list tokens of a token store
  init      write a starter gateway.mjs (or --ts: gateway.ts), its type declarations and
            editor config into a directory (default .)
  runs      list, show and follow runs; launch, approve, deny, signal, cancel, resume
            (smithers runs help)
  bench     load-test a gateway (ours or upstream) over the v1 protocol
`

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, env func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "gateway":
		return serve("gateway", args[1:], env, stdout, stderr)
	case "dev":
		return serve("dev", args[1:], env, stdout, stderr)
	case "token":
		return runToken(args[1:], env, stdout, stderr)
	case "init":
		return runInit(args[1:], stdout, stderr)
	case "runs":
		return runRuns(args[1:], env, stdout, stderr)
	case "bench":
		return runBench(args[1:], env, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "smithers: unknown command %q\n%s", args[0], usage)
	return 2
}

// serve runs the gateway until SIGINT or SIGTERM, then shuts it down
// gracefully.
func serve(mode string, args []string, env func(string) string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	m, err := newMain(mode, args, env, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "smithers %s: %v\n", mode, err)
		return 2
	}
	if err := m.Run(ctx); err != nil {
		m.Close()
		if ctx.Err() != nil {
			// Stopped while starting (a SIGTERM while the module was
			// still registering): a requested stop, not a failure.
			fmt.Fprintf(stderr, "smithers %s: stopped while starting: %v\n", mode, err)
			return 0
		}
		fmt.Fprintf(stderr, "smithers %s: %v\n", mode, err)
		return 1
	}
	<-ctx.Done()
	// A second SIGINT/SIGTERM now kills the process the default way.
	stop()
	m.log.Info("shutting down")
	if err := m.Close(); err != nil {
		fmt.Fprintf(stderr, "smithers %s: shutdown: %v\n", mode, err)
		return 1
	}
	return 0
}
