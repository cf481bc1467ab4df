package scgi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrNoBackend reports that no backend could take the request: every backend is resting
// after failures, or every healthy one stayed at MaxConnsPerBackend for QueueTimeout.
// The proxy answers 503.
var ErrNoBackend = errors.New("scgi: no backend available")

// BackendStats is a snapshot of one backend's state, for metrics.
type BackendStats struct {
	Addr        string    // the address as given to NewProxy
	InFlight    int       // requests holding a connection to it now
	Requests    uint64    // connection attempts made to it
	Failures    uint64    // attempts that failed (dial error, or no response at all)
	Abandoned   uint64    // requests it may still have been running when the proxy gave up (Proxy.DrainTimeout)
	Healthy     bool      // false while it rests after failures
	RestedUntil time.Time // when a resting backend gets requests again (zero if healthy)
	Warm        int       // connections dialled ahead, waiting for a request (Proxy.WarmConns)
	WarmUsed    uint64    // requests sent on a connection dialled ahead
}

// backend is one SCGI server in the pool. Its counters are guarded by pool.mu.
type backend struct {
	addr             string // as given
	idx              int    // position in the pool
	network, address string // for net.Dial
	hash             uint64 // of addr, for affinity (rendezvous hashing)

	inFlight    int
	requests    uint64
	failures    uint64
	abandoned   uint64
	consecutive int // failures since the last success
	restedUntil time.Time

	// Connections dialled ahead (Proxy.WarmConns): waiting ones, oldest first, and
	// dials in progress; both count toward MaxConnsPerBackend.
	warm      []*warmConn
	dialling  int
	warmUsed  uint64
	lastStart time.Time // of the latest request
	busy      bool      // the latest two requests came less than WarmMaxAge apart
}

// parseBackend accepts "host:port" (TCP), "unix:/path" or an absolute path (UNIX socket).
func parseBackend(s string) (*backend, error) {
	b := &backend{addr: s, hash: fnv64(s)}
	switch {
	case strings.HasPrefix(s, "unix:"):
		b.network, b.address = "unix", strings.TrimPrefix(s, "unix:")
		if b.address == "" {
			return nil, fmt.Errorf("scgi: backend %q: empty socket path", s)
		}
	case strings.HasPrefix(s, "/"):
		b.network, b.address = "unix", s
	default:
		host, port, err := net.SplitHostPort(s)
		if err != nil || port == "" {
			return nil, fmt.Errorf("scgi: backend %q: want host:port, unix:/path or /path", s)
		}
		b.network, b.address = "tcp", net.JoinHostPort(host, port)
	}
	return b, nil
}

// pool balances requests over backends: least connections in flight, ties broken
// round-robin, skipping backends that rest after failures (passive health: a backend is
// only ever judged by real requests, never probed — an empty connection kills a
// python-scgi worker child).
type pool struct {
	mu       sync.Mutex
	backends []*backend
	next     int           // round-robin cursor for ties
	freed    chan struct{} // closed when a connection slot frees up, if anyone waits
	closed   bool          // Proxy.Close was called: no more connections dialled ahead
}

// full reports whether b is at maxConns: its requests in flight and the connections
// being dialled ahead to it fill the cap. A connection already dialled ahead is
// within the cap, and a request may take it.
func (b *backend) full(maxConns int) bool {
	return maxConns > 0 && b.inFlight+b.dialling >= maxConns
}

// acquire picks a backend not in tried and reserves a connection slot on it, with
// the oldest connection dialled ahead to it if there is one: by key
// when key is not "" (see pickByKeyLocked), else by least connections. When every
// candidate is at maxConns it waits up to queueTimeout for a slot.
func (p *pool) acquire(ctx context.Context, key string, tried []bool, maxConns int, queueTimeout time.Duration) (*backend, *warmConn, error) {
	var timer *time.Timer
	var keyHash uint64
	if key != "" {
		keyHash = fnv64(key)
	}
	for {
		p.mu.Lock()
		var b *backend
		var atCap bool
		if key != "" {
			b, atCap = p.pickByKeyLocked(time.Now(), keyHash, tried, maxConns)
		} else {
			b, atCap = p.pickLocked(time.Now(), tried, maxConns)
		}
		if b != nil {
			b.inFlight++
			b.requests++
			// A connection dialled ahead is taken with the slot, in the same step, so
			// that it is never counted both as waiting and as in flight.
			var wc *warmConn
			if len(b.warm) > 0 {
				wc = b.warm[0] // the oldest: the first the worker accepted
				b.warm = slices.Delete(b.warm, 0, 1)
			}
			p.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return b, wc, nil
		}
		if !atCap {
			p.mu.Unlock()
			return nil, nil, fmt.Errorf("%w: all backends are resting after failures", ErrNoBackend)
		}
		if p.freed == nil {
			p.freed = make(chan struct{})
		}
		freed := p.freed
		p.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(queueTimeout)
			defer timer.Stop()
		}
		select {
		case <-freed:
		case <-timer.C:
			return nil, nil, fmt.Errorf("%w: all backends at their connection limit (%d) for %v", ErrNoBackend, maxConns, queueTimeout)
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
}

// pickLocked returns the usable backend with the fewest requests in flight, or nil and
// whether some backend was usable but for its connection limit.
func (p *pool) pickLocked(now time.Time, tried []bool, maxConns int) (best *backend, atCap bool) {
	n := len(p.backends)
	bestIdx := 0
	for k := 0; k < n; k++ {
		i := (p.next + k) % n
		b := p.backends[i]
		// A sole backend is never rested (as in nginx): refusing every request until
		// FailTimeout passes would only turn a worker's recovery into 503s.
		if tried[i] || (n > 1 && now.Before(b.restedUntil)) {
			continue
		}
		if b.full(maxConns) {
			atCap = true
			continue
		}
		if best == nil || b.inFlight < best.inFlight {
			best, bestIdx = b, i
		}
	}
	if best != nil {
		p.next = (bestIdx + 1) % n
	}
	return best, atCap
}

// pickByKeyLocked returns the usable backend that ranks first for the key whose hash
// is keyHash, by rendezvous (highest random weight) hashing: each backend's score is
// a hash of the key and its address, so every gateway ranks the backends alike for a
// key, and a backend that rests or leaves moves only the keys it had. A backend
// resting after failures, or at maxConns, is passed over for the next in rank (as
// nginx's "hash ... consistent" passes over one at max_conns), so a request never
// waits for its favourite while another could take it.
func (p *pool) pickByKeyLocked(now time.Time, keyHash uint64, tried []bool, maxConns int) (best *backend, atCap bool) {
	n := len(p.backends)
	var bestScore uint64
	for i, b := range p.backends {
		if tried[i] || (n > 1 && now.Before(b.restedUntil)) {
			continue
		}
		if b.full(maxConns) {
			atCap = true
			continue
		}
		if score := mix64(keyHash ^ b.hash); best == nil || score > bestScore {
			best, bestScore = b, score
		}
	}
	return best, atCap
}

// fnv64 is the 64-bit FNV-1a hash of s: stable across processes and releases, so
// that gateways agree on where a key goes.
func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix64 is splitmix64's finalizer: it spreads the combined hashes of a key and a
// backend evenly, so that each backend ranks first for an equal share of keys.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// release returns b's connection slot and records the outcome of the attempt: a failure
// counts toward resting the backend for failTimeout once maxFails failures come in a row
// (maxFails < 0: never rest); ok resets that count.
func (p *pool) release(b *backend, failed bool, maxFails int, failTimeout time.Duration) {
	var drop []*warmConn
	defer func() { closeWarm(drop) }() // after the unlock below
	p.mu.Lock()
	defer p.mu.Unlock()
	b.inFlight--
	if failed {
		b.failures++
		b.consecutive++
		if maxFails >= 0 && b.consecutive >= maxFails {
			b.restedUntil = time.Now().Add(failTimeout)
			b.consecutive = 0
			drop = dropWarmLocked(b) // what it accepted while failing is of no use
		}
	} else {
		b.consecutive = 0
		b.restedUntil = time.Time{} // it answered: healthy again
	}
	p.signalLocked()
}

// signalLocked wakes the requests waiting for a connection slot.
func (p *pool) signalLocked() {
	if p.freed != nil {
		close(p.freed)
		p.freed = nil
	}
}

// abandoned counts a request that b may still have been running when the proxy gave up
// waiting for it.
func (p *pool) abandoned(b *backend) {
	p.mu.Lock()
	b.abandoned++
	p.mu.Unlock()
}

func (p *pool) stats() []BackendStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	out := make([]BackendStats, len(p.backends))
	for i, b := range p.backends {
		s := BackendStats{Addr: b.addr, InFlight: b.inFlight, Requests: b.requests,
			Failures: b.failures, Abandoned: b.abandoned, Healthy: !now.Before(b.restedUntil),
			Warm: len(b.warm), WarmUsed: b.warmUsed}
		if !s.Healthy {
			s.RestedUntil = b.restedUntil
		}
		out[i] = s
	}
	return out
}
