package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// The authentication modes of docs/differences.md (SMITHERS_GATEWAY_AUTH_MODE).
const (
	ModeToken        = "token"
	ModeJWT          = "jwt"
	ModeTrustedProxy = "trusted-proxy"
	ModeNone         = "none"
)

// Credentials is what a transport hands to an Authenticator. Token is the
// bearer credential (BearerToken for HTTP, connect.params.auth.token for
// WebSocket); Header holds the request headers (the upgrade request's for
// WebSocket), which only trusted-proxy mode reads.
type Credentials struct {
	Token  string
	Header http.Header
}

// Authenticator turns credentials into the caller's identity. Mode returns
// one of ModeToken, ModeJWT, ModeTrustedProxy or ModeNone. Authenticate
// returns a *host.Error with code CodeUnauthorized on failure, whose
// Message is the docs/configuration.md text, whose Err is one of the Err* causes
// (test it with errors.Is) and whose Extra may carry "refresh".
// Implementations are safe for concurrent use, and the returned Identity
// (including its Scopes slice) belongs to the caller.
type Authenticator interface {
	Mode() string
	Authenticate(c Credentials) (host.Identity, error)
}

// TokenID returns the non-secret identifier of a token: the first 16 hex
// characters of its SHA-256.
func TokenID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}

// SplitScopes splits a scope list written as one string on commas and
// whitespace, dropping empty entries. It never returns nil.
func SplitScopes(s string) []string {
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || isJSSpace(r)
	})
	if fields == nil {
		return []string{}
	}
	return fields
}

// isJSSpace reports whether r is whitespace for a JavaScript regular
// expression's \s, which is what upstream splits scope lists on.
func isJSSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r', 0xa0, 0x1680, 0x2028, 0x2029, 0x202f,
		0x205f, 0x3000, 0xfeff:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}
