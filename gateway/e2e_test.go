package gateway

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testnginx"
	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/qxbridge/qxbridge/quixote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docsSocket is the gateway socket the documented nginx configuration names.
const docsSocket = "unix:/run/qxbridge/gateway.sock"

// documentedNginx returns docs/nginx.conf, the snippet the README tells users to
// install, with its scgi_pass pointed at the given gateway socket.
func documentedNginx(t testing.TB, gatewaySocket string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testpeer.RepoRoot(), "docs", "nginx.conf"))
	require.NoError(t, err)
	conf := string(b)
	pass := "scgi_pass " + docsSocket + ";"
	require.Equal(t, 1, strings.Count(conf, pass), "docs/nginx.conf passes to the gateway socket once")
	return strings.Replace(conf, pass, "scgi_pass "+gatewaySocket+";", 1)
}

// pyStatus is qxsite's /status page (internal/testquixote).
type pyStatus struct {
	Class      string         `json:"class"`
	ID         *string        `json:"id"`
	User       any            `json:"user"`
	FormTokens []string       `json:"form_tokens"`
	HasInfo    bool           `json:"has_info"`
	Attrs      map[string]any `json:"attrs"`
}

func statusOf(t *testing.T, r response) pyStatus {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	var s pyStatus
	require.NoError(t, json.Unmarshal([]byte(r.Body), &s), r.Body)
	return s
}

// TestEndToEndNginxGatewayPython is the deployment in miniature: nginx (with
// docs/nginx.conf) → the gateway over SCGI on a UNIX socket → the Go demo pages at /,
// and a Quixote 3.8 application on session3's SessionManager and
// DirectorySessionStore, served by Quixote's own SCGI server (internal/testquixote),
// mounted at /py/, both on one session directory. A scripted user logs in through
// Python, counts through Go, creates a form token in Go and submits it to Python, and
// logs out through Go; each step is checked on both sides and on the files.
func TestEndToEndNginxGatewayPython(t *testing.T) {
	tmp := shortTempDir(t)
	sessions := filepath.Join(tmp, "sessions")
	require.NoError(t, os.Mkdir(sessions, 0o755))
	w := testquixote.Start(t, testquixote.Options{Unix: true, Children: 2, SessionDir: sessions,
		Env: []string{"QXSITE_COOKIE_PATH=/"}})
	target := "scgi+unix://" + strings.TrimPrefix(w.Addr, "unix:")
	sock := "unix:" + filepath.Join(tmp, "gw.sock")
	g := startGateway(t, "-scgi", sock, "-sessions", sessions, "-metrics", "127.0.0.1:0",
		"-route", "/=demo", "-mount", "/py/="+target, "-cookie-path", "/")
	fi, err := os.Stat(filepath.Join(tmp, "gw.sock"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o660), fi.Mode().Perm(), "-socket-mode default")
	site := testnginx.Start(t, testnginx.Config{Locations: documentedNginx(t, sock)})
	c := client(t)
	u := site.URL
	base, err := url.Parse(u + "/")
	require.NoError(t, err)
	cookie := func() string {
		for _, ck := range c.Jar.Cookies(base) {
			if ck.Name == "QX_session" {
				return ck.Value
			}
		}
		return ""
	}

	// 1. Log in through Python.
	r := get(t, c, u+"/py/login?user=alice")
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	assert.Equal(t, "ok", r.Body)
	require.Len(t, r.Cookies, 1)
	assert.Regexp(t, `^QX_session="[A-Za-z0-9_-]{11}"; path=/$`, r.Cookies[0], "Python set the cookie, path / as configured")
	id := cookie()
	require.NotEmpty(t, id)
	assert.Equal(t, []string{id}, sessionFiles(t, sessions))
	s := readSession(t, sessions, id)
	assert.Equal(t, "session3.Session.Session", s.Class().String())
	assert.Equal(t, "alice", s.User())
	assert.Equal(t, id, s.ID())

	// 2. Go sees the login, and counts.
	r = get(t, c, u+"/")
	assert.Contains(t, r.Body, "<p>Hello, alice!</p>", "Go reads Python's session")
	assert.Contains(t, r.Body, `<td id="session-id">`+id+`</td>`)
	assert.Contains(t, r.Body, `<td id="session-counter">not set</td>`)
	r = get(t, c, u+"/counter")
	assert.Contains(t, r.Body, "<p>Counter: 1</p>")
	assert.Empty(t, r.Cookies, "an existing session keeps its cookie")
	n, ok := readSession(t, sessions, id).GetInt("counter")
	require.True(t, ok, "Go stored counter as a Python int")
	assert.Equal(t, int64(1), n)
	st := statusOf(t, get(t, c, u+"/py/status"))
	assert.Equal(t, id, *st.ID)
	assert.Equal(t, "alice", st.User)
	assert.Equal(t, float64(1), st.Attrs["counter"], "Python reads Go's counter")

	// Python counts on, Go reads it.
	assert.Equal(t, "2", get(t, c, u+"/py/counter").Body)
	r = get(t, c, u+"/check")
	assert.Contains(t, r.Body, "session_id: "+id+"\nuser: alice\ncounter: 2\nhas_info: alice\nform_tokens_count: 0\nhas_form_tokens: False\n")

	// 3. A form token made in Go ...
	r = get(t, c, u+"/create_token")
	s = readSession(t, sessions, id)
	toks := s.FormTokens()
	require.Len(t, toks, 1)
	tok := toks[0]
	assert.Contains(t, r.Body, "Token created: "+tok[:16]+"...")
	assert.Equal(t, []string{tok}, statusOf(t, get(t, c, u+"/py/status")).FormTokens, "Python sees Go's token")
	n, _ = s.GetInt("counter")
	assert.Equal(t, int64(2), n, "Go kept Python's counter")

	// ... is accepted once by Python.
	r = do(t, c, http.MethodPost, u+"/py/submit", url.Values{"_form_token": {tok}}.Encode())
	assert.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, "accepted", r.Body)
	assert.Empty(t, readSession(t, sessions, id).FormTokens(), "Python consumed it in the file")
	assert.Contains(t, get(t, c, u+"/check_token").Body, "has_form_tokens: False\nform_token_count: 0\n")
	r = do(t, c, http.MethodPost, u+"/py/submit", url.Values{"_form_token": {tok}}.Encode())
	assert.Equal(t, http.StatusForbidden, r.Status)
	assert.Contains(t, r.Body, "Access denied: rejected", "Quixote's AccessError page")

	// 4. Log out through Go: the cookie is revoked and the file is gone for both.
	r = get(t, c, u+"/logout")
	assert.Contains(t, r.Body, "Goodbye!")
	assert.Equal(t, []string{`QX_session=""; path=/; max-age=0`}, r.Cookies)
	assert.Empty(t, sessionFiles(t, sessions))
	assert.Empty(t, cookie())
	st = statusOf(t, get(t, c, u+"/py/status"))
	assert.Nil(t, st.ID, "Python has a new, empty session")
	assert.Nil(t, st.User)
	assert.Contains(t, get(t, c, u+"/").Body, "Not logged in.")
	assert.Empty(t, sessionFiles(t, sessions))

	// A hostile cookie sent through nginx never reaches Python.
	r = get(t, &http.Client{}, u+"/py/status", "Cookie", `QX_session="../../etc/hostname"`)
	st = statusOf(t, r)
	assert.Nil(t, st.ID)
	assert.Contains(t, g.log.String(), "removed a session cookie with an invalid id")

	// The request log has one line per request with the route and backend.
	logs := g.log.String()
	assert.Contains(t, logs, `msg=request method=POST path=/py/submit route=/py/ status=403`)
	assert.Contains(t, logs, `backend=`+target)
	assert.Contains(t, logs, `msg=request method=GET path=/counter route=/ status=200`)
	assert.NotContains(t, site.ErrorLog(), "[error]")
	assert.NotContains(t, w.Output.String(), "Traceback")
}

// TestREADMEShowsTestedConfiguration keeps the README true: it opens with the run and
// test commands, and its nginx snippet is docs/nginx.conf's, which the tests run.
func TestREADMEShowsTestedConfiguration(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(testpeer.RepoRoot(), "README.md"))
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?s)```[a-z]*\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	require.GreaterOrEqual(t, len(blocks), 2)
	assert.Equal(t, "go run ./cmd/scgi-gateway\n", blocks[0][1], "the first command is the run command")
	assert.Equal(t, "go test -race ./...\n", blocks[1][1], "the second is the test command")

	conf, err := os.ReadFile(filepath.Join(testpeer.RepoRoot(), "docs", "nginx.conf"))
	require.NoError(t, err)
	loc := string(conf)[strings.Index(string(conf), "location / {"):]
	found := false
	for _, b := range blocks {
		found = found || b[1] == loc
	}
	assert.True(t, found, "README shows docs/nginx.conf's location block verbatim:\n%s", loc)
}

// TestREADMEMainGo builds the main.go of the README's "Moving one route from Python
// to Go" as it stands, runs it with the route the README gives, and serves its page on
// a session made as Python's: the program works, reads the session and saves its
// change.
func TestREADMEMainGo(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(testpeer.RepoRoot(), "README.md"))
	require.NoError(t, err)
	section := string(readme)[strings.Index(string(readme), "## Moving one route from Python to Go"):]
	m := regexp.MustCompile("(?s)```go\n(.*?)```").FindStringSubmatch(section)
	require.NotNil(t, m, "the section shows a main.go")
	// Inside the module, so that it builds against this checkout; a name starting
	// with "." keeps it out of ./... .
	src, err := os.MkdirTemp(testpeer.RepoRoot(), ".readme-main-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(src) })
	writeFile(t, filepath.Join(src, "main.go"), m[1])
	bin := filepath.Join(t.TempDir(), "myapp-gateway")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = src
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build of the README's main.go:\n%s", out)

	sessions := filepath.Join(t.TempDir(), "sessions")
	require.NoError(t, os.Mkdir(sessions, 0o777))
	s := quixote.NewSession(quixote.Class{Module: "myapp.session", Name: "MySession"}, "", time.Now())
	require.NoError(t, s.SetUser("ann"))
	id := "ReadmeMain0"
	require.NoError(t, s.Object().SetAttr("id", id))
	data, err := s.Encode()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(sessions, id), data, 0o600))

	cmd := exec.Command(bin, "-http", "127.0.0.1:0", "-sessions", sessions,
		"-route", "/reports/=reports", "-route", "/=scgi://127.0.0.1:4000")
	logs := &testpeer.Output{}
	cmd.Stderr = logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("myapp-gateway log:\n%s", logs)
		}
	})
	addr := regexp.MustCompile(`msg=listening kind=http addr=(\S+)`)
	var u string
	require.Eventually(t, func() bool {
		if m := addr.FindStringSubmatch(logs.String()); m != nil {
			u = "http://" + m[1]
			return true
		}
		return false
	}, 20*time.Second, 20*time.Millisecond, "the program did not start")

	c := client(t)
	r := get(t, c, u+"/reports/")
	assert.Equal(t, http.StatusSeeOther, r.Status, "no session: to the Python login page")
	r = get(t, c, u+"/reports/", "Cookie", `QX_session="`+id+`"`)
	assert.Equal(t, "<p>Reports for ann (visit 1)</p>", r.Body)
	n, _ := readSession(t, sessions, id).GetInt("reports_viewed")
	assert.Equal(t, int64(1), n, "the change is saved to the session file")
	assert.Equal(t, "myapp.session.MySession", readSession(t, sessions, id).Class().String())
}
