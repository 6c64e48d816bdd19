package jsruntime

import (
	"fmt"
	neturl "net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dop251/goja"
	"golang.org/x/net/idna"
)

// codeInvalidURL is the code of the TypeError an invalid URL throws, Node.js's.
const codeInvalidURL = "ERR_INVALID_URL"

// parseURL is the binding behind the URL class: parseURL(input, base?) parses input, resolved
// against base when given, and returns the URL's serialized parts ({protocol, username,
// password, hostname, port, pathname, search, hash, special, hasAuthority, opaquePath}).
// An invalid URL is a TypeError with code ERR_INVALID_URL, as in Node.js.
func (g *globals) parseURL(call goja.FunctionCall) goja.Value {
	rt := g.rt
	input := g.toUSVString(call.Argument(0), "URL: url")
	var base *string
	if b := call.Argument(1); !goja.IsUndefined(b) {
		s := g.toUSVString(b, "URL: base")
		base = &s
	}
	u, err := parseWebURL(input, base)
	if err != nil {
		e := rt.NewTypeError("%s", err.Error())
		_ = e.Set("code", codeInvalidURL)
		_ = e.Set("input", input)
		panic(e)
	}
	r := rt.NewObject()
	for _, kv := range [...]struct {
		k string
		v any
	}{
		{"protocol", u.protocol}, {"username", u.username}, {"password", u.password},
		{"hostname", u.hostname}, {"port", u.port}, {"pathname", u.pathname}, {"search", u.search},
		{"hash", u.hash}, {"special", u.special}, {"hasAuthority", u.hasAuthority}, {"opaquePath", u.opaquePath},
	} {
		_ = r.Set(kv.k, kv.v)
	}
	return r
}

// webURL is a URL in the serialized parts that the WHATWG URL API returns.
type webURL struct {
	protocol, username, password, hostname, port, pathname, search, hash string
	special, hasAuthority, opaquePath                                    bool
}

// parseWebURL parses input (against base, when given) with net/url and normalizes the result the
// way browsers do for the URLs workflows use: lower-case scheme and host, IDNA host, default port
// dropped, "." and ".." path segments resolved (keeping a trailing slash), "/" as the path of an
// http(s) URL without one, and percent-encoding of characters that cannot appear raw.
func parseWebURL(input string, base *string) (*webURL, error) {
	input = cleanURLInput(input)
	var u *neturl.URL
	if base != nil {
		b, err := parseAbsoluteURL(cleanURLInput(*base))
		if err != nil {
			return nil, fmt.Errorf("Invalid base URL: %q", *base)
		}
		ref, err := neturl.Parse(input)
		if err != nil {
			return nil, fmt.Errorf("Invalid URL: %q", input)
		}
		switch {
		case ref.Scheme != "":
			u = ref
		case b.Opaque != "" && !strings.HasPrefix(input, "#"):
			return nil, fmt.Errorf("Invalid URL: %q cannot be resolved against %q", input, *base)
		default:
			u = b.ResolveReference(ref)
		}
	} else {
		var err error
		if u, err = neturl.Parse(input); err != nil {
			return nil, fmt.Errorf("Invalid URL: %q", input)
		}
	}
	u, err := normalizeURL(u)
	if err != nil {
		return nil, fmt.Errorf("Invalid URL: %q", input)
	}
	return serializeURL(u), nil
}

// cleanURLInput removes what the URL parser ignores: leading and trailing C0 controls and
// spaces, and tabs and newlines anywhere.
func cleanURLInput(s string) string {
	s = strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
	if strings.ContainsAny(s, "\t\n\r") {
		s = strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(s)
	}
	return s
}

// parseAbsoluteURL parses and normalizes a URL that must carry its scheme.
func parseAbsoluteURL(s string) (*neturl.URL, error) {
	u, err := neturl.Parse(s)
	if err != nil {
		return nil, err
	}
	return normalizeURL(u)
}

// defaultPort reports the default port of a special scheme, "" for file; ok is false for a
// scheme that is not special.
func defaultPort(scheme string) (port string, ok bool) {
	switch scheme {
	case "http", "ws":
		return "80", true
	case "https", "wss":
		return "443", true
	case "ftp":
		return "21", true
	case "file":
		return "", true
	}
	return "", false
}

// normalizeURL checks u and brings it to the browser's canonical form.
func normalizeURL(u *neturl.URL) (*neturl.URL, error) {
	if u.Scheme == "" {
		return nil, fmt.Errorf("no scheme")
	}
	defPort, special := defaultPort(u.Scheme)
	if special && u.Opaque != "" {
		// "https:example.com" means "https://example.com".
		s := u.Scheme + "://" + strings.TrimLeft(u.Opaque, "/")
		if u.RawQuery != "" || u.ForceQuery {
			s += "?" + u.RawQuery
		}
		if u.Fragment != "" {
			s += "#" + u.EscapedFragment()
		}
		v, err := neturl.Parse(s)
		if err != nil {
			return nil, err
		}
		u = v
	}
	host, port := u.Hostname(), u.Port()
	if special && u.Scheme != "file" && host == "" {
		return nil, fmt.Errorf("no host")
	}
	if host != "" && !strings.Contains(host, ":") {
		host = strings.ToLower(host)
		if !isASCII(host) {
			h, err := idna.New(idna.MapForLookup(), idna.Transitional(false), idna.StrictDomainName(false)).ToASCII(host)
			if err != nil {
				return nil, err
			}
			host = h
		}
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n > 65535 {
			return nil, fmt.Errorf("bad port")
		}
		port = strconv.Itoa(n)
		if special && port == defPort {
			port = ""
		}
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		u.Host = host + ":" + port
	} else {
		u.Host = host
	}
	if u.Opaque == "" {
		p := u.EscapedPath()
		if special && p == "" {
			p = "/"
		}
		if strings.HasPrefix(p, "/") {
			p = removeDotSegments(p)
		}
		if err := setEscapedPath(u, p); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// setEscapedPath sets u's path from its escaped form.
func setEscapedPath(u *neturl.URL, escaped string) error {
	p, err := neturl.PathUnescape(escaped)
	if err != nil {
		return err
	}
	u.Path, u.RawPath = p, escaped
	return nil
}

// removeDotSegments resolves "." and ".." segments of an absolute path (RFC 3986, 5.2.4); unlike
// path.Clean it keeps empty segments and a trailing slash.
func removeDotSegments(p string) string {
	segs := strings.Split(p[1:], "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	return "/" + strings.Join(out, "/")
}

// serializeURL splits a normalized URL into the parts the URL API returns.
func serializeURL(u *neturl.URL) *webURL {
	_, special := defaultPort(u.Scheme)
	w := &webURL{
		protocol:     u.Scheme + ":",
		hostname:     u.Hostname(),
		port:         u.Port(),
		special:      special,
		hasAuthority: special || u.Host != "",
		opaquePath:   u.Opaque != "",
	}
	if strings.Contains(w.hostname, ":") {
		w.hostname = "[" + w.hostname + "]"
	}
	if u.User != nil {
		w.username, w.password, _ = strings.Cut(u.User.String(), ":")
	}
	if w.opaquePath {
		w.pathname = u.Opaque
	} else {
		w.pathname = u.EscapedPath()
	}
	if u.RawQuery != "" {
		w.search = "?" + escapeQuery(u.RawQuery, special)
	}
	if u.Fragment != "" {
		w.hash = "#" + u.EscapedFragment()
	}
	return w
}

// escapeQuery percent-encodes the bytes that the URL standard's query encode set names.
func escapeQuery(q string, special bool) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c < 0x21 || c > 0x7E || c == '"' || c == '#' || c == '<' || c == '>' || (special && c == '\'') {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xF])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// isASCII reports whether s is all ASCII.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
