package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/smithers-orchestrator/smithers-go/cli/scaffold"
)

const initUsage = `Usage: smithers init [dir] [--ts] [--force]

Writes a starter workflow module into dir (default "."): gateway.mjs, the
TypeScript declarations of "smithers-orchestrator" in types/, and a
jsconfig.json with which VS Code completes and type-checks the module.
--ts writes gateway.ts and a tsconfig.json instead. Existing files with
other content are not overwritten unless --force is given.

Flags:
`

// runInit runs `smithers init`.
func runInit(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("smithers init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), initUsage)
		fs.PrintDefaults()
	}
	ts := fs.Bool("ts", false, "write gateway.ts and tsconfig.json (TypeScript) instead of gateway.mjs and jsconfig.json")
	force := fs.Bool("force", false, "overwrite files that exist with other content")
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	if len(pos) > 1 {
		fmt.Fprintf(stderr, "smithers init: one directory at most, got %q\n", pos)
		fs.Usage()
		return 2
	}
	o := scaffold.Options{Dir: ".", TypeScript: *ts, Force: *force}
	if len(pos) == 1 {
		o.Dir = pos[0]
	}
	res, err := scaffold.Write(o)
	for _, p := range res.Written {
		fmt.Fprintf(stdout, "wrote %s\n", p)
	}
	for _, p := range res.Unchanged {
		fmt.Fprintf(stdout, "kept  %s (unchanged)\n", p)
	}
	if err != nil {
		fmt.Fprintf(stderr, "smithers init: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nNext: smithers dev --module %s\n", scaffold.ModuleFile(o))
	return 0
}

// parseInterspersed parses flags that may come before, between or after
// the positional arguments (`smithers runs approve <id> ship --note ok`),
// and returns the positional ones. "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// flag.Parse consumed "--" itself when it ended the flags.
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
