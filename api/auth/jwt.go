package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/tokenstore"
)

// The messages of the JWT mode (docs/configuration.md).
const (
	msgJWTSegments    = "JWT must have three segments"
	msgJWTJSON        = "JWT header or payload was not valid JSON"
	msgJWTAlg         = "Unsupported JWT algorithm"
	msgJWTSignature   = "JWT signature verification failed"
	msgJWTIssuer      = "JWT issuer did not match"
	msgJWTAudience    = "JWT audience did not match"
	msgJWTMissingExp  = "JWT is missing a valid exp claim"
	msgJWTExpired     = "JWT has expired"
	msgJWTNotActive   = "JWT is not active yet"
	defaultClockSkew  = 60 * time.Second
	defaultJWKSPeriod = 5 * time.Minute
	// jwksRetryDelay is the longest wait before retrying a failed JWKS
	// fetch, and the shortest interval between two on-demand refreshes
	// triggered by an unknown key id.
	jwksRetryDelay = 5 * time.Second
	maxJWKSBytes   = 1 << 20
)

// JWTConfig configures NewJWT. At least one of Secret (enables HS256) and
// JWKS (enables RS256 and ES256; a file path read once, or an http(s) URL
// refreshed in the background) is required. An empty Issuer or Audience is
// not checked. ScopesClaim, RoleClaim and UserClaim default to "scope",
// "role" and "sub"; DefaultRole to "operator". ClockSkew zero means 60 s and
// a negative value means none. Now defaults to time.Now. The remaining
// fields only concern a JWKS URL: how often it is refetched (default 5
// minutes), the client used (default: one with a 10 s timeout) and where
// fetch failures are logged (default slog.Default()).
type JWTConfig struct {
	Secret        string
	JWKS          string
	Issuer        string
	Audience      []string
	ScopesClaim   string
	RoleClaim     string
	UserClaim     string
	DefaultRole   string
	DefaultScopes []string
	ClockSkew     time.Duration
	Now           func() time.Time

	JWKSRefreshInterval time.Duration
	HTTPClient          *http.Client
	Logger              *slog.Logger
}

// JWTAuthenticator is the JWT-mode Authenticator (docs/configuration.md).
// With a JWKS URL it owns one refresh goroutine, stopped by
// Close. It is safe for concurrent use.
type JWTAuthenticator struct {
	cfg     JWTConfig
	secret  []byte
	jwksURL string

	// keys holds the current JWKS key set (nil until one was loaded).
	keys atomic.Pointer[keySet]

	// refreshMu serialises JWKS fetches and guards lastFetch.
	refreshMu sync.Mutex
	lastFetch time.Time

	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

var _ Authenticator = (*JWTAuthenticator)(nil)

// keySet wraps a keyfunc so it can live in an atomic.Pointer.
type keySet struct{ kf keyfunc.Keyfunc }

// NewJWT validates cfg and, for a JWKS, loads the key set. A JWKS file that
// cannot be read or parsed is an error; a JWKS URL that cannot be fetched
// yet is logged and retried in the background (tokens signed with its keys
// fail verification until it is fetched). Call Close when done.
func NewJWT(cfg JWTConfig) (*JWTAuthenticator, error) {
	if cfg.Secret == "" && cfg.JWKS == "" {
		return nil, errors.New("jwt auth: a secret or a JWKS is required")
	}
	if cfg.ScopesClaim == "" {
		cfg.ScopesClaim = "scope"
	}
	if cfg.RoleClaim == "" {
		cfg.RoleClaim = "role"
	}
	if cfg.UserClaim == "" {
		cfg.UserClaim = "sub"
	}
	if cfg.DefaultRole == "" {
		cfg.DefaultRole = "operator"
	}
	switch {
	case cfg.ClockSkew == 0:
		cfg.ClockSkew = defaultClockSkew
	case cfg.ClockSkew < 0:
		cfg.ClockSkew = 0
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.JWKSRefreshInterval <= 0 {
		cfg.JWKSRefreshInterval = defaultJWKSPeriod
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Audience = slices.Clone(cfg.Audience)
	cfg.DefaultScopes = slices.Clone(cfg.DefaultScopes)

	a := &JWTAuthenticator{cfg: cfg, secret: []byte(cfg.Secret), done: make(chan struct{})}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	lower := strings.ToLower(cfg.JWKS)
	switch {
	case cfg.JWKS == "":
		close(a.done)
	case strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://"):
		a.jwksURL = cfg.JWKS
		ok := a.refresh(0)
		go a.refreshLoop(ok)
	default:
		close(a.done)
		raw, err := os.ReadFile(cfg.JWKS)
		if err != nil {
			a.cancel()
			return nil, fmt.Errorf("jwt auth: read JWKS file: %w", err)
		}
		ks, err := parseJWKS(raw)
		if err != nil {
			a.cancel()
			return nil, fmt.Errorf("jwt auth: JWKS file %s: %w", cfg.JWKS, err)
		}
		a.keys.Store(ks)
	}
	return a, nil
}

// Close stops the JWKS refresh goroutine, if any, and waits for it. It is
// idempotent.
func (a *JWTAuthenticator) Close() error {
	a.closeOnce.Do(a.cancel)
	<-a.done
	return nil
}

// Mode returns ModeJWT.
func (a *JWTAuthenticator) Mode() string { return ModeJWT }

// Authenticate verifies a compact JWT in the order of docs/configuration.md
// (segments, JSON, algorithm, signature, iss, aud, exp, expiry with skew,
// nbf) and maps its claims to an identity. Failures are UNAUTHORIZED with
// the §4.4 message; an expired token carries refresh.
func (a *JWTAuthenticator) Authenticate(c Credentials) (host.Identity, error) {
	token := c.Token
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return host.Identity{}, unauthorized(ErrTokenInvalid, msgJWTSegments)
	}
	header, ok1 := decodeJWTObject(parts[0])
	claims, ok2 := decodeJWTObject(parts[1])
	if !ok1 || !ok2 {
		return host.Identity{}, unauthorized(ErrTokenInvalid, msgJWTJSON)
	}
	alg, _ := header["alg"].(string)
	var method jwt.SigningMethod
	switch {
	case alg == "HS256" && len(a.secret) > 0:
		method = jwt.SigningMethodHS256
	case alg == "RS256" && a.cfg.JWKS != "":
		method = jwt.SigningMethodRS256
	case alg == "ES256" && a.cfg.JWKS != "":
		method = jwt.SigningMethodES256
	default:
		return host.Identity{}, unauthorized(ErrTokenInvalid, msgJWTAlg)
	}
	sig, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[2], "="))
	if err != nil || !a.verify(method, header, parts[0]+"."+parts[1], sig) {
		return host.Identity{}, unauthorized(ErrTokenInvalid, msgJWTSignature)
	}
	if a.cfg.Issuer != "" {
		if iss, _ := claims["iss"].(string); iss != a.cfg.Issuer {
			return host.Identity{}, unauthorized(ErrTokenInvalid, msgJWTIssuer)
		}
	}
	if len(a.cfg.Audience) > 0 && !audienceMatches(claims["aud"], a.cfg.Audience) {
		return host.Identity{}, unauthorized(ErrTokenInvalid, msgJWTAudience)
	}
	exp, ok := claims["exp"].(float64)
	if !ok {
		return host.Identity{}, unauthorized(ErrTokenInvalid, msgJWTMissingExp)
	}
	now := float64(a.cfg.Now().UnixMilli()) / 1000
	skew := a.cfg.ClockSkew.Seconds()
	if now-skew >= exp {
		return host.Identity{}, unauthorizedRefresh(ErrTokenExpired, msgJWTExpired)
	}
	if nbf, ok := claims["nbf"].(float64); ok && now+skew < nbf {
		return host.Identity{}, unauthorized(ErrTokenInvalid, msgJWTNotActive)
	}
	return a.identity(token, claims), nil
}

// identity maps verified claims to the caller (docs/configuration.md principal).
func (a *JWTAuthenticator) identity(token string, claims map[string]any) host.Identity {
	var scopes []string
	switch v := claims[a.cfg.ScopesClaim].(type) {
	case []any:
		for _, s := range v {
			if s, ok := s.(string); ok && s != "" {
				scopes = append(scopes, s)
			}
		}
	case string:
		scopes = tokenstore.SplitScopes(v)
	}
	if len(scopes) == 0 {
		scopes = slices.Clone(a.cfg.DefaultScopes)
	}
	if scopes == nil {
		scopes = []string{}
	}
	role, _ := claims[a.cfg.RoleClaim].(string)
	if role == "" {
		role = a.cfg.DefaultRole
	}
	user, _ := claims[a.cfg.UserClaim].(string)
	return host.Identity{Role: role, Scopes: scopes, UserID: user, TokenID: tokenstore.TokenID(token)}
}

// verify checks the signature with the secret (HS256) or the JWKS keys.
func (a *JWTAuthenticator) verify(method jwt.SigningMethod, header map[string]any, signing string, sig []byte) bool {
	if method == jwt.SigningMethodHS256 {
		return method.Verify(signing, sig, a.secret) == nil
	}
	ks := a.keys.Load()
	keys, err := keysFor(ks, method, header)
	if err != nil && a.jwksURL != "" {
		// An unknown key id may mean the issuer rotated its keys: refetch
		// (rate-limited) and retry if the set changed meanwhile.
		a.refresh(jwksRetryDelay)
		if fresh := a.keys.Load(); fresh != ks {
			keys, err = keysFor(fresh, method, header)
		}
	}
	if err != nil {
		return false
	}
	for _, k := range keys {
		if method.Verify(signing, sig, k) == nil {
			return true
		}
	}
	return false
}

// keysFor returns the candidate verification keys for a token header: the
// key named by kid, or every key of the set when there is no kid.
func keysFor(ks *keySet, method jwt.SigningMethod, header map[string]any) ([]any, error) {
	if ks == nil {
		return nil, errors.New("no JWKS loaded")
	}
	k, err := ks.kf.Keyfunc(&jwt.Token{Header: header, Method: method})
	if err != nil {
		return nil, err
	}
	if set, ok := k.(jwt.VerificationKeySet); ok {
		keys := make([]any, 0, len(set.Keys))
		for _, key := range set.Keys {
			keys = append(keys, key)
		}
		return keys, nil
	}
	return []any{k}, nil
}

// refreshLoop refetches the JWKS URL until Close: every refresh interval
// after a success, sooner after a failure.
func (a *JWTAuthenticator) refreshLoop(lastOK bool) {
	defer close(a.done)
	for {
		delay := a.cfg.JWKSRefreshInterval
		if !lastOK {
			delay = min(delay, jwksRetryDelay)
		}
		t := time.NewTimer(delay)
		select {
		case <-a.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		lastOK = a.refresh(0)
	}
}

// refresh fetches the JWKS URL unless the last fetch is younger than
// minAge; it reports whether this call fetched a new key set.
func (a *JWTAuthenticator) refresh(minAge time.Duration) bool {
	a.refreshMu.Lock()
	defer a.refreshMu.Unlock()
	if minAge > 0 && time.Since(a.lastFetch) < minAge {
		return false
	}
	a.lastFetch = time.Now()
	ks, err := a.fetchJWKS()
	if err != nil {
		if a.ctx.Err() == nil {
			a.cfg.Logger.Error("jwt auth: cannot fetch JWKS; keeping the previous keys",
				"url", a.jwksURL, "error", err.Error())
		}
		return false
	}
	a.keys.Store(ks)
	return true
}

func (a *JWTAuthenticator) fetchJWKS() (*keySet, error) {
	req, err := http.NewRequestWithContext(a.ctx, http.MethodGet, a.jwksURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := a.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("unexpected status %s", resp.Status)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > maxJWKSBytes {
		return nil, fmt.Errorf("JWKS is larger than %d bytes", maxJWKSBytes)
	}
	return parseJWKS(raw)
}

// parseJWKS builds a key set from JWKS JSON. Keys that cannot be used
// (unsupported kty, bad parameters) are dropped rather than failing the
// whole set; a set left without any key is an error.
func parseJWKS(raw []byte) (*keySet, error) {
	if kf, err := keyfunc.NewJWKSetJSON(raw); err == nil {
		if n, _ := countKeys(raw); n > 0 {
			return &keySet{kf: kf}, nil
		}
		return nil, errors.New("JWKS has no keys")
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("JWKS is not valid JSON: %w", err)
	}
	usable := make([]json.RawMessage, 0, len(set.Keys))
	for _, k := range set.Keys {
		if _, err := keyfunc.NewJWKJSON(k); err == nil {
			usable = append(usable, k)
		}
	}
	if len(usable) == 0 {
		return nil, errors.New("JWKS has no usable keys")
	}
	filtered, err := json.Marshal(map[string]any{"keys": usable})
	if err != nil {
		return nil, err
	}
	kf, err := keyfunc.NewJWKSetJSON(filtered)
	if err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	return &keySet{kf: kf}, nil
}

func countKeys(raw []byte) (int, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	err := json.Unmarshal(raw, &set)
	return len(set.Keys), err
}

// decodeJWTObject decodes one base64url segment holding a JSON object.
func decodeJWTObject(seg string) (map[string]any, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return nil, false
	}
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, false
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

// audienceMatches reports whether the aud claim (a string or an array of
// strings) names one of the configured audiences.
func audienceMatches(aud any, want []string) bool {
	switch v := aud.(type) {
	case string:
		return slices.Contains(want, v)
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok && slices.Contains(want, s) {
				return true
			}
		}
	}
	return false
}
