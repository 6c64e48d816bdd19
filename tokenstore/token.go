package tokenstore

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// TokenPrefix starts every issued token.
const TokenPrefix = "smithers_"

// DefaultScope and DefaultRole are what Issue grants when not told
// otherwise.
const (
	DefaultScope = "run:read"
	DefaultRole  = "operator"
)

// TokenID returns the non-secret identifier of a token: the first 16 hex
// characters of its SHA-256.
func TokenID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}

// SplitScopes splits a scope list written as one string (the CLI's
// --scopes) on commas and whitespace, dropping empty entries. It never
// returns nil.
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
// expression's \s, which is what upstream trims and splits on.
func isJSSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r', 0xa0, 0x1680, 0x2028, 0x2029, 0x202f,
		0x205f, 0x3000, 0xfeff:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}
