// Package auth authenticates gateway callers and authorises their calls.
//
// It owns the scope model and the method -> scope resolution (scopes.go),
// the credential extraction rule (credentials.go), the four authentication
// modes behind the Authenticator interface (token store, JWT, trusted
// proxy, none), and the cross-site request guard of trusted-proxy mode
// (crosssite.go). The token store file itself belongs to package
// tokenstore: TokenStore (tokens.go) only polls it through tokenstore.Load
// and answers from the grants it returns, failing closed while the file is
// missing or malformed; issuing, revoking and listing tokens are
// tokenstore's (Issue and Revoke are forwarded here for the API's tests).
//
// It imports only the standard library, host, tokenstore, golang-jwt and
// keyfunc (for JWKS parsing). It must not import api, stream, jsruntime or
// any HTTP framework: callers hand it a Credentials value.
//
// Concurrency: every Authenticator is safe for concurrent use by any number
// of goroutines. A TokenStore owns exactly one polling goroutine, started by
// OpenTokenStore and stopped (and waited for) by Close; the current token set
// is swapped atomically, so Authenticate never blocks on a reload, and it
// takes no lock on the file (writers replace it atomically). A
// JWTAuthenticator configured with a JWKS URL owns one refresh goroutine,
// stopped and waited for by Close; refreshes are serialised by one mutex,
// which is never held together with any other lock of this package.
package auth
