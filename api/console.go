package api

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// The console's built files: bundled and minified from console/ by
// console/build, committed, and checked against their sources by that
// program's test.
//
//go:generate go run ../console/build
//go:embed consoleassets
var consoleFiles embed.FS

// DefaultConsolePath is where the operator console is mounted unless
// Config.ConsolePath says otherwise.
const DefaultConsolePath = "/console"

const (
	consoleTitle    = "Smithers Operator Console"
	consoleAssetDir = "__smithers_ui"
	// immutableCache is the Cache-Control of an asset requested with its
	// current version (?v=<hash>): the URL names the content, so it never
	// changes.
	immutableCache = "public, max-age=31536000, immutable"
)

var mountPathPattern = regexp.MustCompile(`^/[A-Za-z0-9/_:.-]*$`)

// NormalizeConsolePath turns a configured mount path into the form the
// console is served under: a leading "/" added, a trailing "/" removed
// ("/" stays the root), and then it must match ^/[A-Za-z0-9/_:.-]*$ as
// upstream's mount paths. Empty segments, "." and ".." segments and the
// asset directory's name are refused too.
func NormalizeConsolePath(p string) (string, error) {
	p = strings.TrimSpace(p)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	if !mountPathPattern.MatchString(p) {
		return "", fmt.Errorf("console path %q may hold only letters, digits and / _ : . -", p)
	}
	if p != "/" {
		for _, seg := range strings.Split(p[1:], "/") {
			if seg == "" || seg == "." || seg == ".." || seg == consoleAssetDir {
				return "", fmt.Errorf("console path %q has an empty, dot or %s segment", p, consoleAssetDir)
			}
		}
	}
	return p, nil
}

// consoleAsset is one built file served under <mount>/__smithers_ui/.
type consoleAsset struct {
	body        []byte
	contentType string
	version     string // the first 16 hex digits of the body's SHA-256
	etag        string
}

// console serves the operator console: the HTML shell at its mount path
// and every path under it (the client routes), and the built assets under
// <mount>/__smithers_ui/. It holds no data and needs no credentials: the
// page asks for a token and sends it on every RPC and in the WebSocket
// connect. Immutable after newConsole.
type console struct {
	mount     string
	shell     []byte
	shellETag string
	// scriptHash is the CSP source of the shell's one inline script (the
	// boot object), so that script-src needs nothing but 'self' and it.
	scriptHash string
	assets     map[string]*consoleAsset
}

// consoleBoot is the boot object of docs/rpc.md in its field order.
type consoleBoot struct {
	APIVersion    string         `json:"apiVersion"`
	Kind          string         `json:"kind"`
	WorkflowKey   *string        `json:"workflowKey"`
	MountPath     string         `json:"mountPath"`
	RPCPath       string         `json:"rpcPath"`
	WSPath        string         `json:"wsPath"`
	AssetBasePath string         `json:"assetBasePath"`
	Props         map[string]any `json:"props"`
}

// newConsole builds the shell and the asset table for a mount path that
// NormalizeConsolePath accepted. authMode goes into the boot object's
// props, so that a page behind a trusted proxy (or with auth off) need
// not ask for a token.
func newConsole(mount, authMode string) (*console, error) {
	c := &console{mount: mount, assets: map[string]*consoleAsset{}}
	err := fs.WalkDir(consoleFiles, "consoleassets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := consoleFiles.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		v := hex.EncodeToString(sum[:8])
		c.assets[path.Base(p)] = &consoleAsset{body: body, contentType: consoleContentType(p), version: v, etag: `"` + v + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"client.js", "client.css", "favicon.svg"} {
		if c.assets[name] == nil {
			return nil, fmt.Errorf("console asset %s is missing: run go generate ./api", name)
		}
	}
	base := c.assetBase()
	boot, err := json.Marshal(consoleBoot{APIVersion: "v1", Kind: "operator", MountPath: mount, RPCPath: "/v1/rpc", WSPath: "/",
		AssetBasePath: base, Props: map[string]any{"authMode": authMode}})
	if err != nil {
		return nil, err
	}
	// json.Marshal escapes <, > and & as \u003c..., so the object cannot
	// end the script element.
	script := "globalThis.__SMITHERS_GATEWAY_UI__=" + string(boot) + ";"
	sum := sha256.Sum256([]byte(script))
	c.scriptHash = "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	asset := func(name string) string {
		return html.EscapeString(base + name + "?v=" + c.assets[name].version)
	}
	var b bytes.Buffer
	b.WriteString("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
	b.WriteString("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
	b.WriteString("<meta name=\"color-scheme\" content=\"light dark\">\n")
	b.WriteString("<meta name=\"referrer\" content=\"no-referrer\">\n")
	fmt.Fprintf(&b, "<title>%s</title>\n", html.EscapeString(consoleTitle))
	fmt.Fprintf(&b, "<link rel=\"icon\" type=\"image/svg+xml\" href=\"%s\">\n", asset("favicon.svg"))
	fmt.Fprintf(&b, "<link rel=\"stylesheet\" href=\"%s\">\n", asset("client.css"))
	fmt.Fprintf(&b, "<script>%s</script>\n", script)
	fmt.Fprintf(&b, "<script type=\"module\" src=\"%s\"></script>\n", asset("client.js"))
	b.WriteString("</head>\n<body>\n<div id=\"root\"></div>\n")
	b.WriteString("<noscript>The Smithers console needs JavaScript.</noscript>\n</body>\n</html>\n")
	c.shell = b.Bytes()
	sum = sha256.Sum256(c.shell)
	c.shellETag = `"` + hex.EncodeToString(sum[:8]) + `"`
	return c, nil
}

func consoleContentType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

// assetBase is <mount>/__smithers_ui/.
func (c *console) assetBase() string {
	if c.mount == "/" {
		return "/" + consoleAssetDir + "/"
	}
	return c.mount + "/" + consoleAssetDir + "/"
}

// covers reports whether a request path falls under the mount (route row
// 6 of docs/rpc.md: the rows before it have already been tried).
func (c *console) covers(p string) bool {
	return c.mount == "/" || p == c.mount || strings.HasPrefix(p, c.mount+"/")
}

// serve answers a GET or HEAD under the mount: an asset under
// __smithers_ui/, a plain-text 404 for any other name there, else the
// shell (the client routes every other path itself).
func (c *console) serve(ec echo.Context) error {
	r := ec.Request()
	if name, ok := strings.CutPrefix(r.URL.Path, c.assetBase()); ok {
		a := c.assets[name]
		if a == nil || strings.Contains(name, "/") {
			return consoleNotFound(ec)
		}
		cache := "no-cache"
		if r.URL.Query().Get("v") == a.version {
			cache = immutableCache
		}
		h := ec.Response().Header()
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		return writeConsoleBody(ec, a.contentType, cache, a.etag, a.body)
	}
	h := ec.Response().Header()
	h.Set("Content-Security-Policy", c.policy(r.Host))
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	return writeConsoleBody(ec, "text/html; charset=UTF-8", "no-cache", c.shellETag, c.shell)
}

// hostPattern is what a Host header may look like to be named in the CSP
// (a name or address and an optional port); anything else is left to
// 'self'.
var hostPattern = regexp.MustCompile(`^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$`)

// policy is the shell's Content-Security-Policy: nothing from other
// origins, no inline code but the boot object (by its hash), no framing.
// The WebSocket of the page's own host is named explicitly for browsers
// whose 'self' does not cover ws: and wss:.
func (c *console) policy(host string) string {
	connect := "'self'"
	if hostPattern.MatchString(host) {
		connect += " ws://" + host + " wss://" + host
	}
	return "default-src 'none'; script-src 'self' " + c.scriptHash + "; style-src 'self'; img-src 'self'; connect-src " + connect +
		"; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// writeConsoleBody writes a console response (or, for HEAD, its headers
// alone). A matching If-None-Match is answered 304.
func writeConsoleBody(ec echo.Context, contentType, cache, etag string, body []byte) error {
	r, w := ec.Request(), ec.Response()
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", cache)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatches(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	_, err := w.Write(body)
	return err
}

func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// consoleNotFound answers an unknown name under __smithers_ui/ with
// upstream's plain-text 404.
func consoleNotFound(ec echo.Context) error {
	h := ec.Response().Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	ec.Response().WriteHeader(http.StatusNotFound)
	if ec.Request().Method == http.MethodHead {
		return nil
	}
	_, err := ec.Response().Write([]byte("Not Found"))
	return err
}

// newConsole builds the console of cfg, or nil when it is disabled. A
// path NormalizeConsolePath refuses, or missing built assets, leave it off
// with an error logged (cmd refuses such a path before it gets here).
func (s *Server) newConsole(cfg Config) *console {
	if cfg.ConsoleDisabled {
		return nil
	}
	mount := cfg.ConsolePath
	if mount == "" {
		mount = DefaultConsolePath
	}
	mount, err := NormalizeConsolePath(mount)
	if err == nil {
		mode := ""
		if s.auth != nil {
			mode = s.auth.Mode()
		}
		var c *console
		if c, err = newConsole(mount, mode); err == nil {
			return c
		}
	}
	s.log.Error("operator console disabled", "err", err)
	return nil
}
