package scgi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pick acquires and releases a backend for key, as one request would.
func pick(t *testing.T, p *Proxy, key string) string {
	t.Helper()
	b, _, err := p.pool.acquire(context.Background(), key, make([]bool, len(p.pool.backends)), 0, time.Second)
	require.NoError(t, err)
	p.pool.release(b, false, 1, time.Minute)
	return b.addr
}

// TestAffinityDistribution: each key sticks to one backend, the keys spread evenly
// over the backends, and when a backend rests only its keys move (each to the one
// that ranks second for it), and they come back when it is healthy again.
func TestAffinityDistribution(t *testing.T) {
	addrs := []string{"10.0.0.1:4000", "10.0.0.2:4000", "10.0.0.3:4000", "unix:/run/app/scgi.sock"}
	p, err := NewProxy(addrs...)
	require.NoError(t, err)
	const keys = 4000
	first := map[string]string{}
	count := map[string]int{}
	for i := range keys {
		k := fmt.Sprintf("sess%07d", i)
		a := pick(t, p, k)
		assert.Equal(t, a, pick(t, p, k), "a key sticks to its backend")
		first[k] = a
		count[a]++
	}
	for _, a := range addrs {
		// An even share is 1000; a binomial spread stays well within ±15%.
		assert.InDelta(t, keys/len(addrs), count[a], float64(keys/len(addrs)*15/100), "share of %s: %v", a, count)
	}

	// Another proxy over the same backends, listed in another order, agrees.
	q, err := NewProxy(addrs[3], addrs[1], addrs[0], addrs[2])
	require.NoError(t, err)
	for k, a := range first {
		require.Equal(t, a, pick(t, q, k))
	}

	// The second backend rests: its keys move, the others' stay.
	down := p.pool.backends[1]
	p.pool.mu.Lock()
	down.restedUntil = time.Now().Add(time.Hour)
	p.pool.mu.Unlock()
	moved := map[string]int{}
	for k, a := range first {
		b := pick(t, p, k)
		if a == down.addr {
			assert.NotEqual(t, down.addr, b)
			moved[b]++
		} else {
			assert.Equal(t, a, b, "a key of a healthy backend stays")
		}
	}
	assert.Len(t, moved, 3, "the resting backend's keys spread over the others: %v", moved)
	p.pool.mu.Lock()
	down.restedUntil = time.Time{}
	p.pool.mu.Unlock()
	for k, a := range first {
		require.Equal(t, a, pick(t, p, k), "back when healthy")
	}
}

// TestAffinityAtCap: a key whose backend is at its connection limit goes to the next
// in its ranking rather than wait.
func TestAffinityAtCap(t *testing.T) {
	p, err := NewProxy("10.0.0.1:4000", "10.0.0.2:4000")
	require.NoError(t, err)
	fav := pick(t, p, "k")
	tried := make([]bool, 2)
	b, _, err := p.pool.acquire(context.Background(), "k", tried, 1, time.Second)
	require.NoError(t, err)
	assert.Equal(t, fav, b.addr)
	b2, _, err := p.pool.acquire(context.Background(), "k", tried, 1, time.Second)
	require.NoError(t, err)
	assert.NotEqual(t, fav, b2.addr, "the favourite is at its limit")
	p.pool.release(b, false, 1, time.Minute)
	p.pool.release(b2, false, 1, time.Minute)
}

// TestProxyAffinityFallback runs requests through a Proxy with Affinity over two real
// SCGI servers: a session's requests all reach one server; when that server is down
// they go to the other (a failed dial is retried there), and requests without a key
// are balanced over both.
func TestProxyAffinityFallback(t *testing.T) {
	served := map[string]chan string{}
	var addrs []string
	var servers []*Server
	for _, name := range []string{"a", "b"} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ch := make(chan string, 100)
		served[l.Addr().String()] = ch
		srv := &Server{ErrorLog: slog.New(slog.NewTextHandler(io.Discard, nil)), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ch <- name
			fmt.Fprint(w, name)
		})}
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() { srv.Close() })
		addrs = append(addrs, l.Addr().String())
		servers = append(servers, srv)
	}
	p, err := NewProxy(addrs...)
	require.NoError(t, err)
	p.ErrorLog = slog.New(slog.NewTextHandler(io.Discard, nil))
	p.Affinity = func(r *http.Request) string { return r.Header.Get("X-Session") }
	get := func(key string) (int, string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if key != "" {
			r.Header.Set("X-Session", key)
		}
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	// Find a key for each server.
	keyOf := map[string]string{}
	for i := 0; len(keyOf) < 2; i++ {
		_, name := get(fmt.Sprintf("s%d", i))
		if _, ok := keyOf[name]; !ok {
			keyOf[name] = fmt.Sprintf("s%d", i)
		}
	}
	for range 10 {
		_, name := get(keyOf["a"])
		assert.Equal(t, "a", name)
		_, name = get(keyOf["b"])
		assert.Equal(t, "b", name)
	}
	seen := map[string]bool{}
	for range 10 {
		_, name := get("")
		seen[name] = true
	}
	assert.Len(t, seen, 2, "no key: both serve")

	// Server a goes away: its key falls back to b.
	require.NoError(t, servers[0].Close())
	for range 3 {
		code, name := get(keyOf["a"])
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, "b", name)
	}
}
