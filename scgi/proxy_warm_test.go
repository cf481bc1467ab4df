package scgi

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// do sends one request through p in this goroutine and returns the response.
func do(t *testing.T, p http.Handler, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	return rec
}

// warmStats returns the first backend's stats.
func warmStats(p *Proxy) BackendStats { return p.Stats()[0] }

// waitWarm waits until p has n connections dialled ahead to its first backend.
func waitWarm(t *testing.T, p *Proxy, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return warmStats(p).Warm == n }, 10*time.Second, time.Millisecond,
		"warm connections: %d, want %d", warmStats(p).Warm, n)
}

// TestProxyWarmQuixote: against the real python-scgi + Quixote, requests that follow
// each other go out on connections dialled ahead, and are answered as usual.
func TestProxyWarmQuixote(t *testing.T) {
	for _, unix := range []bool{false, true} {
		t.Run(map[bool]string{false: "tcp", true: "unix"}[unix], func(t *testing.T) {
			w := startQuixote(t, testquixote.Options{Unix: unix, Children: 2})
			p, _ := newTestProxy(t, w.Addr)
			p.WarmConns = 1

			rec := do(t, p, "GET", "/hello", "")
			require.Equal(t, http.StatusOK, rec.Code)
			assert.Equal(t, 0, warmStats(p).Warm, "a lone request dials nothing ahead")
			const n = 10
			for i := 1; i < n; i++ {
				if i > 1 {
					waitWarm(t, p, 1)
				}
				rec := do(t, p, "GET", "/hello", "")
				require.Equal(t, http.StatusOK, rec.Code)
				assert.Equal(t, "hello from python\n", rec.Body.String())
			}
			// The session logic of the worker sees each request once: a POST that
			// counts goes out once per request.
			for i := 1; i <= 3; i++ {
				waitWarm(t, p, 1)
				rec := do(t, p, "POST", "/env", "a=1")
				require.Equal(t, http.StatusOK, rec.Code)
				assert.Contains(t, rec.Body.String(), `"body_len": 3`)
			}
			s := warmStats(p)
			assert.Equal(t, uint64(n-2+3), s.WarmUsed, "every request after the second took a warm connection")
			assert.Equal(t, uint64(0), s.Failures)
			waitWarm(t, p, 1) // and one waits, which the worker holds without complaint
		})
	}
}

// childPids lists the children python-scgi's parent has forked.
func childPids(t *testing.T, parent int) []int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(parent) + "/task/" + strconv.Itoa(parent) + "/children")
	require.NoError(t, err)
	var out []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		require.NoError(t, err)
		out = append(out, pid)
	}
	return out
}

// TestProxyWarmChildDied: the child holding a connection dialled ahead dies (killed
// here; a crash, or the worker's restart, alike): the dead connection is seen before
// use and discarded, the request goes out on a fresh one, and nothing counts against
// the backend.
func TestProxyWarmChildDied(t *testing.T) {
	w := testquixote.Start(t, testquixote.Options{Unix: true, Children: 2})
	p, _ := newTestProxy(t, w.Addr)
	p.WarmConns = 1
	for range 3 {
		require.Equal(t, http.StatusOK, do(t, p, "GET", "/hello", "").Code)
	}
	waitWarm(t, p, 1)
	used := warmStats(p).WarmUsed
	// Until the parent has handed the connection to a child, killing the children
	// leaves it to a new one: kill whatever children there are until it ends.
	var killed []int
	require.Eventually(t, func() bool {
		for _, pid := range childPids(t, w.Pid()) {
			syscall.Kill(pid, syscall.SIGKILL) // one may have exited already
			killed = append(killed, pid)
		}
		p.pool.mu.Lock()
		defer p.pool.mu.Unlock()
		return len(p.pool.backends[0].warm) == 1 && !idle(p.pool.backends[0].warm[0].conn)
	}, 10*time.Second, 20*time.Millisecond, "the warm connection ends with its child")
	// A child killed but still exiting may yet be handed the next connection, which
	// then dies with it (python-scgi's race, warm or not): wait until they are gone.
	require.Eventually(t, func() bool {
		for _, pid := range killed {
			stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			if err == nil && !strings.Contains(string(stat), ") Z ") {
				return false
			}
		}
		return true
	}, 10*time.Second, time.Millisecond)

	rec := do(t, p, "GET", "/hello", "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "hello from python\n", rec.Body.String())
	s := warmStats(p)
	assert.Equal(t, used, s.WarmUsed, "the dead connection was not used")
	assert.Equal(t, uint64(0), s.Failures)
	assert.True(t, s.Healthy)
}

// TestProxyWarmCap: with MaxConnsPerBackend set to the worker's children, connections
// dialled ahead count toward it and leave one child free; under concurrent load no
// request waits on a child held by one.
func TestProxyWarmCap(t *testing.T) {
	w := startQuixote(t, testquixote.Options{Unix: true, Children: 2})
	p, _ := newTestProxy(t, w.Addr)
	p.WarmConns = 5
	p.MaxConnsPerBackend = 2
	for range 3 {
		require.Equal(t, http.StatusOK, do(t, p, "GET", "/hello", "").Code)
	}
	waitWarm(t, p, 1)

	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	maxOpen := 0
	for range 4 {
		wg.Go(func() {
			for range 25 {
				code := do(t, p, "GET", "/hello", "").Code
				p.pool.mu.Lock()
				b := p.pool.backends[0]
				open := b.inFlight + len(b.warm) + b.dialling
				p.pool.mu.Unlock()
				mu.Lock()
				codes[code]++
				maxOpen = max(maxOpen, open)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	assert.Equal(t, map[int]int{http.StatusOK: 100}, codes)
	assert.LessOrEqual(t, maxOpen, 2, "connections in flight and dialled ahead stay within the cap")
	assert.LessOrEqual(t, warmStats(p).Warm, 1)
}

// TestProxyWarmCloseAndExpiry: a connection dialled ahead and not used within
// WarmMaxAge is closed, and so is one waiting at Close; the python-scgi child that
// held it exits (as it does for any connection that ends before a request) and the
// worker goes on serving. After Close nothing more is dialled ahead.
func TestProxyWarmCloseAndExpiry(t *testing.T) {
	w := testquixote.Start(t, testquixote.Options{Unix: true, Children: 2})
	p, _ := newTestProxy(t, w.Addr)
	p.WarmConns = 1
	p.WarmMaxAge = time.Second
	for range 3 {
		require.Equal(t, http.StatusOK, do(t, p, "GET", "/hello", "").Code)
	}
	waitWarm(t, p, 1)
	waitWarm(t, p, 0) // expired
	require.Eventually(t, func() bool { return strings.Contains(w.Output.String(), testquixote.NoRequestTraceback) },
		10*time.Second, 5*time.Millisecond, "the child holding it exits")
	require.Equal(t, http.StatusOK, do(t, p, "GET", "/hello", "").Code, "the worker still serves")

	p.WarmMaxAge = time.Minute
	for range 2 {
		require.Equal(t, http.StatusOK, do(t, p, "GET", "/hello", "").Code)
	}
	waitWarm(t, p, 1)
	require.NoError(t, p.Close())
	assert.Equal(t, 0, warmStats(p).Warm)
	for range 3 {
		rec := do(t, p, "GET", "/hello", "")
		require.Equal(t, http.StatusOK, rec.Code)
		assert.Equal(t, "hello from python\n", rec.Body.String())
	}
	assert.Equal(t, 0, warmStats(p).Warm, "nothing is dialled ahead after Close")
}

// hangUpBackend accepts SCGI connections and, for each, reads the request header and
// then does what answer says; it counts the requests it read.
type hangUpBackend struct {
	l        net.Listener
	mu       sync.Mutex
	requests []string            // REQUEST_METHOD of each request read
	answer   func(conn net.Conn) // nil: a CGI 200 "ok"
}

func newHangUpBackend(t *testing.T) *hangUpBackend {
	h := &hangUpBackend{}
	h.l = acceptLoop(t, h.serve)
	return h
}

func (h *hangUpBackend) serve(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	req, err := ReadRequest(br, 1<<20)
	if err != nil {
		return // a connection dialled ahead and closed unused
	}
	io.Copy(io.Discard, req.Body)
	h.mu.Lock()
	h.requests = append(h.requests, req.Method)
	answer := h.answer
	h.mu.Unlock()
	if answer != nil {
		answer(conn)
		return
	}
	io.WriteString(conn, "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
}

func (h *hangUpBackend) methods() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.requests...)
}

// failingConn is a connection dialled ahead whose peer has gone in a way the idle
// check cannot see: writing fails before a byte goes out.
type failingConn struct{ net.Conn }

func (failingConn) Write([]byte) (int, error) { return 0, syscall.EPIPE }

// TestProxyWarmResend: a request whose header could not be written at all on a warm
// connection goes out on a fresh one, POST included (nothing of it was sent); a
// warm connection that takes the request and then hangs up is never sent it again,
// whatever the method.
func TestProxyWarmResend(t *testing.T) {
	h := newHangUpBackend(t)
	p, _ := newTestProxy(t, h.l.Addr().String())
	p.WarmConns = 1
	p.WarmMaxAge = time.Nanosecond // no two requests close enough: only injected connections
	b := p.pool.backends[0]
	inject := func(c net.Conn) {
		p.pool.mu.Lock()
		defer p.pool.mu.Unlock()
		b.warm = append(b.warm, &warmConn{conn: c, timer: time.NewTimer(time.Hour)})
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", h.l.Addr().String())
		require.NoError(t, err)
		return c
	}
	for _, method := range []string{"GET", "POST"} {
		before := len(h.methods())
		c := dial()
		inject(failingConn{c})
		rec := do(t, p, method, "/x", "body")
		assert.Equal(t, http.StatusOK, rec.Code, method)
		assert.Equal(t, "ok", rec.Body.String())
		assert.Equal(t, []string{method}, h.methods()[before:], "sent once, on a fresh connection")
		c.Close()
	}

	h.mu.Lock()
	h.answer = func(net.Conn) {} // read the request, then hang up without a word
	h.mu.Unlock()
	for _, method := range []string{"GET", "POST"} {
		p.pool.mu.Lock()
		b.restedUntil = time.Time{}
		p.pool.mu.Unlock()
		before := len(h.methods())
		inject(dial())
		rec := do(t, p, method, "/x", "body")
		assert.Equal(t, http.StatusBadGateway, rec.Code, method)
		require.Eventually(t, func() bool { return len(h.methods()) > before }, 5*time.Second, time.Millisecond)
		assert.Equal(t, []string{method}, h.methods()[before:], "%s not sent twice", method)
	}
}

// TestProxyWarmRestedBackend: a backend that rests after a failure loses its warm
// connections and gets no new ones until it answers again.
func TestProxyWarmRestedBackend(t *testing.T) {
	h := newHangUpBackend(t)
	p, _ := newTestProxy(t, h.l.Addr().String())
	p.WarmConns = 1
	for range 3 {
		require.Equal(t, http.StatusOK, do(t, p, "GET", "/x", "").Code)
	}
	waitWarm(t, p, 1)
	h.mu.Lock()
	h.answer = func(net.Conn) {}
	h.mu.Unlock()
	require.Equal(t, http.StatusBadGateway, do(t, p, "GET", "/x", "").Code)
	s := warmStats(p)
	assert.False(t, s.Healthy)
	assert.Equal(t, 0, s.Warm)
	require.Eventually(t, func() bool {
		p.pool.mu.Lock()
		defer p.pool.mu.Unlock()
		return p.pool.backends[0].dialling == 0
	}, 10*time.Second, time.Millisecond)
	assert.Equal(t, 0, warmStats(p).Warm, "nothing dialled ahead to a resting backend")

	h.mu.Lock()
	h.answer = nil
	h.mu.Unlock()
	require.Equal(t, http.StatusOK, do(t, p, "GET", "/x", "").Code, "a sole backend still gets requests")
	require.Equal(t, http.StatusOK, do(t, p, "GET", "/x", "").Code)
	waitWarm(t, p, 1) // healthy again: dialled ahead again
}

// TestProxyWarmAffinity: with connections dialled ahead, a key's requests still go to
// the backend that ranks first for it.
func TestProxyWarmAffinity(t *testing.T) {
	var addrs []string
	for _, name := range []string{"a", "b", "c"} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		serveSCGIOn(t, l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
		addrs = append(addrs, l.Addr().String())
	}
	p, _ := newTestProxy(t, addrs...)
	p.WarmConns = 1
	p.Affinity = func(r *http.Request) string { return r.Header.Get("X-Key") }
	for k := range 20 {
		var first string
		for i := range 5 {
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("X-Key", "key"+strconv.Itoa(k))
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, req)
			require.Equal(t, http.StatusOK, rec.Code)
			if i == 0 {
				first = rec.Body.String()
			}
			assert.Equal(t, first, rec.Body.String(), "key%d", k)
		}
	}
	var used uint64
	for _, s := range p.Stats() {
		used += s.WarmUsed
	}
	assert.Positive(t, used, "warm connections were used")
	require.NoError(t, p.Close())
}
