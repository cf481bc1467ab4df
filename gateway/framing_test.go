package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHTTPClosesAfterAmbiguousFraming: on -http, a request with both
// Transfer-Encoding and Content-Length is answered with Connection: close and the
// connection is closed after the response (RFC 9112 §6.3), where net/http alone
// would keep it open for the next request; an ordinary chunked request keeps its
// connection.
func TestHTTPClosesAfterAmbiguousFraming(t *testing.T) {
	g := startGateway(t, "-http", "127.0.0.1:0", "-sessions", filepath.Join(t.TempDir(), "sessions"), "-route", "/=demo")
	send := func(conn net.Conn, br *bufio.Reader, head string) *http.Response {
		t.Helper()
		_, err := io.WriteString(conn, head+"\r\n5\r\nname=\r\n0\r\n\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for _, tc := range []struct {
		name  string
		head  string
		close bool
	}{
		{"chunked", "POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n", false},
		{"both", "POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 11\r\n", true},
		{"both-other-case", "POST /login HTTP/1.1\r\nHost: x\r\ncontent-LENGTH: 3\r\nTRANSFER-ENCODING: chunked\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", g.addr("http"))
			require.NoError(t, err)
			defer conn.Close()
			require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
			br := bufio.NewReader(conn)
			resp := send(conn, br, tc.head)
			assert.Equal(t, 200, resp.StatusCode)
			assert.Equal(t, tc.close, resp.Close, "Connection: close")
			if tc.close {
				_, err := br.ReadByte()
				assert.ErrorIs(t, err, io.EOF, "the gateway closed the connection")
				return
			}
			resp = send(conn, br, tc.head)
			assert.Equal(t, 200, resp.StatusCode, "the connection serves a second request")
		})
	}
}
