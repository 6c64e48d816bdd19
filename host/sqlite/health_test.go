package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"
	"github.com/smithers-orchestrator/smithers-go/host"
)

func TestSecondOpenOfOneDatabaseIsRefused(t *testing.T) {
	s, path := openTemp(t, Options{})
	_, err := Open(context.Background(), path, Options{})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	for _, want := range []string{path, fmt.Sprintf("pid %d", os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("second Open error %q does not name %q", err, want)
		}
	}
	// A symlink to the same file is the same database.
	link := filepath.Join(t.TempDir(), "alias.db")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), link, Options{}); !errors.Is(err, ErrLocked) {
		t.Errorf("Open through a symlink = %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Once the owner closed, the next one opens it.
	openAt(t, path, Options{})
}

func TestDeletedDatabaseFileRefusesWrites(t *testing.T) {
	for _, tc := range []struct {
		name string
		lose func(t *testing.T, path string)
		want string
	}{
		{"deleted", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, "deleted"},
		{"replaced", func(t *testing.T, path string) {
			other := path + ".new"
			if err := os.WriteFile(other, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(other, path); err != nil {
				t.Fatal(err)
			}
		}, "replaced"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, path := openTemp(t, Options{})
			insertRuns(t, s, newRun("r1", "deploy", 1))
			if err := s.Health(); err != nil {
				t.Fatalf("Health before = %v", err)
			}
			tc.lose(t, path)
			// The watcher notices within a second or two, without writes.
			deadline := time.Now().Add(5 * time.Second)
			for s.Health() == nil && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			herr := s.Health()
			if !errors.Is(herr, host.ErrStorageUnavailable) || !strings.Contains(herr.Error(), tc.want) {
				t.Fatalf("Health = %v, want ErrStorageUnavailable saying %q", herr, tc.want)
			}
			_, err := s.Update(context.Background(), func(tx host.Tx) error { return tx.InsertRun(newRun("r2", "deploy", 2)) })
			if !errors.Is(err, host.ErrStorageUnavailable) {
				t.Fatalf("Update after the file was %s = %v, want ErrStorageUnavailable", tc.name, err)
			}
		})
	}
}

// limitPages caps the database at n pages on the writer's connection, the
// way a full disk would: writes past it fail with SQLITE_FULL.
func limitPages(t *testing.T, s *Store, n int) {
	t.Helper()
	update(t, s, func(htx host.Tx) error {
		_, err := htx.(*tx).exec(fmt.Sprintf("PRAGMA max_page_count = %d", n))
		return err
	})
}

func TestFullDiskIsAStorageFailureThatClears(t *testing.T) {
	s, _ := openTemp(t, Options{})
	ctx := context.Background()
	var pages int
	if err := s.rdb.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	limitPages(t, s, pages+2)
	big := strings.Repeat("x", 64<<10)
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = s.Update(ctx, func(tx host.Tx) error {
			r := newRun(fmt.Sprintf("r%d", i), "deploy", int64(i))
			r.InputJSON = `"` + big + `"`
			return tx.InsertRun(r)
		})
	}
	if !errors.Is(err, host.ErrStorageUnavailable) {
		t.Fatalf("Update on a full database = %v, want ErrStorageUnavailable", err)
	}
	if herr := s.Health(); !errors.Is(herr, host.ErrStorageUnavailable) || !strings.Contains(herr.Error(), "full") {
		t.Fatalf("Health on a full database = %v (update: %v), want it to say the disk is full", herr, err)
	}
	// Space returns: the next commit succeeds and health clears.
	limitPages(t, s, 1<<30)
	insertRuns(t, s, newRun("after", "deploy", 1000))
	if herr := s.Health(); herr != nil {
		t.Fatalf("Health after space returned = %v", herr)
	}
}

func TestSyncFullSetsSynchronousFull(t *testing.T) {
	for _, tc := range []struct {
		full bool
		want int
	}{{false, 1}, {true, 2}} {
		s, _ := openTemp(t, Options{SyncFull: tc.full})
		var got int
		if err := s.rdb.QueryRowContext(context.Background(), "PRAGMA synchronous").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("SyncFull %v: synchronous = %d, want %d", tc.full, got, tc.want)
		}
	}
}

func TestOpenWaitsForALockWhoseHolderHasExited(t *testing.T) {
	path := filepath.Join(t.TempDir(), "smithers.db")
	// The recorded holder has exited, but the lock is still held a
	// moment longer (as by a child the killed gateway was forking).
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	other := flock.New(path + ".lock")
	if ok, err := other.TryLock(); err != nil || !ok {
		t.Fatalf("lock: %v %v", ok, err)
	}
	if err := os.WriteFile(path+".lock", fmt.Appendf(nil, "%d\n", cmd.Process.Pid), 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = other.Unlock()
	}()
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatalf("Open after the holder exited = %v, want it to wait for the lock", err)
	}
	_ = s.Close()
}
