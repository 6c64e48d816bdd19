package api

import (
	"bytes"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingConn is a net.Conn that records each Write it is given and
// the write deadline each was written under.
type recordingConn struct {
	net.Conn
	mu        sync.Mutex
	writes    []string
	deadlines []time.Time
	deadline  time.Time
}

func (c *recordingConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return nil
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, string(p))
	c.deadlines = append(c.deadlines, c.deadline)
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
	c.cork(time.Now().Add(time.Minute))
	c.Write([]byte("b"))
	c.Write([]byte("c"))
	if got := rec.got(); strings.Join(got, "|") != "a" {
		t.Fatalf("writes while corked reached the network: %q", got)
	}
	if err := c.uncork(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("d"))
	if got := rec.got(); strings.Join(got, "|") != "a|bc|d" {
		t.Fatalf("writes = %q, want a, bc (one batch), d", got)
	}

	rec.writes = nil
	half := bytes.Repeat([]byte("a"), maxCorked/2+1) // not a control opcode (low nibble < 8)
	big := bytes.Repeat([]byte("b"), maxCorked+1)
	c.cork(time.Now().Add(time.Minute))
	c.Write([]byte("e"))
	c.Write(half)
	c.Write(half) // would pass maxCorked: e+half go first
	c.Write(big)  // too big to hold: the held half, then big itself
	c.Write([]byte("f"))
	if err := c.uncork(time.Now().Add(time.Minute)); err != nil {
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

// TestCorkedConnLetsControlFramesThrough: a pong or close written while a
// batch is held goes out at once, after the batch so far; the batch is
// written under the deadline uncork gives, whatever deadline the control
// frame's writer set.
func TestCorkedConnLetsControlFramesThrough(t *testing.T) {
	rec := &recordingConn{}
	c := &corkedConn{Conn: rec, pool: &sync.Pool{}}
	text := func(s string) []byte { return append([]byte{0x81, byte(len(s))}, s...) }
	pong := []byte{0x8a, 0}
	c.cork(time.Now().Add(time.Minute))
	c.Write(text("e1"))
	short := time.Now().Add(time.Second)
	c.SetWriteDeadline(short) // what the library does before the pong
	c.Write(pong)
	c.Write(text("e2"))
	long := time.Now().Add(time.Minute)
	if err := c.uncork(long); err != nil {
		t.Fatal(err)
	}
	got := rec.got()
	want := []string{string(text("e1")), string(pong), string(text("e2"))}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("writes = %q, want %q", got, want)
	}
	if !rec.deadlines[2].Equal(long) {
		t.Errorf("the batch after the pong was written under deadline %v, want uncork's %v", rec.deadlines[2], long)
	}
}

// TestCorkedConnDeadlineNotedWhileCorkedHoldsAfter: a deadline set while
// corked (a pong's, noted only) is the connection's after uncork, even
// when no frame was held: the pong written next must not run under an
// older deadline.
func TestCorkedConnDeadlineNotedWhileCorkedHoldsAfter(t *testing.T) {
	rec := &recordingConn{}
	c := &corkedConn{Conn: rec, pool: &sync.Pool{}}
	stale := time.Now().Add(-time.Minute)
	c.SetWriteDeadline(stale)
	c.cork(time.Now().Add(time.Minute))
	pongDeadline := time.Now().Add(time.Second)
	c.SetWriteDeadline(pongDeadline)
	if err := c.uncork(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte{0x8a, 0})
	if got := rec.deadlines[0]; !got.Equal(pongDeadline) {
		t.Errorf("the pong was written under %v, want its own deadline %v", got, pongDeadline)
	}
}
