package scgi

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serveSCGI runs the server half with h on a loopback listener and returns its address.
func serveSCGI(t *testing.T, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &Server{Handler: h, ErrorLog: slog.New(slog.NewTextHandler(io.Discard, nil))}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return l.Addr().String()
}

// scgiNetstring encodes vars (name, value, ...) as an SCGI header netstring.
func scgiNetstring(vars ...string) []byte {
	var b []byte
	for _, v := range vars {
		b = append(b, v...)
		b = append(b, 0)
	}
	return append(append(strconv.AppendInt(nil, int64(len(b)), 10), ':'), append(b, ',')...)
}

// roundTripSCGI sends a raw SCGI request to addr and returns the parsed CGI response
// and its body (and the error that ended the body, if any).
func roundTripSCGI(t *testing.T, addr string, raw []byte) (*backendResponse, string, error) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	_, err = conn.Write(raw)
	require.NoError(t, err)
	resp, err := readCGIResponse(bufio.NewReaderSize(conn, readBufSize))
	require.NoError(t, err)
	body, err := io.ReadAll(resp.body)
	return resp, string(body), err
}

// TestProxyBehindSCGIServer chains front end → scgi.Serve(Proxy) → the real Quixote SCGI server with
// raw SCGI on the front: the front end's own variables reach Python unchanged.
func TestProxyBehindSCGIServer(t *testing.T) {
	w := startQuixote(t, testquixote.Options{Children: 2})
	p, _ := newTestProxy(t, w.Addr)
	addr := serveSCGI(t, p)

	t.Run("front end variables pass through", func(t *testing.T) {
		raw := scgiNetstring("CONTENT_LENGTH", "0", "SCGI", "1", "REQUEST_METHOD", "GET",
			"REQUEST_URI", "/app/env?a=b", "QUERY_STRING", "a=b", "SERVER_PROTOCOL", "HTTP/1.1",
			"HTTPS", "on", "REQUEST_SCHEME", "https", "REMOTE_ADDR", "203.0.113.9",
			"REMOTE_PORT", "5555", "SERVER_NAME", "example.org", "SERVER_PORT", "443",
			"SCRIPT_NAME", "/app", "DOCUMENT_ROOT", "/srv/www", "X_SITE_PARAM", "kept",
			"HTTP_HOST", "example.org", "HTTP_COOKIE", "a=1", "HTTP_COOKIE", "QX_session=abc",
			"HTTP_X_DUP", "1", "HTTP_X_DUP", "2")
		resp, body, err := roundTripSCGI(t, addr, raw)
		require.NoError(t, err)
		require.Equal(t, 200, resp.status, body)
		var e workerEcho
		require.NoError(t, json.Unmarshal([]byte(body), &e))
		for name, want := range map[string]string{
			"REMOTE_ADDR": "203.0.113.9", "REMOTE_PORT": "5555", "HTTPS": "on",
			"REQUEST_SCHEME": "https", "SCRIPT_NAME": "/app", "PATH_INFO": "/env",
			"SERVER_NAME": "example.org", "SERVER_PORT": "443", "DOCUMENT_ROOT": "/srv/www",
			"X_SITE_PARAM": "kept", "REQUEST_URI": "/app/env?a=b", "QUERY_STRING": "a=b",
			"HTTP_HOST": "example.org", "HTTP_COOKIE": "a=1; QX_session=abc", "HTTP_X_DUP": "1, 2",
			"SERVER_PROTOCOL": "HTTP/1.1",
		} {
			assert.Equal(t, want, e.Env[name], name)
		}
	})

	// The requests nginx really sent, replayed byte for byte.
	files, err := filepath.Glob(filepath.Join("testdata", "scgi", "*.bin"))
	require.NoError(t, err)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			require.NoError(t, err)
			resp, body, err := roundTripSCGI(t, addr, raw)
			require.NoError(t, err)
			switch filepath.Base(f) {
			case "nginx-scgi-request.bin": // GET /counter with an unknown session id
				assert.Equal(t, 200, resp.status)
				assert.Equal(t, "1", body, "a new session")
				assert.Empty(t, resp.header["Set-Cookie"], "session3 keeps no session without a user")
				return
			case "nginx-scgi-request-post.bin": // POST /login with no user field: the form
				assert.Equal(t, 200, resp.status)
				assert.Contains(t, body, "<form")
				return
			}
			assert.Equal(t, 404, resp.status, "the application has no such page and says so")
			var e workerEcho
			require.NoError(t, json.Unmarshal([]byte(body), &e))
			assert.Equal(t, "127.0.0.1", e.Env["REMOTE_ADDR"])
			assert.Equal(t, "8081", e.Env["SERVER_PORT"])
			assert.Equal(t, "/var/www/html", e.Env["DOCUMENT_ROOT"])
			assert.Equal(t, "", e.Env["SCRIPT_NAME"])
			assert.True(t, strings.HasPrefix(e.Env["REQUEST_URI"], e.Env["PATH_INFO"]))
			assert.Equal(t, "a=1; QX_session=0123456789abcdef", e.Env["HTTP_COOKIE"])
		})
	}

	t.Run("worker killed mid-response cuts the SCGI response", func(t *testing.T) {
		raw := scgiNetstring("CONTENT_LENGTH", "0", "SCGI", "1", "REQUEST_METHOD", "GET",
			"REQUEST_URI", "/die?after=5000", "QUERY_STRING", "after=5000",
			"SERVER_PROTOCOL", "HTTP/1.1", "REMOTE_ADDR", "127.0.0.1")
		resp, body, err := roundTripSCGI(t, addr, raw)
		assert.Equal(t, 200, resp.status)
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "the front end must see a truncated response")
		assert.Less(t, len(body), 50000)
	})
}
