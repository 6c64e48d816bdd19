package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
	"modernc.org/sqlite"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Compile-time checks that the implementations satisfy host's interfaces.
var (
	_ host.Store = (*Store)(nil)
	_ host.Tx    = (*tx)(nil)
)

// ErrClosed is returned by Update once Close has been called.
var ErrClosed = errors.New("sqlite store closed")

// DefaultEventWindow is the number of events kept per run when
// Options.EventWindow is not set.
const DefaultEventWindow = 10000

// busyTimeoutMs is how long a connection waits for a lock held by another
// connection (a checkpoint, or another process) before failing.
const busyTimeoutMs = 5000

// Options configures Open.
type Options struct {
	// EventWindow is how many of a run's newest events are retained; older
	// ones are deleted as new ones are appended. <= 0 means
	// DefaultEventWindow.
	EventWindow int
	// Logger receives the store's log lines (migrations applied). nil
	// discards them.
	Logger *slog.Logger
	// OnCommit, when set, receives the events of every committed batch in
	// stateVersion order, on the writer goroutine, before the callers of
	// Update return: the one place that sees commits in their true order,
	// so streams can publish them gap-free. It must not block or call
	// Update.
	OnCommit func(events []host.Event)
	// SyncFull sets synchronous=FULL: every commit is on disk before
	// Update returns, so a power loss loses nothing committed. The
	// default, NORMAL, may lose the last commits on a power loss (never on
	// a process crash) and never corrupts the database.
	SyncFull bool
}

// Store is a host.Store on one SQLite database file. Create it with Open and
// release it with Close.
type Store struct {
	log      *slog.Logger
	window   int64
	onCommit func([]host.Event)

	// wdb has exactly one connection, wconn, owned by the writer goroutine
	// (and by Open before the goroutine starts).
	wdb   *sql.DB
	wconn *sql.Conn
	// txLost is set by SQLite's rollback hook on the writer's connection
	// whenever a transaction ends rolled back, also when SQLite rolls it
	// back by itself under a failed statement (a full disk, an I/O
	// error). The writer clears it at each BEGIN; while it is set, a
	// function's statements are refused (they would run outside any
	// transaction and commit one by one).
	txLost atomic.Bool
	stmts  map[string]*sql.Stmt // writer's prepared statements, writer-owned
	// insertEvents[n-1] is the text of the INSERT of n events (flush).
	insertEvents [maxEventRows]string

	// rdb is the read pool used by every read method.
	rdb *sql.DB
	// rstmts caches the read pool's prepared statements by query text (a
	// bounded set: fixed queries and the filter combinations of ListRuns
	// and ListApprovals), so reads skip SQLite's parser.
	rmu    sync.Mutex
	rstmts map[string]*sql.Stmt
	// views caches GetRunView's reads, invalidated by the writer's commits.
	views viewCache

	// owner is the lock that makes this process the database's only
	// gateway; health says whether commits can succeed.
	owner    *ownerLock
	health   health
	syncFull bool

	reqs      chan *request
	quit      chan struct{} // closed by Close
	stopped   chan struct{} // closed by the writer goroutine when it returns
	closeOnce sync.Once
	closeErr  error
	watchers  sync.WaitGroup // watchFile
}

// Open opens (creating it and its parent directory if needed) the database
// at path, applies pending schema migrations and starts the writer
// goroutine. The caller must Close the returned Store.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("open store: empty path")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open store %s: path must not contain '?' or '#'", path)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("open store: create directory %s: %w", dir, err)
		}
	}
	owner, err := lockOwner(path)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s := &Store{
		owner:    owner,
		syncFull: opts.SyncFull,
		log:      opts.Logger,
		window:   int64(opts.EventWindow),
		onCommit: opts.OnCommit,
		stmts:    make(map[string]*sql.Stmt),
		reqs:     make(chan *request),
		quit:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	for n := range maxEventRows {
		s.insertEvents[n] = insertEventsSQL(n + 1)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.window <= 0 {
		s.window = DefaultEventWindow
	}
	if err := s.openWriter(ctx, path); err != nil {
		_ = owner.release()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := s.openReaders(ctx, path); err != nil {
		s.closeDBs()
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s.health = health{path: path, file: fi}
	s.watchers.Add(1)
	go s.watchFile()
	go s.writeLoop()
	return s, nil
}

// Exclusive is true: the owner lock makes this process the database's only
// gateway.
func (s *Store) Exclusive() bool { return true }

// watchFile notices, while nothing commits, that the database file was
// deleted or replaced, so that /health and the log say so at once.
func (s *Store) watchFile() {
	defer s.watchers.Done()
	t := time.NewTicker(fileCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
		if first, err := s.health.checkFile(false); first {
			s.log.Error("database file lost: refusing writes", "err", err)
		}
	}
}

// Health reports whether the store can commit (see host.Store).
func (s *Store) Health() error {
	if first, err := s.health.checkFile(false); first {
		s.log.Error("database file lost: refusing writes", "err", err)
	}
	return s.health.err()
}

// dsn builds a data source name that makes every connection of a pool apply
// the same pragmas when it is opened. synchronous=NORMAL in WAL mode never
// corrupts the database and loses nothing on a process crash, but a power
// loss may lose the last commits; FULL syncs the WAL at every commit.
// temp_store=MEMORY keeps the statement journals of the writer's
// savepoints (what rolls one function of a batch back) in memory instead of
// temporary files: they are never needed after a crash. A checkpoint
// every 4000 pages (16 MiB of WAL) rather than SQLite's 1000 writes a page
// that many commits changed once instead of several times, and syncs the
// database file a quarter as often; on the commit path, since the
// connection that crosses the threshold runs it.
func dsn(path string, readOnly, syncFull bool) string {
	sync := "NORMAL"
	if syncFull {
		sync = "FULL"
	}
	q := []string{
		fmt.Sprintf("_pragma=busy_timeout(%d)", busyTimeoutMs),
		"_pragma=journal_mode(WAL)",
		"_pragma=synchronous(" + sync + ")",
		"_pragma=foreign_keys(1)",
		"_pragma=temp_store(MEMORY)",
		"_pragma=wal_autocheckpoint(4000)",
	}
	if readOnly {
		q = append(q, "_pragma=query_only(1)")
	}
	return path + "?" + strings.Join(q, "&")
}

func (s *Store) openWriter(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", dsn(path, false, s.syncFull))
	if err != nil {
		return fmt.Errorf("open store %s: writer: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	conn, err := db.Conn(ctx)
	if err != nil {
		_ = db.Close()
		return fmt.Errorf("open store %s: writer connection: %w", path, err)
	}
	err = conn.Raw(func(dc any) error {
		h, ok := dc.(sqlite.HookRegisterer)
		if !ok {
			return fmt.Errorf("driver connection %T has no rollback hook", dc)
		}
		h.RegisterRollbackHook(func() { s.txLost.Store(true) })
		return nil
	})
	if err != nil {
		_ = conn.Close()
		_ = db.Close()
		return fmt.Errorf("open store %s: writer connection: %w", path, err)
	}
	s.wdb, s.wconn = db, conn
	return nil
}

func (s *Store) openReaders(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", dsn(path, true, s.syncFull))
	if err != nil {
		return fmt.Errorf("open store %s: readers: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return fmt.Errorf("open store %s: readers: %w", path, err)
	}
	s.rdb = db
	return nil
}

// Close stops the writer goroutine, waiting for the batch it is committing,
// and closes the database. Update calls that have not been scheduled yet
// return ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.quit)
		<-s.stopped
		s.watchers.Wait()
		s.closeErr = s.closeDBs()
	})
	return s.closeErr
}

func (s *Store) closeDBs() error {
	var errs []error
	// Readers first, so that the writer is the last connection to close and
	// checkpoints the WAL into the database file.
	s.rmu.Lock()
	for _, st := range s.rstmts {
		_ = st.Close()
	}
	clear(s.rstmts)
	s.rmu.Unlock()
	if s.rdb != nil {
		if err := s.rdb.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close readers: %w", err))
		}
	}
	for q, st := range s.stmts {
		if err := st.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close statement %q: %w", q, err))
		}
	}
	clear(s.stmts)
	if s.wconn != nil {
		if err := s.wconn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close writer connection: %w", err))
		}
	}
	if s.wdb != nil {
		if err := s.wdb.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close writer: %w", err))
		}
	}
	// The lock goes last: the next owner must not open the file before
	// the WAL is checkpointed and closed.
	if err := s.owner.release(); err != nil {
		errs = append(errs, fmt.Errorf("release owner lock: %w", err))
	}
	return errors.Join(errs...)
}

// rstmt returns the read pool's prepared statement for query.
func (s *Store) rstmt(ctx context.Context, query string) (*sql.Stmt, error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if st, ok := s.rstmts[query]; ok {
		return st, nil
	}
	st, err := s.rdb.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare %q: %w", query, err)
	}
	if s.rstmts == nil {
		s.rstmts = map[string]*sql.Stmt{}
	}
	s.rstmts[query] = st
	return st, nil
}

// rquery runs a read query through the statement cache.
func (s *Store) rquery(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := s.rstmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// rqueryRow runs a single-row read query through the statement cache.
func (s *Store) rqueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := s.rstmt(ctx, query)
	if err != nil {
		// Let the caller's Scan report the error through a failing query.
		return s.rdb.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// stmt returns the writer's prepared statement for query, preparing it on
// first use. Only the writer goroutine calls it.
func (s *Store) stmt(query string) (*sql.Stmt, error) {
	if st, ok := s.stmts[query]; ok {
		return st, nil
	}
	st, err := s.wconn.PrepareContext(context.Background(), query)
	if err != nil {
		return nil, fmt.Errorf("prepare %q: %w", query, err)
	}
	s.stmts[query] = st
	return st, nil
}
