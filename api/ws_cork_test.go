package api

import (
	"bytes"
	"net"
	"strings"
	"sync"
	"testing"
)

// recordingConn is a net.Conn that records each Write it is given.
type recordingConn struct {
	net.Conn
	mu     sync.Mutex
	writes []string
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, string(p))
	return len(p), nil
}

func (c *recordingConn) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.writes...)
}

// TestCorkedConnWritesABatchOnce: frames written while corked reach the
// network in one write, in order, when uncorked; uncorked writes pass
// through one by one; a batch that would grow past maxCorked is written
// before it does, and a frame larger than that goes out on its own, after
// the frames before it.
func TestCorkedConnWritesABatchOnce(t *testing.T) {
	rec := &recordingConn{}
	c := &corkedConn{Conn: rec, pool: &sync.Pool{}}

	c.Write([]byte("a"))
	c.cork()
	c.Write([]byte("b"))
	c.Write([]byte("c"))
	if got := rec.got(); strings.Join(got, "|") != "a" {
		t.Fatalf("writes while corked reached the network: %q", got)
	}
	if err := c.uncork(); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("d"))
	if got := rec.got(); strings.Join(got, "|") != "a|bc|d" {
		t.Fatalf("writes = %q, want a, bc (one batch), d", got)
	}

	rec.writes = nil
	half := bytes.Repeat([]byte("x"), maxCorked/2+1)
	big := bytes.Repeat([]byte("y"), maxCorked+1)
	c.cork()
	c.Write([]byte("e"))
	c.Write(half)
	c.Write(half) // would pass maxCorked: e+half go first
	c.Write(big)  // too big to hold: the held half, then big itself
	c.Write([]byte("f"))
	if err := c.uncork(); err != nil {
		t.Fatal(err)
	}
	got := rec.got()
	want := []string{"e" + string(half), string(half), string(big), "f"}
	if len(got) != len(want) {
		t.Fatalf("%d writes, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("write %d: %d bytes starting %q, want %d bytes starting %q", i, len(got[i]), got[i][:1], len(want[i]), want[i][:1])
		}
	}
	if c.buf != nil {
		t.Error("an uncorked socket still holds its batch buffer")
	}
}
