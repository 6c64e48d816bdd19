package tokenstore

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// The tokens of testdata/v2-store.json, an upstream version-2 store.
const (
	v2Alice = "smithers_q3Vx0dJm2bS8Zk1T7uYwR5nP4aLc6eHf9gIj0kMnOpQ"
	v2Admin = "smithers_Zr7Yh2Wc5Xb8Vn1Mq4Lp6Ks9Jd3Hf0Ge2Fa5Ds8Aw1E"
)

func f64(v float64) *float64 { return &v }
func str(s string) *string   { return &s }

func TestLoadGrants(t *testing.T) {
	path := storePath(t)
	writeAtomic(t, path, fmt.Sprintf(`{"tokens": {
  "tok-good": {"tokenId": "id-good", "role": "admin", "scopes": ["run:read", "cron:write"], "userId": "user:1",
               "issuedAtMs": %[1]d, "expiresAtMs": %[2]d},
  "tok-noid": {"role": "operator", "scopes": []},
  "tok-nulls": {"role": "operator", "scopes": ["*"], "userId": null, "tokenId": null, "revokedAtMs": null},
  "tok-empty-id": {"role": "operator", "scopes": ["*"], "tokenId": "", "userId": ""},
  "tok-fraction": {"role": "operator", "scopes": ["*"], "revokedAtMs": 1.5, "expiresAtMs": 0}
}}`, storeNowMs, storeNowMs+3600_000))
	grants, sum, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if sum != sha256.Sum256(data) {
		t.Fatal("Load's sum is not the SHA-256 of the file")
	}
	want := map[string]Grant{
		"tok-good": {TokenID: "id-good", Role: "admin", Scopes: []string{"run:read", "cron:write"}, UserID: str("user:1"),
			IssuedAtMs: f64(storeNowMs), ExpiresAtMs: f64(storeNowMs + 3600_000)},
		"tok-noid":     {TokenID: TokenID("tok-noid"), Role: "operator", Scopes: []string{}},
		"tok-nulls":    {TokenID: TokenID("tok-nulls"), Role: "operator", Scopes: []string{"*"}},
		"tok-empty-id": {TokenID: TokenID("tok-empty-id"), Role: "operator", Scopes: []string{"*"}, UserID: str("")},
		"tok-fraction": {TokenID: TokenID("tok-fraction"), Role: "operator", Scopes: []string{"*"},
			RevokedAtMs: f64(1.5), ExpiresAtMs: f64(0)},
	}
	if !reflect.DeepEqual(grants, want) {
		t.Fatalf("grants:\n%+v\nwant:\n%+v", grants, want)
	}
	if g := grants["tok-noid"]; g.Scopes == nil || g.User() != "" || g.Revoked(storeNowMs) || g.Expired(storeNowMs) {
		t.Fatalf("tok-noid: %+v", g)
	}
	good := grants["tok-good"]
	if good.User() != "user:1" || good.Expired(storeNowMs+3599_999) || !good.Expired(storeNowMs+3600_000) {
		t.Fatalf("tok-good expiry: %+v", good)
	}
	if frac := grants["tok-fraction"]; frac.Revoked(1) || !frac.Revoked(2) || !frac.Expired(0) {
		t.Fatal("times are compared as the file writes them, fractions included")
	}
}

func TestLoadVersion2(t *testing.T) {
	path := storePath(t)
	writeAtomic(t, path, string(readTestdata(t, "v2-store.json")))
	grants, _, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(grants) != 2 {
		t.Fatalf("%d grants, want 2 (actionTokens are not bearer tokens)", len(grants))
	}
	alice := grants[v2Alice]
	if alice.TokenID != TokenID(v2Alice) || alice.Role != "operator" || !slices.Equal(alice.Scopes, []string{"run:read", "run:write"}) ||
		alice.User() != "user:alice" || alice.Revoked(storeNowMs) || alice.Expired(storeNowMs) {
		t.Fatalf("alice: %+v", alice)
	}
	if admin := grants[v2Admin]; !admin.Revoked(storeNowMs+1000_000) || admin.Revoked(storeNowMs) {
		t.Fatalf("admin: %+v", admin)
	}
	if _, ok := grants["act_4f1c2b9e0d7a"]; ok {
		t.Fatal("an action token was taken for a bearer token")
	}
}

// TestLoadRefuses lists every way a file makes the gateway deny all
// tokens; the reason must say why without naming a token.
func TestLoadRefuses(t *testing.T) {
	good := `"good": {"role": "operator", "scopes": ["*"]}`
	bad := func(grant string) string { return `{"tokens": {` + good + `, "bad": ` + grant + `}}` }
	tests := []struct {
		name    string
		content *string
		reason  string
	}{
		{"missing file", nil, "file does not exist"},
		{"empty file", str(""), "the file is empty"},
		{"blank file", str(" \n"), "the file is empty"},
		{"invalid JSON", str(`{"tokens": {` + good), "invalid JSON: unexpected end of JSON input"},
		{"trailing data", str(`{"tokens": {}} x`), "invalid JSON: invalid character 'x' after top-level value"},
		{"JSON null", str("null"), "the file is JSON null"},
		{"array", str("[]"), "the file is not a JSON object"},
		{"no tokens", str(`{"version": 2}`), `the file has no "tokens" object`},
		{"tokens null", str(`{"tokens": null}`), `"tokens" is JSON null`},
		{"tokens array", str(`{"tokens": [1]}`), `"tokens" is not a JSON object`},
		{"grant null", str(bad(`null`)), "malformed grant for token id " + TokenID("bad") + ": the grant is JSON null"},
		{"grant number", str(bad(`42`)), "the grant is not a JSON object"},
		{"role missing", str(bad(`{"scopes": []}`)), "role is not a string"},
		{"role number", str(bad(`{"role": 1, "scopes": []}`)), "role is not a string"},
		{"role null", str(bad(`{"role": null, "scopes": []}`)), "role is not a string"},
		{"scopes string", str(bad(`{"role": "x", "scopes": "*"}`)), "scopes is not an array of strings"},
		{"scopes numbers", str(bad(`{"role": "x", "scopes": [1]}`)), "scopes is not an array of strings"},
		{"scopes with null", str(bad(`{"role": "x", "scopes": ["a", null]}`)), "scopes is not an array of strings"},
		{"scopes null", str(bad(`{"role": "x", "scopes": null}`)), "scopes is not an array of strings"},
		{"scopes missing", str(bad(`{"role": "x"}`)), "scopes is not an array of strings"},
		{"userId number", str(bad(`{"role": "x", "scopes": [], "userId": 5}`)), "userId is not a string"},
		{"tokenId number", str(bad(`{"role": "x", "scopes": [], "tokenId": 5}`)), "tokenId is not a string"},
		{"issued string", str(bad(`{"role": "x", "scopes": [], "issuedAtMs": "then"}`)), "issuedAtMs is not a number"},
		{"expiry string", str(bad(`{"role": "x", "scopes": [], "expiresAtMs": "soon"}`)), "expiresAtMs is not a number"},
		{"expiry too large", str(bad(`{"role": "x", "scopes": [], "expiresAtMs": 1e999}`)), "expiresAtMs is not a number"},
		{"revoked bool", str(bad(`{"role": "x", "scopes": [], "revokedAtMs": false}`)), "revokedAtMs is not a number"},
		{"first problem wins", str(bad(`{"role": 1, "revokedAtMs": false}`)), "role is not a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := storePath(t)
			if tt.content != nil {
				writeAtomic(t, path, *tt.content)
			}
			grants, _, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("Load = %v, %v; want an error mentioning %q", grants, err, tt.reason)
			}
			if strings.Contains(err.Error(), `"bad"`) || strings.Contains(err.Error(), "good") {
				t.Fatalf("the error %q names a token", err)
			}
		})
	}
}

func TestLoadBounded(t *testing.T) {
	path := storePath(t)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxFileBytes + 1); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	if _, _, err := Load(path); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("Load of an oversized file = %v", err)
	}
	_, err = List(path)
	wantCode(t, err, CodeTokenListFailed)
}

// TestEncodeKeepsEverything: a version-2 store written in the file's own
// layout comes back byte for byte, and a rewrite by Issue and Revoke keeps
// every member it does not change in its place.
func TestEncodeKeepsEverything(t *testing.T) {
	v2 := readTestdata(t, "v2-store.json")
	doc, err := Parse(v2)
	if err != nil {
		t.Fatal(err)
	}
	out, err := doc.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, v2) {
		t.Fatalf("re-encoding changed the store:\n%s", out)
	}

	path := storePath(t)
	writeAtomic(t, path, string(v2))
	res, err := Issue(path, IssueOptions{TTL: time.Hour, Now: time.UnixMilli(storeNowMs)})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := Revoke(path, v2Alice, time.UnixMilli(storeNowMs+5)); err != nil || id != TokenID(v2Alice) {
		t.Fatalf("Revoke = %q, %v", id, err)
	}
	data, _ := os.ReadFile(path)
	want := strings.Replace(string(v2), `"c2VjcmV0LW9mLWFsaWNlLXRva2Vu",
      "tokenHash": "c87c624b1dccf2f995ab19f6e4cdf0179748ca687e08ca619816ba2d0e6bc40f"
    },`, `"c2VjcmV0LW9mLWFsaWNlLXRva2Vu",
      "tokenHash": "c87c624b1dccf2f995ab19f6e4cdf0179748ca687e08ca619816ba2d0e6bc40f",
      "revokedAtMs": 1700000000005
    },`, 1)
	want = strings.Replace(want, `
  },
  "actionTokens"`, fmt.Sprintf(`,
    %q: {
      "tokenId": %q,
      "role": "operator",
      "scopes": [
        "run:read"
      ],
      "issuedAtMs": 1700000000000,
      "expiresAtMs": 1700003600000
    }
  },
  "actionTokens"`, res.Token, res.TokenID), 1)
	if string(data) != want {
		t.Fatalf("rewritten store:\n%s\nwant:\n%s", data, want)
	}
}

func TestParseTokensOrder(t *testing.T) {
	doc, err := Parse([]byte(`{"x": 1, "tokens": {"b": 1, "a": {"role": "r", "scopes": []}, "b": {"role": "s", "scopes": ["t"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := doc.Tokens(); !slices.Equal(got, []string{"b", "a"}) {
		t.Fatalf("Tokens = %q: a repeated key keeps its first place", got)
	}
	g, found, err := doc.Grant("b")
	if !found || err != nil || g.Role != "s" {
		t.Fatalf("Grant(b) = %+v, %v, %v: a repeated key keeps its last value", g, found, err)
	}
	if _, found, _ := doc.Grant("c"); found {
		t.Fatal("Grant found a token the store does not hold")
	}
	empty, err := Parse([]byte(`{"version": 2}`))
	if err != nil || empty.HasTokens() || len(empty.Tokens()) != 0 {
		t.Fatalf("a store without tokens: %v", err)
	}
	out, _ := empty.Encode()
	if string(out) != "{\n  \"tokens\": {},\n  \"version\": 2\n}\n" {
		t.Fatalf("Encode without tokens = %q", out)
	}
}

// FuzzParse checks that Parse never panics and that a parsed document
// re-encodes into one that parses to the same tokens, in the same order,
// with the same typed grants and the same verdict of the strict check; the
// encoding is then a fixed point.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"tokens":{}}`,
		`{"tokens":{"a":{"role":"operator","scopes":["run:read"],"expiresAtMs":1,"revokedAtMs":null}}}`,
		`{"version":2,"tokens":{"t":{"role":"r","scopes":[],"secret":"s","tokenHash":"h"}},"actionTokens":{}}`,
		`{"tokens":{"a":{"role":"x","scopes":["a",null]}}}`,
		`{"tokens":{"__proto__":{"role":"x","scopes":[]}},"tokens":{}}`,
		`{"version":2}`, `{"tokens":{"a":{"role":"x","scopes":[],"role":"y","tokenId":"\u00e9<>"}}}`,
		`null`, `[]`, `{`, ``, `{"tokens":null}`, `{"tokens":{"a":1e999}}`, "{\"tokens\":{\"\xff\":{\"role\":\"\",\"scopes\":[]}}}",
	} {
		f.Add([]byte(seed))
	}
	f.Add(readTestdata(f, "v2-store.json"))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := Parse(data)
		if err != nil {
			return
		}
		out, err := doc.Encode()
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("the encoding of %q does not parse (%v): %q", data, err, out)
		}
		if !slices.Equal(doc.Tokens(), again.Tokens()) {
			t.Fatalf("tokens changed: %q -> %q", doc.Tokens(), again.Tokens())
		}
		for _, tok := range doc.Tokens() {
			g1, _, err1 := doc.Grant(tok)
			g2, _, err2 := again.Grant(tok)
			if !reflect.DeepEqual(g1, g2) || fmt.Sprint(err1) != fmt.Sprint(err2) {
				t.Fatalf("grant %q changed: %+v (%v) -> %+v (%v)", tok, g1, err1, g2, err2)
			}
		}
		grants1, err1 := doc.Grants()
		grants2, err2 := again.Grants()
		if !reflect.DeepEqual(grants1, grants2) || fmt.Sprint(err1) != fmt.Sprint(err2) {
			t.Fatalf("strict grants changed: %v (%v) -> %v (%v)", grants1, err1, grants2, err2)
		}
		if out2, err := again.Encode(); err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("encoding is not a fixed point (%v):\n%s\n%s", err, out, out2)
		}
	})
}
