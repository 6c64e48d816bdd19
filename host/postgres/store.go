package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/smithers-orchestrator/smithers-go/host"
)

// Compile-time checks that the implementations satisfy host's interfaces.
var (
	_ host.Store = (*Store)(nil)
	_ host.Tx    = (*tx)(nil)
)

// ErrClosed is returned by Update once Close has been called.
var ErrClosed = errors.New("postgres store closed")

// DefaultEventWindow is the number of events kept per run when
// Options.EventWindow is not set.
const DefaultEventWindow = 10000

// defaultMaxConns is the pool size unless the URL sets pool_max_conns: a
// transaction holds its connection while its function runs, so the pool is
// larger than pgx's default of four.
const defaultMaxConns = 16

// defaultConnectTimeout bounds a connection attempt unless the URL sets
// connect_timeout: an unreachable server must fail a commit, not hang it.
const defaultConnectTimeout = 5 * time.Second

// Options configures Open.
type Options struct {
	// EventWindow is how many of a run's newest events are retained; older
	// ones are deleted as new ones are appended. <= 0 means
	// DefaultEventWindow.
	EventWindow int
	// Logger receives the store's log lines (migrations applied, storage
	// failures, the commit feed's reconnections). nil discards them.
	Logger *slog.Logger
	// OnCommit, when set, receives every event committed on the database,
	// by this process or by any other one, exactly once and in per-run seq
	// order without gaps: this process's commits before its Update returns
	// (when nothing of the run is still to be delivered before them), the
	// others' as their notifications arrive. It is called with one
	// goroutine's worth of ordering: never concurrently with itself. It
	// must not block or call Update.
	OnCommit func(events []host.Event)
}

// Store is a host.Store on one PostgreSQL database, shared by any number of
// gateway processes. Create it with Open and release it with Close.
type Store struct {
	pool   *pgxpool.Pool
	log    *slog.Logger
	window int64
	health health
	// feed delivers committed events to Options.OnCommit; nil without one.
	feed *feed

	closed    atomic.Bool
	closeOnce sync.Once
}

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string, as libpq takes them; pool_max_conns and the other
// pgxpool parameters are honoured), applies pending schema migrations under
// an advisory lock, and, with an OnCommit, starts listening for the
// commits of every process. The caller must Close the returned Store.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if !setsParam(url, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	if !setsParam(url, "connect_timeout") {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "smithers-gateway"
	}
	s := &Store{log: opts.Logger, window: int64(opts.EventWindow)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.window <= 0 {
		s.window = DefaultEventWindow
	}
	where := fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("open store %s: %w", where, err)
	}
	if err := s.pool.Ping(ctx); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("open store %s: %w", where, storageError(err))
	}
	if err := s.migrate(ctx); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("open store %s: %w", where, storageError(err))
	}
	if opts.OnCommit != nil {
		if s.feed, err = startFeed(ctx, s, cfg.ConnConfig.Copy(), opts.OnCommit); err != nil {
			s.pool.Close()
			return nil, fmt.Errorf("open store %s: %w", where, storageError(err))
		}
	}
	return s, nil
}

// Exclusive is false: several gateway processes may share the database, so
// a run owned by another process is taken over only once its lease expired.
func (s *Store) Exclusive() bool { return false }

// Close stops the commit feed and closes the pool, waiting for the
// transactions in flight. Update calls after it return ErrClosed. Close is
// idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if s.feed != nil {
			s.feed.close()
		}
		s.pool.Close()
	})
	return nil
}

// setsParam reports whether the connection string sets a parameter, in
// URL or key=value form.
func setsParam(conn, name string) bool {
	if u, err := url.Parse(conn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		return u.Query().Has(name)
	}
	for _, f := range strings.Fields(conn) {
		if strings.HasPrefix(f, name+"=") {
			return true
		}
	}
	return false
}
