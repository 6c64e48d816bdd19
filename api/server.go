package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"github.com/smithers-orchestrator/smithers-go/api/auth"
	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/stream"
)

// Config is what the API server needs; cmd builds it.
type Config struct {
	Gateway *host.Gateway
	// Reads serves the API's queries (runs, nodes, attempts, approvals,
	// event replay): the gateway's store.
	Reads  RunReader
	Auth   auth.Authenticator
	Logger *slog.Logger
	// MaxBodyBytes caps HTTP RPC and webhook bodies (default 1 MiB).
	MaxBodyBytes int64
	// Protocol and Features are advertised by /health, health and hello.
	Protocol int
	Features []string
	Now      func() time.Time
	// Hub delivers committed events to sockets (required for WebSocket).
	Hub *stream.Hub
	// Metrics, when set, is served at /metrics and recorded into.
	Metrics *Metrics
	// WebSocket settings (defaults: docs/configuration.md, docs/differences.md).
	HeartbeatInterval time.Duration // tick interval, 15 s
	HandshakeTimeout  time.Duration // 10 s
	MaxConnections    int           // 1000
	// MaxUnauthenticated caps the sockets that have not completed connect
	// (default max(1, MaxConnections/4)). When it is reached, or every
	// slot is taken, the oldest such socket is closed with 1013 to make
	// room, so silent sockets can never lock real clients out; they count
	// against MaxConnections too.
	MaxUnauthenticated int
	MaxPayloadBytes    int64 // 1 MiB
	// WriteTimeout is the deadline of one frame write: a peer that does
	// not take a frame within it is dropped. 10 s.
	WriteTimeout time.Duration
	// QueueLimits bound each socket's event queue.
	QueueLimits stream.Limits
	// ConsoleDisabled turns the operator console off (its paths are 404).
	ConsoleDisabled bool
	// ConsolePath is where the console is mounted (default /console); it
	// must pass NormalizeConsolePath.
	ConsolePath string
}

// Server is the Gateway v1 API.
type Server struct {
	gw    *host.Gateway
	reads RunReader
	auth  auth.Authenticator
	// guard is the authenticator's cross-site guard (trusted-proxy mode;
	// nil in the modes whose credential a browser never sends on its own).
	// Every route that may change state runs CheckStateChange after
	// authenticating, and every WebSocket upgrade CheckUpgrade.
	guard    auth.CrossSiteGuard
	log      *slog.Logger
	maxBody  int64
	protocol int
	features []string
	now      func() time.Time
	methods  map[string]*method
	echo     *echo.Echo
	hub      *stream.Hub
	metrics  *Metrics
	ws       struct {
		slots  *wsSlots
		limits wsLimits
		// corkBuffers lends corked sockets their batch buffer (corkedConn).
		corkBuffers sync.Pool
	}
	wsCount atomic.Int64
	connsMu sync.Mutex
	conns   map[*wsConn]struct{}
	console *console // nil when disabled
	// frameBufs holds *[]byte buffers for encoding HTTP RPC answers.
	frameBufs sync.Pool
}

// NewServer builds the API server and its route table.
func NewServer(cfg Config) *Server {
	s := &Server{gw: cfg.Gateway, reads: cfg.Reads, auth: cfg.Auth, log: cfg.Logger, maxBody: cfg.MaxBodyBytes,
		protocol: cfg.Protocol, features: cfg.Features, now: cfg.Now}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.maxBody <= 0 {
		s.maxBody = 1 << 20
	}
	if s.protocol <= 0 {
		s.protocol = 1
	}
	if s.features == nil {
		s.features = []string{"streaming", "runs"}
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.hub, s.metrics = cfg.Hub, cfg.Metrics
	if s.auth != nil {
		s.metrics.initAuthMode(s.auth.Mode())
	}
	s.guard, _ = s.auth.(auth.CrossSiteGuard)
	if s.hub == nil {
		s.hub = stream.NewHub()
	}
	s.conns = map[*wsConn]struct{}{}
	s.frameBufs.New = func() any { b := make([]byte, 0, 2048); return &b }
	maxConns, maxPending := cfg.MaxConnections, cfg.MaxUnauthenticated
	if maxConns <= 0 {
		maxConns = 1000
	}
	if maxPending <= 0 {
		maxPending = max(1, maxConns/4)
	}
	s.ws.slots = newWSSlots(maxConns, maxPending)
	s.ws.limits = wsLimits{heartbeat: orDuration(cfg.HeartbeatInterval, 15*time.Second), handshake: orDuration(cfg.HandshakeTimeout, 10*time.Second),
		ping: 30 * time.Second, pongWait: 60 * time.Second, writeWait: orDuration(cfg.WriteTimeout, 10*time.Second), revokeCheck: 250 * time.Millisecond,
		streamHeartbeat: time.Second, maxPayload: cfg.MaxPayloadBytes, maxInflight: 64, queue: cfg.QueueLimits}
	if s.ws.limits.maxPayload <= 0 {
		s.ws.limits.maxPayload = 1 << 20
	}
	s.methods = methodTable()
	s.console = s.newConsole(cfg)
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	// Every request goes through dispatch, before Echo's router: the route
	// table of docs/rpc.md compares raw request targets and has no 405,
	// neither of which a path router expresses.
	e.Pre(func(echo.HandlerFunc) echo.HandlerFunc { return s.dispatch })
	s.echo = e
	return s
}

// Handler is the http.Handler serving every route.
func (s *Server) Handler() http.Handler { return s.echo }

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// trackConn adds or removes a live socket (for Close).
func (s *Server) trackConn(c *wsConn, add bool) {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if add {
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
}

// Close closes every open WebSocket with 1001 (going away); the HTTP
// server's own Shutdown does not touch hijacked connections.
func (s *Server) Close() {
	s.connsMu.Lock()
	conns := make([]*wsConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.connsMu.Unlock()
	for _, c := range conns {
		c.send(func() { c.closeWith(closeGoingAway, "gateway shutting down") })
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.wsCount.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

const v1RPCPrefix = "/v1/rpc/"

// dispatch applies the route table of docs/rpc.md in order, first match
// wins. Rows 1, 2 and 5 compare the raw request target including its query
// string; row 4 matches the still-escaped path, so "/v1/rpc/a%2Fb" reaches
// the RPC route with method "a/b" (and fails method validation) rather than
// looking like an extra segment. Wrong methods fall through to the 404; there
// is no 405 and no CORS.
func (s *Server) dispatch(c echo.Context) error {
	r := c.Request()
	if websocket.IsWebSocketUpgrade(r) { // upgrades are accepted on any path (§1.9)
		return s.serveWS(c)
	}
	target := r.RequestURI
	switch {
	case r.Method == http.MethodGet && target == "/health":
		return s.health(c)
	case r.Method == http.MethodGet && target == "/metrics" && s.metrics != nil:
		return s.serveMetrics(c)
	case r.Method == http.MethodPost && isWebhookPath(r.URL.EscapedPath()):
		return s.webhook(c, strings.TrimPrefix(r.URL.EscapedPath(), webhookPrefix))
	case r.Method == http.MethodPost && isV1RPCPath(r.URL.EscapedPath()):
		return s.httpRPC(c, strings.TrimPrefix(r.URL.EscapedPath(), v1RPCPrefix), true)
	case r.Method == http.MethodPost && target == "/rpc":
		return s.httpRPC(c, "", false)
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && s.console != nil && s.console.covers(r.URL.Path):
		return s.console.serve(c)
	}
	return writeRouteNotFound(c)
}

// isV1RPCPath reports whether p matches ^/v1/rpc/([^/]+)$.
func isV1RPCPath(p string) bool {
	seg, ok := strings.CutPrefix(p, v1RPCPrefix)
	return ok && seg != "" && !strings.Contains(seg, "/")
}

// decodeMethodSegment percent-decodes the method segment of a v1 RPC path;
// malformed escapes are INVALID_INPUT (docs/differences.md). Behind net/http's own
// request parser they never get here: it refuses such a target with a bare
// 400, which stands (docs/differences.md).
func decodeMethodSegment(seg string) (string, error) {
	m, err := url.PathUnescape(seg)
	if err != nil {
		return "", errInvalidInput("Gateway method name is not valid percent-encoding.")
	}
	return m, nil
}

// writeRouteNotFound writes the route-404 body, which has its own shape
// (not an RPC frame).
func writeRouteNotFound(c echo.Context) error {
	return writeJSON(c, http.StatusNotFound, map[string]any{"error": map[string]any{"code": host.CodeNotFound, "message": "Route not found"}})
}

// setCommonHeaders sets the headers of docs/rpc.md that every JSON and
// text response of the gateway carries.
func setCommonHeaders(h http.Header, contentType string) {
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Smithers-API-Version", "v1")
}

// writeJSON writes a JSON response with the common headers of docs/rpc.md
// §1.2. The body is produced in full before anything is written.
func writeJSON(c echo.Context, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	setCommonHeaders(c.Response().Header(), "application/json")
	c.Response().WriteHeader(status)
	_, err = c.Response().Write(b)
	return err
}

// health answers GET /health, the liveness and readiness probe: 200
// {ok: true, protocol, features, stateVersion} while the gateway can make
// progress, else 503 with ok false, the same fields and the reason (its
// storage is unavailable: a full disk, a lost database file), so that an
// orchestrator stops routing to it. It logs nothing: the store logs the
// fault once when it begins.
func (s *Server) health(c echo.Context) error {
	body := map[string]any{"ok": true, "protocol": s.protocol, "features": s.features, "stateVersion": s.stateVersion()}
	if err := s.gw.Health(); err != nil {
		body["ok"], body["reason"] = false, err.Error()
		c.Response().Header().Set("Retry-After", retryAfterSeconds)
		return writeJSON(c, http.StatusServiceUnavailable, body)
	}
	return writeJSON(c, http.StatusOK, body)
}
