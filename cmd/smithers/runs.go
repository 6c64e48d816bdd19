package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/smithers-orchestrator/smithers-go/api/client"
	"github.com/smithers-orchestrator/smithers-go/cli/runs"
)

const runsUsage = `Usage: smithers runs <command> [args] [flags]

Commands:
  list                          the newest runs [--status S] [--workflow W] [--limit N]
  show <runId>                  a run's nodes, attempts (with errors) and output
  follow <runId>                print the run's events until it completes [--after-seq N]
  launch <workflow> [json]      start a run with the JSON object as input; prints its id
                                [--run-id ID] [--idempotency-key K]
  approve <runId> <nodeId>      approve a waiting approval [--note T] [--iteration I] [--decision JSON]
  deny <runId> <nodeId>         deny it (same flags)
  signal <runId> <name> [json]  send a signal with an optional JSON payload [--correlation-id C]
  cancel <runId>                cancel a run
  resume <runId>                resume a run [--retry-failed] [--force]

Every command takes:
  --url URL     the gateway (default $SMITHERS_URL, else http://127.0.0.1:7331)
  --token T     a bearer token (default $SMITHERS_TOKEN, else the token that
                ` + "`smithers dev`" + ` keeps in .smithers/dev-token of the current directory)
  --json        print the gateway's answers as JSON (follow: one event per line)

Exit status: 0 done, 1 the gateway answered an error or could not be reached,
2 a usage mistake, 130 interrupted.
`

// defaultGatewayURL is where `smithers dev` listens.
const defaultGatewayURL = "http://127.0.0.1:7331"

// devTokenPath is where `smithers dev` keeps its token, relative to the
// directory it runs in.
const devTokenPath = ".smithers/dev-token"

// runsCommand is one `smithers runs` subcommand: its positional arguments
// (required, then optional) and its own flags.
type runsCommand struct {
	args, optional []string
	flags          func(fs *flag.FlagSet) func(ctx context.Context, c *runs.CLI, pos []string) error
}

// runsCommands is the table of `smithers runs` subcommands.
func runsCommands() map[string]runsCommand {
	return map[string]runsCommand{
		"list": {flags: func(fs *flag.FlagSet) func(context.Context, *runs.CLI, []string) error {
			status := fs.String("status", "", "only runs with this status (running, waiting-approval, finished, failed, ...)")
			workflow := fs.String("workflow", "", "only runs of this workflow")
			limit := fs.Int("limit", 50, "print at most this many runs")
			return func(ctx context.Context, c *runs.CLI, _ []string) error {
				return c.List(ctx, runs.ListOptions{Status: *status, Workflow: *workflow, Limit: *limit})
			}
		}},
		"show": {args: []string{"runId"}, flags: func(fs *flag.FlagSet) func(context.Context, *runs.CLI, []string) error {
			return func(ctx context.Context, c *runs.CLI, pos []string) error { return c.Show(ctx, pos[0]) }
		}},
		"follow": {args: []string{"runId"}, flags: func(fs *flag.FlagSet) func(context.Context, *runs.CLI, []string) error {
			after := fs.Int64("after-seq", 0, "print the events after this seq (0: the whole history; -1: live only)")
			return func(ctx context.Context, c *runs.CLI, pos []string) error {
				return c.Follow(ctx, pos[0], runs.FollowOptions{AfterSeq: *after})
			}
		}},
		"launch": {args: []string{"workflow"}, optional: []string{"json"}, flags: func(fs *flag.FlagSet) func(context.Context, *runs.CLI, []string) error {
			runID := fs.String("run-id", "", "the run id to use (lower-case letters, digits, _ and -)")
			key := fs.String("idempotency-key", "", "launch at most one run per workflow and key")
			return func(ctx context.Context, c *runs.CLI, pos []string) error {
				input, err := jsonArg(pos, 1, "input", true)
				if err != nil {
					return err
				}
				return c.Launch(ctx, pos[0], input, runs.LaunchOptions{RunID: *runID, IdempotencyKey: *key})
			}
		}},
		"approve": decideCommand(true),
		"deny":    decideCommand(false),
		"signal": {args: []string{"runId", "name"}, optional: []string{"json"}, flags: func(fs *flag.FlagSet) func(context.Context, *runs.CLI, []string) error {
			corr := fs.String("correlation-id", "", "the signal's correlation id (a wait with a correlationId takes only a signal with the same one)")
			return func(ctx context.Context, c *runs.CLI, pos []string) error {
				payload, err := jsonArg(pos, 2, "payload", false)
				if err != nil {
					return err
				}
				return c.SendSignal(ctx, runs.Signal{RunID: pos[0], Name: pos[1], CorrelationID: *corr, Payload: payload})
			}
		}},
		"cancel": {args: []string{"runId"}, flags: func(fs *flag.FlagSet) func(context.Context, *runs.CLI, []string) error {
			return func(ctx context.Context, c *runs.CLI, pos []string) error { return c.Cancel(ctx, pos[0]) }
		}},
		"resume": {args: []string{"runId"}, flags: func(fs *flag.FlagSet) func(context.Context, *runs.CLI, []string) error {
			retry := fs.Bool("retry-failed", false, "continue a failed run from its failed step (finished steps are not run again)")
			force := fs.Bool("force", false, `replay a run held by versionPolicy "strict" under the current module`)
			return func(ctx context.Context, c *runs.CLI, pos []string) error {
				return c.Resume(ctx, pos[0], runs.ResumeOptions{RetryFailed: *retry, Force: *force})
			}
		}},
	}
}

func decideCommand(approved bool) runsCommand {
	return runsCommand{args: []string{"runId", "nodeId"}, flags: func(fs *flag.FlagSet) func(context.Context, *runs.CLI, []string) error {
		note := fs.String("note", "", "a note recorded with the decision")
		iteration := fs.Int("iteration", 0, "the node's iteration")
		fields := fs.String("decision", "", `more fields of the decision, a JSON object: {"selected":"a"}, {"ranked":["a","b"]}, {"value":...}`)
		return func(ctx context.Context, c *runs.CLI, pos []string) error {
			d := runs.Decision{RunID: pos[0], NodeID: pos[1], Iteration: *iteration, Approved: approved, Note: *note}
			if *fields != "" {
				if err := json.Unmarshal([]byte(*fields), &d.Fields); err != nil || d.Fields == nil {
					return usageError("--decision must be a JSON object, got %q", *fields)
				}
			}
			return c.Decide(ctx, d)
		}
	}}
}

// usageErr is a mistake in the command line: exit status 2.
type usageErr struct{ msg string }

func (e usageErr) Error() string { return e.msg }

func usageError(format string, args ...any) error { return usageErr{fmt.Sprintf(format, args...)} }

// jsonArg reads the optional JSON argument pos[i]; object requires an
// object.
func jsonArg(pos []string, i int, what string, object bool) (json.RawMessage, error) {
	if len(pos) <= i {
		return nil, nil
	}
	raw := json.RawMessage(pos[i])
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, usageError("the %s must be JSON, got %q", what, pos[i])
	}
	if _, ok := v.(map[string]any); object && !ok {
		return nil, usageError("the %s must be a JSON object, got %q", what, pos[i])
	}
	return raw, nil
}

// runRuns runs `smithers runs`.
func runRuns(args []string, env func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, runsUsage)
		return 2
	}
	name := args[0]
	if name == "help" || name == "-h" || name == "--help" {
		fmt.Fprint(stdout, runsUsage)
		return 0
	}
	cmd, ok := runsCommands()[name]
	if !ok {
		fmt.Fprintf(stderr, "smithers runs: unknown command %q\n%s", name, runsUsage)
		return 2
	}
	fs := flag.NewFlagSet("smithers runs "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "gateway base URL (default $SMITHERS_URL, else "+defaultGatewayURL+")")
	token := fs.String("token", "", "bearer token (default $SMITHERS_TOKEN, else "+devTokenPath+" when it exists)")
	asJSON := fs.Bool("json", false, "print JSON")
	do := cmd.flags(fs)
	synopsis := strings.TrimSpace("smithers runs " + name + " " + placeholders(cmd.args, "<", ">") + " " + placeholders(cmd.optional, "[", "]"))
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s [flags]\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if len(pos) < len(cmd.args) || len(pos) > len(cmd.args)+len(cmd.optional) {
		fmt.Fprintf(stderr, "smithers runs %s: want %s, got %d argument(s)\nUsage: %s [flags]\n", name,
			strings.TrimSpace(placeholders(cmd.args, "<", ">")+" "+placeholders(cmd.optional, "[", "]")), len(pos), synopsis)
		return 2
	}
	base, tok, tokenFrom := gatewayURL(*url, env), *token, "--token"
	if tok == "" {
		tok, tokenFrom = defaultToken(env)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	c := &runs.CLI{Client: client.New(base, tok), Out: stdout, Err: stderr, JSON: *asJSON}
	err = do(ctx, c, pos)
	return runsExit(err, name, base, tokenFrom, stderr)
}

// runsExit prints err and returns the exit status: 0 without error, 2 for
// a usage mistake, 1 for an error the gateway answered or a gateway that
// could not be reached, 130 when interrupted.
func runsExit(err error, name, base, tokenFrom string, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	if errors.Is(err, context.Canceled) {
		return 130 // interrupted (Ctrl-C), as a shell reports SIGINT: nothing to explain
	}
	var ue usageErr
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "smithers runs %s: %v\n", name, err)
		return 2
	}
	var gw *client.Error
	if errors.As(err, &gw) {
		fmt.Fprintf(stderr, "smithers runs %s: %s: %s\n", name, gw.Code, gw.Message)
		if gw.Code == "UNAUTHORIZED" || gw.Code == "Unauthorized" {
			if tokenFrom == "" {
				fmt.Fprintf(stderr, "  no token was given: pass --token, set SMITHERS_TOKEN, or run this in the directory of `smithers dev` (%s)\n", devTokenPath)
			} else {
				fmt.Fprintf(stderr, "  the gateway refused the token from %s\n", tokenFrom)
			}
		}
		return 1
	}
	fmt.Fprintf(stderr, "smithers runs %s: %v\n  is a gateway listening at %s? (--url, SMITHERS_URL)\n", name, err, base)
	return 1
}

func placeholders(names []string, open, close string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = open + n + close
	}
	return strings.Join(out, " ")
}

// gatewayURL is --url, else $SMITHERS_URL, else where `smithers dev`
// listens.
func gatewayURL(flagValue string, env func(string) string) string {
	for _, u := range []string{flagValue, env("SMITHERS_URL")} {
		if u = strings.TrimSpace(u); u != "" {
			return strings.TrimRight(u, "/")
		}
	}
	return defaultGatewayURL
}

// defaultToken is $SMITHERS_TOKEN, else the dev token `smithers dev` keeps
// in the current directory; from says which ("" when there is none).
func defaultToken(env func(string) string) (token, from string) {
	if t := strings.TrimSpace(env("SMITHERS_TOKEN")); t != "" {
		return t, "SMITHERS_TOKEN"
	}
	if b, err := os.ReadFile(devTokenPath); err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, devTokenPath
		}
	}
	return "", ""
}
