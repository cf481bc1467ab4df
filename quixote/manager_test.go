package quixote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/pickle"
)

// fakeClock is a settable clock for the manager.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type testEnv struct {
	t     *testing.T
	m     *Manager
	st    *memStore
	log   *logBuffer
	clock *fakeClock
	srv   *httptest.Server
}

func newTestEnv(t *testing.T, configure func(*Manager)) *testEnv {
	st := newMemStore()
	logger, lb := newLogger()
	clock := &fakeClock{t: time.Unix(1795303038, 0)}
	m := NewManager(st)
	m.Logger = logger
	m.now = clock.now
	if configure != nil {
		configure(m)
	}
	srv := httptest.NewServer(m.Handler(testApp()))
	t.Cleanup(srv.Close)
	return &testEnv{t: t, m: m, st: st, log: lb, clock: clock, srv: srv}
}

type response struct {
	status  int
	body    string
	cookies []string // Set-Cookie header values
}

// get requests path with the raw Cookie header value cookie ("" for none).
func (e *testEnv) get(path, cookie string) response {
	e.t.Helper()
	req, err := http.NewRequest("GET", e.srv.URL+path, nil)
	require.NoError(e.t, err)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := e.srv.Client().Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return response{resp.StatusCode, string(body), resp.Header.Values("Set-Cookie")}
}

func (e *testEnv) status(cookie string) map[string]any {
	e.t.Helper()
	r := e.get("/status", cookie)
	require.Equal(e.t, 200, r.status, r.body)
	var st map[string]any
	require.NoError(e.t, json.Unmarshal([]byte(r.body), &st))
	return st
}

func (e *testEnv) session(id string) *Session {
	e.t.Helper()
	b, ok := e.st.get(id)
	require.True(e.t, ok, "no session %s in the store", id)
	s, err := Decode(b, e.m.classes()...)
	require.NoError(e.t, err)
	return s
}

// newCookieID returns the id of the one Set-Cookie of a response.
func newCookieID(t *testing.T, r response) string {
	t.Helper()
	require.Len(t, r.cookies, 1, "one Set-Cookie")
	h := r.cookies[0]
	require.True(t, strings.HasPrefix(h, `QX_session="`), h)
	id := strings.TrimPrefix(h, `QX_session="`)
	id = id[:strings.IndexByte(id, '"')]
	require.Regexp(t, `^[A-Za-z0-9_-]{11}$`, id)
	require.Equal(t, `QX_session="`+id+`"; path=/`, h, "written as Quixote writes it")
	return id
}

const revoked = `QX_session=""; path=/; max-age=0`

func TestManagerLifecycle(t *testing.T) {
	e := newTestEnv(t, nil)

	// No cookie: a new session, not stored, no cookie.
	st := e.status("")
	assert.Nil(t, st["id"])
	assert.Nil(t, st["user"])
	assert.Equal(t, "127.0.0.1", st["remote_address"])
	assert.Equal(t, "session3.Session.Session", st["class"])
	r := e.get("/counter", "")
	assert.Equal(t, "1", r.body)
	assert.Empty(t, r.cookies, "a session without info gets no cookie")
	assert.Empty(t, e.st.ids(), "and is not stored")

	// Login: the session gets an id and a cookie, and is stored.
	r = e.get("/login?user=alice", "")
	id := newCookieID(t, r)
	s := e.session(id)
	assert.Equal(t, id, s.ID())
	u, _ := s.UserString()
	assert.Equal(t, "alice", u)
	cookie := `QX_session="` + id + `"`

	// Requests with the cookie see and change it.
	r = e.get("/counter", cookie)
	assert.Equal(t, "1", r.body)
	assert.Empty(t, r.cookies, "an existing session's cookie is not re-sent")
	n, _ := e.session(id).GetInt("counter")
	assert.Equal(t, int64(1), n)
	r = e.get("/counter", "QX_session="+id) // unquoted works too
	assert.Equal(t, "2", r.body)

	// A read-only request within the same second saves nothing: the bytes did not change.
	_, saves, _ := e.st.counts()
	st = e.status(cookie)
	assert.Equal(t, id, st["id"])
	assert.Equal(t, "alice", st["user"])
	assert.Equal(t, map[string]any{"counter": float64(2)}, st["attrs"])
	_, saves2, _ := e.st.counts()
	assert.Equal(t, saves, saves2, "unchanged session not rewritten")
	// Nor when the file holds the rest of a longer session after the STOP, as a store
	// saving in place leaves it (store.WithInPlace).
	data, _ := e.st.get(id)
	e.st.put(id, append(bytes.Clone(data), "older tail."...))
	e.status(cookie)
	_, saves2, _ = e.st.counts()
	assert.Equal(t, saves, saves2, "unchanged session with a tail not rewritten")
	e.st.put(id, data)

	// One second later still nothing; past it the access time moves and is saved.
	before := e.session(id).AccessTime()
	e.clock.advance(time.Second)
	e.status(cookie)
	_, saves3, _ := e.st.counts()
	assert.Equal(t, saves, saves3)
	e.clock.advance(time.Millisecond)
	e.status(cookie)
	_, saves4, _ := e.st.counts()
	assert.Equal(t, saves+1, saves4)
	assert.True(t, e.session(id).AccessTime().After(before))

	// Logout: the info is gone, the cookie revoked, the file deleted.
	r = e.get("/logout", cookie)
	assert.Equal(t, []string{revoked}, r.cookies)
	assert.Empty(t, e.st.ids())
	// The stale cookie now means a new session.
	st = e.status(cookie)
	assert.Nil(t, st["id"])
	assert.Empty(t, e.log.warnings())
}

func TestManagerExpire(t *testing.T) {
	e := newTestEnv(t, nil)
	id := newCookieID(t, e.get("/login?user=bob", ""))
	r := e.get("/expire", `QX_session="`+id+`"`)
	assert.Equal(t, []string{revoked}, r.cookies)
	assert.Empty(t, e.st.ids())
	// Expiring a session that was never stored revokes the cookie and deletes nothing.
	r = e.get("/expire", "")
	assert.Equal(t, []string{revoked}, r.cookies)
	_, _, deletes := e.st.counts()
	assert.Equal(t, 1, deletes)
}

func TestManagerNoSessionCookieValues(t *testing.T) {
	e := newTestEnv(t, nil)
	for _, c := range []string{`QX_session=""`, `QX_session=*del*`, `QX_session="*del*"`, `other=1`} {
		st := e.status(c)
		assert.Nil(t, st["id"], c)
	}
	loads, _, _ := e.st.counts()
	assert.Zero(t, loads, `"" and "*del*" mean no session: nothing is loaded`)
	assert.Empty(t, e.log.warnings())
}

func TestManagerFailedRequests(t *testing.T) {
	e := newTestEnv(t, nil)
	id := newCookieID(t, e.get("/login?user=alice", ""))
	cookie := `QX_session="` + id + `"`
	before, _ := e.st.get(id)

	r := e.get("/fail", cookie)
	assert.Equal(t, 500, r.status)
	after, _ := e.st.get(id)
	assert.Equal(t, before, after, "a 5xx response saves nothing")

	// A new session that gets info in a failed request gets no cookie and no file.
	r = e.get("/login-fail", "")
	assert.Equal(t, http.StatusBadGateway, r.status)
	assert.Empty(t, r.cookies)
	assert.Equal(t, []string{id}, e.st.ids())

	// 4xx responses are successful requests, as Quixote's PublishError pages are.
	r = e.get("/login-403?user=carol", "")
	assert.Equal(t, 403, r.status)
	id2 := newCookieID(t, r)
	u, _ := e.session(id2).UserString()
	assert.Equal(t, "carol", u)
}

func TestManagerPanic(t *testing.T) {
	for _, oneAtATime := range []bool{false, true} {
		st := newMemStore()
		logger, _ := newLogger()
		m := NewManager(st)
		m.Logger = logger
		m.OneAtATime = oneAtATime
		h := m.Handler(testApp())

		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/login?user=alice", nil))
		id := newCookieID(t, response{rec.Code, rec.Body.String(), rec.Result().Header.Values("Set-Cookie")})
		before, _ := st.get(id)

		req := httptest.NewRequest("GET", "/panic", nil)
		req.Header.Set("Cookie", `QX_session="`+id+`"`)
		assert.PanicsWithValue(t, http.ErrAbortHandler, func() { h.ServeHTTP(httptest.NewRecorder(), req) },
			"the handler's panic goes on to net/http")
		after, _ := st.get(id)
		assert.Equal(t, before, after, "nothing saved when the handler panicked")
		assert.Zero(t, m.locks.len(), "the session lock was released")

		// A panicking request of a new session stores nothing either.
		assert.Panics(t, func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/panic", nil)) })
		assert.Equal(t, []string{id}, st.ids())
	}
}

func TestManagerStreaming(t *testing.T) {
	e := newTestEnv(t, nil)

	// Info before the first write: the cookie goes out with the headers.
	r := e.get("/login-then-stream?user=alice", "")
	assert.Equal(t, "first chunk\nsecond chunk\n", r.body)
	id := newCookieID(t, r)
	u, _ := e.session(id).UserString()
	assert.Equal(t, "alice", u)

	// Info only after the headers went out: no cookie can be set, so nothing is stored.
	r = e.get("/stream-then-login?user=bob", "")
	assert.Equal(t, "first chunk\nsecond chunk\n", r.body)
	assert.Empty(t, r.cookies)
	assert.Equal(t, []string{id}, e.st.ids())
	w := e.log.warnings()
	require.Len(t, w, 1)
	assert.Contains(t, w[0], "after the response headers were written")

	// Info gone after the headers: the cookie stays with the client but the file goes.
	r = e.get("/stream-then-logout", `QX_session="`+id+`"`)
	assert.Empty(t, r.cookies)
	assert.Empty(t, e.st.ids())
}

func TestManagerResponseWriterPassThrough(t *testing.T) {
	st := newMemStore()
	m := NewManager(st)
	var flushErr, deadlineErr error
	var isFlusher bool
	srv := httptest.NewServer(m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, isFlusher = w.(http.Flusher)
		rc := http.NewResponseController(w)
		deadlineErr = rc.SetWriteDeadline(time.Now().Add(time.Minute))
		w.WriteHeader(http.StatusEarlyHints) // 1xx: the cookie is not decided yet
		_ = SessionFrom(r).SetUser("late-but-before-final-headers")
		w.WriteHeader(http.StatusAccepted)
		flushErr = rc.Flush()
		_, _ = io.Copy(w, strings.NewReader("copied")) // ReadFrom path
	})))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 202, resp.StatusCode)
	assert.Equal(t, "copied", string(body))
	assert.True(t, isFlusher)
	assert.NoError(t, flushErr, "Flush reaches the server's writer")
	assert.NoError(t, deadlineErr, "ResponseController reaches the server's writer through Unwrap")
	id := newCookieID(t, response{cookies: resp.Header.Values("Set-Cookie")})
	_, ok := st.get(id)
	assert.True(t, ok)
}

func TestManagerCookieSettings(t *testing.T) {
	e := newTestEnv(t, func(m *Manager) {
		m.Cookie = Cookie{Name: "sid", Domain: "example.org", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}
		m.ScriptName = func(r *http.Request) string { return "/app" }
	})
	r := e.get("/login?user=alice", "")
	require.Len(t, r.cookies, 1)
	id := strings.Split(strings.Split(r.cookies[0], `"`)[1], `"`)[0]
	assert.Equal(t, `sid="`+id+`"; domain=example.org; path=/app/; secure; httponly; samesite=Lax`, r.cookies[0])
	r = e.get("/logout", `sid="`+id+`"`)
	assert.Equal(t, []string{`sid=""; domain=example.org; path=/app/; max-age=0; secure; httponly; samesite=Lax`}, r.cookies)

	c := Cookie{Path: "/fixed"}
	assert.Equal(t, `QX_session="x"; path=/fixed`, c.header("x", "/ignored", false))
	c = Cookie{}
	assert.Equal(t, `QX_session="x"; path=/mount/`, c.header("x", "/mount/", false))
	assert.Equal(t, `QX_session="a\"b"; path=/`, c.header(`a"b`, "", false), `'"' escaped like Quixote`)
	c.SameSite = http.SameSiteStrictMode
	assert.Equal(t, `QX_session="x"; path=/; samesite=Strict`, c.header("x", "", false))
	c.SameSite = http.SameSiteNoneMode
	assert.Equal(t, `QX_session="x"; path=/; samesite=None`, c.header("x", "", false))
	c.SameSite = http.SameSiteDefaultMode
	assert.Equal(t, `QX_session="x"; path=/`, c.header("x", "", false))
}

func TestManagerRepeatedCookieLastWins(t *testing.T) {
	e := newTestEnv(t, nil)
	a := newCookieID(t, e.get("/login?user=alice", ""))
	b := newCookieID(t, e.get("/login?user=bob", ""))
	st := e.status(`QX_session="` + a + `"; QX_session="` + b + `"`)
	assert.Equal(t, b, st["id"], "the last cookie of the name wins, as in Quixote's parser")
}

func TestManagerHostileCookies(t *testing.T) {
	e := newTestEnv(t, nil)
	for _, v := range []string{
		"../../etc/passwd", "..", "abc.def", "a/b", strings.Repeat("A", 65), "%2e%2e", "*",
	} {
		before := len(e.log.warnings())
		st := e.status("QX_session=" + v)
		assert.Nil(t, st["id"], v)
		assert.Equal(t, before+1, len(e.log.warnings()), "logged once: %q", v)
		assert.Contains(t, e.log.warnings()[before], "invalid id")
		// Logging in from there gives a new, valid id.
		r := e.get("/login?user=eve", "QX_session="+v)
		newCookieID(t, r)
	}
	// Values net/http's cookie parser rejects are read as Quixote's parser reads them,
	// so that both sides pick the same session: x\y is an invalid id (logged),
	// "unterminated has an empty value (no session), and a"b names session "a"
	// (checked against CPython in TestQuixoteCookieGrammarMatchesCPython).
	before := len(e.log.warnings())
	for _, v := range []string{`x\y`, `"unterminated`} {
		st := e.status("QX_session=" + v)
		assert.Nil(t, st["id"], v)
	}
	assert.Len(t, e.log.warnings(), before+1)
	loads, _, _ := e.st.counts()
	assert.Zero(t, loads, "an invalid id never reaches the store")
	assert.Equal(t, map[string]string{"QX_session": "a", `"b`: ""}, ParseCookies(`QX_session=a"b`), `Quixote reads a"b as a, then a cookie named "b`)
}

func TestManagerBadSessionFiles(t *testing.T) {
	account, err := pickle.Marshal(pickle.NewObject(pickle.Global{Module: "myapp.models", Name: "Account"}))
	require.NoError(t, err)
	aDict, err := pickle.Marshal(pickle.NewDict())
	require.NoError(t, err)
	noTokens := NewSession(Session3Class, "", time.Now())
	noTokens.setID("badTokens01")
	_ = noTokens.SetUser("alice")
	require.NoError(t, noTokens.Object().SetAttr("_form_tokens", "not a list"))
	badTokens, err := noTokens.Encode()
	require.NoError(t, err)
	login := fixture(t, "session3-login.pkl")

	for _, tc := range []struct {
		name, id string
		data     []byte
		log      string
	}{
		{"garbage", "garbage0001", []byte("this is not a pickle"), "no valid session"},
		{"truncated", "truncated01", login[:len(login)/2], "no valid session"},
		{"zero-length", "zerolength1", []byte{}, "no valid session"},
		{"foreign class", "foreign0001", account, "not a session"},
		{"foreign value", "foreign0002", aDict, "not a session"},
		{"wrong attribute type", "badTokens01", badTokens, "not a session"},
		{"another session's id", "otherid0001", login, "another session's id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, nil)
			e.st.put(tc.id, tc.data)
			cookie := `QX_session="` + tc.id + `"`

			st := e.status(cookie)
			assert.Nil(t, st["id"], "served as a new anonymous session")
			assert.Nil(t, st["user"])
			w := e.log.warnings()
			require.Len(t, w, 1, "logged once")
			assert.Contains(t, w[0], tc.log)
			assert.Contains(t, w[0], tc.id)

			r := e.get("/login?user=alice", cookie)
			id := newCookieID(t, r)
			assert.NotEqual(t, tc.id, id, "a new id, never the bad file's")
			got, ok := e.st.get(tc.id)
			assert.True(t, ok, "the bad file is left for an operator")
			assert.Equal(t, tc.data, got, "and not overwritten")
			assert.Len(t, e.log.warnings(), 2, "one more request, one more record")

			e.get("/logout", cookie)
			got, _ = e.st.get(tc.id)
			assert.Equal(t, tc.data, got, "nor deleted")
		})
	}
}

func TestManagerDictSession(t *testing.T) {
	e := newTestEnv(t, func(m *Manager) { m.NewClass = DictSessionClass })
	r := e.get("/login?user=dora", "")
	assert.Empty(t, r.cookies, "an empty DictSession is false: session3 does not keep it")
	assert.Empty(t, e.st.ids())
	r = e.get("/item?key=note&value=gift", "")
	assert.Empty(t, r.cookies, "keys without a user: no info")
	// Both in one session: login, then a key in the same session needs a cookie first,
	// so make the key and the user in one go via a stored session.
	s := NewSession(DictSessionClass, "", time.Now())
	s.setID("dictsess001")
	_ = s.SetUser("dora")
	require.NoError(t, s.SetItem("note", "x"))
	b, err := s.Encode()
	require.NoError(t, err)
	e.st.put("dictsess001", b)
	st := e.status(`QX_session="dictsess001"`)
	assert.Equal(t, "session3.DictSession.DictSession", st["class"])
	assert.Equal(t, map[string]any{"note": "x"}, st["data"])
	e.get("/item?key=cart&value=1", `QX_session="dictsess001"`)
	got := e.session("dictsess001")
	assert.Equal(t, []any{"note", "cart"}, got.Keys())
	// Logging out of a DictSession with keys expires it.
	r = e.get("/logout", `QX_session="dictsess001"`)
	assert.Equal(t, []string{revoked}, r.cookies)
	assert.Empty(t, e.st.ids())
}

func TestManagerQuixoteClass(t *testing.T) {
	e := newTestEnv(t, func(m *Manager) { m.NewClass = QuixoteClass })
	// Quixote's own Session has info once it holds a form token.
	r := e.get("/token", "")
	id := newCookieID(t, r)
	s := e.session(id)
	assert.Equal(t, KindQuixote, s.Class().Kind)
	assert.Equal(t, []string{r.body}, s.FormTokens())
	r = e.get("/submit?_form_token="+r.body, `QX_session="`+id+`"`)
	assert.Equal(t, "accepted", r.body)
	assert.Equal(t, []string{revoked}, r.cookies, "no tokens left, no user: expired")
}

func TestManagerIDErrors(t *testing.T) {
	e := newTestEnv(t, nil)
	e.st.hasErr = errors.New("disk on fire")
	r := e.get("/login?user=alice", "")
	assert.Equal(t, 500, r.status, "a login that cannot be stored is not answered as a success")
	assert.NotContains(t, r.body, "alice", "the page held back is not sent")
	assert.Empty(t, r.cookies)
	assert.Empty(t, e.st.ids())
	w := e.log.warnings()
	require.Len(t, w, 1, "one record, not a second one at the end of the request")
	assert.Contains(t, w[0], "disk on fire")
	assert.Contains(t, w[0], "level=ERROR")
}

func TestManagerRemoteAddr(t *testing.T) {
	e := newTestEnv(t, func(m *Manager) {
		m.RemoteAddr = func(r *http.Request) string { return r.Header.Get("X-Test-Addr") }
	})
	req, _ := http.NewRequest("GET", e.srv.URL+"/login?user=x", nil)
	req.Header.Set("X-Test-Addr", "198.51.100.9")
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	id := newCookieID(t, response{cookies: resp.Header.Values("Set-Cookie")})
	assert.Equal(t, "198.51.100.9", e.session(id).RemoteAddress())
}

func TestSessionFromOutsideManager(t *testing.T) {
	assert.Nil(t, SessionFrom(httptest.NewRequest("GET", "/", nil)))
	assert.Nil(t, FromContext(context.Background()))
}

// TestManagerConcurrentOneAtATime runs many requests of one session at once with
// OneAtATime: every increment survives.
func TestManagerConcurrentOneAtATime(t *testing.T) {
	e := newTestEnv(t, func(m *Manager) { m.OneAtATime = true })
	id := newCookieID(t, e.get("/login?user=alice", ""))
	const n = 40
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { e.get("/counter", `QX_session="`+id+`"`) })
	}
	wg.Wait()
	c, _ := e.session(id).GetInt("counter")
	assert.Equal(t, int64(n), c, "no increment lost")
	assert.Zero(t, e.m.locks.len(), "no lock left behind")
}

// TestManagerConcurrentLastSaveWins documents session3's rule without OneAtATime:
// concurrent requests each save what they loaded plus their change, so increments
// can be lost, but every save is a whole, valid session.
func TestManagerConcurrentLastSaveWins(t *testing.T) {
	e := newTestEnv(t, nil)
	id := newCookieID(t, e.get("/login?user=alice", ""))
	const n = 40
	var wg sync.WaitGroup
	var max atomic.Int64
	for range n {
		wg.Go(func() {
			r := e.get("/counter", `QX_session="`+id+`"`)
			if v := int64(atoi(r.body)); v > max.Load() {
				max.Store(v)
			}
		})
	}
	wg.Wait()
	c, _ := e.session(id).GetInt("counter")
	assert.GreaterOrEqual(t, c, int64(1))
	assert.LessOrEqual(t, c, int64(n))
	t.Logf("without OneAtATime: %d of %d increments survived (last save wins)", c, n)
}

func TestKeyedMutex(t *testing.T) {
	var k keyedMutex
	unlock, err := k.lock(context.Background(), "a")
	require.NoError(t, err)
	assert.Equal(t, 1, k.len())

	// A waiter gives up when its context ends, and leaves no entry behind once done.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = k.lock(ctx, "a")
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	// Another key is independent.
	unlockB, err := k.lock(context.Background(), "b")
	require.NoError(t, err)
	unlockB()

	// Waiters beyond the bound are refused.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	waitCtx, cancelWaiters := context.WithCancel(context.Background())
	for range maxQueued {
		wg.Go(func() {
			if u, err := k.lock(waitCtx, "a"); err == nil {
				<-stop
				u()
			}
		})
	}
	require.Eventually(t, func() bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		return k.m["a"].refs == maxQueued+1
	}, 5*time.Second, time.Millisecond)
	_, err = k.lock(context.Background(), "a")
	assert.ErrorIs(t, err, errBusy)
	cancelWaiters()
	close(stop)
	unlock()
	wg.Wait()
	assert.Zero(t, k.len(), "all entries dropped")
}

// TestManagerSkipsUnchangedPythonFile: a session file CPython wrote, read by a Go
// page within a second of its access time, is not rewritten, because the session
// re-encodes to CPython's very bytes; a second later the access time moves and the
// file is saved.
func TestManagerSkipsUnchangedPythonFile(t *testing.T) {
	for _, name := range fixtures {
		data := fixture(t, name)
		s, err := Decode(data, shopClass)
		require.NoError(t, err)
		enc, err := s.Encode()
		require.NoError(t, err)
		require.Equal(t, data, enc, "%s re-encodes to CPython's bytes", name)

		e := newTestEnv(t, func(m *Manager) { m.Classes = []Class{shopClass} })
		e.clock.t = s.AccessTime().Add(500 * time.Millisecond)
		e.st.put(s.ID(), data)
		st := e.status(`QX_session="` + s.ID() + `"`)
		require.Equal(t, s.ID(), st["id"], name)
		_, saves, _ := e.st.counts()
		assert.Zero(t, saves, "%s: not rewritten", name)

		e.clock.advance(time.Second)
		e.status(`QX_session="` + s.ID() + `"`)
		_, saves, _ = e.st.counts()
		assert.Equal(t, 1, saves, "%s: saved once the access time moved", name)
		assert.True(t, e.session(s.ID()).AccessTime().After(s.AccessTime()))
	}
}

func TestCookieSessionID(t *testing.T) {
	c := &Cookie{}
	for header, want := range map[string]string{
		"":                                      "",
		`QX_session="KyPJ1fkwwK8"`:              "KyPJ1fkwwK8",
		`a=1, QX_session=first; QX_session=2nd`: "2nd",
		`QX_session="../x"`:                     "",
		`QX_session=*del*`:                      "",
		`x="\"; QX_session=inside"`:             "",
		`QX_session=ok; $Path=/`:                "ok",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if header != "" {
			r.Header.Set("Cookie", header)
		}
		assert.Equal(t, want, c.SessionID(r), header)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Cookie", "sid=abc")
	assert.Equal(t, "abc", (&Cookie{Name: "sid"}).SessionID(r))
}
