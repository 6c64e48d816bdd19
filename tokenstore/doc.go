// Package tokenstore owns the token store file: the one place its format is
// parsed and written, for the gateway that authenticates from it and the
// `smithers token` CLI that edits it.
//
// The file is JSON, indented by two spaces with a trailing newline:
//
//	{"tokens": {"<raw bearer token>": {"tokenId": "<16 hex>", "role": "operator",
//	  "scopes": ["run:read"], "userId": "user:x", "issuedAtMs": 1700000000000,
//	  "expiresAtMs": 1700003600000, "revokedAtMs": 1700001000000}}}
//
// Keys are the raw tokens, in plaintext, as upstream writes them; tokenId
// is a non-secret identifier, the first 16 hex characters of SHA-256(token)
// (TokenID); userId, tokenId and the times are optional. A version-2
// upstream store, {"version": 2, "tokens": {<token>: {…, "secret",
// "tokenHash"}}, "actionTokens": {…}}, is read the same way, and every
// member this package does not know, at any level, is kept in its place
// when the CLI rewrites the file.
//
// Parse turns the bytes into a Document (ordered, raw members, nothing
// dropped); Document.Grants gives the strict typed view the gateway needs
// and Document.Encode the bytes back. Load reads a file for authentication
// (strict, bounded to MaxFileBytes, every failure an error that never
// contains a token); Issue, Revoke and List are the CLI's operations, and
// ParseTTL, SplitScopes and TokenID its input rules. A corrupt store is
// never overwritten: Issue and Revoke report CodeTokenStoreCorrupt and
// leave it as it is; a missing or blank one is an empty store to them.
// Errors carry the codes of errors.go in a *host.Error.
//
// It imports only the standard library, host (for *host.Error and its
// codes) and gofrs/flock. It must not import api, stream, jsruntime or any
// HTTP or WebSocket package: the gateway's authenticator imports it, never
// the other way round.
//
// Concurrency: Issue and Revoke serialise writers of one store file with an
// exclusive advisory lock on "<path>.lock", taken through a new handle per
// call, so goroutines of one process and separate processes exclude each
// other alike; they replace the file atomically (temporary file in the same
// directory, fsync, rename), so readers (Load, List) never need the lock and
// never see a half-written file. No other lock is taken. A Document from
// Parse is not changed by its exported methods and may be shared between
// goroutines; the package has no mutable state.
package tokenstore
