package auth

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smithers-orchestrator/smithers-go/testkit"
	"github.com/smithers-orchestrator/smithers-go/tokenstore"
)

const storeNowMs = 1_700_000_000_000

func openTestStore(t *testing.T, path string, clock *fakeClock) (*TokenStore, *testkit.Buffer) {
	t.Helper()
	logger, logs := newTestLogger()
	opts := TokenStoreOptions{Logger: logger}
	if clock != nil {
		opts.Now = clock.Now
	}
	s := OpenTokenStore(path, opts)
	t.Cleanup(func() { _ = s.Close() })
	return s, logs
}

func TestTokenStoreAuthenticate(t *testing.T) {
	path := storePath(t)
	writeAtomic(t, path, fmt.Sprintf(`{"tokens": {
  "tok-good": {"tokenId": "id-good", "role": "admin", "scopes": ["run:read", "cron:write"], "userId": "user:1",
               "issuedAtMs": %[1]d, "expiresAtMs": %[2]d},
  "tok-noid": {"role": "operator", "scopes": []},
  "tok-revoked": {"role": "operator", "scopes": ["*"], "revokedAtMs": %[3]d, "expiresAtMs": %[3]d},
  "tok-revoked-zero": {"role": "operator", "scopes": ["*"], "revokedAtMs": 0},
  "tok-revoke-later": {"role": "operator", "scopes": ["*"], "revokedAtMs": %[2]d, "userId": null, "tokenId": null},
  "tok-expired": {"role": "operator", "scopes": ["*"], "expiresAtMs": %[4]d},
  "tok-expires-now": {"role": "operator", "scopes": ["*"], "expiresAtMs": %[1]d}
}}`, storeNowMs, storeNowMs+3600_000, storeNowMs-1, storeNowMs-1000))
	s, _ := openTestStore(t, path, newFakeClock(time.UnixMilli(storeNowMs)))
	if s.Mode() != ModeToken || s.Err() != nil || s.Generation() != 1 {
		t.Fatalf("mode %q err %v generation %d", s.Mode(), s.Err(), s.Generation())
	}

	id, err := s.Authenticate(Credentials{Token: "tok-good"})
	if err != nil {
		t.Fatal(err)
	}
	if id.Role != "admin" || !slices.Equal(id.Scopes, []string{"run:read", "cron:write"}) ||
		id.UserID != "user:1" || id.TokenID != "id-good" {
		t.Fatalf("identity = %+v", id)
	}
	id.Scopes[0] = "*" // the caller owns the slice
	if id2, _ := s.Authenticate(Credentials{Token: "tok-good"}); id2.Scopes[0] != "run:read" {
		t.Fatalf("store grant was mutated through a returned identity: %v", id2.Scopes)
	}

	id, err = s.Authenticate(Credentials{Token: "tok-noid"})
	if err != nil || id.TokenID != tokenstore.TokenID("tok-noid") || id.Scopes == nil || len(id.Scopes) != 0 {
		t.Fatalf("tok-noid: %+v, %v", id, err)
	}
	if _, err := s.Authenticate(Credentials{Token: "tok-revoke-later"}); err != nil {
		t.Fatalf("a future revocation must not apply yet: %v", err)
	}

	failures := []struct {
		token, message string
		refresh        bool
	}{
		{"", msgTokenRequired, false},
		{"nope", msgInvalidToken, false},
		{"__proto__", msgInvalidToken, false},
		{"constructor", msgInvalidToken, false},
		{"toString", msgInvalidToken, false},
		{"hasOwnProperty", msgInvalidToken, false},
		{" tok-good", msgInvalidToken, false},
		{"tok-good ", msgInvalidToken, false},
		{"TOK-GOOD", msgInvalidToken, false},
		{"tok-revoked", msgTokenRevoked, true},
		{"tok-revoked-zero", msgTokenRevoked, true},
		{"tok-expired", msgTokenExpired, true},
		{"tok-expires-now", msgTokenExpired, true},
	}
	for _, f := range failures {
		t.Run(fmt.Sprintf("%q", f.token), func(t *testing.T) {
			_, err := s.Authenticate(Credentials{Token: f.token})
			wantUnauthorized(t, err, f.message, f.refresh)
		})
	}
}

func TestTokenStoreExpiryFollowsTheClock(t *testing.T) {
	path := storePath(t)
	writeAtomic(t, path, fmt.Sprintf(`{"tokens":{"t":{"role":"operator","scopes":["run:read"],"expiresAtMs":%d}}}`,
		storeNowMs+1000))
	clock := newFakeClock(time.UnixMilli(storeNowMs))
	s, _ := openTestStore(t, path, clock)
	if _, err := s.Authenticate(Credentials{Token: "t"}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(1000 * time.Millisecond)
	_, err := s.Authenticate(Credentials{Token: "t"})
	wantUnauthorized(t, err, msgTokenExpired, true)
}

func TestTokenStoreVersion2(t *testing.T) {
	path := storePath(t)
	writeAtomic(t, path, `{"version": 2,
  "tokens": {"smithers_v2": {"tokenId": "v2id", "role": "operator", "scopes": ["run:write"],
                             "secret": "s3cr3t", "tokenHash": "abcdef", "label": {"nested": [1, 2]}}},
  "actionTokens": {"act_1": {"runId": "r", "expiresAtMs": 1}}}`)
	s, _ := openTestStore(t, path, nil)
	id, err := s.Authenticate(Credentials{Token: "smithers_v2"})
	if err != nil || id.TokenID != "v2id" || !slices.Equal(id.Scopes, []string{"run:write"}) {
		t.Fatalf("version-2 store: %+v, %v", id, err)
	}
	_, err = s.Authenticate(Credentials{Token: "act_1"})
	wantUnauthorized(t, err, msgInvalidToken, false)
}

func TestTokenStoreDeniesAllWhenUnusable(t *testing.T) {
	// Every reason a file is refused is tested with tokenstore.Load; these
	// check that the gateway turns each kind into "deny all" and one log line.
	good := `"good": {"role": "operator", "scopes": ["*"]}`
	tests := []struct {
		name    string
		content *string
		reason  string
	}{
		{"missing file", nil, "does not exist"},
		{"empty file", ptr(""), "empty"},
		{"invalid JSON", ptr(`{"tokens": {` + good), "invalid JSON"},
		{"no tokens", ptr(`{"version": 2}`), `no "tokens"`},
		{"tokens null", ptr(`{"tokens": null}`), `"tokens" is JSON null`},
		{"grant null", ptr(`{"tokens": {` + good + `, "bad": null}}`), "malformed grant"},
		{"role number", ptr(`{"tokens": {` + good + `, "bad": {"role": 1, "scopes": []}}}`), "role is not a string"},
		{"expiry string", ptr(`{"tokens": {` + good + `, "bad": {"role": "x", "scopes": [], "expiresAtMs": "soon"}}}`), "expiresAtMs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := storePath(t)
			if tt.content != nil {
				writeAtomic(t, path, *tt.content)
			}
			s, logs := openTestStore(t, path, nil)
			_, err := s.Authenticate(Credentials{Token: "good"})
			wantUnauthorized(t, err, msgStoreUnavailable, false)
			if s.Err() == nil || !strings.Contains(s.Err().Error(), tt.reason) {
				t.Fatalf("Err() = %v, want it to mention %q", s.Err(), tt.reason)
			}
			if n := logs.Count("level=ERROR", path, strings.ReplaceAll(tt.reason, `"`, `\"`)); n != 1 {
				t.Fatalf("want one error log line naming the file and %q, got %d in:\n%s", tt.reason, n, logs)
			}
			if strings.Contains(logs.String(), `"bad"`) {
				t.Fatal("a token leaked into the log")
			}
		})
	}
}

func TestTokenStoreLogsOncePerStateChange(t *testing.T) {
	path := storePath(t)
	s, logs := openTestStore(t, path, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// With the polling goroutine stopped, drive polls by hand.
	for range 5 {
		s.poll()
	}
	if n := logs.Count("level=ERROR"); n != 1 {
		t.Fatalf("a missing file was logged %d times, want once:\n%s", n, logs)
	}
	gen := s.Generation()
	writeAtomic(t, path, "{")
	for range 5 {
		s.poll()
	}
	if n := logs.Count("level=ERROR"); n != 2 || s.Generation() != gen+1 {
		t.Fatalf("new failure: %d error lines, generation %d (was %d):\n%s", n, s.Generation(), gen, logs)
	}
	writeAtomic(t, path, `{"tokens":{}}`)
	for range 5 {
		s.poll()
	}
	if s.Err() != nil || logs.Count("level=INFO", "recovered") != 1 || s.Generation() != gen+2 {
		t.Fatalf("recovery: err %v generation %d:\n%s", s.Err(), s.Generation(), logs)
	}
}

func TestTokenStoreHotReload(t *testing.T) {
	path := storePath(t)
	first, err := tokenstore.Issue(path, tokenstore.IssueOptions{Scopes: []string{"run:read"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := openTestStore(t, path, nil)
	if _, err := s.Authenticate(Credentials{Token: first.Token}); err != nil {
		t.Fatal(err)
	}
	gen := s.Generation()

	issued, err := tokenstore.Issue(path, tokenstore.IssueOptions{Scopes: []string{"cron:read"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "an issued token to work", func() bool {
		_, err := s.Authenticate(Credentials{Token: issued.Token})
		return err == nil
	})
	if s.Generation() <= gen {
		t.Fatalf("generation did not move: %d", s.Generation())
	}

	if _, err := tokenstore.Revoke(path, issued.Token, time.Now()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "a revocation to apply", func() bool {
		_, err := s.Authenticate(Credentials{Token: issued.Token})
		return err != nil
	})
	_, err = s.Authenticate(Credentials{Token: issued.Token})
	wantUnauthorized(t, err, msgTokenRevoked, true)
	if _, err := s.Authenticate(Credentials{Token: first.Token}); err != nil {
		t.Fatalf("the other token stopped working: %v", err)
	}
}

func TestTokenStoreSameSizeInPlaceRewrite(t *testing.T) {
	path := storePath(t)
	body := `{"tokens":{"%s":{"role":"operator","scopes":["run:read"]}}}`
	if err := os.WriteFile(path, fmt.Appendf(nil, body, "aaaa"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ := openTestStore(t, path, nil)
	if _, err := s.Authenticate(Credentials{Token: "aaaa"}); err != nil {
		t.Fatal(err)
	}
	// Same inode, same size, possibly the same mtime tick.
	if err := os.WriteFile(path, fmt.Appendf(nil, body, "bbbb"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "an in-place rewrite to be noticed", func() bool {
		_, err := s.Authenticate(Credentials{Token: "bbbb"})
		return err == nil
	})
}

func TestTokenStoreRecovers(t *testing.T) {
	for _, start := range []string{"corrupt", "missing"} {
		t.Run(start, func(t *testing.T) {
			path := storePath(t)
			if start == "corrupt" {
				writeAtomic(t, path, `{"tokens": nul`)
			}
			s, logs := openTestStore(t, path, nil)
			if s.Err() == nil {
				t.Fatal("store accepted a bad file")
			}
			writeAtomic(t, path, `{"tokens":{"fixed":{"role":"operator","scopes":["run:read"]}}}`)
			waitFor(t, time.Second, "recovery", func() bool {
				_, err := s.Authenticate(Credentials{Token: "fixed"})
				return err == nil
			})
			if logs.Count("recovered") != 1 {
				t.Fatalf("no recovery log:\n%s", logs)
			}
			// And back to failing closed when the file goes away.
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			waitFor(t, time.Second, "deny all after removal", func() bool {
				_, err := s.Authenticate(Credentials{Token: "fixed"})
				return err != nil
			})
		})
	}
}

func TestTokenStoreCloseStopsPolling(t *testing.T) {
	path := storePath(t)
	writeAtomic(t, path, `{"tokens":{"a":{"role":"operator","scopes":[]}}}`)
	logger, _ := newTestLogger()
	s := OpenTokenStore(path, TokenStoreOptions{Logger: logger, PollInterval: time.Millisecond})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	select {
	case <-s.done:
	default:
		t.Fatal("polling goroutine still running after Close")
	}
	if _, err := s.Authenticate(Credentials{Token: "a"}); err != nil {
		t.Fatalf("Authenticate after Close: %v", err)
	}
}

func ptr(s string) *string { return &s }
