package tokenstore

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gofrs/flock"
)

// MaxFileBytes bounds what is read of a token store file; a larger file is
// refused rather than read into memory.
const MaxFileBytes = 64 << 20

// errTooLarge is the failure of a read past MaxFileBytes.
var errTooLarge = fmt.Errorf("file is larger than %d bytes", MaxFileBytes)

// Load reads the store at path for authentication and returns its grants
// keyed by raw token, with the SHA-256 of the bytes it parsed so that a
// poller can tell a rewrite that changed nothing. It is strict, so the
// gateway fails closed: a missing, unreadable, oversized or malformed file,
// one without a "tokens" object, and one with a single malformed grant are
// all errors, whose text says why ("file does not exist", "cannot open
// file: …", "cannot read file: …", "file is larger than … bytes", `the file
// has no "tokens" object`, the errors of Parse and Grants) and never
// contains a token. It takes no lock: writers replace the file atomically.
func Load(path string) (grants map[string]Grant, sum [32]byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, sum, errors.New("file does not exist")
		}
		return nil, sum, fmt.Errorf("cannot open file: %w", err)
	}
	defer f.Close()
	data, err := readAllBounded(f)
	switch {
	case errors.Is(err, errTooLarge):
		return nil, sum, err
	case err != nil:
		return nil, sum, fmt.Errorf("cannot read file: %w", err)
	}
	doc, err := Parse(data)
	if err != nil {
		return nil, sum, err
	}
	if !doc.HasTokens() {
		return nil, sum, errors.New(`the file has no "tokens" object`)
	}
	if grants, err = doc.Grants(); err != nil {
		return nil, sum, err
	}
	return grants, sha256.Sum256(data), nil
}

// readAllBounded reads f to the end, refusing more than MaxFileBytes: at
// once when its size says so, else when it grows past the bound while read.
func readAllBounded(f *os.File) ([]byte, error) {
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxFileBytes {
		return nil, errTooLarge
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes {
		return nil, errTooLarge
	}
	return data, nil
}

// readDocument reads the store at path for the CLI: a missing or blank file
// (nothing to lose) is an empty store, and a file that is not a token store
// is a CodeTokenStoreCorrupt error, so that it is never overwritten.
func readDocument(path string) (*Document, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Document{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := readAllBounded(f)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return &Document{}, nil
	}
	doc, err := Parse(data)
	if err != nil {
		return nil, corruptStore(path, err.Error())
	}
	return doc, nil
}

// writeDocument replaces the file at path (or, when path is a symbolic
// link, the file it points to) atomically: a temporary file in the same
// directory, mode 0600, fsynced, renamed over path, then the directory is
// fsynced. Callers hold the store's lock.
func writeDocument(path string, doc *Document) error {
	data, err := doc.Encode()
	if err != nil {
		return err
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// lockStore takes the exclusive writer lock of the store at path, an
// advisory lock on path+".lock" through a handle of its own (so goroutines
// of one process exclude each other as separate processes do), and returns
// the function that releases it.
func lockStore(path string) (unlock func(), err error) {
	fl := flock.New(path+".lock", flock.SetPermissions(0o600))
	if err := fl.Lock(); err != nil {
		return nil, fmt.Errorf("lock %s: %w", fl.Path(), err)
	}
	return func() { _ = fl.Unlock() }, nil
}
