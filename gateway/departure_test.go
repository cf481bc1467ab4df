package gateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSCGIDepartedClientLeavesQueue: behind an SCGI front end, a request waiting for
// its session's turn whose client goes away leaves the queue at once (the SCGI server
// notices the closed connection and cancels its context), not when its turn comes:
// its handler never runs, and the session's next request is served right after the
// one in flight. The departed request is a GET, or a form POST whose body came with
// the header (as nginx, buffering bodies, sends it) and is not read before the turn.
func TestSCGIDepartedClientLeavesQueue(t *testing.T) {
	for _, body := range []string{"", "a=1&b=2"} {
		t.Run(fmt.Sprintf("body=%d", len(body)), func(t *testing.T) { departedLeavesQueue(t, body) })
	}
}

func departedLeavesQueue(t *testing.T, body string) {
	var runs atomic.Int32
	started, release := make(chan struct{}, 4), make(chan struct{})
	g := startGatewayWith(t, func(g *Gateway) {
		g.HandleFunc("block", func(w http.ResponseWriter, r *http.Request) {
			n := runs.Add(1)
			started <- struct{}{}
			if n == 1 {
				<-release // the first request holds the session's turn
			}
			io.WriteString(w, "done")
		})
	}, "-scgi", "127.0.0.1:0", "-sessions", filepath.Join(t.TempDir(), "s"), "-route", "/b/=block")
	addr := g.addr("scgi")
	const cookie = "QX_session=0123456789abcdef"
	send := func(body string) net.Conn {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		_, err = io.WriteString(c, scgiRequest("/b/x", cookie, body))
		require.NoError(t, err)
		return c
	}
	response := func(c net.Conn) string {
		defer c.Close()
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		b, err := io.ReadAll(c)
		require.NoError(t, err)
		return string(b)
	}
	waiting := func(n int) {
		t.Helper()
		require.Eventually(t, func() bool { return g.orderer.waiting() == n }, 10*time.Second, 5*time.Millisecond,
			"%d request(s) waiting for the session", n)
	}

	first := send("")
	<-started
	departed := send(body)
	waiting(1)
	require.NoError(t, departed.Close())
	waiting(0) // it left the queue while the first request still holds the turn

	close(release)
	assert.True(t, strings.HasSuffix(response(first), "done"))
	assert.True(t, strings.HasSuffix(response(send("")), "done"))
	assert.EqualValues(t, 2, runs.Load(), "the departed request's handler never ran")
}

// TestSCGIHalfClose: with -scgi-half-close, a front server that shuts down its
// sending side after the request still gets the whole response; without it the
// request is taken as abandoned and canceled.
func TestSCGIHalfClose(t *testing.T) {
	for _, halfClose := range []bool{false, true} {
		t.Run(fmt.Sprint("half-close=", halfClose), func(t *testing.T) {
			args := []string{"-scgi", "127.0.0.1:0", "-sessions", filepath.Join(t.TempDir(), "s"), "-route", "/w/=wait"}
			if halfClose {
				args = append(args, "-scgi-half-close")
			}
			g := startGatewayWith(t, func(g *Gateway) {
				g.HandleFunc("wait", func(w http.ResponseWriter, r *http.Request) {
					select {
					case <-r.Context().Done():
					case <-time.After(300 * time.Millisecond): // time for a half-close to show
						io.WriteString(w, "served")
					}
				})
			}, args...)
			c, err := net.Dial("tcp", g.addr("scgi"))
			require.NoError(t, err)
			defer c.Close()
			_, err = io.WriteString(c, scgiRequest("/w/x", "", ""))
			require.NoError(t, err)
			require.NoError(t, c.(*net.TCPConn).CloseWrite())
			require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
			b, _ := io.ReadAll(c)
			assert.Equal(t, halfClose, strings.HasSuffix(string(b), "\r\n\r\nserved"), "%q", b)
		})
	}
}

// scgiRequest is a request for uri as a front server sends it over SCGI: a GET, or
// a form POST of body; with a Cookie header unless cookie is "".
func scgiRequest(uri, cookie, body string) string {
	method := "GET"
	if body != "" {
		method = "POST"
	}
	h := fmt.Sprintf("CONTENT_LENGTH\x00%d\x00SCGI\x001\x00REQUEST_METHOD\x00%s\x00REQUEST_URI\x00%s\x00", len(body), method, uri)
	if body != "" {
		h += "CONTENT_TYPE\x00application/x-www-form-urlencoded\x00"
	}
	if cookie != "" {
		h += "HTTP_COOKIE\x00" + cookie + "\x00"
	}
	return fmt.Sprintf("%d:%s,", len(h), h) + body
}
