package auth

import (
	"net/http"
	"slices"
	"testing"

	"github.com/smithers-orchestrator/smithers-go/host"
)

func headers(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestTrustedProxy(t *testing.T) {
	p := NewTrustedProxy(TrustedProxyConfig{})
	if p.Mode() != ModeTrustedProxy {
		t.Fatal(p.Mode())
	}
	tests := []struct {
		name string
		h    http.Header
		want host.Identity
	}{
		{"all headers", headers("X-User-Id", "u1", "X-User-Scopes", "run:read, cron:write approve",
			"X-User-Role", "admin", "X-Smithers-Token-Id", "tid"),
			host.Identity{Role: "admin", Scopes: []string{"run:read", "cron:write", "approve"}, UserID: "u1", TokenID: "tid"}},
		{"missing scopes header gets run:read, never *", headers("X-User-Id", "u2"),
			host.Identity{Role: "operator", Scopes: []string{"run:read"}, UserID: "u2"}},
		{"blank scopes header gets the defaults", headers("X-User-Scopes", " , "),
			host.Identity{Role: "operator", Scopes: []string{"run:read"}}},
		{"no headers at all", nil, host.Identity{Role: "operator", Scopes: []string{"run:read"}}},
		{"bearer token is ignored", headers("Authorization", "Bearer x"),
			host.Identity{Role: "operator", Scopes: []string{"run:read"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := p.Authenticate(Credentials{Token: "ignored", Header: tt.h})
			if err != nil {
				t.Fatal(err)
			}
			if !identityEqual(id, tt.want) {
				t.Fatalf("identity = %+v, want %+v", id, tt.want)
			}
			if slices.Contains(id.Scopes, "*") {
				t.Fatal("trusted proxy granted *")
			}
		})
	}
}

func TestTrustedProxyConfigured(t *testing.T) {
	p := NewTrustedProxy(TrustedProxyConfig{
		Headers:        []string{"X-Forwarded-User", "", "X-Forwarded-Role", "ignored"},
		AllowedOrigins: []string{"https://console.example"},
		DefaultRole:    "viewer",
		DefaultScopes:  []string{"run:read", "cron:read"},
	})
	h := headers("Origin", "https://console.example", "X-Forwarded-User", "u", "X-Forwarded-Role", "admin",
		"X-User-Id", "not-me", "X-User-Role", "not-me")
	id, err := p.Authenticate(Credentials{Header: h})
	want := host.Identity{Role: "admin", Scopes: []string{"run:read", "cron:read"}, UserID: "u"}
	if err != nil || !identityEqual(id, want) {
		t.Fatalf("identity = %+v, %v; want %+v", id, err, want)
	}
	id.Scopes[0] = "*"
	if id, _ := p.Authenticate(Credentials{Header: h}); id.Scopes[0] != "run:read" {
		t.Fatal("defaults were mutated through a returned identity")
	}
	id, err = p.Authenticate(Credentials{Header: headers("Origin", "https://console.example")})
	if err != nil || id.Role != "viewer" {
		t.Fatalf("default role: %+v, %v", id, err)
	}
	for name, origin := range map[string]string{"missing": "", "other": "https://evil.example",
		"case differs": "https://CONSOLE.example"} {
		t.Run(name, func(t *testing.T) {
			_, err := p.Authenticate(Credentials{Header: headers("Origin", origin, "X-Forwarded-User", "u")})
			wantUnauthorized(t, err, msgOriginNotAllowed, false)
		})
	}

	empty := NewTrustedProxy(TrustedProxyConfig{DefaultScopes: []string{}})
	if id, _ := empty.Authenticate(Credentials{}); id.Scopes == nil || len(id.Scopes) != 0 {
		t.Fatalf("explicitly empty defaults: %+v", id.Scopes)
	}
}

func TestNoAuth(t *testing.T) {
	var a Authenticator = NoAuth{}
	id, err := a.Authenticate(Credentials{})
	if err != nil || a.Mode() != ModeNone || id.Role != "operator" || !slices.Equal(id.Scopes, []string{"*"}) ||
		id.UserID != "" || id.TokenID != "" {
		t.Fatalf("%+v, %v", id, err)
	}
}

func identityEqual(a, b host.Identity) bool {
	return a.Role == b.Role && slices.Equal(a.Scopes, b.Scopes) && a.UserID == b.UserID && a.TokenID == b.TokenID
}
