package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/tokenstore"
)

// runTokenCmd runs runToken with env and returns exit code, stdout, stderr.
func runTokenCmd(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := runToken(args, func(k string) string { return env[k] }, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestTokenIssueRevokeList(t *testing.T) {
	store := filepath.Join(t.TempDir(), "tokens.json")
	env := map[string]string{"SMITHERS_TOKEN_STORE": store}

	code, out, errOut := runTokenCmd(t, env, "issue", "--scopes", "run:read,cron:write approve", "--ttl", "2h",
		"--role", "admin", "--user-id", "user:1")
	if code != 0 {
		t.Fatalf("issue exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	token := lines[0]
	if len(lines) != 1 || !regexp.MustCompile(`^smithers_[A-Za-z0-9_-]{43}$`).MatchString(token) {
		t.Fatalf("issue stdout must be the token alone, got %q", out)
	}
	if !strings.Contains(errOut, tokenstore.TokenID(token)) || strings.Contains(errOut, token) {
		t.Fatalf("issue stderr should name the token id, not the token: %q", errOut)
	}

	code, out, errOut = runTokenCmd(t, env, "issue", "--json")
	if code != 0 {
		t.Fatalf("issue --json exit %d: %s", code, errOut)
	}
	var issued struct {
		Token   string `json:"token"`
		TokenID string `json:"tokenId"`
		Grant   struct {
			TokenID     string   `json:"tokenId"`
			Role        string   `json:"role"`
			Scopes      []string `json:"scopes"`
			IssuedAtMs  int64    `json:"issuedAtMs"`
			ExpiresAtMs int64    `json:"expiresAtMs"`
		} `json:"grant"`
		StorePath string `json:"storePath"`
	}
	if err := json.Unmarshal([]byte(out), &issued); err != nil {
		t.Fatalf("issue --json output %q: %v", out, err)
	}
	if issued.TokenID != tokenstore.TokenID(issued.Token) || issued.Grant.TokenID != issued.TokenID ||
		issued.Grant.Role != "operator" || len(issued.Grant.Scopes) != 1 || issued.Grant.Scopes[0] != "run:read" ||
		issued.Grant.ExpiresAtMs-issued.Grant.IssuedAtMs != 3600_000 || issued.StorePath != store {
		t.Fatalf("issue --json = %+v", issued)
	}

	// list: a table without tokens, then JSON.
	code, out, errOut = runTokenCmd(t, env, "list")
	if code != 0 {
		t.Fatalf("list exit %d: %s", code, errOut)
	}
	if strings.Contains(out, token) || strings.Contains(out, issued.Token) {
		t.Fatal("list printed a token")
	}
	for _, want := range []string{"TOKEN ID", tokenstore.TokenID(token), issued.TokenID, "admin",
		"run:read,cron:write,approve", "user:1"} {
		if !strings.Contains(out, want) {
			t.Fatalf("list output lacks %q:\n%s", want, out)
		}
	}

	// revoke, with the flag after the token.
	code, out, errOut = runTokenCmd(t, nil, "revoke", token, "--store", store)
	if code != 0 || out != "revoked "+tokenstore.TokenID(token)+"\n" {
		t.Fatalf("revoke exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = runTokenCmd(t, env, "revoke", "--format", "json", issued.Token)
	var revoked map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &revoked) != nil || revoked["revoked"] != true ||
		revoked["tokenId"] != issued.TokenID || revoked["storePath"] != store {
		t.Fatalf("revoke --format json exit %d: %q", code, out)
	}

	code, out, _ = runTokenCmd(t, env, "list", "--json")
	var listed []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &listed) != nil || len(listed) != 2 {
		t.Fatalf("list --json exit %d: %q", code, out)
	}
	if strings.Contains(out, token) || listed[0]["revokedAtMs"] == nil || listed[0]["userId"] != "user:1" {
		t.Fatalf("list --json = %s", out)
	}

	code, _, errOut = runTokenCmd(t, env, "revoke", "smithers_unknown")
	if code != 1 || !strings.Contains(errOut, "TOKEN_NOT_FOUND") {
		t.Fatalf("revoke unknown: exit %d, stderr %q", code, errOut)
	}
}

func TestTokenErrors(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "tokens.json")
	env := map[string]string{"SMITHERS_TOKEN_STORE": store}

	for _, ttl := range []string{"soon", "0", "-1h", "1w"} {
		code, out, errOut := runTokenCmd(t, env, "issue", "--ttl", ttl)
		if code != 1 || out != "" || !strings.Contains(errOut, "INVALID_DURATION") ||
			!strings.Contains(errOut, "Invalid ttl: "+ttl) {
			t.Fatalf("--ttl %s: exit %d, stdout %q, stderr %q", ttl, code, out, errOut)
		}
	}
	if _, err := os.Stat(store); !os.IsNotExist(err) {
		t.Fatal("a failed issue created the store")
	}

	usage := [][]string{
		{}, {"bogus"}, {"issue", "--nope"}, {"issue", "extra"}, {"revoke"}, {"revoke", "a", "b"},
		{"list", "x"}, {"list", "--format", "yaml"},
	}
	for _, args := range usage {
		if code, _, errOut := runTokenCmd(t, env, args...); code != 2 || errOut == "" {
			t.Fatalf("%q: exit %d, stderr %q; want usage error 2", args, code, errOut)
		}
	}
	if code, out, _ := runTokenCmd(t, env, "help"); code != 0 || !strings.Contains(out, "smithers token issue") {
		t.Fatalf("help: exit %d", code)
	}
	if code, _, _ := runTokenCmd(t, env, "issue", "-h"); code != 0 {
		t.Fatalf("issue -h: exit %d", code)
	}

	// A corrupt store is reported and left alone.
	if err := os.WriteFile(store, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"issue"}, {"list"}, {"revoke", "x"}} {
		code, out, errOut := runTokenCmd(t, env, args...)
		if code != 1 || out != "" || !strings.Contains(errOut, "TOKEN_STORE_CORRUPT") || !strings.Contains(errOut, "untouched") {
			t.Fatalf("%q on a corrupt store: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	if data, _ := os.ReadFile(store); string(data) != "{not json" {
		t.Fatalf("corrupt store was rewritten: %q", data)
	}
}

func TestTokenRevokeDoubleDash(t *testing.T) {
	store := filepath.Join(t.TempDir(), "tokens.json")
	res, err := tokenstore.Issue(store, tokenstore.IssueOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runTokenCmd(t, nil, "revoke", "--store", store, "--", res.Token)
	if code != 0 || out != "revoked "+res.TokenID+"\n" {
		t.Fatalf("exit %d, %q, %q", code, out, errOut)
	}
}

func TestDefaultTokenStore(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"SMITHERS_TOKEN_STORE": "/x/t.json", "HOME": "/home/u"}, "/x/t.json"},
		{map[string]string{"HOME": "/home/u"}, filepath.Join("/home/u", ".smithers", "tokens.json")},
		{nil, filepath.Join(".smithers", "tokens.json")},
	}
	for _, tt := range tests {
		if got := defaultTokenStore(func(k string) string { return tt.env[k] }); got != tt.want {
			t.Errorf("defaultTokenStore(%v) = %q, want %q", tt.env, got, tt.want)
		}
	}
	// The store defaults to $HOME/.smithers/tokens.json end to end.
	home := t.TempDir()
	code, out, errOut := runTokenCmd(t, map[string]string{"HOME": home}, "issue", "--json")
	if code != 0 || !strings.Contains(out, filepath.Join(home, ".smithers", "tokens.json")) {
		t.Fatalf("exit %d, %q, %q", code, out, errOut)
	}
}
