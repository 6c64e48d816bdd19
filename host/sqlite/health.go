package sqlite

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/smithers-orchestrator/smithers-go/host"
	sqlitedrv "modernc.org/sqlite"
)

// fileCheckEvery is how often the writer re-checks, before a commit, that
// the database path still names the file the store opened, and how often
// the watcher checks while nothing commits.
const fileCheckEvery = time.Second

// health tracks why the store cannot commit: a lasting fault (the database
// file was deleted or replaced: writes would go to a file nobody will open
// again) or the last storage failure of a commit (disk full, I/O error),
// which clears with the next successful commit.
type health struct {
	path string
	file os.FileInfo // the database file as opened

	mu          sync.Mutex
	lasting     error
	transient   error
	lastChecked time.Time
}

// err is nil while the store can commit, else the reason, wrapping
// host.ErrStorageUnavailable.
func (h *health) err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lasting != nil {
		return h.lasting
	}
	return h.transient
}

// checkFile reports a lasting fault when the path no longer names the file
// the store opened; it stats at most once per fileCheckEvery unless force.
// It returns true the first time the fault is seen, for the caller to log.
func (h *health) checkFile(force bool) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lasting != nil {
		return false, h.lasting
	}
	now := time.Now()
	if !force && now.Sub(h.lastChecked) < fileCheckEvery {
		return false, nil
	}
	h.lastChecked = now
	fi, err := os.Stat(h.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		h.lasting = fmt.Errorf("%w: database file %s was deleted while the gateway was running; writes are refused so that nothing is lost silently: restore the file and restart the gateway", host.ErrStorageUnavailable, h.path)
	case err != nil:
		return false, nil // a transient stat failure proves nothing
	case !os.SameFile(h.file, fi):
		h.lasting = fmt.Errorf("%w: database file %s was replaced by another file while the gateway was running; writes are refused so that nothing is lost silently: restart the gateway", host.ErrStorageUnavailable, h.path)
	default:
		return false, nil
	}
	return true, h.lasting
}

// committed records the outcome of a batch commit: a storage failure sets
// the transient fault, a success clears it. It returns true when the state
// changed, for the caller to log.
func (h *health) committed(err error) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	was := h.transient != nil
	if err != nil && errors.Is(err, host.ErrStorageUnavailable) {
		h.transient = err
		return !was
	}
	if err == nil {
		h.transient = nil
		return was
	}
	return false
}

// storageCodes are the SQLite result codes (primary, low byte) that mean
// the storage failed rather than the statement: the disk is full, an I/O
// error, the file cannot be opened or written, the file is corrupt, or
// another process holds a lock past the busy timeout.
var storageCodes = map[int]bool{
	5:  true, // SQLITE_BUSY
	8:  true, // SQLITE_READONLY
	10: true, // SQLITE_IOERR
	11: true, // SQLITE_CORRUPT
	13: true, // SQLITE_FULL
	14: true, // SQLITE_CANTOPEN
	26: true, // SQLITE_NOTADB
}

// isStorage reports whether err is a storage failure (see storageError).
func isStorage(err error) bool {
	return err != nil && errors.Is(storageError(err), host.ErrStorageUnavailable)
}

// storageError wraps err with host.ErrStorageUnavailable when it is a
// storage failure, so that the engine holds the step and the API answers
// 503 instead of failing the workflow.
func storageError(err error) error {
	if err == nil || errors.Is(err, host.ErrStorageUnavailable) {
		return err
	}
	var se *sqlitedrv.Error
	if errors.As(err, &se) && storageCodes[se.Code()&0xff] {
		return fmt.Errorf("%w: %w", host.ErrStorageUnavailable, err)
	}
	return err
}
