package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/smithers-orchestrator/smithers-go/api"
)

// Config is the gateway's configuration: docs/differences.md's table, read from the
// environment and overridden by flags of the same name in kebab-case
// without the SMITHERS_GATEWAY_/SMITHERS_ prefix.
type Config struct {
	Host               string
	Port               int
	DBPath             string
	TokenStore         string
	Module             string
	HeartbeatMs        int
	EventWindow        int
	HeadersTimeoutMs   int
	RequestTimeoutMs   int
	HandshakeTimeoutMs int
	MaxBodyBytes       int
	MaxConnections     int
	Workers            int
	TurnBudgetMs       int
	MaxHeapMB          int
	AuthMode           string
	InsecureNoAuth     bool
	JWTSecret          string
	JWTJWKS            string
	JWTIssuer          string
	JWTAudience        string
	TrustedHeaders     string
	DefaultRole        string
	DefaultScopes      string
	AllowedOrigins     string
	MaxOutputBytes     int
	// Console serves the operator console at ConsolePath.
	Console     bool
	ConsolePath string
	// DatabaseURL, when set, selects a PostgreSQL database shared by any
	// number of gateway processes instead of the SQLite file DBPath.
	DatabaseURL string
	// LeaseMs is how long a run stays with a gateway process that stopped
	// renewing it before another one takes it over (PostgreSQL).
	LeaseMs int
	// Pprof, when set, is where Go's profiler is served (loopback for a
	// bare port).
	Pprof string
	// Retention is how long terminal runs are kept (0: for ever).
	Retention time.Duration
	// DBSync is SQLite's synchronous setting: "normal" or "full".
	DBSync       string
	retentionRaw string
}

// option is one row of the configuration table.
type option struct {
	env, flag, def, usage string
	str                   *string
	num                   *int
	boolean               *bool
}

func (c *Config) options() []option {
	return []option{
		{env: "HOST", flag: "host", def: "0.0.0.0", usage: "listen address", str: &c.Host},
		{env: "PORT", flag: "port", def: "7331", usage: "listen port (0 picks a free one)", num: &c.Port},
		{env: "SMITHERS_DB_PATH", flag: "db-path", def: "/data/smithers.db", usage: "the gateway's SQLite database", str: &c.DBPath},
		{env: "SMITHERS_DATABASE_URL", flag: "database-url", usage: "postgres://... : a PostgreSQL database shared by several gateway processes, instead of the SQLite file", str: &c.DatabaseURL},
		{env: "SMITHERS_GATEWAY_LEASE_MS", flag: "lease-ms", def: "15000", usage: "with PostgreSQL: how long a run stays with a process that stopped renewing its lease before another takes it over", num: &c.LeaseMs},
		{env: "SMITHERS_TOKEN_STORE", flag: "token-store", def: "/data/tokens.json", usage: "token store file (watched)", str: &c.TokenStore},
		{env: "SMITHERS_GATEWAY_MODULE", flag: "module", def: "/workspace/gateway.mjs", usage: "workflow module (.mjs .js .ts .jsx .tsx)", str: &c.Module},
		{env: "SMITHERS_GATEWAY_HEARTBEAT_MS", flag: "heartbeat-ms", def: "15000", usage: "WebSocket tick interval", num: &c.HeartbeatMs},
		{env: "SMITHERS_GATEWAY_EVENT_WINDOW", flag: "event-window", def: "10000", usage: "events kept per run for replay", num: &c.EventWindow},
		{env: "SMITHERS_GATEWAY_HEADERS_TIMEOUT_MS", flag: "headers-timeout-ms", def: "30000", usage: "time to receive request headers", num: &c.HeadersTimeoutMs},
		{env: "SMITHERS_GATEWAY_REQUEST_TIMEOUT_MS", flag: "request-timeout-ms", def: "60000", usage: "time to receive a whole request", num: &c.RequestTimeoutMs},
		{env: "SMITHERS_GATEWAY_HANDSHAKE_TIMEOUT_MS", flag: "handshake-timeout-ms", def: "10000", usage: "close sockets that have not connected by then", num: &c.HandshakeTimeoutMs},
		{env: "SMITHERS_GATEWAY_MAX_BODY_BYTES", flag: "max-body-bytes", def: "1048576", usage: "HTTP RPC and webhook body cap", num: &c.MaxBodyBytes},
		{env: "SMITHERS_GATEWAY_MAX_CONNECTIONS", flag: "max-connections", def: "1000", usage: "concurrent WebSocket connections", num: &c.MaxConnections},
		{env: "SMITHERS_GATEWAY_MAX_OUTPUT_BYTES", flag: "max-output-bytes", def: "4194304", usage: "largest task output, run output, t.emit chunk or signal payload (over it: OUTPUT_TOO_LARGE)", num: &c.MaxOutputBytes},
		{env: "SMITHERS_GATEWAY_RETENTION", flag: "retention", usage: "delete terminal runs older than this, e.g. 720h or 30d (unset: keep everything)", str: &c.retentionRaw},
		{env: "SMITHERS_GATEWAY_DB_SYNC", flag: "db-sync", def: "normal", usage: "SQLite durability: normal (a power loss may lose the last commits) or full (every commit survives a power loss)", str: &c.DBSync},
		{env: "SMITHERS_GATEWAY_WORKERS", flag: "workers", def: strconv.Itoa(min(runtime.GOMAXPROCS(0), 4)), usage: "JavaScript event-loop workers", num: &c.Workers},
		{env: "SMITHERS_GATEWAY_TURN_BUDGET_MS", flag: "turn-budget-ms", def: "2000", usage: "longest JavaScript turn before it is interrupted", num: &c.TurnBudgetMs},
		{env: "SMITHERS_GATEWAY_MAX_HEAP_MB", flag: "max-heap-mb", def: "2048", usage: "live heap (after a garbage collection) over which the longest JavaScript turn is interrupted; also the Go memory limit unless GOMEMLIMIT is set", num: &c.MaxHeapMB},
		{env: "SMITHERS_GATEWAY_AUTH_MODE", flag: "auth-mode", def: "token", usage: "token, jwt, trusted-proxy or none", str: &c.AuthMode},
		{flag: "insecure-no-auth", def: "false", usage: "allow auth-mode none", boolean: &c.InsecureNoAuth},
		{env: "SMITHERS_GATEWAY_JWT_SECRET", flag: "jwt-secret", usage: "HS256 secret (jwt mode)", str: &c.JWTSecret},
		{env: "SMITHERS_GATEWAY_JWT_JWKS", flag: "jwt-jwks", usage: "JWKS file path or URL for RS256/ES256 (jwt mode)", str: &c.JWTJWKS},
		{env: "SMITHERS_GATEWAY_JWT_ISSUER", flag: "jwt-issuer", usage: "required iss (jwt mode)", str: &c.JWTIssuer},
		{env: "SMITHERS_GATEWAY_JWT_AUDIENCE", flag: "jwt-audience", usage: "accepted aud, comma-separated (jwt mode)", str: &c.JWTAudience},
		{env: "SMITHERS_GATEWAY_TRUSTED_HEADERS", flag: "trusted-headers", def: "x-user-id,x-user-scopes,x-user-role", usage: "user, scopes and role headers (trusted-proxy mode)", str: &c.TrustedHeaders},
		{env: "SMITHERS_GATEWAY_ALLOWED_ORIGINS", flag: "allowed-origins", usage: "when set, requests must carry one of these Origin headers, comma-separated (trusted-proxy mode)", str: &c.AllowedOrigins},
		{env: "SMITHERS_GATEWAY_DEFAULT_ROLE", flag: "default-role", def: "operator", usage: "role when the role header/claim is missing", str: &c.DefaultRole},
		{env: "SMITHERS_GATEWAY_DEFAULT_SCOPES", flag: "default-scopes", usage: "scopes when the trusted proxy sends no scopes header (unset: run:read) or a JWT has no scope claim (unset: none)", str: &c.DefaultScopes},
		{env: "SMITHERS_GATEWAY_PPROF", flag: "pprof", usage: "serve Go's profiler at /debug/pprof/ on this address (a bare port listens on 127.0.0.1); off when unset", str: &c.Pprof},
		{env: "SMITHERS_GATEWAY_CONSOLE", flag: "console", def: "true", usage: "serve the operator console (false: its paths answer 404)", boolean: &c.Console},
		{env: "SMITHERS_GATEWAY_CONSOLE_PATH", flag: "console-path", def: api.DefaultConsolePath, usage: "where the operator console is mounted", str: &c.ConsolePath},
	}
}

// parseConfig reads defaults, then the environment, then flags. Numbers
// must be positive integers (PORT may be 0); a bad value is an error naming
// the variable.
func parseConfig(name string, args []string, env func(string) string, stderr io.Writer, overrides map[string]string) (*Config, error) {
	c := &Config{}
	opts := c.options()
	values := map[string]string{}
	explicit := map[string]bool{} // set by the environment or a flag
	for _, o := range opts {
		values[o.flag] = o.def
		if v, ok := overrides[o.flag]; ok {
			values[o.flag] = v
		}
		if o.env != "" {
			if v := env(o.env); v != "" {
				values[o.flag] = v
				explicit[o.flag] = true
			}
		}
	}
	fs := flag.NewFlagSet("smithers "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	source := map[string]string{}
	for _, o := range opts {
		o := o
		src := "--" + o.flag
		if o.env != "" {
			src = o.env + " / --" + o.flag
		}
		source[o.flag] = src
		if o.boolean != nil {
			fs.BoolFunc(o.flag, o.usage, func(v string) error { values[o.flag] = v; return nil })
			continue
		}
		// The help text shows the built-in default, never a value taken
		// from the environment (which may be a secret).
		def := o.def
		if v, ok := overrides[o.flag]; ok {
			def = v
		}
		usage := o.usage
		if def != "" {
			usage = fmt.Sprintf("%s (default %q)", o.usage, def)
		}
		if o.env != "" {
			usage += " [$" + o.env + "]"
		}
		fs.Func(o.flag, usage, func(v string) error { values[o.flag] = v; explicit[o.flag] = true; return nil })
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, o := range opts {
		v := strings.TrimSpace(values[o.flag])
		switch {
		case o.str != nil:
			*o.str = v
		case o.boolean != nil:
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("%s must be true or false, got %q", source[o.flag], v)
			}
			*o.boolean = b
		case o.num != nil:
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || (n == 0 && o.flag != "port") {
				return nil, fmt.Errorf("%s must be a positive integer, got %q", source[o.flag], v)
			}
			*o.num = n
		}
	}
	if c.Console {
		p, err := api.NormalizeConsolePath(c.ConsolePath)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", source["console-path"], err)
		}
		c.ConsolePath = p
	}
	if c.DatabaseURL != "" && explicit["db-path"] {
		return nil, fmt.Errorf("SMITHERS_DATABASE_URL / --database-url and SMITHERS_DB_PATH / --db-path are both set: the gateway keeps its state in one database; set only one")
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return nil, fmt.Errorf("%s must be a postgres:// or postgresql:// URL", source["database-url"])
	}
	switch c.DBSync {
	case "normal", "full":
	default:
		return nil, fmt.Errorf("%s must be normal or full, got %q", source["db-sync"], c.DBSync)
	}
	if c.retentionRaw != "" {
		d, err := parseRetention(c.retentionRaw)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", source["retention"], err)
		}
		c.Retention = d
	}
	switch c.AuthMode {
	case "token", "jwt", "trusted-proxy":
	case "none":
		if !c.InsecureNoAuth {
			return nil, fmt.Errorf("SMITHERS_GATEWAY_AUTH_MODE=none is refused unless --insecure-no-auth is also given")
		}
	default:
		return nil, fmt.Errorf("SMITHERS_GATEWAY_AUTH_MODE must be token, jwt, trusted-proxy or none, got %q", c.AuthMode)
	}
	return c, nil
}

// parseRetention reads a retention period: a Go duration ("720h", "90m")
// or a whole number of days ("30d"). It must be at least a minute.
func parseRetention(v string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 36500 {
			return 0, fmt.Errorf("want a duration such as 720h or 30d, got %q", v)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return 0, fmt.Errorf("want a duration such as 720h or 30d, got %q", v)
		}
	}
	if d < time.Minute {
		return 0, errors.New("must be at least 1m, got " + v)
	}
	return d, nil
}
