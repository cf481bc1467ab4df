package scgi

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// workerEcho is what the worker's /env route answers.
type workerEcho struct {
	Env        map[string]string `json:"env"`
	Order      []string          `json:"order"`
	BodyLen    int64             `json:"body_len"`
	BodySHA256 string            `json:"body_sha256"`
}

func getEcho(t *testing.T, c *http.Client, req *http.Request) workerEcho {
	t.Helper()
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var e workerEcho
	require.NoError(t, json.Unmarshal(body, &e), string(body))
	return e
}

func newReq(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	return req
}

// quietLog keeps expected proxy errors out of the test output but lets a test look.
type quietLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (q *quietLog) Write(p []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.buf.Write(p)
}

func (q *quietLog) String() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.buf.String()
}

// newTestProxy returns a proxy over backends whose log goes to the returned buffer.
func newTestProxy(t *testing.T, backends ...string) (*Proxy, *quietLog) {
	t.Helper()
	p, err := NewProxy(backends...)
	require.NoError(t, err)
	ql := new(quietLog)
	p.ErrorLog = slog.New(slog.NewTextHandler(ql, nil))
	return p, ql
}

// serveProxy serves h over HTTP on loopback and returns its base URL.
func serveProxy(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // aborted responses are expected in some tests
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

var noRedirect = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       30 * time.Second,
}

// runRequestSuite runs the core requests against a front end at base that reaches the
// real Quixote server through the proxy, mounted at prefix ("" for the root).
func runRequestSuite(t *testing.T, base, prefix string) {
	c := noRedirect

	t.Run("GET with query", func(t *testing.T) {
		e := getEcho(t, c, newReq(t, "GET", base+prefix+"/env?x=1&y=%2F&z=caf%C3%A9", nil))
		assert.Equal(t, "GET", e.Env["REQUEST_METHOD"])
		assert.Equal(t, "x=1&y=%2F&z=caf%C3%A9", e.Env["QUERY_STRING"])
		assert.Equal(t, prefix+"/env?x=1&y=%2F&z=caf%C3%A9", e.Env["REQUEST_URI"])
		assert.Equal(t, prefix, e.Env["SCRIPT_NAME"])
		assert.Equal(t, "/env", e.Env["PATH_INFO"])
		assert.Equal(t, "0", e.Env["CONTENT_LENGTH"])
		assert.Equal(t, "1", e.Env["SCGI"])
		assert.Equal(t, "127.0.0.1", e.Env["REMOTE_ADDR"])
		assert.Equal(t, "HTTP/1.1", e.Env["SERVER_PROTOCOL"])
		assert.NotEmpty(t, e.Env["HTTP_HOST"])
		assert.NotEmpty(t, e.Env["SERVER_PORT"])
		assert.Equal(t, "CONTENT_LENGTH", e.Order[0], "CONTENT_LENGTH must come first")
	})

	t.Run("POST 10 MB", func(t *testing.T) {
		data := make([]byte, 10<<20)
		_, err := rand.Read(data)
		require.NoError(t, err)
		sum := sha256.Sum256(data)
		req := newReq(t, "POST", base+prefix+"/hash", bytes.NewReader(data))
		req.Header.Set("Content-Type", "application/octet-stream")
		e := getEcho(t, c, req)
		assert.Equal(t, int64(len(data)), e.BodyLen)
		assert.Equal(t, hex.EncodeToString(sum[:]), e.BodySHA256)
	})

	t.Run("form POST env", func(t *testing.T) {
		req := newReq(t, "POST", base+prefix+"/env", strings.NewReader("name=TestUser"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		e := getEcho(t, c, req)
		assert.Equal(t, "13", e.Env["CONTENT_LENGTH"])
		assert.Equal(t, "application/x-www-form-urlencoded", e.Env["CONTENT_TYPE"])
		assert.Equal(t, "POST", e.Env["REQUEST_METHOD"])
		sum := sha256.Sum256([]byte("name=TestUser"))
		assert.Equal(t, hex.EncodeToString(sum[:]), e.BodySHA256)
	})

	t.Run("two Cookie lines", func(t *testing.T) {
		req := newReq(t, "GET", base+prefix+"/env", nil)
		req.Header.Add("Cookie", "a=1")
		req.Header.Add("Cookie", "QX_session=0123456789abcdef")
		e := getEcho(t, c, req)
		assert.Equal(t, "a=1; QX_session=0123456789abcdef", e.Env["HTTP_COOKIE"])
	})

	t.Run("streamed response", func(t *testing.T) {
		gate := filepath.Join(t.TempDir(), "gate")
		resp, err := c.Get(base + prefix + "/stream?n=3&gate=" + gate)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		br := bufio.NewReader(resp.Body)
		first, err := br.ReadString('\n')
		require.NoError(t, err)
		// The worker is now blocked until the gate exists: the first chunk came
		// through while the worker was still running.
		assert.Equal(t, "chunk 0\n", first)
		require.NoError(t, os.WriteFile(gate, nil, 0o600))
		rest, err := io.ReadAll(br)
		require.NoError(t, err)
		assert.Equal(t, "chunk 1\nchunk 2\nend\n", string(rest), "chunking inside SCGI must be decoded once")
	})

	t.Run("chunked inside SCGI", func(t *testing.T) {
		resp, err := c.Get(base + prefix + "/stream?n=4")
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, "chunk 0\nchunk 1\nchunk 2\nchunk 3\nend\n", string(body))
		assert.Empty(t, resp.Header.Get("Transfer-Encoding"))
	})

	t.Run("HEAD", func(t *testing.T) {
		resp, err := c.Head(base + prefix + "/hello")
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "18", resp.Header.Get("Content-Length"))
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Empty(t, body)
	})

	t.Run("GET small", func(t *testing.T) {
		resp, err := c.Get(base + prefix + "/hello")
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, "hello from python\n", string(body))
		assert.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
	})

	t.Run("redirect", func(t *testing.T) {
		resp, err := c.Get(base + prefix + "/redirect?to=/target")
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, http.StatusFound, resp.StatusCode)
		loc, err := url.Parse(resp.Header.Get("Location"))
		require.NoError(t, err)
		assert.Equal(t, "/target", loc.Path, "Quixote makes the Location absolute")
	})

	t.Run("error status", func(t *testing.T) {
		resp, err := c.Get(base + prefix + "/respond?code=404")
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	})

	t.Run("Set-Cookie lines kept apart", func(t *testing.T) {
		resp, err := c.Get(base + prefix + "/cookie")
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, []string{`QX_session="abc123"; path=/`, `other="x y"; path=/; httponly`},
			resp.Header.Values("Set-Cookie"))
	})

	t.Run("underscore and Proxy headers dropped", func(t *testing.T) {
		req := newReq(t, "GET", base+prefix+"/env", nil)
		req.Header["X_user"] = []string{"forged"}
		req.Header.Set("X-User", "real")
		req.Header.Set("Proxy", "http://evil.example:3128")
		e := getEcho(t, c, req)
		assert.Equal(t, "real", e.Env["HTTP_X_USER"])
		assert.NotContains(t, e.Env, "HTTP_PROXY")
	})
}

func TestProxyCPythonTCP(t *testing.T) {
	w := startQuixote(t, testquixote.Options{Children: 3})
	p, _ := newTestProxy(t, w.Addr)
	runRequestSuite(t, serveProxy(t, p), "")
}

func TestProxyCPythonUnixSocket(t *testing.T) {
	w := startQuixote(t, testquixote.Options{Unix: true, Children: 2})
	p, _ := newTestProxy(t, w.Addr)
	runRequestSuite(t, serveProxy(t, p), "")
}

func TestProxyMountPrefix(t *testing.T) {
	w := startQuixote(t, testquixote.Options{Children: 2})
	p, _ := newTestProxy(t, w.Addr)
	p.ScriptName = "/app/"
	mux := http.NewServeMux()
	mux.Handle("/app/", p)
	mux.Handle("/app", p)
	mux.Handle("/", p) // misrouted requests reach the proxy too: it must refuse them
	base := serveProxy(t, mux)

	e := getEcho(t, noRedirect, newReq(t, "GET", base+"/app/env?q=1", nil))
	assert.Equal(t, "/app", e.Env["SCRIPT_NAME"])
	assert.Equal(t, "/env", e.Env["PATH_INFO"])
	assert.Equal(t, "/app/env?q=1", e.Env["REQUEST_URI"])

	for _, path := range []string{"/application/env", "/env", "/ap"} {
		resp, err := noRedirect.Get(base + path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, path)
	}
	runRequestSuite(t, base, "/app")
}

func TestProxyChunkedUploadSpooled(t *testing.T) {
	w := startQuixote(t, testquixote.Options{Children: 2})
	p, _ := newTestProxy(t, w.Addr)
	p.MaxSpoolBytes = 1 << 20
	p.SpoolDir = t.TempDir()
	base := serveProxy(t, p)

	for _, size := range []int{0, 1000, 300 << 10, 1 << 20} { // memory, and temp file
		data := make([]byte, size)
		_, err := rand.Read(data)
		require.NoError(t, err)
		req := newReq(t, "PUT", base+"/env", io.MultiReader(bytes.NewReader(data))) // unknown length
		req.ContentLength = -1
		e := getEcho(t, noRedirect, req)
		sum := sha256.Sum256(data)
		assert.Equal(t, fmt.Sprint(size), e.Env["CONTENT_LENGTH"])
		assert.Equal(t, hex.EncodeToString(sum[:]), e.BodySHA256)
		assert.NotContains(t, e.Env, "HTTP_TRANSFER_ENCODING")
	}
	assert.Eventually(t, func() bool {
		entries, err := os.ReadDir(p.SpoolDir)
		return err == nil && len(entries) == 0
	}, 5*time.Second, 5*time.Millisecond, "spool files must be removed once the request is done")

	req := newReq(t, "PUT", base+"/env", io.MultiReader(bytes.NewReader(make([]byte, 1<<20+1))))
	req.ContentLength = -1
	resp, err := noRedirect.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)

	p2, _ := newTestProxy(t, w.Addr)
	p2.MaxSpoolBytes = -1
	req = newReq(t, "PUT", serveProxy(t, p2)+"/env", io.MultiReader(strings.NewReader("abc")))
	req.ContentLength = -1
	resp, err = noRedirect.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusLengthRequired, resp.StatusCode)
}

func TestProxyHTTP10Client(t *testing.T) {
	// An HTTP/1.0 client: the worker sends the stream unchunked, close-delimited.
	w := startQuixote(t, testquixote.Options{Children: 2})
	p, _ := newTestProxy(t, w.Addr)
	base := serveProxy(t, p)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "GET /stream?n=2 HTTP/1.0\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "chunk 0\nchunk 1\nend\n", string(body))
}

// rawBackend serves every SCGI request with the fixed CGI response reply, for the
// response forms a CGI program may use but Quixote never does.
func rawBackend(t *testing.T, reply string) string {
	t.Helper()
	return acceptLoop(t, func(conn net.Conn) {
		defer conn.Close()
		br := bufio.NewReader(conn)
		if _, err := ReadEnv(br, 0); err != nil {
			return
		}
		io.WriteString(conn, reply)
	}).Addr().String()
}

// acceptLoop listens on loopback TCP and serves each connection with serve in a
// goroutine of its own until the test ends.
func acceptLoop(t *testing.T, serve func(net.Conn)) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	acceptOn(t, l, serve)
	return l
}

// acceptOn serves each connection l accepts with serve in a goroutine of its own
// until the test ends.
func acceptOn(t testing.TB, l net.Listener, serve func(net.Conn)) {
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go serve(conn)
		}
	}()
}

func TestProxyCGIResponseForms(t *testing.T) {
	for _, tc := range []struct {
		name, reply string
		status      int
		location    string
	}{
		{"Location without Status", "Location: /target\r\n\r\n", http.StatusFound, "/target"},
		{"Status without reason", "Status: 404\r\nContent-Type: text/plain\r\n\r\nno\n", http.StatusNotFound, ""},
		{"no Content-Type", "Status: 200 OK\r\nContent-Length: 7\r\n\r\nstatus\n", http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := newTestProxy(t, rawBackend(t, tc.reply))
			resp, err := noRedirect.Get(serveProxy(t, p) + "/x")
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Equal(t, tc.location, resp.Header.Get("Location"))
			if tc.name == "no Content-Type" {
				assert.NotContains(t, resp.Header, "Content-Type", "the backend sent none; the proxy must not sniff one")
			}
		})
	}
}
