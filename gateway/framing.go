package gateway

import (
	"net"
	"sync/atomic"
)

// A request with both Transfer-Encoding and Content-Length is the shape of request
// smuggling: a front server that frames it by Content-Length and a back end that
// frames it by the chunks disagree about where the next request starts. net/http
// follows RFC 9112 §6.1 in reading the body by Transfer-Encoding and removing
// Content-Length, but keeps the connection open, where §6.3 says the server must
// close it after responding; and it leaves no trace of the removed header for a
// handler to see. framingConn watches the request heads as they are read and
// remembers such a request, so that its response says Connection: close.

// framingListener wraps the connections it accepts in framingConn.
type framingListener struct{ net.Listener }

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c}, nil
}

// framingConn scans what is read for header lines, line by line: a blank line ends
// a head, and a head that had both a Transfer-Encoding and a Content-Length line
// marks the connection. Body lines are scanned too; a body that looks like such
// a head only costs the client a new connection.
type framingConn struct {
	net.Conn
	line   [len("transfer-encoding:")]byte // the start of the current line, lower case
	n      int                             // bytes of the current line so far
	te, cl bool                            // the current head has these lines
	both   atomic.Bool                     // a head had both
}

func (c *framingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	for _, ch := range b[:n] {
		if ch != '\n' {
			if c.n < len(c.line) {
				if 'A' <= ch && ch <= 'Z' {
					ch += 'a' - 'A'
				}
				c.line[c.n] = ch
			}
			c.n++
			continue
		}
		line := string(c.line[:min(c.n, len(c.line))])
		switch {
		case c.n == 0 || (c.n == 1 && line == "\r"):
			if c.te && c.cl {
				c.both.Store(true)
			}
			c.te, c.cl = false, false
		case line == "transfer-encoding:":
			c.te = true
		case len(line) >= len("content-length:") && line[:len("content-length:")] == "content-length:":
			c.cl = true
		}
		c.n = 0
	}
	return n, err
}

// ambiguousFraming reports whether a request read from c had both Transfer-Encoding
// and Content-Length.
func ambiguousFraming(c net.Conn) bool {
	fc, ok := c.(*framingConn)
	return ok && fc.both.Load()
}
