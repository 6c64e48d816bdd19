package auth

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// DefaultPollInterval is how often a TokenStore stats its file.
const DefaultPollInterval = 250 * time.Millisecond

// maxTokenFileBytes bounds what the gateway reads from the token store; a
// larger file is treated as corrupt rather than read into memory.
const maxTokenFileBytes = 64 << 20

// racyWindow is how long after its modification time a file is re-read on
// every poll even when its stat is unchanged, so that a same-size rewrite
// within the file system's timestamp granularity is not missed.
const racyWindow = 2 * time.Second

// The messages of the token mode (CONTRACT.md §4.3).
const (
	msgTokenRequired    = "A bearer token is required"
	msgInvalidToken     = "Invalid token"
	msgTokenRevoked     = "Token has been revoked"
	msgTokenExpired     = "Token expired; issue a refreshed token."
	msgStoreUnavailable = "Token store is unavailable"
)

// TokenStoreOptions configures OpenTokenStore. Zero values mean: the default
// slog logger, time.Now, and DefaultPollInterval.
type TokenStoreOptions struct {
	Logger       *slog.Logger
	Now          func() time.Time
	PollInterval time.Duration
}

// TokenStore is the token-mode Authenticator backed by the token store file
// of CONTRACT.md §4.7 (or an upstream version-2 store). It re-reads the file
// when it changes, so issued, revoked and expired tokens take effect within
// a poll interval, and it fails closed: while the file is missing,
// unreadable or malformed every Authenticate answers UNAUTHORIZED. It owns
// one polling goroutine; call Close to stop it. It is safe for concurrent
// use.
type TokenStore struct {
	path     string
	logger   *slog.Logger
	now      func() time.Time
	interval time.Duration

	snap       atomic.Pointer[tokenSnapshot]
	generation atomic.Uint64
	// lastRefusal is when a refused token was last logged (Unix ns), so
	// that a client retrying a bad token cannot flood the log.
	lastRefusal atomic.Int64

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	// stamp is the last stat seen; only the polling goroutine (and
	// OpenTokenStore before starting it) touches it.
	stamp fileStamp
}

var _ Authenticator = (*TokenStore)(nil)

// tokenSnapshot is one immutable view of the file.
type tokenSnapshot struct {
	tokens map[string]storedGrant
	// err is non-nil when the store denies everything; it says why.
	err error
	// digest identifies the content the snapshot was parsed from (or the
	// failure), so an unchanged re-read is not counted as a reload.
	digest [32]byte
}

// storedGrant is one validated grant of the file.
type storedGrant struct {
	role        string
	scopes      []string
	userID      string
	tokenID     string
	expiresAtMs float64
	revokedAtMs float64
	hasExpires  bool
	hasRevoked  bool
}

// fileStamp is what a poll compares to notice a change of the file.
type fileStamp struct {
	size    int64
	modTime time.Time
	inode   uint64
	statErr string
}

// OpenTokenStore loads the token store at path and starts watching it. It
// never fails: a missing or corrupt file leaves the store denying every
// token (logged at Error level, once per change of state) until the file
// becomes valid.
func OpenTokenStore(path string, opts TokenStoreOptions) *TokenStore {
	s := &TokenStore{
		path:     path,
		logger:   opts.Logger,
		now:      opts.Now,
		interval: opts.PollInterval,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.interval <= 0 {
		s.interval = DefaultPollInterval
	}
	s.stamp = statFile(path)
	s.reload()
	go s.watch()
	return s
}

// Close stops the polling goroutine and waits for it. It is idempotent.
// Authenticate keeps answering from the last snapshot after Close.
func (s *TokenStore) Close() error {
	s.closeOnce.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

// Path returns the file the store reads.
func (s *TokenStore) Path() string { return s.path }

// Mode returns ModeToken.
func (s *TokenStore) Mode() string { return ModeToken }

// Generation counts the reloads that changed what the store answers: it
// is 1 after the initial load and increments each time new file content (or
// a new failure) is loaded. WebSocket code compares it to re-check open
// sockets only when something changed; expiry still needs a clock check.
func (s *TokenStore) Generation() uint64 { return s.generation.Load() }

// Err returns why the store currently denies every token, or nil when it
// holds a valid token set.
func (s *TokenStore) Err() error { return s.snap.Load().err }

// Authenticate checks a bearer token (CONTRACT.md §4.3): empty, unknown
// (an exact own-key lookup), revoked and expired tokens are refused in that
// order with UNAUTHORIZED, the last two with refresh "smithers token issue".
// Revocation and expiry are evaluated against Now at each call.
func (s *TokenStore) Authenticate(c Credentials) (host.Identity, error) {
	if c.Token == "" {
		return host.Identity{}, unauthorized(ErrTokenRequired, msgTokenRequired)
	}
	snap := s.snap.Load()
	if snap.err != nil {
		return host.Identity{}, unauthorized(fmt.Errorf("%w: %w", ErrStoreUnavailable, snap.err), msgStoreUnavailable)
	}
	g, ok := snap.tokens[c.Token]
	if !ok {
		s.logRefusal("the token is not in the token store")
		return host.Identity{}, unauthorized(ErrTokenInvalid, msgInvalidToken)
	}
	nowMs := float64(s.now().UnixMilli())
	if g.hasRevoked && g.revokedAtMs <= nowMs {
		s.logRefusal("the token is revoked")
		return host.Identity{}, unauthorizedRefresh(ErrTokenRevoked, msgTokenRevoked)
	}
	if g.hasExpires && g.expiresAtMs <= nowMs {
		s.logRefusal("the token has expired")
		return host.Identity{}, unauthorizedRefresh(ErrTokenExpired, msgTokenExpired)
	}
	id := host.Identity{Role: g.role, Scopes: slices.Clone(g.scopes), UserID: g.userID, TokenID: g.tokenID}
	if id.TokenID == "" {
		id.TokenID = TokenID(c.Token)
	}
	return id, nil
}

// refusalLogEvery bounds how often refused tokens are logged.
const refusalLogEvery = 10 * time.Second

// logRefusal tells the operator, not the caller, why a token was refused
// and which token store was read: a caller learns nothing about the server
// from the answer, but the operator who pasted a token issued into another
// store sees the path at once.
func (s *TokenStore) logRefusal(why string) {
	now := s.now().UnixNano()
	last := s.lastRefusal.Load()
	if now-last < int64(refusalLogEvery) || !s.lastRefusal.CompareAndSwap(last, now) {
		return
	}
	s.logger.Warn("refused a bearer token", "reason", why, "tokenStore", s.path)
}

// watch polls the file until Close.
func (s *TokenStore) watch() {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.poll()
		}
	}
}

// poll re-reads the file when its stat changed, while it was recently
// modified, or while the store is denying (a chmod that makes it readable
// again changes neither size nor mtime).
func (s *TokenStore) poll() {
	st := statFile(s.path)
	changed := st != s.stamp
	s.stamp = st
	recent := st.statErr == "" && time.Since(st.modTime) < racyWindow
	if changed || recent || s.snap.Load().err != nil {
		s.reload()
	}
}

// reload reads and parses the file and installs the result if it differs
// from the current snapshot.
func (s *TokenStore) reload() {
	next := loadTokenFile(s.path)
	prev := s.snap.Load()
	if prev != nil && prev.digest == next.digest {
		return
	}
	s.snap.Store(next)
	s.generation.Add(1)
	switch {
	case next.err != nil:
		s.logger.Error("token store unavailable: denying every token until the file is fixed",
			"path", s.path, "reason", next.err.Error())
	case prev != nil && prev.err != nil:
		s.logger.Info("token store recovered", "path", s.path, "tokens", len(next.tokens))
	case prev == nil:
		s.logger.Info("token store loaded", "path", s.path, "tokens", len(next.tokens))
	default:
		s.logger.Info("token store reloaded", "path", s.path, "tokens", len(next.tokens))
	}
}

// loadTokenFile reads path into a snapshot; failures become a denying
// snapshot whose digest is derived from the failure text.
func loadTokenFile(path string) *tokenSnapshot {
	data, err := readBounded(path, maxTokenFileBytes)
	if err != nil {
		return failedSnapshot(err)
	}
	tokens, err := parseTokenFile(data)
	if err != nil {
		return failedSnapshot(err)
	}
	return &tokenSnapshot{tokens: tokens, digest: sha256.Sum256(append([]byte("ok\x00"), data...))}
}

func failedSnapshot(err error) *tokenSnapshot {
	return &tokenSnapshot{err: err, digest: sha256.Sum256([]byte("err\x00" + err.Error()))}
}

// readBounded reads a whole file, refusing one larger than limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("file does not exist")
		}
		return nil, fmt.Errorf("cannot open file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read file: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("file is larger than %d bytes", limit)
	}
	return data, nil
}

func statFile(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{statErr: err.Error()}
	}
	return fileStamp{size: fi.Size(), modTime: fi.ModTime(), inode: fileInode(fi)}
}

// parseTokenFile validates a token store file: a JSON object whose "tokens"
// member is an object of grants keyed by raw token (a version-2 upstream
// store has the same shape plus fields that are ignored). Every grant must
// be an object with a string role and a string-array scopes; userId and
// tokenId must be strings and the *AtMs fields numbers when present and not
// null. Any violation rejects the whole file, so the gateway fails closed.
// Error texts never contain a token.
func parseTokenFile(data []byte) (map[string]storedGrant, error) {
	if err := expectObject(data, "the file"); err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	rawTokens, ok := top["tokens"]
	if !ok {
		return nil, errors.New(`the file has no "tokens" object`)
	}
	if err := expectObject(rawTokens, `"tokens"`); err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(rawTokens, &raw); err != nil {
		return nil, fmt.Errorf(`invalid "tokens": %v`, err)
	}
	tokens := make(map[string]storedGrant, len(raw))
	for token, rg := range raw {
		g, err := parseStoredGrant(rg)
		if err != nil {
			return nil, fmt.Errorf("malformed grant for token id %s: %v", TokenID(token), err)
		}
		tokens[token] = g
	}
	return tokens, nil
}

// expectObject reports an error naming what unless data is a JSON object
// (it does not validate the object itself).
func expectObject(data []byte, what string) error {
	t := bytes.TrimLeft(data, " \t\r\n")
	switch {
	case len(t) == 0:
		return fmt.Errorf("%s is empty", what)
	case bytes.HasPrefix(t, []byte("null")) && len(bytes.TrimSpace(t)) == 4:
		return fmt.Errorf("%s is JSON null", what)
	case t[0] != '{':
		return fmt.Errorf("%s is not a JSON object", what)
	}
	return nil
}

func parseStoredGrant(raw json.RawMessage) (storedGrant, error) {
	var g storedGrant
	if err := expectObject(raw, "the grant"); err != nil {
		return g, err
	}
	var f map[string]json.RawMessage
	if err := json.Unmarshal(raw, &f); err != nil {
		return g, err
	}
	rawRole, ok := f["role"]
	if !ok || json.Unmarshal(rawRole, &g.role) != nil || isNull(rawRole) {
		return g, errors.New("role is not a string")
	}
	rawScopes, ok := f["scopes"]
	if !ok {
		return g, errors.New("scopes is not an array of strings")
	}
	scopes, err := decodeStringArray(rawScopes)
	if err != nil {
		return g, errors.New("scopes is not an array of strings")
	}
	g.scopes = scopes
	if !optionalString(f, "userId", &g.userID) {
		return g, errors.New("userId is not a string")
	}
	if !optionalString(f, "tokenId", &g.tokenID) {
		return g, errors.New("tokenId is not a string")
	}
	var issued float64
	if _, ok := optionalNumber(f, "issuedAtMs", &issued); !ok {
		return g, errors.New("issuedAtMs is not a number")
	}
	if g.hasExpires, ok = optionalNumber(f, "expiresAtMs", &g.expiresAtMs); !ok {
		return g, errors.New("expiresAtMs is not a number")
	}
	if g.hasRevoked, ok = optionalNumber(f, "revokedAtMs", &g.revokedAtMs); !ok {
		return g, errors.New("revokedAtMs is not a number")
	}
	return g, nil
}

// decodeStringArray decodes a JSON array whose every element is a string
// (null elements included are an error, unlike with a plain Unmarshal).
func decodeStringArray(raw json.RawMessage) ([]string, error) {
	var elems []json.RawMessage
	if isNull(raw) {
		return nil, errors.New("null")
	}
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

// optionalString decodes f[key] into dst when present and not null; it
// reports false when the value is not a string.
func optionalString(f map[string]json.RawMessage, key string, dst *string) bool {
	raw, ok := f[key]
	if !ok || isNull(raw) {
		return true
	}
	return json.Unmarshal(raw, dst) == nil
}

// optionalNumber decodes f[key] into dst when present and not null; present
// reports whether a number was decoded and ok is false when the value is not
// a number.
func optionalNumber(f map[string]json.RawMessage, key string, dst *float64) (present, ok bool) {
	raw, found := f[key]
	if !found || isNull(raw) {
		return false, true
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return false, false
	}
	return true, true
}
