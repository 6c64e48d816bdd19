package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smithers-orchestrator/smithers-go/api"
	"github.com/smithers-orchestrator/smithers-go/api/auth"
	"github.com/smithers-orchestrator/smithers-go/host"
	"github.com/smithers-orchestrator/smithers-go/jsruntime"
	"github.com/smithers-orchestrator/smithers-go/stream"
)

// Main wires the gateway's parts: store, executor, engine, auth, API and
// HTTP listener. Run starts them; Close stops them in reverse order and is
// safe after a failed Run.
type Main struct {
	mode   string
	cfg    *Config
	env    func(string) string
	log    *slog.Logger
	stdout io.Writer
	// moduleSource is the embedded example module used by `smithers dev`
	// when no module is configured.
	moduleSource string
	devTokenFile string

	store   host.Store
	exec    *jsruntime.Executor
	gw      *host.Gateway
	authn   auth.Authenticator
	api     *api.Server
	closers []func() error
	srv     *http.Server
	ln      net.Listener
	served  chan error
}

func newMain(mode string, args []string, env func(string) string, stdout, stderr io.Writer) (*Main, error) {
	overrides := map[string]string{}
	if mode == "dev" {
		overrides = map[string]string{"host": "127.0.0.1", "db-path": ".smithers/smithers.db", "token-store": ".smithers/tokens.json", "module": ""}
	}
	cfg, err := parseConfig(mode, args, env, stderr, overrides)
	if err != nil {
		return nil, err
	}
	m := &Main{mode: mode, cfg: cfg, env: env, stdout: stdout, log: newLogger(stderr)}
	if mode == "dev" {
		m.devTokenFile = ".smithers/dev-token"
		if cfg.Module == "" {
			m.moduleSource = quickstartSource()
			cfg.Module = "examples/quickstart/gateway.mjs"
		} else if err := checkDevModule(cfg.Module); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// newLogger logs text on a terminal and JSON otherwise (containers).
func newLogger(w io.Writer) *slog.Logger {
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return slog.New(slog.NewTextHandler(w, nil))
		}
	}
	return slog.New(slog.NewJSONHandler(w, nil))
}

// Run opens everything and starts serving; it returns once the listener is
// up.
func (m *Main) Run(ctx context.Context) error {
	cfg := m.cfg
	// Let Go collect garbage before the heap reaches the watchdog's limit,
	// so that the watchdog only ever sees live memory. An operator's own
	// GOMEMLIMIT (say 90% of a container's memory) wins.
	if cfg.MaxHeapMB > 0 && m.env("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(cfg.MaxHeapMB) << 20)
	}
	if m.env("GOGC") == "" {
		debug.SetGCPercent(gatewayGCPercent)
	}
	// The database first: a second gateway on the same file is refused
	// at once, before any module code runs.
	hub := stream.NewHub()
	var err error
	// The hub is the store's commit hook: it sees commits in their true
	// order, so sockets get every run's events gap-free.
	// The engine hears of commits too (waits settled by another process,
	// once several share a database); it is set before anything commits.
	var gw *host.Gateway
	onCommit := func(events []host.Event) {
		hub.Publish(events)
		if gw != nil {
			gw.Committed(events)
		}
	}
	if err := m.openStore(ctx, onCommit); err != nil {
		return err
	}
	exec, err := jsruntime.LoadContext(ctx, jsruntime.Options{ModulePath: cfg.Module, Source: m.moduleSource, Workers: cfg.Workers,
		TurnBudget: time.Duration(cfg.TurnBudgetMs) * time.Millisecond, MaxHeapBytes: int64(cfg.MaxHeapMB) << 20, MaxOutputBytes: cfg.MaxOutputBytes, Logger: m.log})
	if err != nil {
		return fmt.Errorf("load workflow module: %w", err)
	}
	m.exec = exec
	workflows := make([]string, 0, len(exec.Workflows()))
	for _, wf := range exec.Workflows() {
		workflows = append(workflows, wf.Key)
	}
	metrics := api.NewMetrics(prometheus.NewRegistry(), workflows)
	if m.devTokenFile != "" {
		if err := m.ensureDevToken(); err != nil {
			return err
		}
	}
	if err := m.openAuth(); err != nil {
		return err
	}
	gw, err = host.New(host.Config{Store: m.store, Executor: exec, Logger: m.log, InstanceID: instanceID(), Observer: metrics,
		OwnerLease: time.Duration(cfg.LeaseMs) * time.Millisecond, HeartbeatInterval: heartbeatFor(cfg.LeaseMs),
		MaxOutputBytes: cfg.MaxOutputBytes, Retention: cfg.Retention})
	if err != nil {
		return err
	}
	m.gw = gw
	m.api = api.NewServer(api.Config{Gateway: m.gw, Reads: m.store, Auth: m.authn, Logger: m.log, MaxBodyBytes: int64(cfg.MaxBodyBytes), Hub: hub, Metrics: metrics,
		HeartbeatInterval: time.Duration(cfg.HeartbeatMs) * time.Millisecond, HandshakeTimeout: time.Duration(cfg.HandshakeTimeoutMs) * time.Millisecond,
		MaxConnections: cfg.MaxConnections, ConsoleDisabled: !cfg.Console, ConsolePath: cfg.ConsolePath})
	if err := m.gw.Start(ctx); err != nil {
		return fmt.Errorf("start engine: %w", err)
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	m.ln, err = net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	m.srv = &http.Server{
		Handler:           m.api.Handler(),
		ReadHeaderTimeout: time.Duration(cfg.HeadersTimeoutMs) * time.Millisecond,
		ReadTimeout:       time.Duration(cfg.RequestTimeoutMs) * time.Millisecond,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
	}
	if cfg.Pprof != "" {
		stop, err := m.startPprof(cfg.Pprof)
		if err != nil {
			return err
		}
		m.closers = append(m.closers, stop)
	}
	m.served = make(chan error, 1)
	go func() { m.served <- m.srv.Serve(m.ln) }()
	m.releaseMemoryLater()
	url := "http://" + m.ln.Addr().String()
	m.log.Info("gateway listening", "url", url, "module", cfg.Module, "workflows", len(exec.Workflows()), "db", m.databaseName(), "auth", m.authn.Mode())
	fmt.Fprintf(m.stdout, "smithers %s listening on %s\n", m.mode, url)
	if m.devTokenFile != "" {
		m.printDevBanner(url)
	}
	return nil
}

func (m *Main) openAuth() error {
	cfg := m.cfg
	switch cfg.AuthMode {
	case auth.ModeToken:
		ts := auth.OpenTokenStore(cfg.TokenStore, auth.TokenStoreOptions{Logger: m.log})
		m.closers = append(m.closers, ts.Close)
		m.authn = ts
	case auth.ModeJWT:
		// Without an issuer and an audience to check, any token the
		// identity provider signed for another application would pass.
		if cfg.JWTIssuer == "" || len(splitList(cfg.JWTAudience)) == 0 {
			return errors.New("jwt auth: set SMITHERS_GATEWAY_JWT_ISSUER and SMITHERS_GATEWAY_JWT_AUDIENCE (the iss and aud every token must carry)")
		}
		// A token without a scope claim gets SMITHERS_GATEWAY_DEFAULT_SCOPES,
		// and no scopes when that is unset (docs/configuration.md).
		a, err := auth.NewJWT(auth.JWTConfig{Secret: cfg.JWTSecret, JWKS: cfg.JWTJWKS, Issuer: cfg.JWTIssuer, Audience: splitList(cfg.JWTAudience),
			DefaultRole: cfg.DefaultRole, DefaultScopes: splitList(cfg.DefaultScopes)})
		if err != nil {
			return fmt.Errorf("jwt auth: %w", err)
		}
		m.closers = append(m.closers, a.Close)
		m.authn = a
	case auth.ModeTrustedProxy:
		m.authn = auth.NewTrustedProxy(auth.TrustedProxyConfig{Headers: splitList(cfg.TrustedHeaders), AllowedOrigins: splitList(cfg.AllowedOrigins),
			DefaultRole: cfg.DefaultRole, DefaultScopes: splitList(cfg.DefaultScopes)})
	case auth.ModeNone:
		m.authn = auth.NoAuth{}
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			t := time.NewTicker(time.Minute)
			defer t.Stop()
			for {
				m.log.Warn("authentication is OFF (--insecure-no-auth): every caller has every scope")
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
		m.closers = append(m.closers, func() error { close(stop); <-done; return nil })
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, f)
	}
	return out
}

func instanceID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Close shuts down gracefully: stop accepting, park or abandon in-flight
// turns, close sockets, flush the store.
func (m *Main) Close() error {
	var errs []error
	if m.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := m.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
		cancel()
	}
	if m.api != nil {
		m.api.Close()
	}
	if m.gw != nil {
		errs = append(errs, m.gw.Close())
	}
	if m.exec != nil {
		errs = append(errs, m.exec.Close())
	}
	for _, c := range m.closers {
		errs = append(errs, c())
	}
	if m.store != nil {
		errs = append(errs, m.store.Close())
	}
	return errors.Join(errs...)
}
