package quixote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/qxbridge/qxbridge/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// failures records the Manager's Failed calls.
type failures struct {
	mu   sync.Mutex
	list []string
}

func (f *failures) add(_ *http.Request, op string, status int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.list = append(f.list, fmt.Sprintf("%s %d", op, status))
}

func (f *failures) all() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.list...)
}

// serveDirect runs one request through h without a socket (a recorder), so that it
// needs no file descriptor of its own.
func serveDirect(h http.Handler, path, cookie string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", path, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// limitFDs lowers the soft RLIMIT_NOFILE to the lowest descriptor free now: the
// next open(2) fails with EMFILE. It returns the function that restores the limit.
func limitFDs(t testing.TB) func() {
	t.Helper()
	var old unix.Rlimit
	require.NoError(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &old))
	free, err := unix.Dup(0) // the descriptor the next open(2) would get
	require.NoError(t, err)
	require.NoError(t, unix.Close(free))
	lim := old
	lim.Cur = uint64(free)
	require.NoError(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &lim))
	return func() { require.NoError(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &old)) }
}

// TestManagerOutOfFileDescriptors runs TestManagerOutOfFileDescriptorsChild in a
// process of its own, whose descriptor limit it lowers: out of file descriptors, a
// load answers 503 instead of an anonymous page, a save that fails answers 503
// instead of the page it held back, and a page that had gone out is logged and
// reported; each at error level.
func TestManagerOutOfFileDescriptors(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestManagerOutOfFileDescriptorsChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "QXBRIDGE_FD_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "--- PASS: TestManagerOutOfFileDescriptorsChild", "%s", out)
}

func TestManagerOutOfFileDescriptorsChild(t *testing.T) {
	if os.Getenv("QXBRIDGE_FD_CHILD") == "" {
		t.Skip("run by TestManagerOutOfFileDescriptors in a process of its own")
	}
	dir := filepath.Join(t.TempDir(), "sessions")
	st, err := store.Open(dir, store.WithCreate())
	require.NoError(t, err)
	logger, logs := newLogger()
	var failed failures
	m := &Manager{Store: st, Logger: logger, Failed: failed.add, BufferLimit: 1024}
	app := testApp()
	var restore func()
	// /limit-then-counter lowers the limit between the load and the save.
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/limit") {
			restore = limitFDs(t)
			r.URL.Path = strings.TrimPrefix(r.URL.Path, "/limit")
		}
		if r.URL.Path == "/big" {
			n, _ := SessionFrom(r).GetInt("counter")
			_ = SessionFrom(r).Set("counter", n+1)
			_, _ = w.Write([]byte(strings.Repeat("x", 4096)))
			return
		}
		app.ServeHTTP(w, r)
	}))

	rec := serveDirect(h, "/login?user=alice", "")
	require.Equal(t, 200, rec.Code)
	cookie := rec.Header().Get("Set-Cookie")
	id := newCookieID(t, response{cookies: []string{cookie}})
	cookie = `QX_session="` + id + `"`
	rec = serveDirect(h, "/counter", cookie)
	require.Equal(t, "1", rec.Body.String())
	before, err := os.ReadFile(filepath.Join(dir, id))
	require.NoError(t, err)

	// Load.
	undo := limitFDs(t)
	rec = serveDirect(h, "/counter", cookie)
	undo()
	assert.Equal(t, 503, rec.Code, "out of descriptors at load: not an anonymous page")
	assert.NotContains(t, rec.Body.String(), "2")
	assert.Empty(t, rec.Header().Values("Set-Cookie"))

	// Save of a page held back.
	rec = serveDirect(h, "/limit/counter", cookie)
	restore()
	assert.Equal(t, 503, rec.Code, "the change was not saved: the page is not sent")
	assert.Equal(t, "Service Unavailable\n", rec.Body.String())
	after, err := os.ReadFile(filepath.Join(dir, id))
	require.NoError(t, err)
	assert.Equal(t, before, after)

	// Save after a page longer than BufferLimit went out.
	rec = serveDirect(h, "/limit/big", cookie)
	restore()
	assert.Equal(t, 200, rec.Code)
	assert.Len(t, rec.Body.String(), 4096)

	// A save that works.
	rec = serveDirect(h, "/counter", cookie)
	assert.Equal(t, 200, rec.Code)
	assert.Equal(t, "2", rec.Body.String(), "the counter went 1, (lost twice, both reported), 2")

	assert.Equal(t, []string{"load 503", "save 503", "save 0"}, failed.all())
	var errs []string
	for _, l := range logs.warnings() {
		if strings.Contains(l, "level=ERROR") {
			errs = append(errs, l)
		}
	}
	require.Len(t, errs, 3, "%s", logs.String())
	for _, l := range errs {
		assert.Contains(t, l, "too many open files")
	}
	assert.Contains(t, errs[2], "already been sent")
}

// TestManagerFullDiskRealSession3 mounts a small tmpfs as the session directory and
// fills it: the real session3's save leaves a zero-length file behind (it truncates,
// then the write fails); the Go page that meets it removes it at load (session3 itself
// would loop on it forever) and Python then loads the id as absent; a Go save on the
// full disk answers 503 instead of the page; once there is room again, it saves.
func TestManagerFullDiskRealSession3(t *testing.T) {
	testpeer.Python(t)
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "sessions")
	require.NoError(t, os.Mkdir(dir, 0o770))
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })

	st, err := store.Open(dir, store.WithPartialWait(200*time.Millisecond))
	require.NoError(t, err)
	logger, logs := newLogger()
	var failed failures
	m := &Manager{Store: st, Logger: logger, Failed: failed.add}
	srv := httptest.NewServer(m.Handler(testApp()))
	defer srv.Close()
	get := func(path, cookie string) response {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return response{resp.StatusCode, string(b), resp.Header.Values("Set-Cookie")}
	}

	r := get("/login?user=alice", "")
	require.Equal(t, 200, r.status)
	alice := `QX_session="` + newCookieID(t, r) + `"`

	// Fill the disk.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	require.NoError(t, err)
	for {
		if _, err := filler.Write(make([]byte, 4096)); err != nil {
			require.True(t, errors.Is(err, syscall.ENOSPC), "%v", err)
			break
		}
	}
	require.NoError(t, filler.Close())

	// Go: the save fails, the page is not sent.
	r = get("/login?user=bob", alice)
	assert.Equal(t, 503, r.status, "disk full: the login is not answered as a success")
	assert.NotEqual(t, "ok", r.body)

	// Python: session3's save truncates the file, then fails, leaving it empty.
	out, err := testpeer.PythonCmd(t, "store_peer.py", "save", dir, "pyemptysess1",
		testpeer.Testdata("session3", "session3-login.pkl")).CombinedOutput()
	require.Error(t, err, "session3 cannot save on a full disk")
	assert.Contains(t, string(out), "No space left on device")
	fi, err := os.Stat(filepath.Join(dir, "pyemptysess1"))
	require.NoError(t, err, "session3 left its truncated file")
	require.Zero(t, fi.Size())

	// Go meets it at load and removes it; the page is served with a new session.
	r = get("/status", `QX_session="pyemptysess1"`)
	assert.Equal(t, 200, r.status)
	_, err = os.Stat(filepath.Join(dir, "pyemptysess1"))
	assert.True(t, errors.Is(err, os.ErrNotExist), "the empty file is removed: %v", err)
	out, err = testpeer.PythonCmd(t, "store_peer.py", "load", dir, "pyemptysess1").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "None", strings.TrimSpace(string(out)), "session3 loads the id as absent instead of looping")

	// Room again: the save works.
	require.NoError(t, os.Remove(filepath.Join(dir, "filler")))
	r = get("/login?user=bob", alice)
	assert.Equal(t, 200, r.status)
	assert.Equal(t, []string{"save 503"}, failed.all())
	assert.Contains(t, logs.String(), "no space left on device")
}

// TestManagerHijack: a handler can take the connection over (http.Hijacker on the
// writer itself); the manager then writes nothing more and still saves the session.
func TestManagerHijack(t *testing.T) {
	st := newMemStore()
	logger, logs := newLogger()
	m := &Manager{Store: st, Logger: logger}
	done := make(chan struct{})
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := SessionFrom(r)
		_ = s.SetUser("alice")
		_ = s.Set("counter", int64(1))
		c, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer c.Close()
		_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked")
		_ = brw.Flush()
	}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		close(done) // the manager has saved
	}))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Cookie", `QX_session="`+"hijacksess1"+`"`)
	s0 := NewSession(Session3Class, "127.0.0.1", time.Now())
	s0.setID("hijacksess1")
	require.NoError(t, s0.SetUser("alice"))
	data, err := s0.Encode()
	require.NoError(t, err)
	require.NoError(t, st.Save(context.Background(), "hijacksess1", data))
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "hijacked", string(body))
	<-done
	saved, err := st.Load(context.Background(), "hijacksess1")
	require.NoError(t, err)
	s, err := Decode(saved)
	require.NoError(t, err)
	n, _ := s.GetInt("counter")
	assert.Equal(t, int64(1), n, "the session is saved")
	assert.NotContains(t, logs.String(), "hijacked connection")
}

// TestManagerLockTimeout: a session file locked by a stuck peer (a real flock(2)
// held by this test) past the store's lock timeout gives 503 at load, and 503 at
// save in place of the page, instead of an anonymous page or a lost change.
func TestManagerLockTimeout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sessions")
	st, err := store.Open(dir, store.WithCreate(), store.WithLockTimeout(200*time.Millisecond))
	require.NoError(t, err)
	var failed failures
	logger, _ := newLogger()
	m := &Manager{Store: st, Logger: logger, Failed: failed.add}
	app := testApp()
	var hold func()
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hold != nil {
			hold() // the peer takes the lock between our load and our save
		}
		app.ServeHTTP(w, r)
	}))
	rec := serveDirect(h, "/login?user=alice", "")
	require.Equal(t, 200, rec.Code)
	id := newCookieID(t, response{cookies: []string{rec.Header().Get("Set-Cookie")}})
	cookie := `QX_session="` + id + `"`
	lock := func() *os.File {
		f, err := os.Open(filepath.Join(dir, id))
		require.NoError(t, err)
		require.NoError(t, unix.Flock(int(f.Fd()), unix.LOCK_EX))
		return f
	}

	f := lock()
	rec = serveDirect(h, "/counter", cookie)
	assert.Equal(t, 503, rec.Code, "locked at load")
	f.Close()

	hold = func() { f = lock() }
	rec = serveDirect(h, "/counter", cookie)
	f.Close()
	assert.Equal(t, 503, rec.Code, "locked at save")
	assert.NotEqual(t, "1", rec.Body.String())

	hold = nil
	rec = serveDirect(h, "/counter", cookie)
	assert.Equal(t, "1", rec.Body.String(), "neither failed request counted")
	assert.Equal(t, []string{"load 503", "save 503"}, failed.all())
}

// failSaveStore is a store whose saves fail as on a full disk.
type failSaveStore struct{ *memStore }

func (failSaveStore) Save(context.Context, string, []byte) error {
	return fmt.Errorf("disk full: %w", store.ErrUnavailable)
}

// writePage writes body the way named: Write, io.Copy (ReadFrom) or
// http.ServeContent.
func writePage(w http.ResponseWriter, r *http.Request, how, body string) {
	switch how {
	case "Write":
		_, _ = io.WriteString(w, body)
	case "io.Copy":
		_, _ = io.Copy(w, strings.NewReader(body))
	case "ServeContent":
		http.ServeContent(w, r, "x.txt", time.Time{}, strings.NewReader(body))
	}
}

// TestManagerCopiedPageFailedSave: a page within BufferLimit written through
// ReadFrom (io.Copy, http.ServeContent) is held back like one written with Write, so
// a failed save is answered 503, not 200; when the save succeeds the page is intact,
// and a page past the limit still goes out whole. The session is new, so a page past
// the limit is answered 503 too when the save fails: a new session is saved before
// the headers that carry its cookie.
func TestManagerCopiedPageFailedSave(t *testing.T) {
	for _, how := range []string{"Write", "io.Copy", "ServeContent"} {
		for _, size := range []int{6, 100, 101, 5000} {
			body := strings.Repeat("x", size)
			page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				require.NoError(t, SessionFrom(r).Set("counter", int64(1)))
				SessionFrom(r).SetUser("ann")
				writePage(w, r, how, body)
			})
			for _, failing := range []bool{true, false} {
				var st Store = newMemStore()
				if failing {
					st = failSaveStore{newMemStore()}
				}
				m := NewManager(st)
				m.BufferLimit = 100
				rec := httptest.NewRecorder()
				m.Handler(page).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
				name := fmt.Sprintf("%s %d bytes, save fails %v", how, size, failing)
				if failing {
					assert.Equal(t, http.StatusServiceUnavailable, rec.Code, name)
					assert.NotContains(t, rec.Body.String(), body, name)
					continue
				}
				assert.Equal(t, http.StatusOK, rec.Code, name)
				assert.Equal(t, body, rec.Body.String(), name)
			}
		}
	}
}

// TestNewSessionSavedBeforeLongPage: a new session whose page goes out before the
// handler returns (longer than BufferLimit, or flushed) is saved before the headers
// that carry its cookie, so the browser's next request finds it even while this one
// runs; what the handler changes afterwards is saved at the end. When that first save
// fails, the manager answers 503 in place of the page, the handler's later writes
// fail, and nothing is saved or reported twice.
func TestNewSessionSavedBeforeLongPage(t *testing.T) {
	for _, how := range []string{"long", "flushed"} {
		t.Run(how, func(t *testing.T) {
			st := newMemStore()
			m := NewManager(st)
			m.BufferLimit = 100
			var during []byte
			page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s := SessionFrom(r)
				require.NoError(t, s.SetUser("ann"))
				if how == "long" {
					_, _ = w.Write([]byte(strings.Repeat("x", 101)))
				} else {
					_, _ = w.Write([]byte("x"))
					http.NewResponseController(w).Flush()
				}
				st.mu.Lock()
				during = bytes.Clone(st.files[s.ID()])
				st.mu.Unlock()
				require.NoError(t, s.Set("counter", int64(7)))
			})
			rec := httptest.NewRecorder()
			m.Handler(page).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			require.Equal(t, http.StatusOK, rec.Code)
			id := newCookieID(t, response{cookies: rec.Header().Values("Set-Cookie")})
			require.NotEmpty(t, during, "saved before the page went out")
			before, err := Decode(during)
			require.NoError(t, err)
			assert.Equal(t, "ann", before.User())
			after, err := Decode(st.files[id])
			require.NoError(t, err)
			counter, ok := after.Get("counter")
			assert.True(t, ok)
			assert.Equal(t, int64(7), counter, "the handler's later change saved at the end")
		})
	}

	var failed []string
	m := NewManager(failSaveStore{newMemStore()})
	m.BufferLimit = 100
	m.Failed = func(r *http.Request, op string, status int, err error) {
		failed = append(failed, fmt.Sprintf("%s %d", op, status))
	}
	var writeErr error
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, SessionFrom(r).SetUser("ann"))
		_, _ = w.Write([]byte(strings.Repeat("x", 101)))
		_, writeErr = w.Write([]byte("more"))
	})
	rec := httptest.NewRecorder()
	m.Handler(page).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.NotContains(t, rec.Body.String(), "x")
	assert.Empty(t, rec.Header().Values("Set-Cookie"), "no cookie for a session not saved")
	assert.ErrorIs(t, writeErr, errPageReplaced)
	assert.Equal(t, []string{"save 503"}, failed)
}
