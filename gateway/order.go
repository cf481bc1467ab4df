package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of per-session ordering, close to python-scgi's session_server (which
// queues at most 15 requests per session).
const (
	DefaultOrderQueue = 15
	DefaultOrderWait  = 30 * time.Second
)

// Ordering configures per-session ordering: the requests that name one session (a
// valid id in the session cookie, Config.Cookie.SessionID) are served one at a time,
// in the order they arrived, whichever side serves them, Go or Python. A request
// holds its session's turn until its response has been written (for a Go route,
// until the session manager has saved the session, which it does before the handler
// chain returns; for a Python route, until the worker has ended its response, which
// Quixote sends after saving the session). A Python request that the gateway stops
// serving early — its client went away, or the worker did not start answering within
// the pool's timeout and the client got 504 — keeps the turn while the worker goes on
// with it, until the worker ends its response or the proxy's drain limits pass
// (scgi.Proxy.DrainTimeout, DrainBytes; by default 60 s after the gateway stopped
// serving the client). Past those limits the turn is given up while the worker may
// still save its copy of the session; that is logged as an error and counted
// (qxbridge_backend_abandoned_total). Requests without a session, and routes with
// Route.Unordered, are not ordered.
//
// A waiting request whose client goes away leaves the queue as soon as the server
// notices: at once on the HTTP listener (net/http watches the connection once the
// request has been read), and behind an SCGI front server that closes its connection
// to the gateway when its client leaves (nginx does; scgi.Server watches the
// connection likewise), unless Config.SCGIHalfClose is set; otherwise when the
// request's turn comes. A request whose body did not arrive with its header (a large
// upload) is watched only once its body has been read, which a proxied request does
// after its turn.
//
// The turn is taken in two steps: first in this process (a FIFO queue per session,
// bounded by MaxQueue and MaxWait), then across processes through Locker, so that
// several gateways serving one session store order with each other too. The second
// step is uncontended unless another gateway serves the same session at that moment;
// between gateways, requests are served one at a time but not strictly in arrival
// order (a waiting gateway polls the lock).
type Ordering struct {
	// Disabled serves the requests of one session concurrently, as session3 does:
	// the last save wins.
	Disabled bool
	// MaxQueue is how many requests of one session may wait for their turn beyond
	// the one being served; one more is answered 503 with Retry-After. 0 means
	// DefaultOrderQueue.
	MaxQueue int
	// MaxWait is how long a request may wait for its turn (in this process and
	// across processes together) before it is answered 503 with Retry-After. 0
	// means DefaultOrderWait.
	MaxWait time.Duration
	// LockDir is where the per-session lock files live that order the gateway
	// processes of one host (see LockDir). "" means the session directory's name
	// with ".locks" appended, a sibling of it: never inside the session directory,
	// which session3's delete_old_sessions expects to hold only session files.
	LockDir string
	// Locker, when set, orders gateway processes instead of the lock files of
	// LockDir. nil means the session store's own lock when it is a SessionLocker:
	// store/pgstore's *Store, whose advisory locks order the gateways of every host
	// sharing the database; else the lock files of LockDir.
	Locker SessionLocker
}

// SessionLocker is the cross-process half of per-session ordering: Lock returns once
// the caller holds session id's lock among every process that shares the lock (the
// gateways of one host, with LockDir; of every host, with a database lock), or with
// ctx's error when ctx ends first. unlock releases it; it is called exactly once.
//
// A gateway calls Lock at most once per session at a time (it queues its own
// requests first), so an implementation needs no fairness or queue of its own, and
// may poll. It must not take the session's own storage lock (a session file's flock,
// which Python's load takes LOCK_SH on): the lock is held across the whole request.
// *LockDir and store/pgstore's *Store implement it.
type SessionLocker interface {
	Lock(ctx context.Context, id string) (unlock func(), err error)
}

// lockDir returns the lock directory of o for the session directory dir.
func (o Ordering) lockDir(sessionsDir string) string {
	if o.LockDir != "" {
		return o.LockDir
	}
	return defaultLockDir(sessionsDir)
}

func defaultLockDir(sessionsDir string) string {
	return trimSlash(sessionsDir) + ".locks"
}

func trimSlash(p string) string {
	for len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	return p
}

// same reports whether o and p configure the same ordering.
func (o Ordering) same(p Ordering) bool {
	return o.Disabled == p.Disabled && o.MaxQueue == p.MaxQueue && o.MaxWait == p.MaxWait &&
		o.LockDir == p.LockDir && sameLocker(o.Locker, p.Locker)
}

// sameLocker compares two lockers without panicking on a type == cannot compare
// (such lockers count as different unless both are nil).
func sameLocker(a, b SessionLocker) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta == tb && ta.Comparable() && a == b
}

// check validates o for the session directory sessionsDir: the lock directory must
// lie outside it.
func (o Ordering) check(sessionsDir string) error {
	if o.MaxQueue < 0 || o.MaxWait < 0 {
		return errors.New("ordering: the queue length and wait must not be negative")
	}
	if o.Disabled || o.Locker != nil || IsDatabaseURL(sessionsDir) {
		return nil
	}
	locks, err := filepath.Abs(o.lockDir(sessionsDir))
	if err != nil {
		return fmt.Errorf("ordering: lock directory: %w", err)
	}
	sessions, err := filepath.Abs(sessionsDir)
	if err != nil {
		return fmt.Errorf("ordering: session directory: %w", err)
	}
	if locks == sessions || strings.HasPrefix(locks, sessions+"/") {
		return fmt.Errorf("ordering: the lock directory %s must lie outside the session directory %s, "+
			"which session3's delete_old_sessions expects to hold only session files", locks, sessions)
	}
	return nil
}

// Why a request was refused its turn, as the rejections metric labels it.
const (
	rejectQueueFull = "queue_full" // MaxQueue requests already waited
	rejectTimeout   = "timeout"    // MaxWait passed
	rejectLock      = "lock_error" // the cross-process lock failed
)

// errQueueFull reports a session with MaxQueue requests already waiting for it.
var errQueueFull = errors.New("too many requests wait for this session")

// orderer keeps the turns of the sessions this process serves: for each session
// with a request in flight, whether its turn is taken and who waits for it, in
// arrival order. An entry exists only while a request of the session is in flight
// or waiting.
type orderer struct {
	maxQueue int
	maxWait  time.Duration
	locker   SessionLocker // nil: no cross-process step
	metrics  *gatewayMetrics

	mu       sync.Mutex
	sessions map[string]*turn
}

type turn struct {
	waiters []chan struct{} // FIFO; a waiter's channel is closed when it is given the turn
}

// openOrderer returns the orderer of cfg, or nil when ordering is disabled. Its
// cross-process lock is cfg's Locker (Open sets the store's own there when it has
// one), else the lock directory (which it creates) for a session directory. Sessions
// in a database without a Locker are ordered within this gateway only.
func openOrderer(cfg Config, m *gatewayMetrics) (*orderer, error) {
	o := cfg.Ordering
	if o.Disabled {
		return nil, nil
	}
	locker := o.Locker
	if locker == nil && !IsDatabaseURL(cfg.SessionsDir) {
		d, err := OpenLockDir(o.lockDir(cfg.SessionsDir), cfg.SessionsDir)
		if err != nil {
			return nil, fmt.Errorf("ordering: %w (set another with -order-lock-dir)", err)
		}
		locker = d
	}
	return newOrderer(o, locker, m), nil
}

// ownLockDir returns the LockDir openOrderer opened for o (not one the caller gave).
func (o *orderer) ownLockDir(cfg Ordering) (*LockDir, bool) {
	if o == nil || cfg.Locker != nil {
		return nil, false
	}
	d, ok := o.locker.(*LockDir)
	return d, ok
}

func newOrderer(o Ordering, locker SessionLocker, m *gatewayMetrics) *orderer {
	q, w := o.MaxQueue, o.MaxWait
	if q == 0 {
		q = DefaultOrderQueue
	}
	if w == 0 {
		w = DefaultOrderWait
	}
	return &orderer{maxQueue: q, maxWait: w, locker: locker, metrics: m, sessions: map[string]*turn{}}
}

// acquire waits for session id's turn: first among this process's requests, then
// across processes. It returns the function that ends the turn, or errQueueFull,
// context.DeadlineExceeded when maxWait passed, ctx's error when the client left, or
// the cross-process lock's error.
func (o *orderer) acquire(ctx context.Context, id string) (release func(), err error) {
	deadline := time.Now().Add(o.maxWait) // for both steps together
	o.mu.Lock()
	t, busy := o.sessions[id]
	if !busy {
		o.sessions[id] = &turn{}
		o.mu.Unlock()
	} else {
		if len(t.waiters) >= o.maxQueue {
			o.mu.Unlock()
			return nil, errQueueFull
		}
		ch := make(chan struct{})
		t.waiters = append(t.waiters, ch)
		o.mu.Unlock()
		o.metrics.orderQueued.Inc()
		wctx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		select {
		case <-ch:
			o.metrics.orderQueued.Dec()
		case <-wctx.Done():
			o.metrics.orderQueued.Dec()
			if !o.leave(id, ch) {
				// The turn was handed over as the wait ended: pass it on.
				o.next(id)
			}
			return nil, wctx.Err()
		}
	}
	if o.locker == nil {
		return func() { o.next(id) }, nil
	}
	lctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	unlock, err := o.locker.Lock(lctx, id)
	if err != nil {
		o.next(id)
		return nil, err
	}
	return func() {
		unlock()
		o.next(id)
	}, nil
}

// leave removes a waiter whose wait ended from session id's queue, and reports
// whether it was still there (false: it had been given the turn meanwhile).
func (o *orderer) leave(id string, ch chan struct{}) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	t := o.sessions[id]
	for i, c := range t.waiters {
		if c == ch {
			t.waiters = append(t.waiters[:i], t.waiters[i+1:]...)
			return true
		}
	}
	return false
}

// next ends the current turn of session id: the first waiter gets it, or the entry
// goes.
func (o *orderer) next(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	t := o.sessions[id]
	if len(t.waiters) == 0 {
		delete(o.sessions, id)
		return
	}
	ch := t.waiters[0]
	t.waiters[0] = nil
	t.waiters = t.waiters[1:]
	close(ch)
}

// waiting returns the number of requests waiting in this process, for tests.
func (o *orderer) waiting() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, t := range o.sessions {
		n += len(t.waiters)
	}
	return n
}

// orderHandler wraps the handler of route r in per-session ordering, unless the
// gateway or the route does without it.
func (g *Gateway) orderHandler(r *route, inner http.Handler) http.Handler {
	o := g.orderer
	if o == nil || r.Unordered {
		return inner
	}
	cookie := g.cookie
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		id := cookie.SessionID(req)
		if id == "" {
			inner.ServeHTTP(w, req)
			return
		}
		start := time.Now()
		release, err := o.acquire(req.Context(), id)
		wait := time.Since(start)
		o.metrics.orderWait.WithLabelValues(r.Prefix).Observe(wait.Seconds())
		if rec := findRecorder(w); rec != nil {
			rec.wait, rec.ordered = wait, true
		}
		if err != nil {
			g.refuseTurn(w, req, r, err, wait)
			return
		}
		defer release()
		inner.ServeHTTP(w, req)
	})
}

// refuseTurn answers a request that did not get its session's turn: 503 with
// Retry-After, logged and counted; nothing when the client went away.
func (g *Gateway) refuseTurn(w http.ResponseWriter, req *http.Request, r *route, err error, wait time.Duration) {
	reason := rejectLock
	switch {
	case errors.Is(err, errQueueFull):
		reason = rejectQueueFull
	case errors.Is(err, context.DeadlineExceeded) && req.Context().Err() == nil:
		reason = rejectTimeout
	case req.Context().Err() != nil:
		return // the client left the queue; nobody reads an answer
	}
	g.metrics.orderRejected.WithLabelValues(r.Prefix, reason).Inc()
	logMsg := "refusing a request: its session is busy"
	if reason == rejectLock {
		logMsg = "refusing a request: its session's lock cannot be taken (is the session store down?)"
	}
	g.log().Warn(logMsg, "route", r.Prefix, "method", req.Method,
		"path", req.URL.Path, "reason", reason, "wait", wait, "remote", req.RemoteAddr, "error", err)
	retry, msg := 1, "too many requests for this session at once, try again"
	switch reason {
	case rejectTimeout:
		retry = max(1, int(g.orderer.maxWait/time.Second/10))
	case rejectLock:
		msg = "session temporarily unavailable"
	}
	w.Header().Set("Retry-After", strconv.Itoa(retry))
	http.Error(w, msg, http.StatusServiceUnavailable)
}

// orderHealth reports a lock directory the gateway can no longer use (for /healthz):
// every request with a session would be refused.
func (g *Gateway) orderHealth() error {
	g.mu.Lock()
	o := g.orderer
	g.mu.Unlock()
	if o == nil {
		return nil
	}
	if d, ok := o.locker.(*LockDir); ok {
		if err := d.Check(); err != nil {
			return fmt.Errorf("ordering: %w", err)
		}
	}
	return nil
}

// findRecorder returns the router's recorder under w's wrappers, or nil.
func findRecorder(w http.ResponseWriter) *recorder {
	for w != nil {
		if rec, ok := w.(*recorder); ok {
			return rec
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}
