package scgi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func getStatus(t *testing.T, method, url string, body io.Reader) int {
	t.Helper()
	resp, err := noRedirect.Do(newReq(t, method, url, body))
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestProxyWorkerKilledMidResponse(t *testing.T) {
	w := startQuixote(t, testquixote.Options{Children: 2})
	for _, framing := range []string{"length", "chunked"} {
		t.Run(framing, func(t *testing.T) {
			p, logs := newTestProxy(t, w.Addr)
			base := serveProxy(t, p)
			resp, err := noRedirect.Get(base + "/die?after=1000&framing=" + framing)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode, "the status line went out before the worker died")
			body, err := io.ReadAll(resp.Body)
			require.Error(t, err, "a cut-off response must not reach the client as a whole one")
			assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
			assert.Equal(t, strings.Repeat("x", 1000), string(body))
			assert.Contains(t, logs.String(), "response cut off")
			assert.True(t, p.Stats()[0].Healthy, "a failure after the response started does not rest the backend")
		})
	}
}

func TestProxyWorkerDiesBeforeResponse(t *testing.T) {
	w := startQuixote(t, testquixote.Options{Children: 2})
	p, logs := newTestProxy(t, w.Addr)
	base := serveProxy(t, p)
	assert.Equal(t, http.StatusBadGateway, getStatus(t, "GET", base+"/die?when=early", nil))
	assert.Contains(t, logs.String(), "without a response")
	st := p.Stats()[0]
	assert.Equal(t, uint64(1), st.Failures)
	assert.False(t, st.Healthy, "a backend that hangs up without answering is reported unhealthy")
	assert.Equal(t, 0, st.InFlight)
	// A sole backend still gets requests (as in nginx), and the worker has replaced
	// its dead child.
	assert.Equal(t, http.StatusOK, getStatus(t, "GET", base+"/hello", nil))
	assert.Eventually(t, func() bool { return p.Stats()[0].Healthy }, 5*time.Second, 5*time.Millisecond,
		"a success ends the rest")

	// In a pool, the failing backend rests: requests go to the other one.
	w2 := startQuixote(t, testquixote.Options{Children: 2})
	p2, _ := newTestProxy(t, w.Addr, w2.Addr)
	base2 := serveProxy(t, p2)
	assert.Equal(t, http.StatusBadGateway, getStatus(t, "GET", base2+"/die?when=early", nil))
	for range 3 {
		assert.Equal(t, http.StatusOK, getStatus(t, "GET", base2+"/hello", nil))
	}
	st2 := p2.Stats()
	assert.Equal(t, uint64(1), st2[0].Requests, "the resting backend got nothing more")
	assert.Equal(t, uint64(3), st2[1].Requests)
}

func TestProxySoleBackendNotRested(t *testing.T) {
	p, _ := newTestProxy(t, deadAddr(t))
	base := serveProxy(t, p)
	for range 3 {
		assert.Equal(t, http.StatusBadGateway, getStatus(t, "GET", base+"/hello", nil))
	}
	st := p.Stats()[0]
	assert.Equal(t, uint64(3), st.Requests, "each request tries the sole backend again")
	assert.Equal(t, uint64(3), st.Failures)
	assert.False(t, st.Healthy)
}

func TestProxyWorkerNotListening(t *testing.T) {
	p, logs := newTestProxy(t, deadAddr(t), "unix:"+unixSocketPath(t, "none.sock"))
	base := serveProxy(t, p)
	assert.Equal(t, http.StatusBadGateway, getStatus(t, "GET", base+"/hello", nil))
	assert.Contains(t, logs.String(), "connection refused")
	assert.Contains(t, logs.String(), "trying another backend")
	for _, st := range p.Stats() {
		assert.Equal(t, uint64(1), st.Failures, st.Addr)
		assert.False(t, st.Healthy, st.Addr)
		assert.True(t, st.RestedUntil.After(time.Now()))
	}
	// Both rest now: 503 without trying them.
	assert.Equal(t, http.StatusServiceUnavailable, getStatus(t, "GET", base+"/hello", nil))
	for _, st := range p.Stats() {
		assert.Equal(t, uint64(1), st.Requests, "a resting backend gets no connection attempt")
	}
}

func TestProxyWorkerTooSlow(t *testing.T) {
	t.Parallel()                                           // mostly waiting on a sleeping worker
	w := startQuixote(t, testquixote.Options{Children: 3}) // one child stays free for the last request
	p, logs := newTestProxy(t, w.Addr)
	p.ResponseHeaderTimeout = 300 * time.Millisecond
	base := serveProxy(t, p)
	assert.Equal(t, http.StatusGatewayTimeout, getStatus(t, "GET", base+"/sleep?s=1.5", nil))
	assert.Contains(t, logs.String(), "timeout awaiting response headers")
	st := p.Stats()[0]
	assert.True(t, st.Healthy, "a slow answer is not a dead backend")
	assert.Equal(t, uint64(0), st.Failures)
	// A POST whose worker is slow times out the same way.
	assert.Equal(t, http.StatusGatewayTimeout, getStatus(t, "POST", base+"/sleep?s=1.5", strings.NewReader("x=1")))
	assert.Equal(t, http.StatusOK, getStatus(t, "GET", base+"/hello", nil))
}

func TestProxyPoolWithDeadBackend(t *testing.T) {
	w := startQuixote(t, testquixote.Options{Children: 2})
	dead := deadAddr(t)

	t.Run("GET is retried on the next backend", func(t *testing.T) {
		p, _ := newTestProxy(t, dead, w.Addr) // a fresh pool tries the first backend first
		base := serveProxy(t, p)
		assert.Equal(t, http.StatusOK, getStatus(t, "GET", base+"/hello", nil))
		st := p.Stats()
		assert.Equal(t, uint64(1), st[0].Failures)
		assert.False(t, st[0].Healthy)
		assert.Equal(t, uint64(1), st[1].Requests)
		assert.True(t, st[1].Healthy)
	})

	t.Run("POST is not retried", func(t *testing.T) {
		p, _ := newTestProxy(t, dead, w.Addr)
		base := serveProxy(t, p)
		assert.Equal(t, http.StatusBadGateway, getStatus(t, "POST", base+"/hash", strings.NewReader("abc")))
		assert.Equal(t, uint64(0), p.Stats()[1].Requests, "a POST must not move to another backend")
		// The dead backend now rests, so the next POST goes to the live one.
		assert.Equal(t, http.StatusOK, getStatus(t, "POST", base+"/hash", strings.NewReader("abc")))
	})
}

func TestProxyBalancing(t *testing.T) {
	t.Parallel() // mostly waiting on a sleeping worker
	w1 := startQuixote(t, testquixote.Options{Children: 2})
	w2 := startQuixote(t, testquixote.Options{Unix: true, Children: 2})
	p, _ := newTestProxy(t, w1.Addr, w2.Addr)
	base := serveProxy(t, p)

	// Idle pool: ties go round-robin.
	for range 4 {
		require.Equal(t, http.StatusOK, getStatus(t, "GET", base+"/hello", nil))
	}
	st := p.Stats()
	assert.Equal(t, uint64(2), st[0].Requests)
	assert.Equal(t, uint64(2), st[1].Requests)

	// With a long request on one backend, the others go to the less busy one.
	done := make(chan int)
	go func() {
		resp, err := http.Get(base + "/sleep?s=1")
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	// A finished request's slot is released just after its client has the response:
	// wait until only the sleeper holds one.
	busy := -1
	settled := func() bool {
		st := p.Stats()
		if st[0].Requests+st[1].Requests != 5 || st[0].InFlight+st[1].InFlight != 1 {
			return false
		}
		busy = 0
		if st[1].InFlight == 1 {
			busy = 1
		}
		return true
	}
	require.Eventually(t, settled, 5*time.Second, 5*time.Millisecond)
	before := p.Stats()
	for i := range 3 {
		require.Equal(t, http.StatusOK, getStatus(t, "GET", base+"/hello", nil))
		require.Eventually(t, func() bool {
			st := p.Stats()
			return st[1-busy].InFlight == 0 && st[0].Requests+st[1].Requests == uint64(6+i)
		}, 5*time.Second, 5*time.Millisecond)
	}
	after := p.Stats()
	assert.Equal(t, before[busy].Requests, after[busy].Requests, "least connections: the busy backend gets none")
	assert.Equal(t, before[1-busy].Requests+3, after[1-busy].Requests)
	assert.Equal(t, http.StatusOK, <-done)
}

func TestProxyConnectionCap(t *testing.T) {
	t.Parallel() // mostly waiting on a sleeping worker
	w := startQuixote(t, testquixote.Options{Children: 3})
	p, logs := newTestProxy(t, w.Addr)
	p.MaxConnsPerBackend = 1
	p.QueueTimeout = 200 * time.Millisecond
	base := serveProxy(t, p)

	slow := func() chan int {
		done := make(chan int, 1)
		go func() {
			resp, err := http.Get(base + "/sleep?s=1")
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		require.Eventually(t, func() bool { return p.Stats()[0].InFlight == 1 }, 5*time.Second, 5*time.Millisecond)
		return done
	}

	done := slow()
	assert.Equal(t, http.StatusServiceUnavailable, getStatus(t, "GET", base+"/hello", nil))
	assert.Contains(t, logs.String(), "connection limit")
	assert.Equal(t, http.StatusOK, <-done)
	assert.True(t, p.Stats()[0].Healthy, "being at the cap is not a failure")

	// With a longer queue the request waits for the slot instead.
	p.QueueTimeout = 10 * time.Second
	done = slow()
	assert.Equal(t, http.StatusOK, getStatus(t, "GET", base+"/hello", nil))
	assert.Equal(t, http.StatusOK, <-done)
}

func TestProxyClientGoesAway(t *testing.T) {
	t.Parallel() // mostly waiting on a sleeping worker
	w := startQuixote(t, testquixote.Options{Children: 2})
	p, _ := newTestProxy(t, w.Addr)
	base := serveProxy(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req := newReq(t, "GET", base+"/sleep?s=1", nil).WithContext(ctx)
	_, err := http.DefaultClient.Do(req)
	require.Error(t, err)
	require.Eventually(t, func() bool { return p.Stats()[0].InFlight == 0 }, 5*time.Second, 5*time.Millisecond,
		"the backend connection is closed when the client goes away")
	st := p.Stats()[0]
	assert.True(t, st.Healthy)
	assert.Equal(t, uint64(0), st.Failures)
}

func TestProxyConcurrentRequests(t *testing.T) {
	// A short soak: many requests at once across two workers, with a cap.
	w1 := startQuixote(t, testquixote.Options{Children: 3})
	w2 := startQuixote(t, testquixote.Options{Children: 3})
	p, _ := newTestProxy(t, w1.Addr, w2.Addr)
	p.MaxConnsPerBackend = 3
	base := serveProxy(t, p)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 25 {
				path := "/hello"
				if (i+j)%5 == 0 {
					path = "/stream?n=3"
				}
				resp, err := http.Get(base + path)
				if err != nil {
					errs <- err
					return
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != http.StatusOK {
					err = errors.New(resp.Status)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// A slot is released just after the client has its response: wait for the last.
	require.Eventually(t, func() bool {
		st := p.Stats()
		return st[0].InFlight == 0 && st[1].InFlight == 0
	}, 5*time.Second, 5*time.Millisecond)
	var total uint64
	for _, s := range p.Stats() {
		assert.Equal(t, uint64(0), s.Failures)
		total += s.Requests
	}
	assert.Equal(t, uint64(200), total)
}

// TestProxyCanceledRequestsLeaveNoEmptyConnections: requests whose client goes away at
// any moment around the dial never leave python-scgi an empty connection (which kills
// the child that gets it; startQuixote's cleanup looks for that).
func TestProxyCanceledRequestsLeaveNoEmptyConnections(t *testing.T) {
	w := startQuixote(t, testquixote.Options{Children: 2})
	p, _ := newTestProxy(t, w.Addr)
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			r := httptest.NewRequest("GET", "/hello", nil).WithContext(ctx)
			time.AfterFunc(time.Duration(i%20)*50*time.Microsecond, cancel)
			p.ServeHTTP(httptest.NewRecorder(), r)
			cancel()
		}()
		if i%10 == 9 {
			wg.Wait()
		}
	}
	wg.Wait()
	assert.Equal(t, http.StatusOK, getStatus(t, "GET", serveProxy(t, p)+"/hello", nil))
}
