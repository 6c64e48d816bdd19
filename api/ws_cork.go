package api

import (
	"bufio"
	"net"
	"net/http"
	"sync"
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
// straight through. Control frames written meanwhile by other goroutines
// (a pong) join the batch, in order: frames are never split or reordered.
type corkedConn struct {
	net.Conn
	pool   *sync.Pool // of *[]byte: a socket holds a buffer only while corked
	mu     sync.Mutex
	corked bool
	buf    *[]byte // lent while corked
}

func (c *corkedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.Conn.Write(p)
	}
	if len(*c.buf)+len(p) > maxCorked {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		if len(p) > maxCorked {
			return c.Conn.Write(p)
		}
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// cork holds the frames written from now on until uncork.
func (c *corkedConn) cork() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		c.corked = true
		if b, ok := c.pool.Get().(*[]byte); ok {
			c.buf = b
		} else {
			b := make([]byte, 0, 16<<10)
			c.buf = &b
		}
	}
}

// uncork writes the frames held since cork, with the write deadline last
// set, and lets later writes through.
func (c *corkedConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return nil
	}
	err := c.flushLocked()
	c.corked = false
	if cap(*c.buf) <= maxCorked {
		c.pool.Put(c.buf)
	}
	c.buf = nil
	return err
}

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
