package scgi

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serveInBackground runs p.ServeHTTP(w, r) and reports, when it returns, whether the
// worker had finished the page (h.done existed) by then.
func serveInBackground(p *Proxy, w http.ResponseWriter, r *http.Request, h testquixote.Hold) <-chan bool {
	returned := make(chan bool, 1)
	go func() {
		p.ServeHTTP(w, r)
		returned <- h.IsDone()
	}()
	return returned
}

// A client that goes away while the worker runs its request does not end the request
// for the proxy: ServeHTTP returns (and frees the slot) only once the worker is done,
// so that whatever the caller holds for the request (a session's turn) covers the
// worker's writes. Nothing is written to the departed client.
func TestProxyWaitsForWorkerAfterClientLeaves(t *testing.T) {
	w := startQuixote(t, testquixote.Options{Children: 2})
	p, logs := newTestProxy(t, w.Addr)
	h := testquixote.NewHold(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := httptest.NewRecorder()
	returned := serveInBackground(p, rec, httptest.NewRequest("GET", "/sleep?"+h.Query(), nil).WithContext(ctx), h)
	require.Eventually(t, func() bool { return h.IsStarted() }, 10*time.Second, 5*time.Millisecond)
	cancel()
	h.Open(t)
	assert.True(t, <-returned, "ServeHTTP returned while the worker was still running the request")
	assert.Zero(t, rec.Body.Len(), "nothing is written for a client that left")
	assert.False(t, rec.Flushed)
	st := p.Stats()[0]
	assert.Equal(t, 0, st.InFlight)
	assert.Zero(t, st.Abandoned)
	assert.Zero(t, st.Failures)
	assert.NotContains(t, logs.String(), "level=ERROR")
}

// A response that does not start within ResponseHeaderTimeout is answered 504 at once,
// whole (the client is not kept waiting for the worker), and the proxy then waits
// for the worker before its handler returns.
func TestProxyTimeoutAnswersAtOnceThenWaits(t *testing.T) {
	w := startQuixote(t, testquixote.Options{Children: 2})
	p, logs := newTestProxy(t, w.Addr)
	p.ResponseHeaderTimeout = 200 * time.Millisecond
	h := testquixote.NewHold(t)
	returned := make(chan bool, 1)
	base := serveProxy(t, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		p.ServeHTTP(rw, r)
		returned <- h.IsDone()
	}))
	resp, err := noRedirect.Get(base + "/sleep?" + h.Query())
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusGatewayTimeout, resp.StatusCode)
	assert.Equal(t, "Gateway Timeout\n", string(body))
	assert.False(t, h.IsDone(), "the 504 came while the worker still ran the request")
	assert.Equal(t, 1, p.Stats()[0].InFlight, "the worker still holds the connection slot")
	h.Open(t)
	assert.True(t, <-returned, "ServeHTTP returned while the worker was still running the request")
	st := p.Stats()[0]
	assert.Equal(t, 0, st.InFlight)
	assert.Zero(t, st.Abandoned)
	assert.True(t, st.Healthy, "a slow answer is not a dead backend")
	assert.Contains(t, logs.String(), "timeout awaiting response headers")
	assert.NotContains(t, logs.String(), "level=ERROR")
}

// The wait for a worker that no longer has a client is bounded by DrainTimeout and
// DrainBytes; past them the request is logged at error level and counted, and the
// proxy lets go. A negative DrainTimeout does not wait at all.
func TestProxyDrainLimits(t *testing.T) {
	w := startQuixote(t, testquixote.Options{Children: 3})

	t.Run("DrainTimeout", func(t *testing.T) {
		p, logs := newTestProxy(t, w.Addr)
		p.DrainTimeout = 200 * time.Millisecond
		h := testquixote.NewHold(t)
		ctx, cancel := context.WithCancel(context.Background())
		returned := serveInBackground(p, httptest.NewRecorder(), httptest.NewRequest("GET", "/sleep?"+h.Query(), nil).WithContext(ctx), h)
		require.Eventually(t, func() bool { return h.IsStarted() }, 10*time.Second, 5*time.Millisecond)
		cancel()
		assert.False(t, <-returned, "the proxy gave up before the worker finished")
		st := p.Stats()[0]
		assert.Equal(t, uint64(1), st.Abandoned)
		assert.Equal(t, 0, st.InFlight)
		assert.Regexp(t, `level=ERROR msg="scgi proxy: the backend may still be running a request it was left to finish" method=GET path=/sleep .*not done 200ms after`, logs.String())
	})

	t.Run("DrainBytes", func(t *testing.T) {
		p, logs := newTestProxy(t, w.Addr)
		p.DrainBytes = 1000
		h := testquixote.NewHold(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// The client leaves once the first chunk reached it, and the page then sends
		// some 40 KB more.
		cw := &leavingWriter{ResponseRecorder: httptest.NewRecorder(), leave: func() { cancel(); h.Open(t) }}
		p.ServeHTTP(cw, httptest.NewRequest("GET", "/stream?n=5000&gate="+url.QueryEscape(h.Gate), nil).WithContext(ctx))
		assert.Equal(t, "chunk 0\n", cw.Body.String(), "nothing more is written once the client left")
		assert.Equal(t, uint64(1), p.Stats()[0].Abandoned)
		assert.Regexp(t, `level=ERROR .*still sending after 1000 bytes`, logs.String())
	})

	t.Run("negative DrainTimeout", func(t *testing.T) {
		p, logs := newTestProxy(t, w.Addr)
		p.DrainTimeout = -1
		h := testquixote.NewHold(t)
		ctx, cancel := context.WithCancel(context.Background())
		returned := serveInBackground(p, httptest.NewRecorder(), httptest.NewRequest("GET", "/sleep?"+h.Query(), nil).WithContext(ctx), h)
		require.Eventually(t, func() bool { return h.IsStarted() }, 10*time.Second, 5*time.Millisecond)
		cancel()
		assert.False(t, <-returned, "no wait for the worker")
		assert.Zero(t, p.Stats()[0].Abandoned, "not waiting by choice is not giving up")
		assert.NotContains(t, logs.String(), "level=ERROR")
	})
}

// leavingWriter calls leave after the first write of the response body.
type leavingWriter struct {
	*httptest.ResponseRecorder
	leave func()
	left  bool
}

func (l *leavingWriter) Write(p []byte) (int, error) {
	n, err := l.ResponseRecorder.Write(p)
	if !l.left {
		l.left = true
		l.leave()
	}
	return n, err
}
