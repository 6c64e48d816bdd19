package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/tokenstore"
)

const tokenUsage = `Usage:
  smithers token issue [--scopes a,b] [--ttl 1h] [--role operator] [--user-id U] [--store PATH] [--json]
  smithers token revoke <token> [--store PATH] [--json]
  smithers token list [--store PATH] [--json]

The store defaults to $SMITHERS_TOKEN_STORE, else $HOME/.smithers/tokens.json.
--format json is an alias of --json.
`

// runToken runs "smithers token <issue|revoke|list> ..." and returns the
// process exit status: 0 on success, 1 when the operation failed (the
// error code is printed on stderr), 2 for a usage error.
func runToken(args []string, env func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, tokenUsage)
		return 2
	}
	switch args[0] {
	case "issue":
		return tokenIssue(args[1:], env, stdout, stderr)
	case "revoke":
		return tokenRevoke(args[1:], env, stdout, stderr)
	case "list", "ls":
		return tokenList(args[1:], env, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, tokenUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "smithers token: unknown subcommand %q\n%s", args[0], tokenUsage)
		return 2
	}
}

// tokenOutput holds the flags every token subcommand takes.
type tokenOutput struct {
	store  string
	json   bool
	format string
}

func newTokenFlags(name string, stderr io.Writer) (*flag.FlagSet, *tokenOutput) {
	o := &tokenOutput{}
	fs := flag.NewFlagSet("smithers token "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.store, "store", "", "token store `file` (default $SMITHERS_TOKEN_STORE, else $HOME/.smithers/tokens.json)")
	fs.BoolVar(&o.json, "json", false, "print JSON")
	fs.StringVar(&o.format, "format", "", "output `format`: text or json")
	return fs, o
}

// resolve returns the store path and whether JSON output was asked for.
func (o *tokenOutput) resolve(env func(string) string) (path string, jsonOut bool, err error) {
	switch strings.ToLower(o.format) {
	case "", "text", "table", "toon":
	case "json":
		o.json = true
	default:
		return "", false, fmt.Errorf("unsupported --format %q (use text or json)", o.format)
	}
	path = o.store
	if path == "" {
		path = defaultTokenStore(env)
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return path, o.json, nil
}

// defaultTokenStore is SMITHERS_TOKEN_STORE, else $HOME/.smithers/tokens.json,
// else .smithers/tokens.json in the current directory.
func defaultTokenStore(env func(string) string) string {
	if p := env("SMITHERS_TOKEN_STORE"); p != "" {
		return p
	}
	if home := env("HOME"); home != "" {
		return filepath.Join(home, ".smithers", "tokens.json")
	}
	return filepath.Join(".smithers", "tokens.json")
}

// parseTokenFlags parses args, allowing flags after positional arguments
// (up to a "--"), and returns the positional arguments. A non-nil status
// means: stop and exit with it.
func parseTokenFlags(fs *flag.FlagSet, args []string) (positional []string, status *int) {
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			code := 2
			if errors.Is(err, flag.ErrHelp) {
				code = 0
			}
			return nil, &code
		}
		left := fs.Args()
		if len(left) == 0 {
			return positional, nil
		}
		if consumed := len(rest) - len(left); consumed > 0 && rest[consumed-1] == "--" {
			return append(positional, left...), nil
		}
		positional = append(positional, left[0])
		rest = left[1:]
	}
}

func tokenIssue(args []string, env func(string) string, stdout, stderr io.Writer) int {
	fs, out := newTokenFlags("issue", stderr)
	scopes := fs.String("scopes", tokenstore.DefaultScope, "granted scopes, comma- and/or whitespace-separated")
	role := fs.String("role", tokenstore.DefaultRole, "role of the token")
	userID := fs.String("user-id", "", "user id of the token (optional)")
	ttl := fs.String("ttl", "1h", "lifetime: a number with unit ms, s, m, h or d (default unit ms)")
	pos, status := parseTokenFlags(fs, args)
	if status != nil {
		return *status
	}
	path, jsonOut, err := out.resolve(env)
	if err != nil || len(pos) > 0 {
		return tokenUsageError(stderr, "issue", err, pos)
	}
	d, err := tokenstore.ParseTTL(*ttl)
	if err != nil {
		return tokenFailure(stderr, "issue", err, tokenstore.CodeTokenIssueFailed)
	}
	res, err := tokenstore.Issue(path, tokenstore.IssueOptions{
		Scopes: tokenstore.SplitScopes(*scopes), Role: *role, UserID: *userID, TTL: d})
	if err != nil {
		return tokenFailure(stderr, "issue", err, tokenstore.CodeTokenIssueFailed)
	}
	if jsonOut {
		return printTokenJSON(stdout, stderr, res)
	}
	fmt.Fprintln(stdout, res.Token)
	user := ""
	if res.Grant.UserID != "" {
		user = ", user " + res.Grant.UserID
	}
	fmt.Fprintf(stderr, "issued token %s (role %s, scopes %s%s) expiring %s, stored in %s\n",
		res.TokenID, res.Grant.Role, scopeList(res.Grant.Scopes), user,
		formatMs(res.Grant.ExpiresAtMs), res.StorePath)
	return 0
}

func tokenRevoke(args []string, env func(string) string, stdout, stderr io.Writer) int {
	fs, out := newTokenFlags("revoke", stderr)
	pos, status := parseTokenFlags(fs, args)
	if status != nil {
		return *status
	}
	path, jsonOut, err := out.resolve(env)
	if err != nil || len(pos) != 1 {
		if err == nil {
			err = errors.New("expected exactly one token")
		}
		return tokenUsageError(stderr, "revoke", err, nil)
	}
	tokenID, err := tokenstore.Revoke(path, pos[0], time.Now())
	if err != nil {
		return tokenFailure(stderr, "revoke", err, tokenstore.CodeTokenRevokeFailed)
	}
	if jsonOut {
		return printTokenJSON(stdout, stderr, struct {
			Revoked   bool   `json:"revoked"`
			TokenID   string `json:"tokenId"`
			StorePath string `json:"storePath"`
		}{true, tokenID, path})
	}
	fmt.Fprintf(stdout, "revoked %s\n", tokenID)
	return 0
}

func tokenList(args []string, env func(string) string, stdout, stderr io.Writer) int {
	fs, out := newTokenFlags("list", stderr)
	pos, status := parseTokenFlags(fs, args)
	if status != nil {
		return *status
	}
	path, jsonOut, err := out.resolve(env)
	if err != nil || len(pos) > 0 {
		return tokenUsageError(stderr, "list", err, pos)
	}
	tokens, err := tokenstore.List(path)
	if err != nil {
		return tokenFailure(stderr, "list", err, tokenstore.CodeTokenListFailed)
	}
	if jsonOut {
		return printTokenJSON(stdout, stderr, tokens)
	}
	nowMs := time.Now().UnixMilli()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOKEN ID\tROLE\tSCOPES\tUSER ID\tEXPIRES\tREVOKED")
	for _, t := range tokens {
		user, expires, revoked := "-", "-", "-"
		if t.UserID != nil && *t.UserID != "" {
			user = *t.UserID
		}
		if t.ExpiresAtMs != nil {
			expires = formatMs(*t.ExpiresAtMs)
			if *t.ExpiresAtMs <= nowMs {
				expires += " (expired)"
			}
		}
		if t.RevokedAtMs != nil {
			revoked = formatMs(*t.RevokedAtMs)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.TokenID, dash(t.Role), scopeList(t.Scopes), user, expires, revoked)
	}
	if err := tw.Flush(); err != nil {
		return tokenFailure(stderr, "list", err, tokenstore.CodeTokenListFailed)
	}
	return 0
}

func tokenUsageError(stderr io.Writer, sub string, err error, extra []string) int {
	if err == nil {
		err = fmt.Errorf("unexpected arguments: %s", strings.Join(extra, " "))
	}
	fmt.Fprintf(stderr, "smithers token %s: %v\n%s", sub, err, tokenUsage)
	return 2
}

// tokenFailure prints "smithers token <sub>: <CODE>: <message>" and returns
// exit status 1; errors without a code get fallback.
func tokenFailure(stderr io.Writer, sub string, err error, fallback string) int {
	var he *host.Error
	if errors.As(err, &he) {
		fmt.Fprintf(stderr, "smithers token %s: %s: %s\n", sub, he.Code, he.Message)
	} else {
		fmt.Fprintf(stderr, "smithers token %s: %s: %v\n", sub, fallback, err)
	}
	return 1
}

func printTokenJSON(stdout, stderr io.Writer, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(stderr, "smithers token: write output: %v\n", err)
		return 1
	}
	return 0
}

func formatMs(ms int64) string {
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

func scopeList(scopes []string) string {
	if len(scopes) == 0 {
		return "-"
	}
	return strings.Join(scopes, ",")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
