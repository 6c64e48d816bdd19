package auth

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/smithers-orchestrator/smithers-go/host"
)

// ErrCrossSite is the cause of the FORBIDDEN error of a request refused by
// a CrossSiteGuard.
var ErrCrossSite = errors.New("cross-site request")

// CrossSiteGuard is implemented by an Authenticator whose identity a
// browser supplies on its own. Behind a trusted proxy, the proxy turns the
// browser's session (a cookie) into identity headers, so any page the user
// visits could make the browser send a request that the proxy
// authenticates as the user (cross-site request forgery). Bearer tokens and
// JWTs are never attached by a browser on its own, so the other modes need
// no guard.
//
// Both checks return nil or a *host.Error with code FORBIDDEN and cause
// ErrCrossSite. Requests without an Origin header (curl, SDKs, servers)
// pass the Origin check: browsers send Origin with every cross-origin
// request that could change state, and with every WebSocket upgrade.
type CrossSiteGuard interface {
	// CheckStateChange refuses a request that may change state (any
	// method but GET, HEAD and OPTIONS) when its Origin names another
	// site, or when its Content-Type is one a page may send to another
	// site without asking first (a form or plain text).
	CheckStateChange(r *http.Request) error
	// CheckUpgrade refuses a WebSocket upgrade whose Origin names another
	// site.
	CheckUpgrade(r *http.Request) error
}

var _ CrossSiteGuard = (*TrustedProxy)(nil)

// CheckStateChange implements CrossSiteGuard. An Origin is allowed when it
// is the request's own origin (see CheckUpgrade) or one of the configured
// AllowedOrigins. The refused content types are the three a browser sends
// cross-site without a CORS preflight: application/x-www-form-urlencoded,
// multipart/form-data and text/plain (in any letter case, with any
// parameters); JSON clients send application/json.
func (p *TrustedProxy) CheckStateChange(r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if err := p.CheckUpgrade(r); err != nil {
		return err
	}
	if ct := mediaType(r.Header.Get("Content-Type")); simpleContentType(ct) {
		return crossSite("Cross-site request refused: a web page can send Content-Type " + ct +
			" to any site; send the request with Content-Type: application/json.")
	}
	return nil
}

// CheckUpgrade implements CrossSiteGuard: an Origin other than the
// request's own and not among AllowedOrigins is refused. The request's own
// origin is its Host (or the proxy's X-Forwarded-Host) with its scheme,
// which is https over TLS or the proxy's X-Forwarded-Proto; when neither
// says (a proxy that terminates TLS without telling), http and https are
// both taken as the gateway's own.
func (p *TrustedProxy) CheckUpgrade(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" || slices.Contains(p.allowedOrigins, origin) || isOwnOrigin(origin, r) {
		return nil
	}
	return crossSite("Cross-site request refused: the Origin header names another site, which is neither this gateway's own origin nor an allowed origin.")
}

func crossSite(message string) error {
	return &host.Error{Code: host.CodeForbidden, Message: message, Err: ErrCrossSite}
}

// mediaType is the essence of a Content-Type value: the type/subtype
// before any parameter, trimmed and lower-cased, as a browser judges it.
func mediaType(v string) string {
	v, _, _ = strings.Cut(v, ";")
	return strings.ToLower(strings.TrimSpace(v))
}

// simpleContentType reports whether a browser may send this media type to
// another site without a CORS preflight.
func simpleContentType(mt string) bool {
	switch mt {
	case "application/x-www-form-urlencoded", "multipart/form-data", "text/plain":
		return true
	}
	return false
}

// isOwnOrigin reports whether origin (scheme://host[:port]) is the origin
// the request was sent to.
func isOwnOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || u.User != nil {
		return false // "null" (sandboxed pages, file:) or not an origin
	}
	scheme := strings.ToLower(u.Scheme)
	ownHost := firstListValue(r.Header.Get("X-Forwarded-Host"))
	if ownHost == "" {
		ownHost = r.Host
	}
	ownScheme := strings.ToLower(firstListValue(r.Header.Get("X-Forwarded-Proto")))
	if ownScheme == "" && r.TLS != nil {
		ownScheme = "https"
	}
	if ownScheme != "" && ownScheme != scheme {
		return false
	}
	return ownHost != "" && strings.EqualFold(withoutDefaultPort(scheme, u.Host), withoutDefaultPort(scheme, ownHost))
}

// firstListValue is the first entry of a comma-separated header value (a
// chain of proxies appends theirs).
func firstListValue(v string) string {
	v, _, _ = strings.Cut(v, ",")
	return strings.TrimSpace(v)
}

// withoutDefaultPort drops the scheme's default port from host, which
// browsers leave out of Origin and clients out of Host.
func withoutDefaultPort(scheme, host string) string {
	switch {
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		return strings.TrimSuffix(host, ":80")
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		return strings.TrimSuffix(host, ":443")
	}
	return host
}
