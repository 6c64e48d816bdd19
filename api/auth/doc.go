// Package auth authenticates gateway callers and authorises their calls.
//
// It owns the scope model and the method -> scope resolution of CONTRACT.md
// §2.3 and §4.6 (scopes.go), the credential extraction rule of §1.6
// (credentials.go), the four authentication modes of §4.2-§4.5 behind the
// Authenticator interface (token store, JWT, trusted proxy, none), the
// cross-site request guard of trusted-proxy mode (crosssite.go), and both
// sides of the token store file of §4.7: the gateway side that reads and
// watches it (tokens.go) and the CLI side that issues, revokes and lists
// tokens (tokenfile.go).
//
// It imports only the standard library, host, golang-jwt, keyfunc (for JWKS
// parsing) and gofrs/flock. It must not import api, stream, jsruntime or any
// HTTP framework: callers hand it a Credentials value.
//
// Concurrency: every Authenticator is safe for concurrent use by any number
// of goroutines. A TokenStore owns exactly one polling goroutine, started by
// OpenTokenStore and stopped (and waited for) by Close; the current token set
// is swapped atomically, so Authenticate never blocks on a reload. A
// JWTAuthenticator configured with a JWKS URL owns one refresh goroutine,
// stopped and waited for by Close; refreshes are serialised by one mutex,
// which is never held together with any other lock of this package. Issue
// and Revoke serialise writers of one store file with an exclusive advisory
// lock on "<path>.lock" (a per-call handle, so goroutines of one process and
// separate processes exclude each other alike) and replace the file
// atomically, so readers (the gateway, List) never need the lock.
package auth
