package scgi

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBodyRateDeadlines(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := BodyLimits{MinRate: 100, Grace: 2 * time.Second, Timeout: time.Minute}.start(t0)
	require.NotNil(t, r)
	assert.Equal(t, t0.Add(2*time.Second), r.before(t0), "nothing is required during the grace period")
	require.NoError(t, r.after(t0.Add(time.Second), 50, nil))
	// 50 bytes allow 0.5 s of waiting; the grace allows 2 s, of which 1 s is used.
	assert.Equal(t, t0.Add(3*time.Second), r.before(t0.Add(2*time.Second)), "time spent outside reads is not counted")
	require.NoError(t, r.after(t0.Add(2500*time.Millisecond), 450, nil))
	// 500 bytes allow 5 s of waiting in all; 1.5 s are used.
	assert.Equal(t, t0.Add(13500*time.Millisecond), r.before(t0.Add(10*time.Second)))
	err := r.after(t0.Add(13500*time.Millisecond), 0, fmt.Errorf("read: %w", timeoutErr{}))
	assert.ErrorIs(t, err, ErrBodyTooSlow)
	assert.Equal(t, http.StatusRequestTimeout, StatusForError(errClientBody{err}))

	r = BodyLimits{MinRate: 100, Grace: time.Second, Timeout: 3 * time.Second}.start(t0)
	r.before(t0)
	require.NoError(t, r.after(t0.Add(time.Second), 1000, nil))
	assert.Equal(t, t0.Add(3*time.Second), r.before(t0.Add(2*time.Second)), "the total deadline caps a fast body too")

	assert.Nil(t, BodyLimits{MinRate: -1, Timeout: -1}.start(t0), "no limits")
	r = BodyLimits{}.start(t0)
	assert.Equal(t, t0.Add(DefaultBodyRateGrace), r.before(t0), "defaults")
	assert.Equal(t, t0.Add(DefaultBodyTimeout), r.total)
	r.before(t0)
	assert.Equal(t, io.ErrUnexpectedEOF, r.after(t0.Add(time.Hour), 0, io.ErrUnexpectedEOF), "only timeouts are the limits' doing")
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// slowLimits cut a client whose body averages under 1 KB/s after 3 s of waiting: the
// slow clients below send 10 bytes a second.
var slowLimits = BodyLimits{MinRate: 1000, Grace: 3 * time.Second, Timeout: time.Minute}

// events records the order in which things happened.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	e.log = append(e.log, s)
	e.mu.Unlock()
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.log...)
}

// slowClient connects to addr, sends head, then the body one byte every 100 ms, and
// reports the response's first line (or the error that ended it). It signals started
// once the head and a first body byte are out.
func slowClient(addr string, head []byte, bodyLen int, started chan<- struct{}) string {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		started <- struct{}{}
		return "dial: " + err.Error()
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Minute))
	if _, err := conn.Write(append(head, 'x')); err != nil {
		started <- struct{}{}
		return "write: " + err.Error()
	}
	started <- struct{}{}
	answered := make(chan string, 1)
	go func() {
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil && line == "" {
			line = "read: " + err.Error()
		}
		answered <- strings.TrimSpace(line)
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 1; i < bodyLen; i++ {
		select {
		case line := <-answered:
			return line
		case <-tick.C:
			if _, err := conn.Write([]byte{'x'}); err != nil {
				return <-answered
			}
		}
	}
	return <-answered
}

// runSlowClients starts n slow clients, then, once all are sending, a legitimate
// request (legit), and checks that the legitimate request is answered before any slow
// client is, and that every slow client is cut off with want.
func runSlowClients(t *testing.T, n int, slow func(started chan<- struct{}) string, legit func() error, want string) {
	t.Helper()
	var ev events
	started := make(chan struct{}, n)
	results := make(chan string, n)
	for i := range n {
		go func() {
			r := slow(started)
			ev.add(fmt.Sprintf("slow %d: %s", i, r))
			results <- r
		}()
	}
	for range n {
		<-started
	}
	require.NoError(t, legit())
	ev.add("legit answered")
	for range n {
		assert.Equal(t, want, <-results)
	}
	log := ev.list()
	assert.Equal(t, "legit answered", log[0], "slow clients must not hold up a legitimate request: %q", log)
}

func TestProxySlowBodiesHTTP(t *testing.T) {
	t.Parallel() // mostly waiting for slow clients
	w := startQuixote(t, testquixote.Options{Children: 2})
	p, logs := newTestProxy(t, w.Addr)
	p.BodyLimits = slowLimits
	base := serveProxy(t, p)
	require.Equal(t, http.StatusOK, getStatus(t, "GET", base+"/hello", nil)) // a child is up

	head := []byte("POST /hash HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n")
	runSlowClients(t, 6, func(started chan<- struct{}) string {
		return slowClient(strings.TrimPrefix(base, "http://"), head, 1000, started)
	}, func() error {
		if code := getStatus(t, "POST", base+"/hash", strings.NewReader("name=legit")); code != http.StatusOK {
			return fmt.Errorf("legitimate request: %d", code)
		}
		return nil
	}, "HTTP/1.1 408 Request Timeout")
	assert.Equal(t, uint64(2), p.Stats()[0].Requests, "no slow body ever reached Quixote")
	assert.Contains(t, logs.String(), "arrived too slowly")
}

func TestProxySlowBodiesSCGI(t *testing.T) {
	t.Parallel() // mostly waiting for slow clients
	w := startQuixote(t, testquixote.Options{Children: 2})
	p, _ := newTestProxy(t, w.Addr)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &Server{Handler: p, BodyLimits: slowLimits, ErrorLog: slog.New(slog.NewTextHandler(io.Discard, nil))}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	addr := l.Addr().String()

	request := func(path string, body string) []byte {
		return scgiNetstring("CONTENT_LENGTH", fmt.Sprint(len(body)), "SCGI", "1", "REQUEST_METHOD", "POST",
			"REQUEST_URI", path, "SERVER_PROTOCOL", "HTTP/1.1", "REMOTE_ADDR", "127.0.0.1",
			"CONTENT_TYPE", "application/octet-stream")
	}
	runSlowClients(t, 6, func(started chan<- struct{}) string {
		return slowClient(addr, request("/hash", strings.Repeat("x", 1000)), 1000, started)
	}, func() error {
		resp, body, err := roundTripSCGI(t, addr, append(request("/hash", "legit"), "legit"...))
		if err == nil && resp.status != http.StatusOK {
			err = fmt.Errorf("legitimate request: %d %s", resp.status, body)
		}
		return err
	}, "Status: 408 Request Timeout")
	assert.Equal(t, uint64(1), p.Stats()[0].Requests, "no slow body ever reached Quixote")
}

// TestProxySlowStreamedBody: a body larger than BufferBodyBytes is streamed to Quixote
// as it arrives, under the same limits: the slow client is cut off, which frees the
// worker.
func TestProxySlowStreamedBody(t *testing.T) {
	t.Parallel() // mostly waiting for a slow client
	w := startQuixote(t, testquixote.Options{Children: 1})
	p, logs := newTestProxy(t, w.Addr)
	p.BodyLimits = slowLimits
	p.BufferBodyBytes = 100
	base := serveProxy(t, p)

	started := make(chan struct{}, 1)
	head := []byte("POST /hash HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n")
	got := make(chan string, 1)
	go func() { got <- slowClient(strings.TrimPrefix(base, "http://"), head, 1000, started) }()
	<-started
	require.Eventually(t, func() bool { return p.Stats()[0].InFlight == 1 }, 10*time.Second, 5*time.Millisecond,
		"a large body streams: the worker is dialled at once")
	line := <-got
	assert.True(t, line == "HTTP/1.1 408 Request Timeout" || strings.HasPrefix(line, "read: "), "%s\n%s", line, logs)
	require.Eventually(t, func() bool { return p.Stats()[0].InFlight == 0 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, http.StatusOK, getStatus(t, "POST", base+"/hash", strings.NewReader(strings.Repeat("y", 500))),
		"the sole child serves again")
}

// TestServerBodyLimitsCountOnlyWaiting: a handler that takes its time before reading a
// body the client sent at once is not taken for a slow client.
func TestServerBodyLimitsCountOnlyWaiting(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &Server{BodyLimits: BodyLimits{MinRate: 1 << 20, Grace: 50 * time.Millisecond},
		ErrorLog: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(300 * time.Millisecond) // six times the grace period
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusRequestTimeout)
				return
			}
			fmt.Fprintf(w, "%d", len(b))
		})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	body := strings.Repeat("b", 100<<10)
	raw := append(scgiNetstring("CONTENT_LENGTH", fmt.Sprint(len(body)), "SCGI", "1", "REQUEST_METHOD", "POST",
		"REQUEST_URI", "/"), body...)
	resp, got, err := roundTripSCGI(t, l.Addr().String(), raw)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.status, got)
	assert.Equal(t, fmt.Sprint(len(body)), got)
}
