package auth

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// Error codes of the token CLI operations.
const (
	CodeTokenNotFound     = "TOKEN_NOT_FOUND"
	CodeTokenIssueFailed  = "TOKEN_ISSUE_FAILED"
	CodeTokenRevokeFailed = "TOKEN_REVOKE_FAILED"
	CodeTokenListFailed   = "TOKEN_LIST_FAILED"
	CodeTokenStoreCorrupt = "TOKEN_STORE_CORRUPT"
)

// TokenPrefix starts every issued token.
const TokenPrefix = "smithers_"

// Grant is a grant as Issue writes it into the token store.
type Grant struct {
	TokenID     string   `json:"tokenId"`
	Role        string   `json:"role"`
	Scopes      []string `json:"scopes"`
	UserID      string   `json:"userId,omitempty"`
	IssuedAtMs  int64    `json:"issuedAtMs"`
	ExpiresAtMs int64    `json:"expiresAtMs"`
}

// IssueOptions describes a token to issue. A nil Scopes means ["run:read"]
// (an empty non-nil slice issues a token without scopes), an empty Role
// means "operator", a zero Now means time.Now(). TTL must be at least a
// millisecond.
type IssueOptions struct {
	Scopes []string
	Role   string
	UserID string
	TTL    time.Duration
	Now    time.Time
}

// IssueResult is what Issue created. Token is the secret bearer token;
// StorePath is the file it was written to.
type IssueResult struct {
	Token     string `json:"token"`
	TokenID   string `json:"tokenId"`
	Grant     Grant  `json:"grant"`
	StorePath string `json:"storePath"`
}

// ListedToken describes one stored grant without its token. Absent
// optional fields are nil.
type ListedToken struct {
	TokenID     string   `json:"tokenId"`
	Role        string   `json:"role"`
	Scopes      []string `json:"scopes"`
	UserID      *string  `json:"userId"`
	IssuedAtMs  *int64   `json:"issuedAtMs"`
	ExpiresAtMs *int64   `json:"expiresAtMs"`
	RevokedAtMs *int64   `json:"revokedAtMs"`
}

// Issue creates a token with a fresh grant in the store at path (created,
// with its parent directories, when missing) and returns it. The store is
// read, modified and replaced atomically under an exclusive lock on
// path+".lock"; fields Issue does not know are kept. A corrupt store is
// left untouched and reported with CodeTokenStoreCorrupt; a TTL under a
// millisecond is CodeInvalidDuration; other failures are
// CodeTokenIssueFailed.
func Issue(path string, o IssueOptions) (IssueResult, error) {
	if o.TTL.Milliseconds() <= 0 {
		return IssueResult{}, &host.Error{Code: CodeInvalidDuration, Message: "Invalid ttl: " + o.TTL.String()}
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	grant := Grant{Role: o.Role, Scopes: o.Scopes, UserID: o.UserID, IssuedAtMs: now.UnixMilli()}
	grant.ExpiresAtMs = grant.IssuedAtMs + o.TTL.Milliseconds()
	if grant.Role == "" {
		grant.Role = "operator"
	}
	if grant.Scopes == nil {
		grant.Scopes = []string{ScopeRunRead}
	}
	grant.Scopes = append([]string{}, grant.Scopes...)
	failed := func(step string, err error) (IssueResult, error) {
		return IssueResult{}, wrapStoreError(CodeTokenIssueFailed, "Could not issue a token", step, err)
	}

	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return failed("create the store directory", err)
	}
	unlock, err := lockStore(path)
	if err != nil {
		return failed("lock the store", err)
	}
	defer unlock()
	st, err := readStoreFile(path)
	if err != nil {
		return failed("read the store", err)
	}
	var token string
	for {
		if token, err = newToken(); err != nil {
			return failed("generate a token", err)
		}
		if _, taken := st.tokens.get(token); !taken {
			break
		}
	}
	grant.TokenID = TokenID(token)
	raw, err := json.Marshal(grant)
	if err != nil {
		return failed("encode the grant", err)
	}
	st.tokens.set(token, raw)
	if err := st.write(path); err != nil {
		return failed("write the store", err)
	}
	return IssueResult{Token: token, TokenID: grant.TokenID, Grant: grant, StorePath: path}, nil
}

// Revoke marks token as revoked at now in the store at path and returns its
// token id. The entry is kept; revoking an already revoked token keeps the
// first revocation time. An unknown token (or a missing store) is
// CodeTokenNotFound; a corrupt store is left untouched and reported with
// CodeTokenStoreCorrupt; other failures are CodeTokenRevokeFailed. Locking
// and atomicity are as for Issue.
func Revoke(path, token string, now time.Time) (tokenID string, err error) {
	notFound := &host.Error{Code: CodeTokenNotFound,
		Message: "Token was not found in the local Smithers token store"}
	failed := func(step string, err error) (string, error) {
		return "", wrapStoreError(CodeTokenRevokeFailed, "Could not revoke the token", step, err)
	}
	if token == "" {
		return "", notFound
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return "", notFound
	}
	unlock, err := lockStore(path)
	if err != nil {
		return failed("lock the store", err)
	}
	defer unlock()
	st, err := readStoreFile(path)
	if err != nil {
		return failed("read the store", err)
	}
	raw, ok := st.tokens.get(token)
	if !ok {
		return "", notFound
	}
	grant, err := parseOrderedObject(raw)
	if err != nil {
		return "", corruptStore(path, "the grant of token id "+TokenID(token)+" is not a JSON object")
	}
	tokenID = TokenID(token)
	if v, ok := grant.get("tokenId"); ok {
		var id string
		if json.Unmarshal(v, &id) == nil && id != "" {
			tokenID = id
		}
	}
	nowMs := now.UnixMilli()
	if v, ok := grant.get("revokedAtMs"); ok {
		var at float64
		if json.Unmarshal(v, &at) == nil && !isNull(v) && at <= float64(nowMs) {
			return tokenID, nil
		}
	}
	grant.set("revokedAtMs", json.RawMessage(fmt.Sprint(nowMs)))
	st.tokens.set(token, grant.marshal())
	if err := st.write(path); err != nil {
		return failed("write the store", err)
	}
	return tokenID, nil
}

// List describes the grants of the store at path in file order, never
// showing a token. A missing store lists nothing; a corrupt one is
// CodeTokenStoreCorrupt. It takes no lock: writers replace the file
// atomically.
func List(path string) ([]ListedToken, error) {
	st, err := readStoreFile(path)
	if err != nil {
		return nil, wrapStoreError(CodeTokenListFailed, "Could not list tokens", "read the store", err)
	}
	out := make([]ListedToken, 0, len(st.tokens))
	for _, m := range st.tokens {
		out = append(out, listedToken(m.key, m.value))
	}
	return out, nil
}

// listedToken decodes a grant leniently: fields of the wrong type are left
// empty rather than failing the listing.
func listedToken(token string, raw json.RawMessage) ListedToken {
	lt := ListedToken{TokenID: TokenID(token), Scopes: []string{}}
	var f map[string]json.RawMessage
	if json.Unmarshal(raw, &f) != nil {
		return lt
	}
	var id string
	if optionalString(f, "tokenId", &id) && id != "" {
		lt.TokenID = id
	}
	_ = optionalString(f, "role", &lt.Role)
	if scopes, err := decodeStringArray(f["scopes"]); err == nil {
		lt.Scopes = scopes
	}
	var user string
	if v, ok := f["userId"]; ok && !isNull(v) && json.Unmarshal(v, &user) == nil {
		lt.UserID = &user
	}
	lt.IssuedAtMs = optionalMs(f, "issuedAtMs")
	lt.ExpiresAtMs = optionalMs(f, "expiresAtMs")
	lt.RevokedAtMs = optionalMs(f, "revokedAtMs")
	return lt
}

func optionalMs(f map[string]json.RawMessage, key string) *int64 {
	var v float64
	if present, ok := optionalNumber(f, key, &v); !present || !ok {
		return nil
	}
	ms := int64(v)
	return &ms
}

// newToken returns "smithers_" and 32 random bytes in unpadded base64url.
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// lockStore takes the exclusive writer lock of the store at path with a
// handle of its own and returns the function that releases it.
func lockStore(path string) (unlock func(), err error) {
	fl := flock.New(path+".lock", flock.SetPermissions(0o600))
	if err := fl.Lock(); err != nil {
		return nil, fmt.Errorf("lock %s: %w", fl.Path(), err)
	}
	return func() { _ = fl.Unlock() }, nil
}

func corruptStore(path, why string) *host.Error {
	return &host.Error{Code: CodeTokenStoreCorrupt,
		Message: fmt.Sprintf("Token store %s is corrupt (%s); it was left untouched", path, why)}
}

// wrapStoreError turns a failure of step into a *host.Error: a corrupt store
// keeps its own code, anything else gets code with the step and cause.
func wrapStoreError(code, summary, step string, err error) *host.Error {
	var he *host.Error
	if errors.As(err, &he) {
		return he
	}
	return &host.Error{Code: code, Message: fmt.Sprintf("%s: %s: %v", summary, step, err), Err: err}
}

// storeFile is a token store file kept as ordered raw JSON so a rewrite
// preserves every key, value and order it does not change.
type storeFile struct {
	top    orderedObject
	tokens orderedObject
}

// readStoreFile reads the store at path; a missing or blank file (nothing
// to lose) is an empty store and a file that is not a token store is a
// CodeTokenStoreCorrupt error.
func readStoreFile(path string) (*storeFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &storeFile{}, nil
	}
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return &storeFile{}, nil
	}
	st, err := parseStoreFile(data)
	if err != nil {
		return nil, corruptStore(path, err.Error())
	}
	return st, nil
}

func parseStoreFile(data []byte) (*storeFile, error) {
	if err := expectObject(data, "the file"); err != nil {
		return nil, err
	}
	top, err := parseOrderedObject(data)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	st := &storeFile{top: top}
	if raw, ok := top.get("tokens"); ok {
		if err := expectObject(raw, `"tokens"`); err != nil {
			return nil, err
		}
		if st.tokens, err = parseOrderedObject(raw); err != nil {
			return nil, fmt.Errorf(`invalid "tokens": %v`, err)
		}
	}
	return st, nil
}

// encode renders the store as 2-space indented JSON with a trailing
// newline, "tokens" first when the file had no "tokens" key.
func (st *storeFile) encode() ([]byte, error) {
	top := st.top
	if _, ok := top.get("tokens"); !ok {
		top = append(orderedObject{{key: "tokens"}}, top...)
	}
	top.set("tokens", st.tokens.marshal())
	var out bytes.Buffer
	if err := json.Indent(&out, top.marshal(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// write replaces the file at path atomically: a temporary file in the same
// directory, mode 0600, fsynced, renamed over path, then the directory is
// fsynced.
func (st *storeFile) write(path string) error {
	data, err := st.encode()
	if err != nil {
		return err
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// orderedObject is a JSON object as an ordered list of raw members.
type orderedObject []member

type member struct {
	key   string
	value json.RawMessage
}

// parseOrderedObject decodes a JSON object keeping its member order; a
// repeated key keeps its first position and its last value, as
// JSON.parse does.
func parseOrderedObject(data []byte) (orderedObject, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	var o orderedObject
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("object key is not a string")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		o.set(key, v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON object")
	}
	return o, nil
}

func (o orderedObject) get(key string) (json.RawMessage, bool) {
	for _, m := range o {
		if m.key == key {
			return m.value, true
		}
	}
	return nil, false
}

func (o *orderedObject) set(key string, value json.RawMessage) {
	for i := range *o {
		if (*o)[i].key == key {
			(*o)[i].value = value
			return
		}
	}
	*o = append(*o, member{key: key, value: value})
}

// marshal renders the object compactly; values are written as stored.
func (o orderedObject) marshal() json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, m.key)
		b.WriteByte(':')
		b.Write(m.value)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// writeJSONString writes s as a JSON string without HTML escaping.
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	b.Truncate(b.Len() - 1) // Encode appends a newline.
}
