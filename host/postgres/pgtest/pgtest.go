package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Install is the one line a test skips with when PostgreSQL is missing.
const Install = "postgresql not found: apt-get install postgresql"

// ErrNotFound is returned by Start when no PostgreSQL binaries are installed.
var ErrNotFound = errors.New(Install)

// startTimeout bounds how long a server may take to accept connections.
const startTimeout = 60 * time.Second

// dirPrefix names the temporary folders of clusters; the pid of the test
// process that made one follows, so that Start can remove those of dead
// processes.
const dirPrefix = "smithers-pgtest-"

// Cluster is one PostgreSQL server in a temporary folder. Its methods are
// safe for concurrent use.
type Cluster struct {
	dir  string // temporary folder, owned by the server's user
	data string // data directory inside dir
	bin  string // folder of initdb and postgres
	port int
	cred *syscall.Credential // the server's user when we are root, else nil

	mu     sync.Mutex
	server *exec.Cmd     // nil while stopped
	exited chan struct{} // closed when server exits
	dbs    int           // databases created, for unique names
}

// Start creates a cluster and starts its server. The caller must Close it.
// It returns an error wrapping ErrNotFound when PostgreSQL is not installed.
func Start(ctx context.Context) (*Cluster, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	removeStale()
	c := &Cluster{bin: bin}
	if os.Geteuid() == 0 {
		if c.cred, err = serverUser(); err != nil {
			return nil, err
		}
	}
	c.dir, err = os.MkdirTemp("", fmt.Sprintf("%s%d-", dirPrefix, os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if c.cred != nil {
		if err := os.Chown(c.dir, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			_ = os.RemoveAll(c.dir)
			return nil, fmt.Errorf("pgtest: %w", err)
		}
	}
	c.data = filepath.Join(c.dir, "data")
	initdb := c.command(ctx, "initdb", "-D", c.data, "-U", "postgres", "--auth=trust",
		"--no-sync", "--encoding=UTF8", "--locale=C")
	if out, err := initdb.CombinedOutput(); err != nil {
		_ = os.RemoveAll(c.dir)
		return nil, fmt.Errorf("pgtest: initdb: %v\n%s", err, out)
	}
	// A free port can be taken by someone else between our probe and the
	// server's bind: try a few.
	for try := 0; ; try++ {
		if c.port, err = freePort(); err == nil {
			err = c.StartServer(ctx)
		}
		if err == nil {
			return c, nil
		}
		if try == 2 || ctx.Err() != nil {
			_ = c.Close()
			return nil, err
		}
	}
}

// Port is the server's TCP port on 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// SocketDir is the folder of the server's unix socket.
func (c *Cluster) SocketDir() string { return c.dir }

// URL is the connection URL of database db over TCP, as the postgres
// superuser without a password.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// StartServer starts the cluster's server (again) on its port and waits
// until it accepts connections.
func (c *Cluster) StartServer(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.server != nil {
		return nil
	}
	logPath := filepath.Join(c.dir, "server.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logFile.Close()
	// Not CommandContext: the server outlives the caller's context.
	cmd := c.command(context.Background(), "postgres", "-D", c.data,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port="+strconv.Itoa(c.port),
		"-c", "unix_socket_directories="+c.dir,
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=300",
		"-c", "shared_buffers=32MB",
		"-c", "log_min_messages=warning",
		"-c", "log_min_error_statement=panic",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The server dies with the test process, however it dies.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(cctx, c.URL("postgres"))
		cancel()
		if err == nil {
			_ = conn.Close(ctx)
			c.server, c.exited = cmd, exited
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("pgtest: postgres exited at start: %s", tail(logPath))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("pgtest: postgres did not accept connections within %s: %v; %s", startTimeout, err, tail(logPath))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StopServer stops the server at once (an immediate shutdown, as a crash
// would) and keeps the cluster's data for StartServer.
func (c *Cluster) StopServer() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.server == nil {
		return nil
	}
	// SIGQUIT is PostgreSQL's immediate shutdown: the postmaster kills its
	// backends and exits without a checkpoint.
	_ = c.server.Process.Signal(syscall.SIGQUIT)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		_ = c.server.Process.Kill()
		<-c.exited
	}
	c.server, c.exited = nil, nil
	return nil
}

// Close stops the server and removes the cluster's folder.
func (c *Cluster) Close() error {
	if c == nil {
		return nil
	}
	err := c.StopServer()
	if rmErr := os.RemoveAll(c.dir); rmErr != nil && err == nil {
		err = fmt.Errorf("pgtest: %w", rmErr)
	}
	return err
}

// CreateDatabase creates an empty database and returns its URL.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (string, error) {
	if err := c.admin(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return c.URL(name), nil
}

// DropDatabase drops a database, disconnecting its sessions.
func (c *Cluster) DropDatabase(ctx context.Context, name string) error {
	if err := c.admin(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("pgtest: drop database %s: %w", name, err)
	}
	return nil
}

// NewDatabase creates a database for the test, dropped when it ends (after
// the cleanups registered later, such as closing a store on it), and
// returns its URL.
func (c *Cluster) NewDatabase(t testing.TB) string {
	t.Helper()
	name := c.dbName(t.Name())
	url, err := c.CreateDatabase(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.DropDatabase(context.Background(), name); err != nil {
			t.Errorf("%v", err)
		}
	})
	return url
}

var unsafeName = regexp.MustCompile(`[^a-z0-9]+`)

// dbName makes a unique database name, within PostgreSQL's 63 bytes, that
// says which test made it.
func (c *Cluster) dbName(test string) string {
	c.mu.Lock()
	c.dbs++
	n := c.dbs
	c.mu.Unlock()
	base := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(test), "_"), "_")
	prefix := fmt.Sprintf("t%d_", n)
	if len(base) > 63-len(prefix) {
		base = base[len(base)-(63-len(prefix)):]
	}
	return prefix + base
}

// admin runs one statement on the postgres database.
func (c *Cluster) admin(ctx context.Context, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// command builds a command running one of the cluster's binaries as the
// server's user.
func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C", "LC_ALL=C", "HOME=" + c.dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	if c.cred != nil {
		cmd.SysProcAttr.Credential = c.cred
	}
	return cmd
}

// findBin returns the folder of initdb and postgres: the newest of Debian's
// /usr/lib/postgresql/<version>/bin, else the folder of initdb on PATH.
func findBin() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(matches, func(i, j int) bool { return version(matches[i]) > version(matches[j]) })
	for _, m := range matches {
		dir := filepath.Dir(m)
		if isExec(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if isExec(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	return "", ErrNotFound
}

// version is the major version in a /usr/lib/postgresql/<v>/bin path.
func version(path string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return v
}

func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// serverUser is the unprivileged user the server runs as when we are root.
func serverUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root needs the unprivileged postgres user (apt-get install postgresql creates it): %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("pgtest: postgres user has uid %q gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// freePort returns a TCP port of 127.0.0.1 that nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// removeStale removes the folders of clusters whose test process is gone
// (killed before its cleanup ran); their servers died with it, or are
// stopped now.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		rest := strings.TrimPrefix(filepath.Base(d), dirPrefix)
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		// Its server should have died with it; if it did not (the
		// parent-death signal is per thread), stop it first.
		if b, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid")); err == nil {
			server, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
			// Only the server of that folder: a recycled pid is left alone.
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", server))
			if err == nil && server > 0 && strings.Contains(string(cmdline), filepath.Join(d, "data")) {
				_ = syscall.Kill(server, syscall.SIGQUIT)
			}
		}
		_ = os.RemoveAll(d)
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// tail is the end of a server log, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "no server log: " + err.Error()
	}
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return "server log: " + strings.TrimSpace(string(b))
}
