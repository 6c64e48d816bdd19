package api

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"
)

// maxCorked bounds the frames a corked socket holds before it writes them
// anyway; a frame larger than this is written on its own.
const maxCorked = 64 << 10

// corkedConn is a websocket's network connection as the websocket library
// writes to it. While the socket's writer holds it corked (it is writing
// the events it drained from its queue in one go), the frames collect in
// memory and reach the kernel in one write when it uncorks: a socket that
// fell a few events behind catches up with one system call instead of one
// per event, which is what bounds a fan-out to many sockets (the write
// system call, not encoding, is most of its cost). Uncorked, writes pass
// straight through. A control frame written meanwhile by another goroutine
// (the reader's pong or close reply) is not held: the batch so far goes
// first, then the frame, so frames are never reordered and a close is never
// stuck behind a batch. The write deadline is set under the same lock as
// the writes: a pong's short deadline cannot cut a batch's write short.
type corkedConn struct {
	net.Conn
	pool     *sync.Pool // of *[]byte: a socket holds a buffer only while corked
	mu       sync.Mutex
	corked   bool
	buf      *[]byte   // lent while corked
	deadline time.Time // the write deadline last asked for while corked
}

func (c *corkedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.Conn.Write(p)
	}
	alone := isControlFrame(p) || len(p) > maxCorked
	if alone || len(*c.buf)+len(p) > maxCorked {
		// Written now, under the deadline its writer asked for.
		if err := c.Conn.SetWriteDeadline(c.deadline); err != nil {
			return 0, err
		}
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		if alone {
			return c.Conn.Write(p)
		}
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// cork holds the frames written from now on until uncork; a frame that
// must go out before (a control frame, a batch grown too large) is written
// by deadline unless its writer set another.
func (c *corkedConn) cork(deadline time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		c.corked = true
		c.deadline = deadline
		if b, ok := c.pool.Get().(*[]byte); ok {
			c.buf = b
		} else {
			b := make([]byte, 0, 16<<10)
			c.buf = &b
		}
	}
}

// uncork writes the frames held since cork, by deadline, and lets later
// writes through.
func (c *corkedConn) uncork(deadline time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return nil
	}
	var err error
	if len(*c.buf) > 0 {
		if err = c.Conn.SetWriteDeadline(deadline); err == nil {
			err = c.flushLocked()
		}
	}
	if err == nil {
		// The deadline last asked for while corked is the one a write
		// about to pass through (a pong whose deadline was only noted)
		// expects, not whatever the connection had before.
		err = c.Conn.SetWriteDeadline(c.deadline)
	}
	c.corked = false
	if cap(*c.buf) <= maxCorked {
		c.pool.Put(c.buf)
	}
	c.buf = nil
	return err
}

// SetWriteDeadline waits for a batch being written: the websocket library
// sets a deadline before each write, under its own lock, which a batch's
// flush does not hold. While corked it is only noted (a held frame is
// written under uncork's deadline): one system call fewer per frame.
func (c *corkedConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		c.deadline = t
		return nil
	}
	return c.Conn.SetWriteDeadline(t)
}

// isControlFrame reports whether p, one Write of the websocket library,
// starts a control frame (close, ping, pong: opcode 8 and up), which the
// library always writes whole, in one Write. A data frame's payload written
// on its own can look like one; it is then written at once after the
// batch, which keeps the order.
func isControlFrame(p []byte) bool { return len(p) > 0 && p[0]&0x0f >= 0x8 }

func (c *corkedConn) flushLocked() error {
	if len(*c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(*c.buf)
	*c.buf = (*c.buf)[:0]
	return err
}

// corkingWriter is the response writer the websocket upgrade hijacks: it
// hands the library a corkedConn over the HTTP connection.
type corkingWriter struct {
	http.ResponseWriter
	pool *sync.Pool
	conn *corkedConn // set by Hijack
}

func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &corkedConn{Conn: nc, pool: w.pool}
	return w.conn, brw, nil
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *corkingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
