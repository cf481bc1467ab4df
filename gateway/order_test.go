package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func testOrderer(t *testing.T, queue int, wait time.Duration, locker SessionLocker) *orderer {
	t.Helper()
	return newOrderer(Ordering{MaxQueue: queue, MaxWait: wait}, locker, newGatewayMetrics(prometheus.NewRegistry()))
}

// eventually polls cond (a state the test waits for, not a timing it asserts).
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, time.Millisecond)
}

func TestOrdererFIFO(t *testing.T) {
	o := testOrderer(t, 20, time.Minute, nil)
	release, err := o.acquire(context.Background(), "s1")
	require.NoError(t, err)
	var mu sync.Mutex
	var got []int
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rel, err := o.acquire(context.Background(), "s1")
			if !assert.NoError(t, err) {
				return
			}
			mu.Lock()
			got = append(got, i)
			mu.Unlock()
			rel()
		}()
		eventually(t, func() bool { return o.waiting() == i+1 })
	}
	// Another session is not held up by s1's queue.
	rel2, err := o.acquire(context.Background(), "s2")
	require.NoError(t, err)
	rel2()
	release()
	wg.Wait()
	assert.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, got, "turns are given in arrival order")
	assert.Empty(t, o.sessions, "no entry outlives its requests")
}

func TestOrdererBounds(t *testing.T) {
	o := testOrderer(t, 2, time.Minute, nil)
	release, err := o.acquire(context.Background(), "s")
	require.NoError(t, err)

	// A waiter whose client leaves is out of the queue.
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() { _, err := o.acquire(ctx, "s"); gone <- err }()
	eventually(t, func() bool { return o.waiting() == 1 })
	cancel()
	assert.ErrorIs(t, <-gone, context.Canceled)
	assert.Equal(t, 0, o.waiting())

	// Two may wait; the third is refused at once.
	got := make(chan error, 2)
	for i := range 2 {
		go func() {
			rel, err := o.acquire(context.Background(), "s")
			if err == nil {
				rel()
			}
			got <- err
		}()
		eventually(t, func() bool { return o.waiting() == i+1 })
	}
	assert.Equal(t, 2.0, testutil.ToFloat64(o.metrics.orderQueued))
	_, err = o.acquire(context.Background(), "s")
	assert.ErrorIs(t, err, errQueueFull)
	release()
	require.NoError(t, <-got)
	require.NoError(t, <-got)
	assert.Empty(t, o.sessions)
	assert.Equal(t, 0.0, testutil.ToFloat64(o.metrics.orderQueued))

	// A wait longer than maxWait ends with DeadlineExceeded, and the turn stays usable.
	o = testOrderer(t, 2, 20*time.Millisecond, nil)
	release, err = o.acquire(context.Background(), "s")
	require.NoError(t, err)
	_, err = o.acquire(context.Background(), "s")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	release()
	release, err = o.acquire(context.Background(), "s")
	require.NoError(t, err)
	release()
	assert.Empty(t, o.sessions)
}

// TestOrdererHandOverAtCancel ends waits at the moment turns are handed over, many
// times: a turn given to a waiter that is leaving passes on, and none is lost (a lost
// turn would hang the last acquire).
func TestOrdererHandOverAtCancel(t *testing.T) {
	o := testOrderer(t, 100, time.Minute, nil)
	var inside atomic.Int32
	var wg sync.WaitGroup
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if i%3 == 0 {
				go cancel()
			}
			rel, err := o.acquire(ctx, "s")
			if err != nil {
				return
			}
			assert.Equal(t, int32(1), inside.Add(1), "one holder at a time")
			inside.Add(-1)
			rel()
		}()
	}
	wg.Wait()
	rel, err := o.acquire(context.Background(), "s")
	require.NoError(t, err)
	rel()
	assert.Empty(t, o.sessions)
}

// TestLockDir: two LockDirs on one directory (as two gateway processes have; flock(2)
// locks of separate open files conflict within a process too) exclude each other, a
// waiter follows the file its holder removed, and nothing is left behind.
func TestLockDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sessions.locks")
	a, err := OpenLockDir(dir, "")
	require.NoError(t, err)
	b, err := OpenLockDir(dir, "")
	require.NoError(t, err)
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o770), fi.Mode().Perm())

	unlock, err := a.Lock(context.Background(), "abc")
	require.NoError(t, err)
	names, _ := os.ReadDir(dir)
	require.Len(t, names, 1)
	assert.NotContains(t, names[0].Name(), "abc", "the file name does not give the id away")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	_, err = b.Lock(ctx, "abc")
	cancel()
	assert.ErrorIs(t, err, context.DeadlineExceeded, "held by the other")
	other, err := b.Lock(context.Background(), "xyz")
	require.NoError(t, err, "another session is free")
	other()
	unlock()

	var inside atomic.Int32
	var wg sync.WaitGroup
	count := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := []*LockDir{a, b}[i%2]
			for range 100 {
				unlock, err := d.Lock(context.Background(), "abc")
				if !assert.NoError(t, err) {
					return
				}
				assert.Equal(t, int32(1), inside.Add(1), "one holder at a time")
				count++ // guarded by the lock alone: the race detector checks it
				inside.Add(-1)
				unlock()
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 800, count)

	// Lock files stay for the next request; a sweep removes those nobody holds.
	unlock, err = a.Lock(context.Background(), "held")
	require.NoError(t, err)
	names, _ = os.ReadDir(dir)
	assert.Len(t, names, 3, "abc, xyz and held")
	n, err := b.Sweep()
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	names, _ = os.ReadDir(dir)
	assert.Len(t, names, 1, "the held one stays")
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Millisecond)
	_, err = b.Lock(ctx, "held")
	cancel()
	assert.ErrorIs(t, err, context.DeadlineExceeded, "and still excludes")
	unlock()
	n, err = a.Sweep()
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	names, _ = os.ReadDir(dir)
	assert.Empty(t, names)
}

// TestLockDirSweepRace sweeps over and over while two LockDirs lock and unlock one
// session from 8 goroutines: a file removed under a waiter is followed to the new
// one, and there is never more than one holder.
func TestLockDirSweepRace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "locks")
	a, err := OpenLockDir(dir, "")
	require.NoError(t, err)
	b, err := OpenLockDir(dir, "")
	require.NoError(t, err)
	stop := make(chan struct{})
	swept := make(chan int)
	go func() {
		total := 0
		for {
			select {
			case <-stop:
				swept <- total
				return
			default:
			}
			n, err := a.Sweep()
			assert.NoError(t, err)
			total += n
		}
	}()
	var inside atomic.Int32
	count := 0
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := []*LockDir{a, b}[i%2]
			for range 200 {
				unlock, err := d.Lock(context.Background(), "s")
				if !assert.NoError(t, err) {
					return
				}
				assert.Equal(t, int32(1), inside.Add(1), "one holder at a time")
				count++
				inside.Add(-1)
				unlock()
			}
		}()
	}
	wg.Wait()
	close(stop)
	t.Logf("files swept: %d", <-swept)
	assert.Equal(t, 1600, count)
}

func TestOrderingConfig(t *testing.T) {
	cfg := defaultConfig()
	cfg.SessionsDir = "/var/lib/app/sessions/"
	assert.Equal(t, "/var/lib/app/sessions.locks", cfg.Ordering.lockDir(cfg.SessionsDir))
	require.NoError(t, cfg.validate())
	cfg.Ordering.LockDir = "/var/lib/app/sessions/locks"
	assert.ErrorContains(t, cfg.validate(), "must lie outside the session directory")
	cfg.Ordering.LockDir = "/var/lib/app/sessions"
	assert.ErrorContains(t, cfg.validate(), "must lie outside the session directory")
	cfg.Ordering.LockDir = ""
	cfg.Ordering.MaxQueue = -1
	assert.ErrorContains(t, cfg.validate(), "must not be negative")
}

// orderedGateway is a gateway whose Go route "/block" waits until told, and whose
// "/free/" route is unordered.
func orderedGateway(t *testing.T, o Ordering) (*Gateway, chan chan struct{}, *syncBuffer) {
	t.Helper()
	g := New()
	logs := &syncBuffer{}
	g.Logger = newLogger(Config{LogFormat: "text"}, logs)
	g.Config.SessionsDir = filepath.Join(t.TempDir(), "sessions")
	g.Config.Ordering = o
	entered := make(chan chan struct{})
	g.HandleFunc("block", func(w http.ResponseWriter, r *http.Request) {
		done := make(chan struct{})
		entered <- done
		<-done
		_, _ = w.Write([]byte("done"))
	})
	g.HandleFunc("free", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("free")) })
	g.Config.Routes = []Route{{Prefix: "/block", Target: "block"}, {Prefix: "/free/", Target: "free", Unordered: true}}
	require.NoError(t, g.Open())
	t.Cleanup(func() { g.Close() })
	return g, entered, logs
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

func serve(g *Gateway, path, cookie string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if cookie != "" {
		r.Header.Set("Cookie", `QX_session="`+cookie+`"`)
	}
	w := httptest.NewRecorder()
	g.ServeHTTP(w, r)
	return w
}

func TestOrderHandler(t *testing.T) {
	g, entered, logs := orderedGateway(t, Ordering{MaxQueue: 1})
	const id = "AAAAAAAAAAA"
	first := make(chan *httptest.ResponseRecorder, 1)
	go func() { first <- serve(g, "/block", id) }()
	done1 := <-entered

	// The same session waits; an unordered route and another session do not.
	second := make(chan *httptest.ResponseRecorder, 1)
	go func() { second <- serve(g, "/block", id) }()
	eventually(t, func() bool { return g.orderer.waiting() == 1 })
	assert.Equal(t, "free", serve(g, "/free/", id).Body.String())
	third := make(chan *httptest.ResponseRecorder, 1)
	go func() { third <- serve(g, "/block", "BBBBBBBBBBB") }()
	close(<-entered)
	assert.Equal(t, "done", (<-third).Body.String())

	// The queue is full: 503 with Retry-After, logged and counted.
	w := serve(g, "/block", id)
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.Equal(t, "1", w.Header().Get("Retry-After"))
	assert.Equal(t, 1.0, testutil.ToFloat64(g.metrics.orderRejected.WithLabelValues("/block", rejectQueueFull)))
	assert.Contains(t, logs.String(), "refusing a request: its session is busy")
	assert.Contains(t, logs.String(), "reason=queue_full")

	close(done1)
	assert.Equal(t, "done", (<-first).Body.String())
	close(<-entered)
	assert.Equal(t, "done", (<-second).Body.String())
	assert.Regexp(t, `msg=request method=GET path=/block route=/block status=200 .* wait=\d`, logs.String())
	assert.Equal(t, 0.0, testutil.ToFloat64(g.metrics.orderQueued), "nobody waits any more")

	// Without a session, no ordering.
	go func() { first <- serve(g, "/block", "") }()
	d := <-entered
	go func() { second <- serve(g, "/block", "") }()
	close(<-entered)
	close(d)
	<-first
	<-second
}

// TestOrderHandlerDisabled: without ordering, the session manager orders the Go
// requests of the process by itself, as before, and no lock directory is made.
func TestOrderHandlerDisabled(t *testing.T) {
	g, _, _ := orderedGateway(t, Ordering{Disabled: true})
	assert.Nil(t, g.orderer)
	assert.True(t, g.manager.OneAtATime)
	_, err := os.Stat(g.Config.SessionsDir + ".locks")
	assert.ErrorIs(t, err, os.ErrNotExist)

	g, _, _ = orderedGateway(t, Ordering{})
	assert.False(t, g.manager.OneAtATime, "the gateway orders; the manager does not lock again")
	fi, err := os.Stat(g.Config.SessionsDir + ".locks")
	require.NoError(t, err)
	assert.True(t, fi.IsDir())
}

// stubLocker is a SessionLocker that fails or counts.
type stubLocker struct {
	err   error
	locks atomic.Int32
}

func (s *stubLocker) Lock(ctx context.Context, id string) (func(), error) {
	if s.err != nil {
		return nil, s.err
	}
	s.locks.Add(1)
	return func() { s.locks.Add(-1) }, nil
}

func TestOrderHandlerLocker(t *testing.T) {
	l := &stubLocker{}
	g, entered, logs := orderedGateway(t, Ordering{Locker: l})
	res := make(chan *httptest.ResponseRecorder, 1)
	go func() { res <- serve(g, "/block", "AAAAAAAAAAA") }()
	d := <-entered
	assert.Equal(t, int32(1), l.locks.Load(), "held across the request")
	close(d)
	<-res
	assert.Equal(t, int32(0), l.locks.Load())

	l.err = errors.New("database gone")
	w := serve(g, "/block", "AAAAAAAAAAA")
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.Equal(t, 1.0, testutil.ToFloat64(g.metrics.orderRejected.WithLabelValues("/block", rejectLock)))
	assert.Contains(t, logs.String(), "database gone")
	_, err := os.Stat(g.Config.SessionsDir + ".locks")
	assert.ErrorIs(t, err, os.ErrNotExist, "no lock directory with a Locker")
}

// TestOrderingFlags: the ordering flags and -unordered set the configuration; an
// -unordered prefix that no route has is refused.
func TestOrderingFlags(t *testing.T) {
	g := newTestGateway()
	g.Handle("demo2x", http.NotFoundHandler())
	cfg, _, _, err := g.parseFlags([]string{"-sessions", "/srv/s", "-route", "/=demo", "-route", "/static/=demo2x",
		"-unordered", "/static/", "-order-queue", "3", "-order-wait", "5s", "-order-lock-dir", "/run/locks"},
		io.Discard, func(string) string { return "" })
	require.NoError(t, err)
	assert.Equal(t, Ordering{MaxQueue: 3, MaxWait: 5 * time.Second, LockDir: "/run/locks"}, cfg.Ordering)
	for _, r := range cfg.Routes {
		assert.Equal(t, r.Prefix == "/static/", r.Unordered, r.Prefix)
	}
	cfg, _, _, err = g.parseFlags([]string{"-route", "/=demo", "-order=false"}, io.Discard, func(string) string { return "" })
	require.NoError(t, err)
	assert.True(t, cfg.Ordering.Disabled)
	_, _, _, err = g.parseFlags([]string{"-route", "/=demo", "-unordered", "/nope/"}, io.Discard, func(string) string { return "" })
	assert.ErrorContains(t, err, "-unordered /nope/: no route has that prefix")
}

// blockingLocker holds every lock until ctx ends.
type blockingLocker struct{}

func (blockingLocker) Lock(ctx context.Context, _ string) (func(), error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestOrdererWaitBoundsLock: MaxWait bounds the cross-process step too, whatever
// deadline the request's own context has.
func TestOrdererWaitBoundsLock(t *testing.T) {
	o := testOrderer(t, 2, 30*time.Millisecond, blockingLocker{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_, err := o.acquire(ctx, "s")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Empty(t, o.sessions, "the turn was given back")
}

// TestLockDirSweepsItself: an unlock a LockSweepInterval after the last sweep starts
// one in the background.
func TestLockDirSweepsItself(t *testing.T) {
	d, err := OpenLockDir(filepath.Join(t.TempDir(), "locks"), "")
	require.NoError(t, err)
	for _, id := range []string{"a", "b", "c"} {
		unlock, err := d.Lock(context.Background(), id)
		require.NoError(t, err)
		unlock()
	}
	names, _ := os.ReadDir(d.Dir())
	assert.Len(t, names, 3, "kept: the clock only started")
	d.lastSweep.Store(time.Now().Add(-LockSweepInterval).UnixNano())
	unlock, err := d.Lock(context.Background(), "a")
	require.NoError(t, err)
	unlock()
	eventually(t, func() bool {
		names, _ := os.ReadDir(d.Dir())
		return len(names) == 0 && !d.sweeping.Load()
	})
}

// TestOrderHealth: /healthz is unhealthy when the lock directory is gone.
func TestOrderHealth(t *testing.T) {
	g, _, _ := orderedGateway(t, Ordering{})
	ok, text := g.health()
	assert.True(t, ok, text)
	locks := g.Config.SessionsDir + ".locks"
	require.NoError(t, os.Remove(locks))
	ok, text = g.health()
	assert.False(t, ok)
	assert.Contains(t, text, "ordering: lock directory "+locks+": ")
}

// TestLockDirKeepsOnlySessions: a lock file stays after its unlock only while the
// session directory holds that session, so made-up ids leave nothing behind.
func TestLockDirKeepsOnlySessions(t *testing.T) {
	tmp := t.TempDir()
	sessions := filepath.Join(tmp, "sessions")
	require.NoError(t, os.Mkdir(sessions, 0o770))
	require.NoError(t, os.WriteFile(filepath.Join(sessions, "RealSession"), []byte("x"), 0o600))
	d, err := OpenLockDir(sessions+".locks", sessions)
	require.NoError(t, err)
	for i := range 50 {
		unlock, err := d.Lock(context.Background(), fmt.Sprintf("MadeUp%05d", i))
		require.NoError(t, err)
		unlock()
	}
	unlock, err := d.Lock(context.Background(), "RealSession")
	require.NoError(t, err)
	unlock()
	names, _ := os.ReadDir(d.Dir())
	require.Len(t, names, 1, "only the real session's file stays")
	assert.Equal(t, filepath.Base(d.path("RealSession")), names[0].Name())
}

// funcLocker is a SessionLocker of a type == cannot compare.
type funcLocker func(context.Context, string) (func(), error)

func (f funcLocker) Lock(ctx context.Context, id string) (func(), error) { return f(ctx, id) }

func TestOrderingSame(t *testing.T) {
	l := &stubLocker{}
	f := funcLocker(func(context.Context, string) (func(), error) { return func() {}, nil })
	assert.True(t, Ordering{Locker: l}.same(Ordering{Locker: l}))
	assert.False(t, Ordering{Locker: l}.same(Ordering{Locker: &stubLocker{}}))
	assert.False(t, Ordering{Locker: f}.same(Ordering{Locker: f}), "not comparable: different, no panic")
	assert.False(t, Ordering{}.same(Ordering{Locker: l}))
	assert.True(t, Ordering{MaxQueue: 3}.same(Ordering{MaxQueue: 3}))
	assert.Equal(t, []string{"ordering"}, restartOnly(Config{Ordering: Ordering{Locker: f}}, Config{}))
}

// TestLockDirCachedFileRemoved: a lock file this process keeps open after its unlock
// may be removed by another process's sweep and made anew by another locker; the
// next Lock must notice and wait on the file at the path, not lock its stale one.
func TestLockDirCachedFileRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "locks")
	a, err := OpenLockDir(dir, "")
	require.NoError(t, err)
	defer a.Close()
	b, err := OpenLockDir(dir, "")
	require.NoError(t, err)
	defer b.Close()

	unlock, err := a.Lock(context.Background(), "s")
	require.NoError(t, err)
	unlock()
	n, err := b.Sweep()
	require.NoError(t, err)
	assert.Equal(t, 1, n, "a keeps the file open but does not hold it")
	unlockB, err := b.Lock(context.Background(), "s")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	_, err = a.Lock(ctx, "s")
	cancel()
	assert.ErrorIs(t, err, context.DeadlineExceeded, "b holds the file now at the path")
	unlockB()
	unlock, err = a.Lock(context.Background(), "s")
	require.NoError(t, err)
	unlock()

	// Closed, a LockDir still locks, keeping nothing open.
	require.NoError(t, a.Close())
	unlock, err = a.Lock(context.Background(), "s")
	require.NoError(t, err)
	unlock()
	assert.Empty(t, a.cache)
}

// TestLockDirRootChownsOnlyItsOwnFiles: a gateway running as root gives the lock
// files it creates to the lock directory's owner, but never changes the owner of a
// file someone hard-linked into the directory under a lock file's name (a
// session file, /etc/shadow): such a file is refused.
func TestLockDirRootChownsOnlyItsOwnFiles(t *testing.T) {
	testpeer.Root(t, "the chown is what is tested")
	dir := filepath.Join(t.TempDir(), "locks")
	require.NoError(t, os.Mkdir(dir, 0o770))
	const uid, gid = 65534, 65534
	require.NoError(t, os.Chown(dir, uid, gid))
	d, err := OpenLockDir(dir, "")
	require.NoError(t, err)

	unlock, err := d.Lock(t.Context(), "fresh")
	require.NoError(t, err)
	var st unix.Stat_t
	require.NoError(t, unix.Stat(d.path("fresh"), &st))
	assert.Equal(t, uint32(uid), st.Uid, "a lock file it creates goes to the directory's owner")
	unlock()

	victim := filepath.Join(t.TempDir(), "shadow")
	require.NoError(t, os.WriteFile(victim, []byte("secret"), 0o600))
	require.NoError(t, os.Link(victim, d.path("planted")))
	_, err = d.Lock(t.Context(), "planted")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not a lock file")
	require.NoError(t, unix.Stat(victim, &st))
	assert.Equal(t, uint32(0), st.Uid, "the linked file keeps its owner")
}
