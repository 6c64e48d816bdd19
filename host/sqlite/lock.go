package sqlite

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gofrs/flock"
)

// ownerLock makes one gateway process the owner of a database file. Two
// gateways on one SQLite file would both resume the same runs and run the
// same tasks, so Open takes an exclusive lock on "<db>.lock" beside the file
// and writes its pid there; a second Open fails at once naming the holder.
// The operating system drops the lock when the holder exits, however it
// exits (kill -9 included), so a stale lock file never blocks a restart.
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
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if !ok {
		holder := "unknown"
		if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) != "" {
			holder = strings.TrimSpace(string(b))
		}
		return nil, fmt.Errorf("%w: %s is in use by the gateway with pid %s (lock %s); one database has one gateway: stop that process first, or give this one another SMITHERS_DB_PATH",
			ErrLocked, dbPath, holder, path)
	}
	// The pid is for the message above only; the lock itself is the flock.
	if err := os.WriteFile(path, fmt.Appendf(nil, "%d\n", os.Getpid()), 0o600); err != nil {
		_ = fl.Unlock()
		return nil, fmt.Errorf("lock %s: write pid: %w", path, err)
	}
	return &ownerLock{fl: fl, path: path}, nil
}

// release drops the lock. The file stays: removing it would let a process
// that opened the old file and one that creates a new one both "hold" it.
func (l *ownerLock) release() error {
	if l == nil {
		return nil
	}
	return l.fl.Unlock()
}
