package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/smithers-orchestrator/smithers-go/api/auth"
	"github.com/smithers-orchestrator/smithers-go/host"
)

// Config is what the API server needs; cmd builds it.
type Config struct {
	Gateway *host.Gateway
	Auth    auth.Authenticator
	Logger  *slog.Logger
	// MaxBodyBytes caps HTTP RPC and webhook bodies (default 1 MiB).
	MaxBodyBytes int64
	// Protocol and Features are advertised by /health, health and hello.
	Protocol int
	Features []string
	Now      func() time.Time
}

// Server is the Gateway v1 API.
type Server struct {
	gw       *host.Gateway
	auth     auth.Authenticator
	log      *slog.Logger
	maxBody  int64
	protocol int
	features []string
	now      func() time.Time
	methods  map[string]*method
	echo     *echo.Echo
}

// NewServer builds the API server and its route table.
func NewServer(cfg Config) *Server {
	s := &Server{gw: cfg.Gateway, auth: cfg.Auth, log: cfg.Logger, maxBody: cfg.MaxBodyBytes,
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
	s.methods = methodTable()
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Any("/*", s.dispatch)
	e.Any("/", s.dispatch)
	s.echo = e
	return s
}

// Handler is the http.Handler serving every route.
func (s *Server) Handler() http.Handler { return s.echo }

// dispatch applies the route table of CONTRACT.md §1.1 in order; the raw
// request target is compared where upstream compares it.
func (s *Server) dispatch(c echo.Context) error {
	r := c.Request()
	target := r.RequestURI
	path := r.URL.Path
	switch {
	case r.Method == http.MethodGet && target == "/health":
		return s.health(c)
	case r.Method == http.MethodPost && strings.HasPrefix(path, "/v1/rpc/") && len(path) > len("/v1/rpc/") && !strings.Contains(path[len("/v1/rpc/"):], "/"):
		return s.httpRPC(c, path[len("/v1/rpc/"):])
	case r.Method == http.MethodPost && target == "/rpc":
		return s.httpRPC(c, "")
	}
	return writeJSON(c, http.StatusNotFound, map[string]any{"error": map[string]any{"code": "NOT_FOUND", "message": "Route not found"}})
}

// writeJSON writes a JSON response with the common headers of CONTRACT.md
// §1.2.
func writeJSON(c echo.Context, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Smithers-API-Version", "v1")
	c.Response().WriteHeader(status)
	_, err = c.Response().Write(b)
	return err
}

func (s *Server) health(c echo.Context) error {
	return writeJSON(c, http.StatusOK, map[string]any{"ok": true, "protocol": s.protocol, "features": s.features, "stateVersion": s.gw.StateVersion()})
}
