package quixote

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/qxbridge/qxbridge/store"
)

// startQxapp runs testdata/py/qxapp_http.py on dir and returns its base URL.
func startQxapp(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := testpeer.PythonCmd(t, "qxapp_http.py", append([]string{dir}, args...)...)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stderr := &logBuffer{} // written by exec's goroutine, read here
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		stdin.Close() // qxapp_http.py shuts down when its stdin closes
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() && stderr.String() != "" {
			t.Logf("qxapp_http.py stderr:\n%s", stderr.String())
		}
	})
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- l
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l := <-line:
		require.True(t, strings.HasPrefix(l, "listening "), "qxapp_http.py said %q; stderr: %s", l, stderr.String())
		return strings.TrimSpace(strings.TrimPrefix(l, "listening "))
	case <-time.After(15 * time.Second):
		t.Fatalf("qxapp_http.py did not start; stderr: %s", stderr.String())
	}
	return ""
}

// peer is one side of the turn-taking test: a base URL reached with the shared jar.
type peer struct {
	t      *testing.T
	name   string
	base   string
	client *http.Client
}

func (p *peer) get(path string) (int, string) {
	p.t.Helper()
	resp, err := p.client.Get(p.base + path)
	require.NoError(p.t, err, "%s %s", p.name, path)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(p.t, err)
	return resp.StatusCode, string(body)
}

func (p *peer) must(path, want string) string {
	p.t.Helper()
	code, body := p.get(path)
	require.Equal(p.t, 200, code, "%s %s: %s", p.name, path, body)
	if want != "" {
		require.Equal(p.t, want, body, "%s %s", p.name, path)
	}
	return body
}

func (p *peer) status() map[string]any {
	p.t.Helper()
	body := p.must("/status", "")
	var st map[string]any
	require.NoError(p.t, json.Unmarshal([]byte(body), &st), "%s status: %s", p.name, body)
	return st
}

// sameView asserts that both sides show the same session. The access time may
// differ when one side's request came a second after the other's.
func sameView(t *testing.T, step string, a, b *peer) map[string]any {
	t.Helper()
	sa, sb := a.status(), b.status()
	ta, _ := sa["access_time"].(float64)
	tb, _ := sb["access_time"].(float64)
	assert.Less(t, math.Abs(ta-tb), 3.0, "%s: access times", step)
	delete(sa, "access_time")
	delete(sb, "access_time")
	if sa["id"] == nil && sb["id"] == nil {
		// Two new sessions, made by each side for its request: times differ.
		delete(sa, "creation_time")
		delete(sb, "creation_time")
	}
	require.Equal(t, sa, sb, "%s: %s and %s see different sessions", step, a.name, b.name)
	return sa
}

// TestTurnTaking has a real Quixote publisher (qxsite served by qxapp_http.py: session3's
// or session4's manager over its DirectorySessionStore) and the Go middleware (over store.Directory) serve one
// client, with one cookie jar, on one session directory, taking turns.
func TestTurnTaking(t *testing.T) {
	for _, class := range []Class{Session3Class, QuixoteClass, Session4Class} {
		t.Run(class.String(), func(t *testing.T) { turnTaking(t, class) })
	}
}

func turnTaking(t *testing.T, class Class) {
	dir := filepath.Join(t.TempDir(), "sessions")
	st, err := store.Open(dir, store.WithCreate())
	require.NoError(t, err)
	pyURL := startQxapp(t, dir, "--class", class.String())

	logger, logs := newLogger()
	m := NewManager(st)
	m.NewClass = class
	m.Logger = logger
	goSrv := httptest.NewServer(m.Handler(testApp()))
	defer goSrv.Close()

	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	client := &http.Client{Jar: jar, Timeout: 20 * time.Second}
	py := &peer{t, "python", pyURL, client}
	gs := &peer{t, "go", goSrv.URL, client}

	files := func() []string {
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	file := func(id string) *Session {
		b, err := os.ReadFile(filepath.Join(dir, id))
		require.NoError(t, err)
		s, err := Decode(b)
		require.NoError(t, err)
		return s
	}

	// Nobody has a session yet.
	v := sameView(t, "start", py, gs)
	assert.Nil(t, v["id"])
	assert.Empty(t, files())

	// Login in Go; Python sees the session Go created.
	gs.must("/login?user=alice", "ok")
	require.Len(t, files(), 1)
	id := files()[0]
	v = sameView(t, "go login", py, gs)
	assert.Equal(t, id, v["id"])
	assert.Equal(t, "alice", v["user"])
	assert.Equal(t, class.String(), v["class"])
	assert.Equal(t, "127.0.0.1", v["remote_address"])
	assert.Equal(t, true, v["has_info"])
	if class.Kind == KindSession4 {
		// Quixote's BaseSessionManager makes 22-character ids; session4's store
		// writes protocol 5.
		assert.Len(t, id, 22)
		b, err := os.ReadFile(filepath.Join(dir, id))
		require.NoError(t, err)
		assert.Equal(t, []byte{0x80, 5}, b[:2])
	}

	// Counter in Python, then in Go.
	py.must("/counter", "1")
	n, _ := file(id).GetInt("counter")
	assert.Equal(t, int64(1), n)
	v = sameView(t, "python counter", py, gs)
	assert.Equal(t, map[string]any{"counter": float64(1)}, v["attrs"])
	gs.must("/counter", "2")
	n, _ = file(id).GetInt("counter")
	assert.Equal(t, int64(2), n)
	v = sameView(t, "go counter", py, gs)
	assert.Equal(t, map[string]any{"counter": float64(2)}, v["attrs"])
	if class.Kind == KindSession4 {
		// Go's save set _last_values as session4's does: Python's is_dirty finds
		// the session clean, so its manager does not write the file again.
		before, err := os.Stat(filepath.Join(dir, id))
		require.NoError(t, err)
		py.status()
		after, err := os.Stat(filepath.Join(dir, id))
		require.NoError(t, err)
		assert.Equal(t, before.ModTime(), after.ModTime(), "python saved a session Go left clean")
		assert.True(t, os.SameFile(before, after))

		// And the lost update a stale _last_values would cause: Go changes the user,
		// Python changes it back, and Python must find that a change.
		gs.must("/login?user=bob", "ok")
		py.must("/login?user=alice", "ok")
		v = sameView(t, "go bob, python alice", py, gs)
		assert.Equal(t, "alice", v["user"])
	}

	// A form token made in Python is consumed in Go, once.
	tok := py.must("/token", "")
	assert.Equal(t, []string{tok}, file(id).FormTokens())
	v = sameView(t, "python token", py, gs)
	assert.Equal(t, []any{tok}, v["form_tokens"])
	gs.must("/submit?_form_token="+tok, "accepted")
	assert.Empty(t, file(id).FormTokens())
	code, _ := py.get("/submit?_form_token=" + tok)
	assert.Equal(t, 403, code, "python rejects the token Go consumed")
	code, _ = gs.get("/submit?_form_token=" + tok)
	assert.Equal(t, 403, code)

	// And one made in Go is consumed in Python.
	tok = gs.must("/token", "")
	assert.Equal(t, []string{tok}, file(id).FormTokens())
	sameView(t, "go token", py, gs)
	py.must("/submit?_form_token="+tok, "accepted")
	assert.Empty(t, file(id).FormTokens())
	code, _ = gs.get("/submit?_form_token=" + tok)
	assert.Equal(t, 403, code, "go rejects the token Python consumed")
	v = sameView(t, "python submit", py, gs)
	assert.Equal(t, []any{}, v["form_tokens"])

	// A failing request on either side changes nothing.
	before, err := os.ReadFile(filepath.Join(dir, id))
	require.NoError(t, err)
	code, _ = py.get("/fail")
	assert.Equal(t, 500, code)
	code, _ = gs.get("/fail")
	assert.Equal(t, 500, code)
	after, err := os.ReadFile(filepath.Join(dir, id))
	require.NoError(t, err)
	assert.Equal(t, before, after)

	// Logout in Python: the cookie is revoked and the file deleted, both see nobody.
	py.must("/logout", "ok")
	assert.Empty(t, files())
	v = sameView(t, "python logout", py, gs)
	assert.Nil(t, v["id"])

	// Login in Python; Go sees it, counts, and logs out.
	py.must("/login?user=bob", "ok")
	require.Len(t, files(), 1)
	id2 := files()[0]
	assert.NotEqual(t, id, id2)
	v = sameView(t, "python login", py, gs)
	assert.Equal(t, id2, v["id"])
	assert.Equal(t, "bob", v["user"])
	gs.must("/counter", "1")
	sameView(t, "go counter 2", py, gs)
	gs.must("/logout", "ok")
	assert.Empty(t, files())
	v = sameView(t, "go logout", py, gs)
	assert.Nil(t, v["id"])

	// Explicit expiry on either side.
	gs.must("/login?user=carol", "ok")
	py.must("/expire", "ok")
	assert.Empty(t, files())
	py.must("/login?user=dave", "ok")
	gs.must("/expire", "ok")
	assert.Empty(t, files())
	v = sameView(t, "expired", py, gs)
	assert.Nil(t, v["id"])

	assert.Empty(t, logs.warnings())
}

// TestBadFilesRealStore leaves corrupt and foreign files in a real session
// directory: Go serves a new session, logs once per request, and leaves each file
// byte for byte as it was, even when the new session logs in; but for a zero-length
// file (on which session3 would loop forever), which is removed.
func TestBadFilesRealStore(t *testing.T) {
	python := testpeer.Python(t)
	dir := filepath.Join(t.TempDir(), "sessions")
	st, err := store.Open(dir, store.WithCreate(), store.WithPartialWait(100*time.Millisecond))
	require.NoError(t, err)

	// A foreign pickle made by CPython: a datetime, and an object of a non-session class.
	foreign := func(expr string) []byte {
		cmd := testpeer.PythonCmd(t, "quixote_pickle.py", expr)
		out, err := cmd.Output()
		require.NoError(t, err, "%s: %s", python, expr)
		return out
	}
	login := fixture(t, "session3-login.pkl")
	bad := map[string][]byte{
		"truncated01": login[:len(login)-7],
		"zerolength1": {},
		"garbage0001": []byte("\x80\x04garbage"),
		"datetime001": foreign("datetime.datetime(2026, 1, 1)"),
		"account0001": foreign("myapp.models.Account('eve')"),
		"idmismatch1": login,
	}
	for id, b := range bad {
		require.NoError(t, os.WriteFile(filepath.Join(dir, id), b, 0o644))
	}
	old := time.Now().Add(-time.Hour)
	for id := range bad {
		require.NoError(t, os.Chtimes(filepath.Join(dir, id), old, old))
	}

	logger, logs := newLogger()
	m := NewManager(st)
	m.Logger = logger
	srv := httptest.NewServer(m.Handler(testApp()))
	defer srv.Close()

	for id := range bad {
		req, _ := http.NewRequest("GET", srv.URL+"/login?user=alice", nil)
		req.Header.Set("Cookie", `QX_session="`+id+`"`)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode, id)
		newID := newCookieID(t, response{cookies: resp.Header.Values("Set-Cookie")})
		assert.NotEqual(t, id, newID)
		_, err = os.Stat(filepath.Join(dir, newID))
		assert.NoError(t, err, "the new session is stored under its new id")
	}
	assert.Len(t, logs.warnings(), len(bad), "one record per bad file")
	_, err = os.Stat(filepath.Join(dir, "zerolength1"))
	assert.ErrorIs(t, err, fs.ErrNotExist, "the empty file a crashed or out-of-space writer left is removed")
	delete(bad, "zerolength1")
	for id, b := range bad {
		got, err := os.ReadFile(filepath.Join(dir, id))
		require.NoError(t, err, id)
		assert.Equal(t, b, got, "%s left as it was", id)
		fi, err := os.Stat(filepath.Join(dir, id))
		require.NoError(t, err)
		assert.True(t, fi.ModTime().Equal(old), "%s not rewritten", id)
	}
	_, err = os.Stat(filepath.Join(dir, "nosuchfile1"))
	assert.True(t, errors.Is(err, fs.ErrNotExist))
}
