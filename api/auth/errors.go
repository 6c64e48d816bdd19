package auth

import (
	"errors"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// CodeUnauthorized is the wire code of every authentication failure (HTTP
// 401).
const CodeUnauthorized = host.CodeUnauthorized

// The causes of authentication failures. Every UNAUTHORIZED error an
// Authenticator returns carries one of them as its host.Error.Err, so that
// callers tell failures apart with errors.Is; the message is the wire text
// and may change without breaking them.
var (
	// ErrTokenRequired: no bearer credential was presented.
	ErrTokenRequired = errors.New("no credential presented")
	// ErrTokenInvalid: the credential is unknown (token mode) or does not
	// verify (JWT mode: malformed, wrong algorithm, signature, issuer,
	// audience, no exp, not active yet).
	ErrTokenInvalid = errors.New("credential not valid")
	// ErrTokenRevoked: the token was revoked in the token store.
	ErrTokenRevoked = errors.New("token revoked")
	// ErrTokenExpired: the token's expiry (token store expiresAt, or a JWT's
	// exp) has passed.
	ErrTokenExpired = errors.New("token expired")
	// ErrStoreUnavailable: the token store file is missing, unreadable or
	// malformed, so every token is refused (fail closed). It may be a
	// half-written save, so open sockets are not closed over it.
	ErrStoreUnavailable = errors.New("token store unavailable")
	// ErrOriginNotAllowed: trusted-proxy mode with allowed origins, and the
	// request's Origin is not one of them.
	ErrOriginNotAllowed = errors.New("origin not allowed")
)

// RefreshHint is the "refresh" field carried by the errors of revoked and
// expired credentials.
const RefreshHint = "smithers token issue"

// unauthorized builds a fresh UNAUTHORIZED error with its cause.
func unauthorized(cause error, message string) *host.Error {
	return &host.Error{Code: CodeUnauthorized, Message: message, Err: cause}
}

// unauthorizedRefresh builds a fresh UNAUTHORIZED error that tells the
// caller how to obtain a new credential.
func unauthorizedRefresh(cause error, message string) *host.Error {
	return &host.Error{Code: CodeUnauthorized, Message: message, Err: cause,
		Extra: map[string]any{"refresh": RefreshHint}}
}
