package tokenstore

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Grant is the typed view of one grant of the file. Optional fields are nil
// when absent, null or (in a lenient view) of the wrong type; times are Unix
// milliseconds as the file writes them, fractions included. Fields the
// view does not know ("secret", "tokenHash", …) stay in the Document.
type Grant struct {
	// TokenID is the stored tokenId when it is a non-empty string, else
	// TokenID of the token.
	TokenID string
	Role    string
	// Scopes is never nil.
	Scopes      []string
	UserID      *string
	IssuedAtMs  *float64
	ExpiresAtMs *float64
	RevokedAtMs *float64
}

// Revoked reports whether the grant carries a revocation at or before
// nowMs; a revocation in the future does not apply yet.
func (g Grant) Revoked(nowMs int64) bool {
	return g.RevokedAtMs != nil && *g.RevokedAtMs <= float64(nowMs)
}

// Expired reports whether the grant carries an expiry at or before nowMs.
func (g Grant) Expired(nowMs int64) bool {
	return g.ExpiresAtMs != nil && *g.ExpiresAtMs <= float64(nowMs)
}

// User returns the grant's userId, or "" when it has none.
func (g Grant) User() string {
	if g.UserID == nil {
		return ""
	}
	return *g.UserID
}

// decodeGrant decodes the grant of token leniently and reports the first
// violation of the strict rules, checked in this order: the grant is an
// object, role is a string, scopes is an array of strings, and userId,
// tokenId (strings) and issuedAtMs, expiresAtMs, revokedAtMs (numbers) have
// the right type when present and not null. Error texts never contain the
// token.
func decodeGrant(token string, raw json.RawMessage) (Grant, error) {
	g := Grant{TokenID: TokenID(token), Scopes: []string{}}
	if err := expectObject(raw, "the grant"); err != nil {
		return g, err
	}
	var f object
	if err := json.Unmarshal(raw, &f); err != nil {
		return g, err
	}
	var first error
	check := func(ok bool, problem string) {
		if !ok && first == nil {
			first = errors.New(problem)
		}
	}
	rawRole, hasRole := f.get("role")
	check(hasRole && !isNull(rawRole) && json.Unmarshal(rawRole, &g.Role) == nil, "role is not a string")
	scopes, err := decodeStringArray(f, "scopes")
	if err == nil {
		g.Scopes = scopes
	}
	check(err == nil, "scopes is not an array of strings")
	var ok bool
	g.UserID, ok = optionalString(f, "userId")
	check(ok, "userId is not a string")
	id, ok := optionalString(f, "tokenId")
	if id != nil && *id != "" {
		g.TokenID = *id
	}
	check(ok, "tokenId is not a string")
	g.IssuedAtMs, ok = optionalNumber(f, "issuedAtMs")
	check(ok, "issuedAtMs is not a number")
	g.ExpiresAtMs, ok = optionalNumber(f, "expiresAtMs")
	check(ok, "expiresAtMs is not a number")
	g.RevokedAtMs, ok = optionalNumber(f, "revokedAtMs")
	check(ok, "revokedAtMs is not a number")
	return g, first
}

// decodeStringArray decodes f[key] as a JSON array whose every element is a
// string (a null element is an error, unlike with a plain Unmarshal).
func decodeStringArray(f object, key string) ([]string, error) {
	raw, ok := f.get(key)
	if !ok || isNull(raw) {
		return nil, errors.New("missing or null")
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(elems))
	for _, e := range elems {
		var s string
		if isNull(e) {
			return nil, errors.New("null element")
		}
		if err := json.Unmarshal(e, &s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// optionalString decodes f[key]: nil when absent or null; ok is false when
// the value is not a string.
func optionalString(f object, key string) (v *string, ok bool) {
	raw, found := f.get(key)
	if !found || isNull(raw) {
		return nil, true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return nil, false
	}
	return &s, true
}

// optionalNumber decodes f[key]: nil when absent or null; ok is false when
// the value is not a number (or one a float64 cannot hold).
func optionalNumber(f object, key string) (v *float64, ok bool) {
	raw, found := f.get(key)
	if !found || isNull(raw) {
		return nil, true
	}
	var n float64
	if json.Unmarshal(raw, &n) != nil {
		return nil, false
	}
	return &n, true
}
