package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/smithers-orchestrator/smithers-go/tokenstore"
)

const jwtNow = 1_700_000_000 // seconds

func newTestJWT(t *testing.T, cfg JWTConfig) *JWTAuthenticator {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.Unix(jwtNow, 0) }
	}
	if cfg.Logger == nil {
		cfg.Logger, _ = newTestLogger()
	}
	a, err := NewJWT(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawJWT builds a token from literal header and payload JSON.
func rawJWT(header, payload, sig string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "." + sig
}

func claims(extra map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{"iss": "https://issuer", "aud": "smithers", "exp": jwtNow + 600, "sub": "user:1"}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func TestJWTHS256(t *testing.T) {
	secret := []byte("s3cret")
	a := newTestJWT(t, JWTConfig{Secret: string(secret), Issuer: "https://issuer", Audience: []string{"other", "smithers"},
		DefaultScopes: []string{"run:read"}})
	if a.Mode() != ModeJWT {
		t.Fatal(a.Mode())
	}
	hs := func(extra map[string]any) string { return sign(t, jwt.SigningMethodHS256, secret, "", claims(extra)) }

	tok := hs(map[string]any{"scope": "run:read run:write,cron:read", "role": "admin"})
	id, err := a.Authenticate(Credentials{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	if id.Role != "admin" || id.UserID != "user:1" || id.TokenID != tokenstore.TokenID(tok) ||
		!slices.Equal(id.Scopes, []string{"run:read", "run:write", "cron:read"}) {
		t.Fatalf("identity = %+v", id)
	}

	id, err = a.Authenticate(Credentials{Token: hs(map[string]any{"scope": []any{"cron:write", 7, "x"}, "sub": nil,
		"aud": []any{"nope", "smithers"}})})
	if err != nil || id.Role != "operator" || id.UserID != "" || !slices.Equal(id.Scopes, []string{"cron:write", "x"}) {
		t.Fatalf("array scopes: %+v, %v", id, err)
	}
	id, err = a.Authenticate(Credentials{Token: hs(nil)})
	if err != nil || !slices.Equal(id.Scopes, []string{"run:read"}) {
		t.Fatalf("default scopes: %+v, %v", id, err)
	}
	// Within the default 60 s skew on both sides.
	if _, err := a.Authenticate(Credentials{Token: hs(map[string]any{"exp": jwtNow - 30, "nbf": jwtNow + 30})}); err != nil {
		t.Fatalf("skew: %v", err)
	}

	other := sign(t, jwt.SigningMethodHS256, []byte("wrong"), "", claims(nil))
	good := hs(nil)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"exp":9999999999}`)) + "." + parts[2]
	hs384 := sign(t, jwt.SigningMethodHS384, secret, "", claims(nil))
	expiredBadSig := sign(t, jwt.SigningMethodHS256, []byte("wrong"), "", claims(map[string]any{"exp": 1}))

	failures := []struct {
		name, token, message string
		refresh              bool
	}{
		{"empty", "", msgJWTSegments, false},
		{"two segments", "a.b", msgJWTSegments, false},
		{"four segments", good + ".x", msgJWTSegments, false},
		{"empty segment", parts[0] + ".." + parts[2], msgJWTSegments, false},
		{"header not base64", "!!!." + parts[1] + "." + parts[2], msgJWTJSON, false},
		{"header not JSON", rawJWT(`{"alg":`, `{}`, "c2ln"), msgJWTJSON, false},
		{"payload array", rawJWT(`{"alg":"HS256"}`, `[1]`, "c2ln"), msgJWTJSON, false},
		{"payload null", rawJWT(`{"alg":"HS256"}`, `null`, "c2ln"), msgJWTJSON, false},
		{"alg none", rawJWT(`{"alg":"none"}`, `{}`, "c2ln"), msgJWTAlg, false},
		{"alg missing", rawJWT(`{"typ":"JWT"}`, `{}`, "c2ln"), msgJWTAlg, false},
		{"alg lower case", rawJWT(`{"alg":"hs256"}`, `{}`, "c2ln"), msgJWTAlg, false},
		{"alg HS384", hs384, msgJWTAlg, false},
		{"alg RS256 without JWKS", rawJWT(`{"alg":"RS256"}`, `{}`, "c2ln"), msgJWTAlg, false},
		{"wrong secret", other, msgJWTSignature, false},
		{"tampered payload", tampered, msgJWTSignature, false},
		{"signature not base64", parts[0] + "." + parts[1] + ".!!", msgJWTSignature, false},
		{"signature before expiry", expiredBadSig, msgJWTSignature, false},
		{"issuer", hs(map[string]any{"iss": "https://evil"}), msgJWTIssuer, false},
		{"issuer missing", hs(map[string]any{"iss": nil}), msgJWTIssuer, false},
		{"issuer before expiry", hs(map[string]any{"iss": "x", "exp": 1}), msgJWTIssuer, false},
		{"audience", hs(map[string]any{"aud": "else"}), msgJWTAudience, false},
		{"audience array", hs(map[string]any{"aud": []any{"a", "b"}}), msgJWTAudience, false},
		{"audience missing", hs(map[string]any{"aud": nil}), msgJWTAudience, false},
		{"exp missing", hs(map[string]any{"exp": nil}), msgJWTMissingExp, false},
		{"exp string", hs(map[string]any{"exp": "9999999999"}), msgJWTMissingExp, false},
		{"expired", hs(map[string]any{"exp": jwtNow - 60}), msgJWTExpired, true},
		{"expired long ago", hs(map[string]any{"exp": 1}), msgJWTExpired, true},
		{"not active", hs(map[string]any{"nbf": jwtNow + 61}), msgJWTNotActive, false},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			_, err := a.Authenticate(Credentials{Token: f.token})
			wantUnauthorized(t, err, f.message, f.refresh)
		})
	}
}

func TestJWTConfig(t *testing.T) {
	if _, err := NewJWT(JWTConfig{}); err == nil {
		t.Fatal("NewJWT without a key accepted")
	}
	if _, err := NewJWT(JWTConfig{JWKS: filepath.Join(t.TempDir(), "missing.json")}); err == nil {
		t.Fatal("NewJWT with a missing JWKS file accepted")
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewJWT(JWTConfig{JWKS: bad}); err == nil {
		t.Fatal("NewJWT with an empty JWKS accepted")
	}

	// Custom claims, default role, no skew, unchecked issuer and audience.
	secret := []byte("k")
	a := newTestJWT(t, JWTConfig{Secret: "k", ScopesClaim: "perms", RoleClaim: "r", UserClaim: "email",
		DefaultRole: "viewer", ClockSkew: -time.Second})
	tok := sign(t, jwt.SigningMethodHS256, secret, "", jwt.MapClaims{"exp": jwtNow + 1, "perms": "a,b",
		"email": "a@b", "role": "admin"})
	id, err := a.Authenticate(Credentials{Token: tok})
	if err != nil || id.Role != "viewer" || id.UserID != "a@b" || !slices.Equal(id.Scopes, []string{"a", "b"}) {
		t.Fatalf("custom claims: %+v, %v", id, err)
	}
	if id.Scopes == nil {
		t.Fatal("nil scopes")
	}
	tok = sign(t, jwt.SigningMethodHS256, secret, "", jwt.MapClaims{"exp": jwtNow})
	_, err = a.Authenticate(Credentials{Token: tok})
	wantUnauthorized(t, err, msgJWTExpired, true)
	tok = sign(t, jwt.SigningMethodHS256, secret, "", jwt.MapClaims{"exp": jwtNow + 10})
	if id, err := a.Authenticate(Credentials{Token: tok}); err != nil || id.Scopes == nil || len(id.Scopes) != 0 {
		t.Fatalf("no scopes and no defaults: %+v, %v", id, err)
	}
}

type testKeys struct {
	rsa, rsaOther *rsa.PrivateKey
	ec            *ecdsa.PrivateKey
}

func newTestKeys(t *testing.T) testKeys {
	t.Helper()
	r1, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKeys{rsa: r1, rsaOther: r2, ec: ec}
}

func rsaJWK(kid string, k *rsa.PublicKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(kid string, k *ecdsa.PublicKey) map[string]any {
	x, y := make([]byte, 32), make([]byte, 32)
	k.X.FillBytes(x)
	k.Y.FillBytes(y)
	return map[string]any{"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(x), "y": b64(y)}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jwksJSON(t *testing.T, keys ...map[string]any) []byte {
	t.Helper()
	data, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestJWTJWKSFile(t *testing.T) {
	k := newTestKeys(t)
	path := filepath.Join(t.TempDir(), "jwks.json")
	unusable := map[string]any{"kty": "nope", "kid": "junk"}
	if err := os.WriteFile(path, jwksJSON(t, rsaJWK("r1", &k.rsa.PublicKey), ecJWK("e1", &k.ec.PublicKey), unusable), 0o600); err != nil {
		t.Fatal(err)
	}
	a := newTestJWT(t, JWTConfig{JWKS: path, Audience: []string{"smithers"}})

	for name, tok := range map[string]string{
		"RS256 with kid":    sign(t, jwt.SigningMethodRS256, k.rsa, "r1", claims(map[string]any{"scope": "run:read"})),
		"RS256 without kid": sign(t, jwt.SigningMethodRS256, k.rsa, "", claims(map[string]any{"scope": "run:read"})),
		"ES256 with kid":    sign(t, jwt.SigningMethodES256, k.ec, "e1", claims(map[string]any{"scope": "run:read"})),
		"ES256 without kid": sign(t, jwt.SigningMethodES256, k.ec, "", claims(map[string]any{"scope": "run:read"})),
	} {
		t.Run(name, func(t *testing.T) {
			id, err := a.Authenticate(Credentials{Token: tok})
			if err != nil || !slices.Equal(id.Scopes, []string{"run:read"}) || id.UserID != "user:1" {
				t.Fatalf("%+v, %v", id, err)
			}
		})
	}
	failures := map[string]struct{ token, message string }{
		"unknown signer":     {sign(t, jwt.SigningMethodRS256, k.rsaOther, "", claims(nil)), msgJWTSignature},
		"unknown signer kid": {sign(t, jwt.SigningMethodRS256, k.rsaOther, "r1", claims(nil)), msgJWTSignature},
		"unknown kid":        {sign(t, jwt.SigningMethodRS256, k.rsa, "r9", claims(nil)), msgJWTSignature},
		"RS256 kid of EC":    {sign(t, jwt.SigningMethodRS256, k.rsa, "e1", claims(nil)), msgJWTSignature},
		"HS256 without secret": {sign(t, jwt.SigningMethodHS256, []byte("x"), "", claims(nil)),
			msgJWTAlg},
		"PS256": {sign(t, jwt.SigningMethodPS256, k.rsa, "r1", claims(nil)), msgJWTAlg},
		"expired": {sign(t, jwt.SigningMethodES256, k.ec, "e1", claims(map[string]any{"exp": jwtNow - 61})),
			msgJWTExpired},
		"audience": {sign(t, jwt.SigningMethodES256, k.ec, "e1", claims(map[string]any{"aud": "x"})),
			msgJWTAudience},
	}
	for name, f := range failures {
		t.Run(name, func(t *testing.T) {
			_, err := a.Authenticate(Credentials{Token: f.token})
			wantUnauthorized(t, err, f.message, f.message == msgJWTExpired)
		})
	}

	// A secret and a JWKS together accept both kinds, never mixing keys.
	both := newTestJWT(t, JWTConfig{JWKS: path, Secret: "hs"})
	for _, tok := range []string{
		sign(t, jwt.SigningMethodHS256, []byte("hs"), "", claims(nil)),
		sign(t, jwt.SigningMethodRS256, k.rsa, "r1", claims(nil)),
	} {
		if _, err := both.Authenticate(Credentials{Token: tok}); err != nil {
			t.Fatalf("secret+JWKS: %v", err)
		}
	}
}

func TestJWTJWKSURL(t *testing.T) {
	k := newTestKeys(t)
	var (
		mu       sync.Mutex
		served   = jwksJSON(t, rsaJWK("r1", &k.rsa.PublicKey))
		requests atomic.Int64
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(served)
	}))
	defer srv.Close()

	a := newTestJWT(t, JWTConfig{JWKS: srv.URL + "/jwks.json", JWKSRefreshInterval: 20 * time.Millisecond})
	if _, err := a.Authenticate(Credentials{Token: sign(t, jwt.SigningMethodRS256, k.rsa, "r1", claims(nil))}); err != nil {
		t.Fatalf("RS256 via URL: %v", err)
	}
	ecTok := sign(t, jwt.SigningMethodES256, k.ec, "e1", claims(nil))
	_, err := a.Authenticate(Credentials{Token: ecTok})
	wantUnauthorized(t, err, msgJWTSignature, false)

	// Key rotation: the issuer starts publishing the EC key.
	mu.Lock()
	served = jwksJSON(t, ecJWK("e1", &k.ec.PublicKey))
	mu.Unlock()
	waitFor(t, 5*time.Second, "the rotated JWKS to be fetched", func() bool {
		_, err := a.Authenticate(Credentials{Token: ecTok})
		return err == nil
	})
	// A failing endpoint keeps the last good keys.
	mu.Lock()
	served = []byte("not json")
	mu.Unlock()
	before := requests.Load()
	waitFor(t, 5*time.Second, "more refreshes", func() bool { return requests.Load() > before+1 })
	if _, err := a.Authenticate(Credentials{Token: ecTok}); err != nil {
		t.Fatalf("lost keys after a failed refresh: %v", err)
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.done:
	default:
		t.Fatal("refresh goroutine still running after Close")
	}
}

func TestJWTJWKSURLUnavailableAtStart(t *testing.T) {
	k := newTestKeys(t)
	var up atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(jwksJSON(t, ecJWK("e1", &k.ec.PublicKey)))
	}))
	defer srv.Close()
	logger, logs := newTestLogger()
	a := newTestJWT(t, JWTConfig{JWKS: srv.URL, Logger: logger, JWKSRefreshInterval: 20 * time.Millisecond})
	tok := sign(t, jwt.SigningMethodES256, k.ec, "e1", claims(nil))
	_, err := a.Authenticate(Credentials{Token: tok})
	wantUnauthorized(t, err, msgJWTSignature, false)
	if logs.Count("level=ERROR", "JWKS") == 0 {
		t.Fatalf("no error logged for an unreachable JWKS:\n%s", logs)
	}
	up.Store(true)
	waitFor(t, 10*time.Second, "the JWKS to be fetched after a failure", func() bool {
		_, err := a.Authenticate(Credentials{Token: tok})
		return err == nil
	})
}
