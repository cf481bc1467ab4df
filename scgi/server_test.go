package scgi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testhttp"
)

// serverLog collects a Server's log output for assertions.
type serverLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *serverLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *serverLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *serverLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startSCGIServer serves srv on a new loopback TCP listener (network "tcp") or UNIX
// socket ("unix") and returns the address. The server is closed when the test ends,
// and Serve must then have returned ErrServerClosed.
func startSCGIServer(t testing.TB, srv *Server, network string) string {
	t.Helper()
	var l net.Listener
	var err error
	if network == "unix" {
		dir, derr := os.MkdirTemp("", "scgi")
		require.NoError(t, derr)
		t.Cleanup(func() { os.RemoveAll(dir) })
		l, err = net.Listen("unix", filepath.Join(dir, "s.sock"))
	} else {
		// As recommended in the package doc: no TCP keep-alive probes on
		// one-request connections, which saves four system calls per request.
		l, err = (&net.ListenConfig{KeepAlive: -1}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	}
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		require.NoError(t, srv.Close())
		select {
		case err := <-done:
			assert.ErrorIs(t, err, ErrServerClosed)
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return l.Addr().String()
}

func dialSCGI(t testing.TB, addr string) net.Conn {
	t.Helper()
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	c, err := net.Dial(network, addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	return c
}

// exchangeSCGI sends raw and returns everything the server answers until it closes.
func exchangeSCGI(t testing.TB, addr string, raw []byte) string {
	t.Helper()
	c := dialSCGI(t, addr)
	_, err := c.Write(raw)
	require.NoError(t, err)
	resp, err := io.ReadAll(c)
	require.NoError(t, err)
	return string(resp)
}

// serverCGIResponse is a parsed CGI response.
type serverCGIResponse struct {
	status string
	header http.Header
	lines  []string // header lines in order, Status first
	body   string
}

func parseServerCGI(t testing.TB, raw string) serverCGIResponse {
	t.Helper()
	head, body, ok := strings.Cut(raw, "\r\n\r\n")
	require.True(t, ok, "no blank line in response %q", raw)
	r := serverCGIResponse{header: http.Header{}, body: body, lines: strings.Split(head, "\r\n")}
	for _, line := range r.lines {
		k, v, ok := strings.Cut(line, ": ")
		require.True(t, ok, "bad header line %q", line)
		if k == "Status" {
			r.status = v
			continue
		}
		r.header.Add(k, v)
	}
	require.Equal(t, "Status", strings.SplitN(r.lines[0], ":", 2)[0], "Status comes first")
	return r
}

// getRequest is a bodiless GET of path, with extra variables after the minimal ones.
func getRequest(path string, extra ...string) []byte {
	return buildSCGI("", append([]string{"CONTENT_LENGTH", "0", "SCGI", "1", "REQUEST_METHOD", "GET", "REQUEST_URI", path}, extra...)...)
}

func TestServerResponses(t *testing.T) {
	var wroteErr atomic.Value
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-B", "2")
		w.Header().Add("X-A", "1")
		w.Header().Add("X-A", "one")
		io.WriteString(w, "hello")
	})
	mux.HandleFunc("/sniff", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<!DOCTYPE html><html><body>hi</body></html>"))
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/notfound", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusNotFound)
	})
	mux.HandleFunc("/custom-status", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(599)
	})
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		w.WriteHeader(http.StatusNoContent)
		_, err := w.Write([]byte("x"))
		wroteErr.Store(err)
	})
	mux.HandleFunc("/notmodified", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Etag", `"x"`)
		w.WriteHeader(http.StatusNotModified)
	})
	mux.HandleFunc("/large", func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 1000; i++ {
			fmt.Fprintf(w, "line %04d %s\n", i, strings.Repeat("x", 90))
		}
	})
	mux.HandleFunc("/declared", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "3")
		_, err := w.Write([]byte("abcd"))
		wroteErr.Store(err)
		w.Write([]byte("abc"))
	})
	mux.HandleFunc("/short", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		w.Write([]byte("abc"))
	})
	mux.HandleFunc("/after-header", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Before", "1")
		w.WriteHeader(http.StatusCreated)
		w.Header().Set("X-After", "1")
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte("created"))
	})
	mux.HandleFunc("/interim", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusEarlyHints)
		w.Write([]byte("final"))
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Status", "500 smuggled")
		w.Header().Set("Transfer-Encoding", "chunked")
		w.Header().Set("Bad Name", "x")
		w.Header().Set("X-Multi", "a\r\nInjected: yes")
		w.Write([]byte("ok"))
	})
	var log serverLog
	addr := startSCGIServer(t, &Server{Handler: mux, ErrorLog: log.logger()}, "tcp")

	get := func(path string, extra ...string) serverCGIResponse {
		return parseServerCGI(t, exchangeSCGI(t, addr, getRequest(path, extra...)))
	}
	t.Run("small response sent whole with Content-Length, headers sorted", func(t *testing.T) {
		raw := exchangeSCGI(t, addr, buildSCGI("", "CONTENT_LENGTH", "0", "SCGI", "1", "REQUEST_METHOD", "GET", "REQUEST_URI", "/hello"))
		assert.Equal(t, "Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nX-A: 1\r\nX-A: one\r\nX-B: 2\r\nContent-Length: 5\r\n\r\nhello", raw)
	})
	t.Run("content type sniffed", func(t *testing.T) {
		r := get("/sniff")
		assert.Equal(t, "200 OK", r.status)
		assert.Equal(t, "text/html; charset=utf-8", r.header.Get("Content-Type"))
	})
	t.Run("empty handler", func(t *testing.T) {
		r := get("/empty")
		assert.Equal(t, []string{"Status: 200 OK", "Content-Length: 0"}, r.lines)
		assert.Equal(t, "", r.body)
	})
	t.Run("error status", func(t *testing.T) {
		r := get("/notfound")
		assert.Equal(t, "404 Not Found", r.status)
		assert.Equal(t, "nope\n", r.body)
		assert.Equal(t, "nosniff", r.header.Get("X-Content-Type-Options"))
	})
	t.Run("status without reason text", func(t *testing.T) {
		assert.Equal(t, "599", get("/custom-status").status)
	})
	t.Run("204 has no body and no length", func(t *testing.T) {
		r := get("/nocontent")
		assert.Equal(t, []string{"Status: 204 No Content"}, r.lines)
		assert.Equal(t, "", r.body)
		assert.Equal(t, http.ErrBodyNotAllowed, wroteErr.Load())
	})
	t.Run("304 drops Content-Type", func(t *testing.T) {
		r := get("/notmodified")
		assert.Equal(t, []string{"Status: 304 Not Modified", `Etag: "x"`}, r.lines)
	})
	t.Run("large response streamed without a length", func(t *testing.T) {
		r := get("/large")
		assert.Empty(t, r.header.Get("Content-Length"))
		assert.Equal(t, "text/plain; charset=utf-8", r.header.Get("Content-Type"))
		assert.Equal(t, 1000*101, len(r.body))
		assert.True(t, strings.HasPrefix(r.body, "line 0000 x"))
		assert.True(t, strings.HasSuffix(r.body, "x\n"))
		assert.Contains(t, r.body, "line 0999 ")
	})
	t.Run("writes beyond the declared length fail", func(t *testing.T) {
		r := get("/declared")
		assert.Equal(t, "abc", r.body)
		assert.Equal(t, "3", r.header.Get("Content-Length"))
		assert.Equal(t, http.ErrContentLength, wroteErr.Load())
	})
	t.Run("a response shorter than its Content-Length is cut and logged", func(t *testing.T) {
		r := get("/short")
		assert.Equal(t, "10", r.header.Get("Content-Length"))
		assert.Equal(t, "abc", r.body, "the front end sees the connection end 7 bytes early")
		assert.Contains(t, log.String(), "level=WARN msg=\"scgi: response not completed\"")
		assert.Contains(t, log.String(), "handler wrote 3 of the 10 bytes")
	})
	t.Run("first WriteHeader wins with the headers of that moment", func(t *testing.T) {
		r := get("/after-header")
		assert.Equal(t, "201 Created", r.status)
		assert.Equal(t, "1", r.header.Get("X-Before"))
		assert.Empty(t, r.header.Get("X-After"))
		assert.Equal(t, "created", r.body)
		assert.Contains(t, log.String(), "superfluous WriteHeader")
	})
	t.Run("1xx dropped", func(t *testing.T) {
		r := get("/interim")
		assert.Equal(t, "200 OK", r.status)
		assert.Equal(t, "final", r.body)
	})
	t.Run("handler cannot forge framing headers", func(t *testing.T) {
		r := get("/headers")
		assert.Equal(t, "200 OK", r.status)
		assert.Empty(t, r.header.Values("Transfer-Encoding"))
		assert.Empty(t, r.header.Values("Bad Name"))
		assert.Empty(t, r.header.Values("Injected"))
		assert.Equal(t, []string{"a  Injected: yes"}, r.header.Values("X-Multi"))
		assert.Equal(t, "ok", r.body)
	})
	t.Run("HEAD sends headers only", func(t *testing.T) {
		raw := exchangeSCGI(t, addr, buildSCGI("", "CONTENT_LENGTH", "0", "SCGI", "1", "REQUEST_METHOD", "HEAD", "REQUEST_URI", "/hello"))
		r := parseServerCGI(t, raw)
		assert.Equal(t, "200 OK", r.status)
		assert.Equal(t, "5", r.header.Get("Content-Length"), "the length the GET body would have")
		assert.Equal(t, "", r.body)
		raw = exchangeSCGI(t, addr, buildSCGI("", "CONTENT_LENGTH", "0", "SCGI", "1", "REQUEST_METHOD", "HEAD", "REQUEST_URI", "/large"))
		r = parseServerCGI(t, raw)
		assert.Equal(t, "", r.body)
	})
}

func TestServerHostileRequests(t *testing.T) {
	var calls atomic.Int64
	var log serverLog
	srv := &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			io.WriteString(w, "served")
		}),
		ErrorLog: log.logger(),
	}
	addr := startSCGIServer(t, srv, "tcp")

	for _, tc := range malformedCases {
		if errors.Is(tc.want, io.EOF) || errors.Is(tc.want, io.ErrUnexpectedEOF) {
			continue // truncated input: tested below
		}
		t.Run(tc.name, func(t *testing.T) {
			r := parseServerCGI(t, exchangeSCGI(t, addr, []byte(tc.raw)))
			if tc.want == ErrHeaderTooLarge {
				assert.Equal(t, "431 Request Header Fields Too Large", r.status)
			} else {
				assert.Equal(t, "400 Bad Request", r.status)
			}
			assert.Equal(t, "text/plain; charset=utf-8", r.header.Get("Content-Type"))
		})
	}
	requestLevel := map[string][]byte{
		"empty method":         buildSCGI("", "CONTENT_LENGTH", "0", "SCGI", "1", "REQUEST_METHOD", "", "REQUEST_URI", "/"),
		"relative URI":         buildSCGI("", "CONTENT_LENGTH", "0", "SCGI", "1", "REQUEST_METHOD", "GET", "REQUEST_URI", "x"),
		"header injection":     getRequest("/", "HTTP_X", "a\nb"),
		"bad protocol":         getRequest("/", "SERVER_PROTOCOL", "SPDY"),
		"bad header with body": buildSCGI(strings.Repeat("b", 100000), "CONTENT_LENGTH", "100000", "SCGI", "1", "REQUEST_METHOD", "PUT", "HTTP_A:B", "x"),
	}
	for name, raw := range requestLevel {
		t.Run(name, func(t *testing.T) {
			r := parseServerCGI(t, exchangeSCGI(t, addr, raw))
			assert.Equal(t, "400 Bad Request", r.status)
		})
	}
	t.Run("truncated requests get no answer", func(t *testing.T) {
		for _, raw := range []string{"", "24", "24:CONTENT_LENGTH\x000\x00SC", "24:CONTENT_LENGTH\x000\x00SCGI\x001\x00"} {
			c := dialSCGI(t, addr)
			_, err := io.WriteString(c, raw)
			require.NoError(t, err)
			require.NoError(t, c.(*net.TCPConn).CloseWrite())
			resp, err := io.ReadAll(c)
			require.NoError(t, err)
			assert.Empty(t, resp, "answer to %q", raw)
		}
	})

	assert.Zero(t, calls.Load(), "no malformed request reached the handler")
	assert.Contains(t, log.String(), "bad request")
	assert.Contains(t, log.String(), "leading zero")
	r := parseServerCGI(t, exchangeSCGI(t, addr, getRequest("/")))
	assert.Equal(t, "served", r.body, "the server still serves")
	assert.EqualValues(t, 1, calls.Load())
}

func TestServerSlowClients(t *testing.T) {
	// Each limit gets a server of its own with the others generous, so that a
	// loaded machine (CI runs -race on two cores) cannot trip the wrong one.
	bodyErr := make(chan error, 1)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		bodyErr <- err
	})
	var log serverLog
	headerAddr := startSCGIServer(t, &Server{Handler: handler, ReadHeaderTimeout: 300 * time.Millisecond, ErrorLog: log.logger()}, "tcp")
	stallAddr := startSCGIServer(t, &Server{Handler: handler, StallTimeout: 300 * time.Millisecond, ErrorLog: log.logger()}, "tcp")
	plainAddr := startSCGIServer(t, &Server{Handler: handler, ErrorLog: log.logger()}, "tcp")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", log.String())
		}
	})

	expectCutOff := func(t *testing.T, c net.Conn) {
		t.Helper()
		resp, err := io.ReadAll(c) // returns when the server closes; the dial deadline bounds it
		if err != nil {
			// Closing a socket with unread input (the client kept writing)
			// resets it; that is a cut-off too. A timeout is not.
			require.ErrorIs(t, err, syscall.ECONNRESET, "the server closed the connection")
		}
		assert.Empty(t, resp)
	}
	t.Run("silent after connecting", func(t *testing.T) {
		expectCutOff(t, dialSCGI(t, headerAddr))
	})
	t.Run("silent inside the header", func(t *testing.T) {
		c := dialSCGI(t, headerAddr)
		_, err := io.WriteString(c, "100:CONTENT_LENGTH\x00")
		require.NoError(t, err)
		expectCutOff(t, c)
	})
	t.Run("header dripped byte by byte", func(t *testing.T) {
		c := dialSCGI(t, headerAddr)
		raw := getRequest("/", "HTTP_X", strings.Repeat("x", 200))
		stop := make(chan struct{})
		go func() {
			// Each byte comes long before StallTimeout (default 60 s) would
			// end the read; only the header deadline can stop this.
			for _, b := range raw {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
			}
		}()
		expectCutOff(t, c)
		close(stop)
	})
	t.Run("silent header on a StallTimeout", func(t *testing.T) {
		expectCutOff(t, dialSCGI(t, stallAddr))
	})
	t.Run("body stalls", func(t *testing.T) {
		c := dialSCGI(t, stallAddr)
		_, err := c.Write(buildSCGI("only ten b", "CONTENT_LENGTH", "100", "SCGI", "1", "REQUEST_METHOD", "POST", "REQUEST_URI", "/"))
		require.NoError(t, err)
		select {
		case err := <-bodyErr:
			var ne net.Error
			require.ErrorAs(t, err, &ne)
			assert.True(t, ne.Timeout(), "the handler's body read times out: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("the handler's body read did not time out")
		}
		io.ReadAll(c)
	})
	t.Run("body shorter than CONTENT_LENGTH", func(t *testing.T) {
		c := dialSCGI(t, plainAddr)
		_, err := c.Write(buildSCGI("only ten b", "CONTENT_LENGTH", "100", "SCGI", "1", "REQUEST_METHOD", "POST", "REQUEST_URI", "/"))
		require.NoError(t, err)
		require.NoError(t, c.(*net.TCPConn).CloseWrite())
		select {
		case err := <-bodyErr:
			assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
		case <-time.After(10 * time.Second):
			t.Fatal("the handler's body read did not fail")
		}
		io.ReadAll(c)
	})
	assert.Contains(t, log.String(), "request header not received")
}

func TestServerClientThatDoesNotRead(t *testing.T) {
	writeErr := make(chan error, 1)
	srv := &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			chunk := bytes.Repeat([]byte("z"), 64<<10)
			for i := 0; i < 4096; i++ { // 256 MiB: far beyond any socket buffer
				if _, err := w.Write(chunk); err != nil {
					if r.Context().Err() == nil {
						err = fmt.Errorf("context not canceled after the failed write: %w", err)
					}
					writeErr <- err
					return
				}
			}
			writeErr <- errors.New("all writes succeeded")
		}),
		StallTimeout: 300 * time.Millisecond,
		ErrorLog:     (&serverLog{}).logger(),
	}
	addr := startSCGIServer(t, srv, "tcp")
	c := dialSCGI(t, addr)
	_, err := c.Write(getRequest("/"))
	require.NoError(t, err)
	select {
	case err := <-writeErr:
		var ne net.Error
		require.ErrorAs(t, err, &ne)
		assert.True(t, ne.Timeout(), "write times out: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the handler's write did not time out")
	}
}

func TestServerPanics(t *testing.T) {
	var log serverLog
	mux := http.NewServeMux()
	mux.HandleFunc("/panic", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Lost", "1")
		io.WriteString(w, "partial")
		panic("boom")
	})
	mux.HandleFunc("/panic-after-flush", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "sent")
		w.(http.Flusher).Flush()
		panic("late boom")
	})
	mux.HandleFunc("/abort", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "never")
		panic(http.ErrAbortHandler)
	})
	mux.HandleFunc("/bad-code", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(42)
	})
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fine") })
	addr := startSCGIServer(t, &Server{Handler: mux, ErrorLog: log.logger()}, "tcp")
	get := func(path string) string {
		return exchangeSCGI(t, addr, getRequest(path))
	}

	r := parseServerCGI(t, get("/panic"))
	assert.Equal(t, "500 Internal Server Error", r.status)
	assert.Empty(t, r.header.Get("X-Lost"), "nothing of the failed response leaks")
	assert.Equal(t, "500 Internal Server Error\n", r.body)
	assert.Contains(t, log.String(), "boom")
	assert.Contains(t, log.String(), "server_test.go", "the stack is logged")

	raw := get("/panic-after-flush")
	assert.Equal(t, "Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsent", raw, "cut off after what was sent")
	assert.Contains(t, log.String(), "late boom")

	before := log.String()
	assert.Empty(t, get("/abort"), "ErrAbortHandler cuts the connection")
	assert.Equal(t, before, log.String(), "and is not logged")

	assert.Equal(t, "500 Internal Server Error", parseServerCGI(t, get("/bad-code")).status)
	assert.Contains(t, log.String(), "invalid WriteHeader code 42")

	assert.Equal(t, "fine", parseServerCGI(t, get("/ok")).body, "the server goes on")
}

func TestServerFlushStreams(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			release := make(chan struct{})
			srv := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "first\n")
				assert.NoError(t, http.NewResponseController(w).Flush())
				<-release
				io.WriteString(w, "second\n")
			})}
			addr := startSCGIServer(t, srv, network)
			c := dialSCGI(t, addr)
			_, err := c.Write(getRequest("/"))
			require.NoError(t, err)
			br := bufio.NewReader(c)
			var got []string
			for {
				line, err := br.ReadString('\n')
				require.NoError(t, err, "the flushed part arrives while the handler waits")
				got = append(got, line)
				if line == "first\n" {
					break
				}
			}
			assert.Equal(t, []string{"Status: 200 OK\r\n", "Content-Type: text/event-stream\r\n", "\r\n", "first\n"}, got)
			release <- struct{}{}
			rest, err := io.ReadAll(br)
			require.NoError(t, err)
			assert.Equal(t, "second\n", string(rest))
		})
	}
}

func TestServerUnreadBodyDoesNotLoseResponse(t *testing.T) {
	// The handler answers without reading a large body. The client is still
	// writing when the answer comes; the server must let it read the answer
	// instead of resetting the connection.
	srv := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	})}
	addr := startSCGIServer(t, srv, "tcp")
	const size = 8 << 20
	c := dialSCGI(t, addr)
	raw := buildSCGI(strings.Repeat("u", size), "CONTENT_LENGTH", fmt.Sprint(size), "SCGI", "1", "REQUEST_METHOD", "POST", "REQUEST_URI", "/")
	go c.Write(raw)
	resp, err := io.ReadAll(c)
	require.NoError(t, err)
	r := parseServerCGI(t, string(resp))
	assert.Equal(t, "413 Request Entity Too Large", r.status)
	assert.Equal(t, "too large\n", r.body)
}

func TestServerContexts(t *testing.T) {
	t.Run("HandlerTimeout sets a deadline", func(t *testing.T) {
		srv := &Server{HandlerTimeout: 50 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, ok := r.Context().Deadline()
			<-r.Context().Done()
			fmt.Fprint(w, ok, " ", r.Context().Err())
		})}
		r := parseServerCGI(t, exchangeSCGI(t, startSCGIServer(t, srv, "tcp"), getRequest("/")))
		assert.Equal(t, "true context deadline exceeded", r.body)
	})
	t.Run("local address in the context", func(t *testing.T) {
		srv := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, r.Context().Value(http.LocalAddrContextKey))
		})}
		addr := startSCGIServer(t, srv, "tcp")
		assert.Equal(t, addr, parseServerCGI(t, exchangeSCGI(t, addr, getRequest("/"))).body)
	})
	t.Run("ResponseController", func(t *testing.T) {
		srv := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			fmt.Fprintln(w, rc.SetReadDeadline(time.Now().Add(time.Minute)))
			fmt.Fprintln(w, rc.SetWriteDeadline(time.Now().Add(time.Minute)))
			fmt.Fprintln(w, rc.EnableFullDuplex())
			_, _, err := rc.Hijack()
			fmt.Fprintln(w, errors.Is(err, http.ErrNotSupported))
		})}
		r := parseServerCGI(t, exchangeSCGI(t, startSCGIServer(t, srv, "tcp"), getRequest("/")))
		assert.Equal(t, "<nil>\n<nil>\n<nil>\ntrue\n", r.body)
	})
	t.Run("remote address of a UNIX socket request without REMOTE_ADDR", func(t *testing.T) {
		srv := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%q", r.RemoteAddr)
		})}
		addr := startSCGIServer(t, srv, "unix")
		r := parseServerCGI(t, exchangeSCGI(t, addr, getRequest("/")))
		assert.Equal(t, `"@"`, r.body, "the socket's peer name, as net/http gives it")
	})
}

var registerDefaultMux sync.Once

func TestServeDefaultServeMux(t *testing.T) {
	registerDefaultMux.Do(func() {
		http.HandleFunc("/scgi-test-default-mux", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "from the default mux")
		})
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- Serve(l, nil) }()
	r := parseServerCGI(t, exchangeSCGI(t, l.Addr().String(), getRequest("/scgi-test-default-mux")))
	assert.Equal(t, "from the default mux", r.body)
	l.Close()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, net.ErrClosed, "Serve returns the listener's error")
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after its listener closed")
	}
}

func TestServerShutdown(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	srv := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "finished")
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	c := dialSCGI(t, l.Addr().String())
	_, err = c.Write(getRequest("/"))
	require.NoError(t, err)
	<-started

	shutdownDone := make(chan error, 1)
	go func() { shutdownDone <- srv.Shutdown(context.Background()) }()
	select {
	case err := <-served:
		assert.ErrorIs(t, err, ErrServerClosed)
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return on Shutdown")
	}
	_, err = net.Dial("tcp", l.Addr().String())
	assert.Error(t, err, "no new connections")

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	assert.ErrorIs(t, srv.Shutdown(ctx), context.DeadlineExceeded, "a request is still running")
	cancel()
	select {
	case <-shutdownDone:
		t.Fatal("Shutdown returned while a request was running")
	default:
	}

	close(release)
	resp, err := io.ReadAll(c)
	require.NoError(t, err)
	assert.Equal(t, "finished", parseServerCGI(t, string(resp)).body, "the request in flight completes")
	select {
	case err := <-shutdownDone:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the last request")
	}
	assert.ErrorIs(t, srv.Serve(l), ErrServerClosed, "Serve after Shutdown")
}

func TestServerShutdownServesAcceptedConnection(t *testing.T) {
	for _, stop := range []string{"Shutdown", "Close"} {
		t.Run(stop, func(t *testing.T) {
			srv := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "served")
			})}
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			l := testhttp.NewClosingListener(inner)
			served := make(chan error, 1)
			go func() { served <- srv.Serve(l) }()

			c := dialSCGI(t, inner.Addr().String())
			_, err = c.Write(getRequest("/"))
			require.NoError(t, err)
			<-l.Accepted
			if stop == "Shutdown" {
				require.NoError(t, srv.Shutdown(context.Background()))
			} else {
				require.NoError(t, srv.Close())
			}
			assert.ErrorIs(t, <-served, ErrServerClosed)
			resp, err := io.ReadAll(c)
			if stop == "Shutdown" {
				// The client connected while the server was up: it is answered,
				// and Shutdown returned only after that.
				require.NoError(t, err)
				assert.Equal(t, "served", parseServerCGI(t, string(resp)).body)
			} else {
				assert.Empty(t, resp, "Close cuts off connections accepted after it")
			}
		})
	}
}

func TestServerClose(t *testing.T) {
	started := make(chan struct{})
	ctxErr := make(chan error, 1)
	srv := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
		ctxErr <- r.Context().Err()
	})}
	addr := startSCGIServer(t, srv, "tcp")
	c := dialSCGI(t, addr)
	_, err := c.Write(getRequest("/"))
	require.NoError(t, err)
	<-started
	require.NoError(t, srv.Close())
	select {
	case err := <-ctxErr:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not cancel the running request")
	}
	resp, _ := io.ReadAll(c)
	assert.Empty(t, resp, "the connection was closed")
	require.NoError(t, srv.Shutdown(context.Background()), "nothing left to wait for")
}

func TestServerBodyAfterHandler(t *testing.T) {
	// A goroutine the handler leaves reading the body must not read another
	// request's bytes once the connection's reader is reused.
	leaked := make(chan io.Reader, 1)
	srv := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/leak" {
			leaked <- r.Body
		}
	})}
	addr := startSCGIServer(t, srv, "tcp")
	exchangeSCGI(t, addr, buildSCGI("abc", "CONTENT_LENGTH", "3", "SCGI", "1", "REQUEST_METHOD", "POST", "REQUEST_URI", "/leak"))
	exchangeSCGI(t, addr, buildSCGI("SECRET", "CONTENT_LENGTH", "6", "SCGI", "1", "REQUEST_METHOD", "POST", "REQUEST_URI", "/other"))
	// The client sees the end of the response before the server has drained and
	// released the first connection; wait for both connections to be done.
	require.Eventually(t, func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return len(srv.conns) == 0
	}, 5*time.Second, time.Millisecond)
	b := <-leaked
	n, err := b.Read(make([]byte, 10))
	assert.Zero(t, n)
	assert.ErrorIs(t, err, http.ErrBodyReadAfterClose)
}

func TestServerConcurrentRequests(t *testing.T) {
	srv := &Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%s:%s", r.URL.Query().Get("i"), b)
	})}
	addr := startSCGIServer(t, srv, "tcp")
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := strings.Repeat(fmt.Sprint(i), 1000+i)
			raw := buildSCGI(body, "CONTENT_LENGTH", fmt.Sprint(len(body)), "SCGI", "1", "REQUEST_METHOD", "POST", "REQUEST_URI", fmt.Sprintf("/?i=%d", i))
			r := parseServerCGI(t, exchangeSCGI(t, addr, raw))
			assert.Equal(t, fmt.Sprintf("%d:%s", i, body), r.body)
		}()
	}
	wg.Wait()
}

// BenchmarkServe measures the server alone: sequential requests from goroutines
// (one connection per request, as SCGI has it) against a small handler, over
// loopback TCP and a UNIX socket. allocs/op counts the client side too. The "nowatch"
// runs set FrontEndHalfCloses, which leaves out the departure watch (a goroutine and
// two deadline changes per request), to show its cost.
func BenchmarkServe(b *testing.B) {
	body := []byte("Hello from qxbridge!\n")
	for _, run := range []struct {
		name, network string
		halfCloses    bool
	}{{"tcp", "tcp", false}, {"unix", "unix", false}, {"tcp-nowatch", "tcp", true}, {"unix-nowatch", "unix", true}} {
		network := run.network
		b.Run(run.name, func(b *testing.B) {
			srv := &Server{FrontEndHalfCloses: run.halfCloses, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.Write(body)
			})}
			addr := startSCGIServer(b, srv, network)
			raw := readCapture(b, "nginx-scgi-request.bin")
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 4096)
				for pb.Next() {
					c, err := net.Dial(network, addr)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := c.Write(raw); err != nil {
						b.Fatal(err)
					}
					n := 0
					for {
						m, err := c.Read(buf[n:])
						n += m
						if err == io.EOF {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
					}
					c.Close()
					if !bytes.HasSuffix(buf[:n], body) {
						b.Fatalf("response %q", buf[:n])
					}
				}
			})
		})
	}
}
