package tokenstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestIssueRevokeList(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", ".smithers")
	path := filepath.Join(dir, "tokens.json")
	now := time.UnixMilli(storeNowMs)

	res, err := Issue(path, IssueOptions{Scopes: []string{"run:read", "cron:write"}, Role: "admin",
		UserID: "user:7", TTL: 90 * time.Minute, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^smithers_[A-Za-z0-9_-]{43}$`).MatchString(res.Token) {
		t.Fatalf("token %q does not look like smithers_ + base64url(32 bytes)", res.Token)
	}
	want := IssuedGrant{TokenID: TokenID(res.Token), Role: "admin", Scopes: []string{"run:read", "cron:write"},
		UserID: "user:7", IssuedAtMs: storeNowMs, ExpiresAtMs: storeNowMs + 90*60*1000}
	if res.TokenID != want.TokenID || res.StorePath != path || !grantsEqual(res.Grant, want) {
		t.Fatalf("result = %+v, want grant %+v", res, want)
	}

	// File shape: 2-space indent, trailing newline, 0600, private directory.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "{\n  \"tokens\": {\n    \"smithers_") || !strings.HasSuffix(string(data), "}\n") {
		t.Fatalf("unexpected file layout:\n%s", data)
	}
	var file struct {
		Tokens map[string]map[string]any `json:"tokens"`
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	g := file.Tokens[res.Token]
	if g["tokenId"] != want.TokenID || g["role"] != "admin" || g["userId"] != "user:7" ||
		g["issuedAtMs"] != float64(storeNowMs) || g["expiresAtMs"] != float64(want.ExpiresAtMs) {
		t.Fatalf("stored grant = %v", g)
	}
	if _, has := g["revokedAtMs"]; has {
		t.Fatal("a fresh grant must not carry revokedAtMs")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("store mode %v, want 0600", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("store directory mode %v, want 0700", fi.Mode().Perm())
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".tokens.json.tmp-*")); len(leftovers) > 0 {
		t.Fatalf("temporary files left behind: %v", leftovers)
	}

	// Defaults: role operator, scopes run:read.
	def, err := Issue(path, IssueOptions{TTL: time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if def.Grant.Role != "operator" || !slices.Equal(def.Grant.Scopes, []string{"run:read"}) || def.Grant.UserID != "" {
		t.Fatalf("defaults: %+v", def.Grant)
	}

	// List never shows a token.
	listed, err := List(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 || listed[0].TokenID != res.TokenID || listed[1].TokenID != def.TokenID {
		t.Fatalf("listed = %+v", listed)
	}
	if l := listed[0]; l.Role != "admin" || *l.UserID != "user:7" || *l.ExpiresAtMs != want.ExpiresAtMs || l.RevokedAtMs != nil {
		t.Fatalf("listed[0] = %+v", l)
	}
	if listed[1].UserID != nil {
		t.Fatalf("listed[1].UserID = %v, want nil", *listed[1].UserID)
	}
	out, _ := json.Marshal(listed)
	if strings.Contains(string(out), res.Token) || strings.Contains(string(out), def.Token) {
		t.Fatal("List exposed a token")
	}

	// Revoke keeps the entry, records the time once.
	id, err := Revoke(path, res.Token, now.Add(time.Minute))
	if err != nil || id != res.TokenID {
		t.Fatalf("Revoke = %q, %v", id, err)
	}
	if id, err := Revoke(path, res.Token, now.Add(2*time.Minute)); err != nil || id != res.TokenID {
		t.Fatalf("second Revoke = %q, %v", id, err)
	}
	listed, _ = List(path)
	if len(listed) != 2 || listed[0].RevokedAtMs == nil || *listed[0].RevokedAtMs != storeNowMs+60_000 {
		t.Fatalf("after revoke: %+v", listed[0])
	}
	if listed[1].RevokedAtMs != nil {
		t.Fatal("revoke touched another token")
	}

	// What the gateway loads agrees.
	grants, _, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	atMs := storeNowMs + int64(30*time.Minute/time.Millisecond)
	if g := grants[res.Token]; !g.Revoked(atMs) || g.TokenID != res.TokenID || g.User() != "user:7" {
		t.Fatalf("loaded revoked grant = %+v", g)
	}
	if g := grants[def.Token]; g.Revoked(atMs) || g.Expired(atMs) || g.TokenID != def.TokenID || g.Role != "operator" {
		t.Fatalf("loaded fresh grant = %+v", g)
	}
}

func grantsEqual(a, b IssuedGrant) bool {
	return a.TokenID == b.TokenID && a.Role == b.Role && slices.Equal(a.Scopes, b.Scopes) &&
		a.UserID == b.UserID && a.IssuedAtMs == b.IssuedAtMs && a.ExpiresAtMs == b.ExpiresAtMs
}

func TestRevokeNotFound(t *testing.T) {
	path := storePath(t)
	_, err := Revoke(path, "smithers_nothing", time.Now())
	he := wantCode(t, err, CodeTokenNotFound)
	if he.Message != "Token was not found in the local Smithers token store" {
		t.Fatalf("message %q", he.Message)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("revoking against a missing store created it")
	}
	if _, err := Issue(path, IssueOptions{TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"smithers_nothing", "", "__proto__"} {
		_, err = Revoke(path, tok, time.Now())
		wantCode(t, err, CodeTokenNotFound)
	}
}

func TestIssuePreservesUnknownFields(t *testing.T) {
	path := storePath(t)
	original := `{
  "version": 2,
  "tokens": {
    "smithers_old": {"tokenHash": "h1", "secret": "s1", "role": "operator", "scopes": ["run:read"], "extra": {"a": [1, 2.5, null]}},
    "weird": 42
  },
  "actionTokens": {"act": {"runId": "r1", "nodeId": "n"}},
  "zz": true
}
`
	writeAtomic(t, path, original)
	res, err := Issue(path, IssueOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Revoke(path, "smithers_old", time.UnixMilli(storeNowMs)); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	var before, after map[string]any
	if err := json.Unmarshal([]byte(original), &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &after); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"version", "actionTokens", "zz"} {
		if fmt.Sprint(before[key]) != fmt.Sprint(after[key]) {
			t.Fatalf("%s changed: %v -> %v", key, before[key], after[key])
		}
	}
	oldBefore := before["tokens"].(map[string]any)["smithers_old"].(map[string]any)
	oldAfter := after["tokens"].(map[string]any)["smithers_old"].(map[string]any)
	oldBefore["revokedAtMs"] = float64(storeNowMs)
	if fmt.Sprint(oldBefore) != fmt.Sprint(oldAfter) {
		t.Fatalf("grant fields changed:\n%v\n%v", oldBefore, oldAfter)
	}
	if after["tokens"].(map[string]any)["weird"] != float64(42) {
		t.Fatal("an unparsable grant was dropped")
	}
	if _, ok := after["tokens"].(map[string]any)[res.Token]; !ok {
		t.Fatal("issued token missing")
	}
	// Key order is kept: version, tokens, actionTokens, zz; old tokens first.
	s := string(data)
	order := []string{`"version"`, `"tokens"`, `"smithers_old"`, `"tokenHash"`, `"secret"`, `"weird"`,
		`"` + res.Token + `"`, `"actionTokens"`, `"zz"`}
	last := -1
	for _, k := range order {
		i := strings.Index(s, k)
		if i < last {
			t.Fatalf("key %s out of order in:\n%s", k, s)
		}
		last = i
	}
	// List reads the odd grant leniently.
	listed, err := List(path)
	if err != nil || len(listed) != 3 || listed[1].TokenID != TokenID("weird") {
		t.Fatalf("List = %+v, %v", listed, err)
	}
}

func TestCorruptStoreIsLeftUntouched(t *testing.T) {
	for _, content := range []string{`{"tokens": {`, `null`, `[]`, `"x"`, `{"tokens": null}`,
		`{"tokens": [1]}`, `{"tokens": {}} trailing`} {
		t.Run(content, func(t *testing.T) {
			path := storePath(t)
			writeAtomic(t, path, content)
			_, err := Issue(path, IssueOptions{TTL: time.Hour})
			he := wantCode(t, err, CodeTokenStoreCorrupt)
			if !strings.Contains(he.Message, "corrupt") || !strings.Contains(he.Message, "left untouched") ||
				!strings.Contains(he.Message, path) {
				t.Fatalf("message %q", he.Message)
			}
			_, err = Revoke(path, "x", time.Now())
			wantCode(t, err, CodeTokenStoreCorrupt)
			_, err = List(path)
			wantCode(t, err, CodeTokenStoreCorrupt)
			if data, _ := os.ReadFile(path); string(data) != content {
				t.Fatalf("store was modified: %q", data)
			}
		})
	}
}

func TestBlankStoreIsEmpty(t *testing.T) {
	path := storePath(t)
	writeAtomic(t, path, "  \n")
	if listed, err := List(path); err != nil || len(listed) != 0 {
		t.Fatalf("List = %v, %v", listed, err)
	}
	if _, err := Issue(path, IssueOptions{TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if listed, _ := List(path); len(listed) != 1 {
		t.Fatalf("listed %d tokens", len(listed))
	}
}

func TestIssueRejectsTinyTTL(t *testing.T) {
	path := storePath(t)
	for _, ttl := range []time.Duration{0, -time.Second, time.Microsecond} {
		_, err := Issue(path, IssueOptions{TTL: ttl})
		wantCode(t, err, CodeInvalidDuration)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a rejected issue created the store")
	}
}

func TestConcurrentIssue(t *testing.T) {
	path := storePath(t)
	const n = 50
	tokens := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := Issue(path, IssueOptions{Scopes: []string{fmt.Sprint("s", i)}, TTL: time.Hour})
			tokens[i], errs[i] = res.Token, err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Issue %d: %v", i, err)
		}
	}
	grants, _, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(grants) != n {
		t.Fatalf("store holds %d tokens, want %d (lost updates)", len(grants), n)
	}
	for i, tok := range tokens {
		if g, ok := grants[tok]; !ok || !slices.Equal(g.Scopes, []string{fmt.Sprint("s", i)}) {
			t.Fatalf("token %d missing or wrong: %+v", i, g)
		}
	}
}
