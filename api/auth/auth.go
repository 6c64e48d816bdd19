package auth

import (
	"net/http"

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
