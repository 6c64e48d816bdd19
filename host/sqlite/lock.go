package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gofrs/flock"
)

// ownerLock makes one gateway process the owner of a database file. Two
// gateways on one SQLite file would both resume the same runs and run the
// same tasks, so Open takes an exclusive lock on "<db>.lock" beside the file
// and writes its pid there; a second Open fails at once naming the holder.
// The operating system drops the lock when the holder exits, however it
// exits (kill -9 included), so a stale lock file never blocks a restart;
// when the recorded holder has exited but the lock is still held (a child
// it was forking keeps it until exec), Open waits up to exitedHolderGrace.
type ownerLock struct {
	fl   *flock.Flock
	path string
}

// ErrLocked is wrapped by Open's error when another process owns the
// database.
var ErrLocked = fmt.Errorf("database is owned by another gateway process")

// lockOwner takes the owner lock of the database at dbPath.
func lockOwner(dbPath string) (*ownerLock, error) {
	// Lock beside the real file, so that a symlinked path cannot sidestep
	// the lock.
	real := dbPath
	if r, err := filepath.EvalSymlinks(dbPath); err == nil {
		real = r
	}
	path := real + ".lock"
	fl := flock.New(path, flock.SetPermissions(0o600))
	deadline := time.Now().Add(exitedHolderGrace)
	for {
		ok, err := fl.TryLock()
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if ok {
			break
		}
		holder := lockHolder(path)
		// A holder that has exited may still have a t.exec child between
		// fork and exec, which shares the lock for a few milliseconds:
		// wait for it rather than refuse a restart after kill -9. A live
		// holder is refused at once.
		if (holder > 0 && processAlive(holder)) || time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: %s is in use by the gateway with pid %d (lock %s); one database has one gateway: stop that process first, or give this one another SMITHERS_DB_PATH",
				ErrLocked, dbPath, holder, path)
		}
		time.Sleep(25 * time.Millisecond)
	}
	// The pid is for the message above only; the lock itself is the flock.
	if err := os.WriteFile(path, fmt.Appendf(nil, "%d\n", os.Getpid()), 0o600); err != nil {
		_ = fl.Unlock()
		return nil, fmt.Errorf("lock %s: write pid: %w", path, err)
	}
	return &ownerLock{fl: fl, path: path}, nil
}

// exitedHolderGrace is how long Open waits for a lock whose recorded holder
// has exited to be released.
const exitedHolderGrace = 3 * time.Second

// lockHolder is the pid recorded in the lock file (0 when unreadable).
func lockHolder(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// processAlive reports whether a process with that pid exists (signal 0
// probes without signalling).
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}

// release drops the lock. The file stays: removing it would let a process
// that opened the old file and one that creates a new one both "hold" it.
func (l *ownerLock) release() error {
	if l == nil {
		return nil
	}
	return l.fl.Unlock()
}
