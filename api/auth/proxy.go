package auth

import (
	"slices"
	"strings"

	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/tokenstore"
)

// The default identity headers of trusted-proxy mode.
const (
	DefaultUserHeader   = "x-user-id"
	DefaultScopesHeader = "x-user-scopes"
	DefaultRoleHeader   = "x-user-role"
	tokenIDHeader       = "x-smithers-token-id"
	msgOriginNotAllowed = "Origin is not allowed"
)

// TrustedProxyConfig configures NewTrustedProxy. Headers positions 0, 1 and
// 2 override the user, scopes and role header names (an empty or missing
// entry keeps the default). A non-empty AllowedOrigins requires an Origin
// header from the list (Authenticate refuses any other with UNAUTHORIZED);
// its entries are also the other sites CheckStateChange and CheckUpgrade
// accept requests from. DefaultRole defaults to "operator"; DefaultScopes,
// granted when the scopes header is missing or empty, defaults to
// ["run:read"] when nil (an empty non-nil slice grants nothing).
type TrustedProxyConfig struct {
	Headers        []string
	AllowedOrigins []string
	DefaultRole    string
	DefaultScopes  []string
}

// TrustedProxy is the trusted-proxy Authenticator (docs/configuration.md):
// a missing scopes header grants the default scopes, never "*". It trusts the identity headers blindly, so it is only safe behind a
// proxy that strips and rewrites them. It is immutable and safe for
// concurrent use.
type TrustedProxy struct {
	userHeader, scopesHeader, roleHeader string
	allowedOrigins                       []string
	defaultRole                          string
	defaultScopes                        []string
}

var _ Authenticator = (*TrustedProxy)(nil)

// NewTrustedProxy builds a trusted-proxy authenticator from cfg.
func NewTrustedProxy(cfg TrustedProxyConfig) *TrustedProxy {
	p := &TrustedProxy{
		userHeader:     DefaultUserHeader,
		scopesHeader:   DefaultScopesHeader,
		roleHeader:     DefaultRoleHeader,
		allowedOrigins: slices.Clone(cfg.AllowedOrigins),
		defaultRole:    cfg.DefaultRole,
		defaultScopes:  slices.Clone(cfg.DefaultScopes),
	}
	names := []*string{&p.userHeader, &p.scopesHeader, &p.roleHeader}
	for i, h := range cfg.Headers {
		if i < len(names) && strings.TrimSpace(h) != "" {
			*names[i] = strings.ToLower(strings.TrimSpace(h))
		}
	}
	if p.defaultRole == "" {
		p.defaultRole = "operator"
	}
	if cfg.DefaultScopes == nil {
		p.defaultScopes = []string{ScopeRunRead}
	}
	return p
}

// Mode returns ModeTrustedProxy.
func (p *TrustedProxy) Mode() string { return ModeTrustedProxy }

// Authenticate reads the identity from c.Header: the Origin check first
// (UNAUTHORIZED "Origin is not allowed"), then user, scopes (split on commas
// and whitespace, else the default scopes), role (else the default role)
// and x-smithers-token-id. c.Token is ignored.
func (p *TrustedProxy) Authenticate(c Credentials) (host.Identity, error) {
	h := c.Header
	if len(p.allowedOrigins) > 0 {
		origin := h.Get("Origin")
		if origin == "" || !slices.Contains(p.allowedOrigins, origin) {
			return host.Identity{}, unauthorized(ErrOriginNotAllowed, msgOriginNotAllowed)
		}
	}
	scopes := tokenstore.SplitScopes(h.Get(p.scopesHeader))
	if len(scopes) == 0 {
		scopes = slices.Clone(p.defaultScopes)
		if scopes == nil {
			scopes = []string{}
		}
	}
	role := h.Get(p.roleHeader)
	if role == "" {
		role = p.defaultRole
	}
	return host.Identity{
		Role:    role,
		Scopes:  scopes,
		UserID:  h.Get(p.userHeader),
		TokenID: h.Get(tokenIDHeader),
	}, nil
}
