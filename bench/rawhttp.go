package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
)

// rawConn is one keep-alive HTTP/1.1 connection that sends one prepared
// request over and over: the rpc scenario's caller. It skips what a
// general client spends per request (building the request, the
// transport's goroutine hand-offs), so that the load generator, which
// shares the machine with the gateway, spends little and the same on
// every method it compares.
type rawConn struct {
	addr, host string
	tls        bool
	conn       net.Conn
	r          *bufio.Reader
	body       bytes.Buffer
}

// newRawConn prepares a connection to base (http:// or https://); it
// dials at the first request.
func newRawConn(base string) (*rawConn, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	c := &rawConn{host: u.Host, tls: u.Scheme == "https"}
	c.addr = u.Host
	if u.Port() == "" {
		port := "80"
		if c.tls {
			port = "443"
		}
		c.addr = net.JoinHostPort(u.Hostname(), port)
	}
	return c, nil
}

// rawRequest encodes a request for rawConn: GET when body is nil, else a
// JSON POST; token, when set, as a bearer token.
func rawRequest(host, method, path, token string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, host)
	if token != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", token)
	}
	if body != nil {
		b.WriteString("Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// do sends req and reads the whole answer; it returns the status and the
// body, valid until the next call. A failed exchange closes the
// connection (the next call dials again).
func (c *rawConn) do(ctx context.Context, req []byte) (int, []byte, error) {
	if c.conn == nil {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", c.addr)
		if err != nil {
			return 0, nil, err
		}
		if c.tls {
			conn = tls.Client(conn, &tls.Config{ServerName: hostOnly(c.host)})
		}
		c.conn, c.r = conn, bufio.NewReaderSize(conn, 16<<10)
	}
	if _, err := c.conn.Write(req); err != nil {
		c.close()
		return 0, nil, err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		c.close()
		return 0, nil, err
	}
	c.body.Reset()
	_, err = c.body.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		c.close()
	}
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, c.body.Bytes(), nil
}

func (c *rawConn) close() {
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}
