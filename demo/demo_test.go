package demo

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/pytext"
	"github.com/qxbridge/qxbridge/internal/testhttp"
	"github.com/qxbridge/qxbridge/quixote"
	"github.com/qxbridge/qxbridge/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// demoSite is the demo behind session3's session manager over a fresh session
// directory, as a gateway serves it.
type demoSite struct {
	srv *httptest.Server
	dir string
	c   *http.Client
}

func newDemoSite(t *testing.T) *demoSite {
	dir := filepath.Join(t.TempDir(), "sessions")
	require.NoError(t, os.Mkdir(dir, 0o777))
	st, err := store.Open(dir)
	require.NoError(t, err)
	m := quixote.NewManager(st)
	m.OneAtATime = true
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httptest.NewServer(m.Handler(New(func() quixote.IterableStore { return st }, m.Logger)))
	t.Cleanup(srv.Close)
	return &demoSite{srv: srv, dir: dir, c: &http.Client{Timeout: 10 * time.Second}}
}

func (d *demoSite) url() string { return d.srv.URL }

// req makes a request the way session3's run_tests.py does: the Cookie header, when
// given, is the raw Set-Cookie header of an earlier response (attributes included).
func (d *demoSite) req(t *testing.T, method, path, data, cookie string) testhttp.Response {
	t.Helper()
	var h []string
	if cookie != "" {
		h = []string{"Cookie", cookie}
	}
	return testhttp.Do(t, d.c, method, d.url()+path, data, h...)
}

func setCookie(r testhttp.Response) string {
	if len(r.Cookies) == 0 {
		return ""
	}
	return r.Cookies[0]
}

var checkLine = regexp.MustCompile(`(?m)^session_id: (.*)$`)

// mainContent returns what a page of the demo has between <main> and </main>: the
// page's own content, without the layout around it.
func mainContent(t *testing.T, body string) string {
	t.Helper()
	_, rest, ok := strings.Cut(body, "<main>\n")
	require.True(t, ok, "no <main> in %q", body)
	content, _, ok := strings.Cut(rest, "\n</main>")
	require.True(t, ok, "no </main> in %q", body)
	return content
}

// TestDemoSession3IntegrationCases runs the cases of session3's test/run_tests.py, in
// its order and with its assertions, against the demo app, plus what each case implies
// about the session files.
func TestDemoSession3IntegrationCases(t *testing.T) {
	d := newDemoSite(t)
	var cookie string

	t.Run("new_session", func(t *testing.T) {
		r := d.req(t, "GET", "/", "", "")
		require.Equal(t, 200, r.Status)
		assert.Contains(t, r.Body, "Not logged in")
		assert.Contains(t, mainContent(t, r.Body), "<p>Not logged in.</p><p><a href=\"login\">login</a></p>")
		assert.Equal(t, "Go", shown(r.Body)["served-by"])
		assert.Equal(t, "nobody (not logged in)", shown(r.Body)["session-user"])
		assert.Empty(t, r.Cookies, "an empty session is not stored and gets no cookie")
		assert.Empty(t, testhttp.SessionFiles(t, d.dir))
	})

	t.Run("login_form", func(t *testing.T) {
		r := d.req(t, "GET", "/login", "", "")
		require.Equal(t, 200, r.Status)
		assert.Contains(t, mainContent(t, r.Body), `<form method="POST" action="login"><input name="name" aria-label="name" /><input type="submit" value="Log in" /></form>`)
		assert.Empty(t, r.Cookies)
	})

	t.Run("login_creates_session", func(t *testing.T) {
		r := d.req(t, "POST", "/login", "name=TestUser", "")
		require.Equal(t, 200, r.Status)
		assert.Contains(t, r.Body, "TestUser")
		assert.Equal(t, "<h1>Logged in</h1>\n<p>Welcome! TestUser</p><p><a href=\".\">back</a></p>", mainContent(t, r.Body))
		assert.Equal(t, "TestUser", shown(r.Body)["session-user"])
		assert.Equal(t, "0", shown(r.Body)["session-counter"])
		require.NotEmpty(t, r.Cookies, "No session cookie set after login")
		cookie = setCookie(r)
		assert.Regexp(t, `^QX_session="[A-Za-z0-9_-]{11}"; path=/$`, cookie)
		id := strings.Split(cookie, `"`)[1]
		assert.Equal(t, []string{id}, testhttp.SessionFiles(t, d.dir))
		s := testhttp.ReadSession(t, d.dir, id)
		assert.Equal(t, "session3.Session.Session", s.Class().String())
		assert.Equal(t, "TestUser", s.User())
		n, ok := s.GetInt("counter")
		assert.True(t, ok)
		assert.Equal(t, int64(0), n)
		assert.Equal(t, "127.0.0.1", s.RemoteAddress())
	})

	t.Run("session_persist", func(t *testing.T) {
		r := d.req(t, "GET", "/", "", cookie)
		require.Equal(t, 200, r.Status)
		assert.Contains(t, r.Body, "TestUser")
		id := strings.Split(cookie, `"`)[1]
		assert.Contains(t, mainContent(t, r.Body), "<p>Hello, TestUser!</p>")
		assert.Equal(t, map[string]string{"served-by": "Go", "session-user": "TestUser", "session-counter": "0",
			"session-id": id, "session-tokens": "0", "session-class": "session3.Session.Session"}, shown(r.Body))
	})

	t.Run("counter", func(t *testing.T) {
		r1 := d.req(t, "GET", "/counter", "", cookie)
		if c := setCookie(r1); c != "" {
			cookie = c
		}
		r2 := d.req(t, "GET", "/counter", "", cookie)
		assert.Contains(t, r1.Body, "Counter: 1")
		assert.Contains(t, r2.Body, "Counter: 2")
		assert.Equal(t, "<h1>Counted in Go</h1>\n<p>Counter: 2</p><p><a href=\".\">back</a></p>", mainContent(t, r2.Body))
		n, _ := testhttp.ReadSession(t, d.dir, strings.Split(cookie, `"`)[1]).GetInt("counter")
		assert.Equal(t, int64(2), n)
	})

	t.Run("check_endpoint", func(t *testing.T) {
		r := d.req(t, "GET", "/check", "", cookie)
		require.Equal(t, 200, r.Status)
		assert.Contains(t, r.Body, "user: TestUser")
		assert.Contains(t, r.Body, "session_id:")
		assert.Contains(t, r.Body, "has_info: TestUser")
		assert.Contains(t, r.Body, "form_tokens_count:")
		assert.Contains(t, r.Body, "has_form_tokens:")
		id := strings.Split(cookie, `"`)[1]
		s := testhttp.ReadSession(t, d.dir, id)
		assert.Equal(t, "session_id: "+id+"\nuser: TestUser\ncounter: 2\nhas_info: TestUser\nform_tokens_count: 0\nhas_form_tokens: False\nAccess time: "+
			pytext.FloatRepr(accessTime(s))+"\nserved by: Go (the qxbridge gateway)", r.Body)
	})

	t.Run("logout", func(t *testing.T) {
		r := d.req(t, "GET", "/logout", "", cookie)
		require.Equal(t, 200, r.Status)
		assert.Equal(t, "<h1>Logged out</h1>\n<p>Goodbye!</p><p><a href=\".\">start over</a></p>", mainContent(t, r.Body))
		assert.Equal(t, "nobody (not logged in)", shown(r.Body)["session-user"], "the panel shows the session the next request starts with")
		assert.Equal(t, []string{`QX_session=""; path=/; max-age=0`}, r.Cookies)
	})

	t.Run("session_file_deleted", func(t *testing.T) {
		assert.Empty(t, testhttp.SessionFiles(t, d.dir), "Expected 0 session files")
	})

	t.Run("form_tokens", func(t *testing.T) {
		r := d.req(t, "POST", "/login", "name=TokenUser", "")
		cookie = setCookie(r)
		require.NotEmpty(t, cookie)
		r2 := d.req(t, "GET", "/create_token", "", cookie)
		require.Equal(t, 200, r2.Status)
		id := strings.Split(cookie, `"`)[1]
		toks := testhttp.ReadSession(t, d.dir, id).FormTokens()
		require.Len(t, toks, 1)
		assert.Len(t, toks[0], 22)
		assert.Equal(t, "<h1>A form token</h1>\n<p>Token created: "+toks[0][:16]+"...</p><p><a href=\".\">back</a></p>", mainContent(t, r2.Body))
		assert.Equal(t, "1", shown(r2.Body)["session-tokens"])
		r3 := d.req(t, "GET", "/check_token", "", cookie)
		assert.Contains(t, r3.Body, "has_form_tokens: True")
		s := testhttp.ReadSession(t, d.dir, id)
		assert.Equal(t, "session_id: "+id+"\nuser: TokenUser\nhas_form_tokens: True\nform_token_count: 1\nAccess time: "+pytext.FloatRepr(accessTime(s))+"\nserved by: Go (the qxbridge gateway)", r3.Body)
	})

	t.Run("delete_old_sessions", func(t *testing.T) {
		r := d.req(t, "POST", "/login", "name=DeleteTest", "")
		cookie = setCookie(r)
		require.Len(t, testhttp.SessionFiles(t, d.dir), 2, "TokenUser's and DeleteTest's")
		time.Sleep(20 * time.Millisecond) // both files now older than "0 minutes ago"
		// A GET sweeps nothing: it shows the form, with a form token.
		form := d.req(t, "GET", "/delete_old?minutes=0", "", cookie)
		assert.Equal(t, http.StatusOK, form.Status)
		assert.Len(t, testhttp.SessionFiles(t, d.dir), 2, "a GET deletes nothing")
		sweep := func(minutes string) testhttp.Response {
			t.Helper()
			form := d.req(t, "GET", "/delete_old?minutes="+minutes, "", cookie)
			tok := regexp.MustCompile(`name="_form_token" value="([^"]+)"`).FindStringSubmatch(form.Body)
			require.NotNil(t, tok, form.Body)
			assert.Contains(t, form.Body, `<input type="hidden" name="minutes" value="`+minutes+`" />`)
			r := d.req(t, "POST", "/delete_old", "_form_token="+tok[1]+"&minutes="+minutes, cookie)
			// The token is good once.
			assert.Equal(t, http.StatusForbidden, d.req(t, "POST", "/delete_old", "_form_token="+tok[1]+"&minutes="+minutes, cookie).Status)
			return r
		}
		assert.Equal(t, http.StatusForbidden, d.req(t, "POST", "/delete_old", "minutes=0", cookie).Status, "no token")
		assert.Len(t, testhttp.SessionFiles(t, d.dir), 2)
		r2 := sweep("0")
		assert.Contains(t, r2.Body, "Deleted:")
		assert.Equal(t, "<h1>Old sessions</h1>\n<p>Deleted: 2, Remaining: 0</p>", mainContent(t, r2.Body))
		// As in session3, the visitor's own session is saved again at the end of the
		// request: DeleteTest stays logged in, TokenUser's session is gone.
		id := strings.Split(cookie, `"`)[1]
		assert.Equal(t, []string{id}, testhttp.SessionFiles(t, d.dir))
		assert.Contains(t, d.req(t, "GET", "/check", "", cookie).Body, "user: DeleteTest")

		r3 := sweep("60")
		assert.Equal(t, "<h1>Old sessions</h1>\n<p>Deleted: 0, Remaining: 1</p>", mainContent(t, r3.Body))
		assert.Equal(t, http.StatusBadRequest, d.req(t, "GET", "/delete_old?minutes=x", "", cookie).Status)
	})

	t.Run("session_not_found", func(t *testing.T) {
		r := d.req(t, "POST", "/login", "name=RecoveryTest", "")
		cookie = setCookie(r)
		rOld := d.req(t, "GET", "/check", "", cookie)
		oldID := checkLine.FindStringSubmatch(rOld.Body)[1]

		for _, f := range testhttp.SessionFiles(t, d.dir) {
			require.NoError(t, os.Remove(filepath.Join(d.dir, f)))
		}
		r2 := d.req(t, "POST", "/login", "name=RecoveryTest", "")
		require.Equal(t, 200, r2.Status, "Server should respond")
		cookie = setCookie(r2)
		rNew := d.req(t, "GET", "/check", "", cookie)
		newID := checkLine.FindStringSubmatch(rNew.Body)[1]
		assert.NotEmpty(t, testhttp.SessionFiles(t, d.dir), "Expected new session file to be created")
		assert.NotEqual(t, oldID, newID, "Expected new session ID")
		assert.Contains(t, rNew.Body, "user: RecoveryTest")
	})

	t.Run("session_not_found_no_crash", func(t *testing.T) {
		r := d.req(t, "POST", "/login", "name=NoCrashTest", "")
		cookie = setCookie(r)
		for _, f := range testhttp.SessionFiles(t, d.dir) {
			require.NoError(t, os.Remove(filepath.Join(d.dir, f)))
		}
		r2 := d.req(t, "GET", "/check", "", cookie)
		require.Equal(t, 200, r2.Status, "Server should respond without crashing")
		assert.Regexp(t, `^session_id: None\nuser: None\ncounter: N/A\nhas_info: None\nform_tokens_count: 0\nhas_form_tokens: False\nAccess time: [0-9.e+]+\nserved by: Go \(the qxbridge gateway\)$`,
			r2.Body)
		assert.Empty(t, testhttp.SessionFiles(t, d.dir), "an unknown session is not recreated without info")
	})
}

// TestDemoDetails covers what the integration cases do not: escaping, login by query,
// empty names, unknown paths, counters of other types, a mount.
func TestDemoDetails(t *testing.T) {
	d := newDemoSite(t)
	c := testhttp.Client(t)
	u := d.url()

	r := testhttp.Get(t, c, u+"/login?name=%3Cb%3E%26%22x%22")
	assert.Equal(t, "<h1>Logged in</h1>\n<p>Welcome! &lt;b&gt;&amp;&quot;x&quot;</p><p><a href=\".\">back</a></p>", mainContent(t, r.Body),
		"get_field reads the query too; values are escaped as htmltext does")
	assert.Equal(t, "&lt;b&gt;&amp;&quot;x&quot;", shown(r.Body)["session-user"])
	assert.Contains(t, testhttp.Get(t, c, u+"/").Body, "<p>Hello, &lt;b&gt;&amp;&quot;x&quot;!</p>")

	r = testhttp.Do(t, c, "POST", u+"/login", "name=")
	assert.Contains(t, r.Body, "<form", "an empty name shows the form")

	for _, p := range []string{"/nope", "/login/", "/check/x", "/pyx"} {
		assert.Equal(t, http.StatusNotFound, testhttp.Get(t, c, u+p).Status, p)
	}
	// The Python side's paths, when no route sends them to Python.
	for p, css := range map[string]string{"/py": "style.css", "/py/": "../style.css", "/py/a/b": "../../style.css"} {
		r := testhttp.Get(t, c, u+p)
		assert.Equal(t, http.StatusBadGateway, r.Status, p)
		assert.Contains(t, r.Body, "<h1>The Python side is not running</h1>", p)
		assert.Contains(t, r.Body, `<link rel="stylesheet" href="`+css+`">`, p)
	}
	r = testhttp.Get(t, c, u+"/style.css")
	assert.Equal(t, "text/css; charset=utf-8", r.Header.Get("Content-Type"))
	assert.Equal(t, string(stylesheet), r.Body)

	// A counter Python stored as a float goes on as a float, printed as Python prints it.
	id := strings.Split(setCookie(testhttp.Get(t, testhttp.Client(t), u+"/login?name=f")), `"`)[1]
	cookie := "QX_session=" + id
	s := testhttp.ReadSession(t, d.dir, id)
	require.NoError(t, s.Set("counter", 1.5))
	data, err := s.Encode()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(d.dir, id), data, 0o644))
	assert.Contains(t, testhttp.Get(t, d.c, u+"/counter", "Cookie", cookie).Body, "Counter: 2.5")
	require.NoError(t, s.Set("counter", "text"))
	data, err = s.Encode()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(d.dir, id), data, 0o644))
	r = testhttp.Get(t, d.c, u+"/counter", "Cookie", cookie)
	assert.Equal(t, http.StatusInternalServerError, r.Status)
	assert.Contains(t, r.Body, "unsupported operand type(s) for +: 'str' and 'int'")
	n, _ := testhttp.ReadSession(t, d.dir, id).GetString("counter")
	assert.Equal(t, "text", n, "a failed request saves nothing")
}
