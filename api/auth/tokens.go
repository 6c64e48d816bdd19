package auth

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/tokenstore"
)

// DefaultPollInterval is how often a TokenStore stats its file.
const DefaultPollInterval = 250 * time.Millisecond

// racyWindow is how long after its modification time a file is re-read on
// every poll even when its stat is unchanged, so that a same-size rewrite
// within the file system's timestamp granularity is not missed.
const racyWindow = 2 * time.Second

// The messages of the token mode, as upstream's gateway answers them.
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

// TokenStore is the token-mode Authenticator backed by a token store file,
// which tokenstore.Load reads (an upstream version-2 store included). It
// re-reads the file when it changes, so issued, revoked and expired tokens
// take effect within a poll interval, and it fails closed: while the file
// is missing, unreadable or malformed every Authenticate answers
// UNAUTHORIZED. It owns one polling goroutine; call Close to stop it. It is
// safe for concurrent use.
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
	tokens map[string]tokenstore.Grant
	// err is non-nil when the store denies everything; it says why.
	err error
	// digest identifies the content the snapshot was parsed from (or the
	// failure), so an unchanged re-read is not counted as a reload.
	digest [32]byte
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

// Authenticate checks a bearer token as upstream's token mode does: empty,
// unknown (an exact own-key lookup), revoked and expired tokens are refused
// in that order with UNAUTHORIZED, the last two with refresh "smithers
// token issue". Revocation and expiry are evaluated against Now at each
// call.
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
	nowMs := s.now().UnixMilli()
	if g.Revoked(nowMs) {
		s.logRefusal("the token is revoked")
		return host.Identity{}, unauthorizedRefresh(ErrTokenRevoked, msgTokenRevoked)
	}
	if g.Expired(nowMs) {
		s.logRefusal("the token has expired")
		return host.Identity{}, unauthorizedRefresh(ErrTokenExpired, msgTokenExpired)
	}
	return host.Identity{Role: g.Role, Scopes: slices.Clone(g.Scopes), UserID: g.User(), TokenID: g.TokenID}, nil
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
	tokens, sum, err := tokenstore.Load(path)
	if err != nil {
		return failedSnapshot(err)
	}
	return &tokenSnapshot{tokens: tokens, digest: sha256.Sum256(append([]byte("ok\x00"), sum[:]...))}
}

func failedSnapshot(err error) *tokenSnapshot {
	return &tokenSnapshot{err: err, digest: sha256.Sum256([]byte("err\x00" + err.Error()))}
}

func statFile(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{statErr: err.Error()}
	}
	return fileStamp{size: fi.Size(), modTime: fi.ModTime(), inode: fileInode(fi)}
}

// IssueOptions, Issue and Revoke are package tokenstore's, for callers that
// already hold this package (the API's test harnesses issue and revoke
// tokens next to a TokenStore); the token CLI uses tokenstore itself.
type IssueOptions = tokenstore.IssueOptions

// Issue is tokenstore.Issue.
func Issue(path string, o IssueOptions) (tokenstore.IssueResult, error) {
	return tokenstore.Issue(path, o)
}

// Revoke is tokenstore.Revoke.
func Revoke(path, token string, now time.Time) (tokenID string, err error) {
	return tokenstore.Revoke(path, token, now)
}
