package tokenstore

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// IssuedGrant is a grant as Issue writes it into the store, in the file's
// JSON shape.
type IssuedGrant struct {
	TokenID     string   `json:"tokenId"`
	Role        string   `json:"role"`
	Scopes      []string `json:"scopes"`
	UserID      string   `json:"userId,omitempty"`
	IssuedAtMs  int64    `json:"issuedAtMs"`
	ExpiresAtMs int64    `json:"expiresAtMs"`
}

// IssueOptions describes a token to issue. A nil Scopes means
// [DefaultScope] (an empty non-nil slice issues a token without scopes), an
// empty Role means DefaultRole, a zero Now means time.Now(). TTL must be at
// least a millisecond.
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
	Token     string      `json:"token"`
	TokenID   string      `json:"tokenId"`
	Grant     IssuedGrant `json:"grant"`
	StorePath string      `json:"storePath"`
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
	grant := IssuedGrant{Role: o.Role, Scopes: o.Scopes, UserID: o.UserID, IssuedAtMs: now.UnixMilli()}
	grant.ExpiresAtMs = grant.IssuedAtMs + o.TTL.Milliseconds()
	if grant.Role == "" {
		grant.Role = DefaultRole
	}
	if grant.Scopes == nil {
		grant.Scopes = []string{DefaultScope}
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
	doc, err := readDocument(path)
	if err != nil {
		return failed("read the store", err)
	}
	var token string
	for {
		if token, err = newToken(); err != nil {
			return failed("generate a token", err)
		}
		if _, taken := doc.tokens.get(token); !taken {
			break
		}
	}
	grant.TokenID = TokenID(token)
	raw, err := json.Marshal(grant)
	if err != nil {
		return failed("encode the grant", err)
	}
	doc.setGrant(token, raw)
	if err := writeDocument(path, doc); err != nil {
		return failed("write the store", err)
	}
	return IssueResult{Token: token, TokenID: grant.TokenID, Grant: grant, StorePath: path}, nil
}

// newToken returns TokenPrefix and 32 random bytes in unpadded base64url.
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}
