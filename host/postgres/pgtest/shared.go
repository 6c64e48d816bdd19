package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
)

// Shared is one cluster for a whole test binary, started by the first test
// that asks for it. Declare one in the test package and close it from
// TestMain through Main:
//
//	var pg pgtest.Shared
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m, &pg)) }
//
//	func TestSomething(t *testing.T) {
//		url := pg.Cluster(t).NewDatabase(t)
//		...
//	}
type Shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

// Cluster returns the shared cluster, starting it on first use. Without
// PostgreSQL it skips t with the one line Install, or fails it when
// CI=true; it fails t when the cluster cannot be started.
func (s *Shared) Cluster(t testing.TB) *Cluster {
	t.Helper()
	s.once.Do(func() { s.c, s.err = Start(context.Background()) })
	if s.err != nil {
		Unavailable(t, s.err)
	}
	return s.c
}

// Close stops the shared cluster, if it was started, and removes it.
func (s *Shared) Close() error {
	// A Cluster call racing Close after the tests is a bug of the caller;
	// once guards the start only.
	s.once.Do(func() {})
	return s.c.Close()
}

// Main runs the tests and then closes s, returning m.Run's exit code (or 1
// when the cluster could not be removed).
func Main(m *testing.M, s *Shared) int {
	code := m.Run()
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Unavailable ends t for err from Start: a skip with the one line Install when
// PostgreSQL is missing (a failure with CI=true, where it must be
// installed), a failure otherwise.
func Unavailable(t testing.TB, err error) {
	t.Helper()
	if !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(Install + " (CI=true: PostgreSQL is required)")
	}
	t.Skip(Install)
}
