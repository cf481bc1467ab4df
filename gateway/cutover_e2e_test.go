package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testnginx"
	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/qxbridge/qxbridge/quixote"
	"github.com/qxbridge/qxbridge/store"
)

// qxsiteGo is a Go rewrite of three of qxsite's pages (testdata/py/sites/qxsite), as
// a team would write a candidate: /, /hello and /check answer as Python does. It says
// it served in a header no comparison looks at.
type qxsiteGo struct {
	differ bool          // /hello says it is Go: the one page that differs
	gate   chan struct{} // /check?gate waits for it
	saw    chan string   // /check?touch reports the user it saw, after changing the session
}

func (q *qxsiteGo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Served-By", "go")
	query := r.URL.Query()
	if query.Has("panic") {
		panic("the candidate panics on purpose")
	}
	if query.Has("fail") {
		http.Error(w, "the candidate fails on purpose", http.StatusServiceUnavailable)
		return
	}
	text := func(s string) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, s)
	}
	s := quixote.SessionFrom(r)
	user, _ := s.UserString()
	switch r.URL.Path {
	case "/":
		text("qxsite\n")
	case "/hello":
		if q.differ {
			text("hello from go\n")
		} else {
			text("hello from python\n")
		}
	case "/page":
		// qxsite's typical page: the cart of its pickled sample session as a table.
		var rows strings.Builder
		for i := range 60 {
			fmt.Fprintf(&rows, "<tr><td>%d</td><td>%s</td><td>%.2f</td></tr>", i, html.EscapeString(fmt.Sprintf("item & %d", i)), float64(i)*1.25)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<html><head><title>%s</title></head><body><table>%s</table></body></html>",
			html.EscapeString("alice <a@example.org>"), rows.String())
	case "/counter":
		n, _ := s.GetInt("counter")
		_ = s.Set("counter", n+1)
		text(strconv.FormatInt(n+1, 10))
	case "/check":
		if query.Has("gate") {
			<-q.gate
		}
		if query.Has("touch") {
			_ = s.Object().SetAttr("go_was_here", int64(1))
			_ = s.SetUser("mallory")
			q.saw <- user
		}
		if user != "" {
			text("user " + user + "\n")
		} else {
			text("anonymous\n")
		}
	default:
		http.NotFound(w, r)
	}
}

// cutoverSite is nginx → the gateway → qxsite under Quixote's SCGI server, with the
// candidates mounted three times over the same Python pool: /py/ shadowed by a
// matching candidate, /pyd/ shadowed by one that differs on /hello, /pyr/ rolled out
// with fallback.
type cutoverSite struct {
	t        *testing.T
	tmp      string
	sessions string
	config   string
	args     []string
	target   string // the Python pool
	q        *qxsiteGo
	g        *runningGateway
	url      string
}

func startCutoverSite(t *testing.T) *cutoverSite {
	tmp := shortTempDir(t)
	s := &cutoverSite{t: t, tmp: tmp, sessions: filepath.Join(tmp, "sessions"), config: filepath.Join(tmp, "gw.toml"),
		q: &qxsiteGo{gate: make(chan struct{}), saw: make(chan string, 1)}}
	require.NoError(t, os.Mkdir(s.sessions, 0o755))
	w := testquixote.Start(t, testquixote.Options{Unix: true, Children: 2, SessionDir: s.sessions,
		Env: []string{"QXSITE_COOKIE_PATH=/"}})
	sock := "unix:" + filepath.Join(tmp, "gw.sock")
	s.config = filepath.Join(tmp, "gw.toml")
	target := "scgi+unix://" + strings.TrimPrefix(w.Addr, "unix:")
	s.target = target
	s.setRollout(target, 30)
	s.args = []string{"-config", s.config, "-scgi", sock, "-metrics", "127.0.0.1:0"}
	s.start()
	site := testnginx.Start(t, testnginx.Config{Locations: documentedNginx(t, sock)})
	s.url = site.URL
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error log:\n%s", site.ErrorLog())
		}
		assert.NotContains(t, w.Output.String(), "Traceback")
	})
	return s
}

// setRollout writes the configuration file with /pyr/'s percentage.
func (s *cutoverSite) setRollout(target string, pct float64) {
	writeFile(s.t, s.config, fmt.Sprintf(`
[sessions]
dir = %q
[cookie]
path = "/"
[cutover]
max_shadows = 64
override_header = "X-QX-Route"
override_cookie = "QX_route"
override_token = "s3cret"
[pool.python]
addresses = [%q]
[[mount]]
prefix = "/py/"
target = "python"
candidate = "qxgo"
shadow = true
[[mount]]
prefix = "/pyd/"
target = "python"
candidate = "qxgo-differ"
shadow = true
[[mount]]
prefix = "/pyr/"
target = "python"
candidate = "qxgo"
rollout = %v
fallback = true
`, s.sessions, strings.Replace(target, "scgi+unix://", "unix:", 1), pct))
}

func (s *cutoverSite) start() {
	s.g = startGatewayWith(s.t, func(g *Gateway) {
		g.Handle("qxgo", s.q)
		g.Handle("qxgo-differ", &qxsiteGo{differ: true})
	}, s.args...)
}

// report returns a route's shadow report from the metrics listener.
func (s *cutoverSite) report(route string) shadowView {
	body, err := fetchMetrics(context.Background(), s.g.addr("metrics"), "/shadow?format=json&route="+route)
	require.NoError(s.t, err)
	var reps []shadowView
	require.NoError(s.t, json.Unmarshal(body, &reps))
	require.Len(s.t, reps, 1)
	return reps[0]
}

func total(v shadowView) uint64 {
	var n uint64
	for _, c := range v.Counts {
		n += c
	}
	return n
}

// waitShadows waits until a route's report has counted n shadow runs in all.
func (s *cutoverSite) waitShadows(route string, n uint64) shadowView {
	var v shadowView
	require.Eventually(s.t, func() bool { v = s.report(route); return total(v) >= n },
		60*time.Second, 10*time.Millisecond, "shadow runs of %s: want %d", route, n)
	return v
}

// makeSessions writes n session3 sessions of logged-in users with ids drawn from a
// fixed seed, as Python would have stored them.
func makeSessions(t *testing.T, dir string, n int) []string {
	st, err := store.Open(dir)
	require.NoError(t, err)
	rnd := rand.New(rand.NewPCG(16, 30))
	ids := make([]string, n)
	for i := range ids {
		b := make([]byte, 8)
		for j := range b {
			b[j] = byte(rnd.UintN(256))
		}
		id := base64.RawURLEncoding.EncodeToString(b)
		ids[i] = id
		s := quixote.NewSession(quixote.Session3Class, "127.0.0.1", time.Now())
		require.NoError(t, s.SetUser(fmt.Sprintf("user%d", i)))
		require.NoError(t, s.Object().SetAttr("id", id))
		data, err := s.Encode()
		require.NoError(t, err)
		require.NoError(t, st.Save(context.Background(), id, data))
	}
	return ids
}

// sides requests path for each session, four at a time, and returns which side
// served each, checking that the answer is the page either way.
func (s *cutoverSite) sides(ids []string, path string) map[string]string {
	out := make(map[string]string, len(ids))
	var mu sync.Mutex
	work := make(chan string)
	var wg sync.WaitGroup
	c := &http.Client{Timeout: 20 * time.Second}
	for range 4 {
		wg.Go(func() {
			for id := range work {
				r := get(s.t, c, s.url+path, "Cookie", `QX_session="`+id+`"`)
				side := "python"
				if r.Header.Get("X-Served-By") == "go" {
					side = "go"
				}
				if !assert.Equal(s.t, http.StatusOK, r.Status, r.Body) || !assert.Equal(s.t, "hello from python\n", r.Body) {
					continue
				}
				mu.Lock()
				out[id] = side
				mu.Unlock()
			}
		})
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	return out
}

func countGo(m map[string]string) int {
	n := 0
	for _, s := range m {
		if s == "go" {
			n++
		}
	}
	return n
}

// TestCutoverShadowNginx: a Go candidate shadowed beside the real Quixote application
// through nginx: a matching one gives no difference over 1,000 requests, one that
// differs on one page is caught with a diff (in the report, its admin command and the
// log), and a shadow run that changes the session leaves the session file as Python
// wrote it, byte for byte.
func TestCutoverShadowNginx(t *testing.T) {
	s := startCutoverSite(t)
	c := client(t)
	r := do(t, c, http.MethodPost, s.url+"/py/login", "user=alice") // not shadowed: not a safe method
	require.Equal(t, "ok", r.Body)
	require.Len(t, r.Cookies, 1, "Python's cookie only: no rollout cookie on a route without a rollout")

	// 1,000 requests over four pages, with and without a session: all the same.
	pages := []string{"/py/", "/py/hello", "/py/check", "/py/page"}
	anon := &http.Client{Timeout: 20 * time.Second}
	for i := range 1000 {
		cl := c
		if i%4 == 3 {
			cl = anon
		}
		method := http.MethodGet
		if i%10 == 9 {
			method = http.MethodHead
		}
		r := do(t, cl, method, s.url+pages[i%len(pages)], "")
		require.Equal(t, http.StatusOK, r.Status, r.Body)
		require.Empty(t, r.Header.Get("X-Served-By"), "Python answers the user")
	}
	v := s.waitShadows("/py/", 1000)
	assert.Equal(t, uint64(1000), total(v))
	assert.Zero(t, v.Counts["differs"], "%+v", v.Samples)
	assert.Zero(t, v.Counts["go_failed"])
	assert.Zero(t, v.Counts["skipped"])
	assert.Equal(t, uint64(1000), v.Counts["same"]+v.Counts["dropped"])
	assert.Greater(t, v.Counts["same"], uint64(900), "few dropped with 64 slots and one client")
	assert.Empty(t, v.Samples)

	// A GET that changes the session in Python (session3 saves it before answering):
	// each shadow run reads the session as it was before, and counts as Python did.
	for i := range 100 {
		require.Equal(t, strconv.Itoa(i+1), get(t, c, s.url+"/py/counter").Body)
	}
	v = s.waitShadows("/py/", 1100)
	assert.Zero(t, v.Counts["differs"], "%+v", v.Samples)
	assert.Zero(t, v.Counts["skipped"])
	assert.Equal(t, uint64(1100), v.Counts["same"]+v.Counts["dropped"])

	// POST is not a safe method: never shadowed.
	r = do(t, c, http.MethodPost, s.url+"/py/hello", "x=1")
	assert.Equal(t, "hello from python\n", r.Body)
	assert.Equal(t, uint64(1100), total(s.report("/py/")))

	// The candidate that differs on /hello.
	for range 10 {
		assert.Equal(t, "hello from python\n", get(t, c, s.url+"/pyd/hello").Body)
		assert.Equal(t, "user alice\n", get(t, c, s.url+"/pyd/check").Body)
	}
	v = s.waitShadows("/pyd/", 20)
	assert.Equal(t, uint64(10), v.Counts["differs"])
	assert.Equal(t, uint64(10), v.Counts["same"])
	require.Len(t, v.Samples, 10)
	sm := v.Samples[0]
	assert.Equal(t, "GET", sm.Method)
	assert.Equal(t, "/pyd/hello", sm.URI)
	assert.Equal(t, "--- python\n+++ go\n@@ -1,4 +1,4 @@\n 200 OK\n Content-Type: text/plain; charset=utf-8\n \n-hello from python\n+hello from go\n", sm.Diff)

	// A candidate that panics or fails where Python answers.
	assert.Equal(t, "hello from python\n", get(t, c, s.url+"/pyd/hello?panic=1").Body)
	assert.Equal(t, "hello from python\n", get(t, c, s.url+"/pyd/hello?fail=1").Body)
	v = s.waitShadows("/pyd/", 22)
	assert.Equal(t, uint64(2), v.Counts["go_failed"])
	require.Len(t, v.Samples, 12)
	failed := map[string]string{} // diff by URI; the two runs may end in either order
	for _, sm := range v.Samples[10:] {
		failed[sm.URI] = sm.Diff
	}
	assert.Contains(t, failed["/pyd/hello?panic=1"], "-200 OK\n")
	assert.Contains(t, failed["/pyd/hello?panic=1"], "+500 Internal Server Error\n")
	assert.Contains(t, failed["/pyd/hello?panic=1"], "+panic: the candidate panics on purpose\n")
	assert.Contains(t, failed["/pyd/hello?fail=1"], "+503 Service Unavailable\n")
	assert.Contains(t, s.g.log.String(), `msg="shadow: Go candidate panicked" route=/pyd/ method=GET path=/pyd/hello panic="the candidate panics on purpose"`)
	assert.Contains(t, s.g.log.String(), `msg="shadow: Go candidate failed where Python did not" route=/pyd/ outcome=go_failed`)

	// The admin command fetches the report from the running gateway.
	var out, errb bytes.Buffer
	code := newTestGateway().Run(context.Background(), []string{"shadow", "-metrics", s.g.addr("metrics"), "report", "/pyd/"}, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	assert.Contains(t, out.String(), "route /pyd/: same 10, differs 10, go_failed 2, dropped 0, skipped 0\n")
	assert.Contains(t, out.String(), "differs GET /pyd/hello (python 200, go 200)\n--- python\n+++ go\n")
	assert.Contains(t, out.String(), "-hello from python\n+hello from go\n")
	code = newTestGateway().Run(context.Background(), []string{"shadow", "-metrics", s.g.addr("metrics"), "report", "/nothing/"}, &out, &errb)
	assert.Equal(t, 1, code)
	assert.Contains(t, errb.String(), "no route /nothing/ has a Go candidate")
	assert.Contains(t, s.g.log.String(), `msg="shadow: Go candidate differs from Python" route=/pyd/ outcome=differs method=GET path=/pyd/hello`)

	// A shadow run that changes the session: the file stays as Python left it. The
	// run waits; meanwhile the user's next request (a new login, through Python) is
	// served, not held behind it, and the run still sees the session as it was for
	// the request it shadows.
	id := ""
	base, err := url.Parse(s.url + "/")
	require.NoError(t, err)
	for _, ck := range c.Jar.Cookies(base) {
		if ck.Name == "QX_session" {
			id = ck.Value
		}
	}
	require.NotEmpty(t, id)
	file := filepath.Join(s.sessions, id)
	before := total(s.report("/py/"))
	r = get(t, c, s.url+"/py/check?touch=1&gate=1")
	assert.Equal(t, "user alice\n", r.Body, "Python answered while the shadow run waits")
	assert.Len(t, r.Cookies, 0)
	assert.Equal(t, "ok", do(t, c, http.MethodPost, s.url+"/py/login", "user=bob").Body)
	afterPython, err := os.ReadFile(file)
	require.NoError(t, err)
	fiPython, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, "bob", readSession(t, s.sessions, id).User())
	s.q.gate <- struct{}{}
	assert.Equal(t, "alice", <-s.q.saw, "the shadow run read the session as Python did for its request")
	v = s.waitShadows("/py/", before+1)
	assert.Equal(t, before+1, total(v))
	assert.Equal(t, uint64(0), v.Counts["differs"], "and answered as Python did")
	afterShadow, err := os.ReadFile(file)
	require.NoError(t, err)
	fiShadow, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, afterPython, afterShadow, "the shadow run's changes (a new user, an attribute) were not saved")
	assert.True(t, os.SameFile(fiPython, fiShadow), "nor was the file replaced")
	assert.Equal(t, "bob", readSession(t, s.sessions, id).User())
	assert.NotContains(t, s.g.log.String(), "cannot save")

	m := scrape(t, s.g.addr("metrics"))
	assert.Contains(t, m, `qxbridge_shadow_comparisons_total{outcome="differs",route="/pyd/"} 10`+"\n")
	assert.Contains(t, m, `qxbridge_cutover_requests_total{reason="rollout",route="/py/",side="python"}`)
	assert.Contains(t, s.g.log.String(), "route=/py/ status=200")
	assert.Contains(t, s.g.log.String(), "side=python reason=rollout")
}

// TestCutoverRolloutNginx: a 30% rollout over 1,000 sessions through nginx serves
// 27–33% of them with the candidate, each one on the same side across a restart, and
// a reload to 50% moves sessions from Python to Go only; the staff override picks a
// side; a candidate that panics or fails on GET falls back to Python's answer, and on
// POST answers 500 (or its own 5xx).
func TestCutoverRolloutNginx(t *testing.T) {
	s := startCutoverSite(t)
	ids := makeSessions(t, s.sessions, 1000)

	first := s.sides(ids, "/pyr/hello")
	require.Len(t, first, 1000)
	onGo := countGo(first)
	assert.GreaterOrEqual(t, onGo, 270)
	assert.LessOrEqual(t, onGo, 330)
	for id, side := range first {
		if (bucket(id) < 3000) != (side == "go") {
			t.Errorf("session %s (bucket %d) served by %s", id, bucket(id), side)
		}
	}
	t.Logf("30%%: %d of 1000 sessions on Go", onGo)

	// A restart keeps every session on its side.
	require.Equal(t, 0, s.g.stop())
	s.start()
	again := s.sides(ids, "/pyr/hello")
	assert.Equal(t, first, again, "every session on the same side after a restart")

	// A reload to 50% moves sessions from Python to Go, never back.
	s.setRollout(s.target, 50)
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(s.g.log.String(), "msg=reloaded") },
		20*time.Second, 10*time.Millisecond)
	half := s.sides(ids, "/pyr/hello")
	moved := 0
	for id, side := range half {
		if first[id] == "go" {
			assert.Equal(t, "go", side, "session %s left Go", id)
		} else if side == "go" {
			moved++
		}
	}
	assert.Contains(t, s.g.log.String(), `msg="route with a Go candidate" route=/pyr/ candidate=qxgo target=python rollout_percent=50 shadow=false fallback=true previous_rollout_percent=30`)
	assert.Contains(t, scrape(t, s.g.addr("metrics")), `qxbridge_rollout_percent{route="/pyr/"} 50`+"\n")
	onGo = countGo(half)
	assert.GreaterOrEqual(t, onGo, 470)
	assert.LessOrEqual(t, onGo, 530)
	t.Logf("50%%: %d on Go, %d moved from Python", onGo, moved)

	// The staff override, by header and by cookie, both ways.
	var pyID, goID string
	for _, id := range ids {
		if half[id] == "go" {
			goID = id
		} else {
			pyID = id
		}
	}
	c := &http.Client{Timeout: 20 * time.Second}
	served := func(id string, header ...string) string {
		h := append([]string{"Cookie", `QX_session="` + id + `"`}, header...)
		r := get(t, c, s.url+"/pyr/hello", h...)
		require.Equal(t, "hello from python\n", r.Body)
		if r.Header.Get("X-Served-By") == "go" {
			return "go"
		}
		return "python"
	}
	assert.Equal(t, "go", served(pyID, "X-QX-Route", "go:s3cret"))
	assert.Equal(t, "python", served(goID, "X-QX-Route", "python:s3cret"))
	assert.Equal(t, "go", served(pyID, "Cookie", "QX_route=go:s3cret"))
	assert.Equal(t, "python", served(goID, "Cookie", "QX_route=python:s3cret"))
	assert.Equal(t, "python", served(pyID, "X-QX-Route", "nonsense:s3cret"), "an unknown side is ignored")
	assert.Equal(t, "python", served(pyID, "X-QX-Route", "go"), "no token: ignored")
	assert.Equal(t, "python", served(pyID, "X-QX-Route", "go:guess"), "a wrong token: ignored")
	assert.Equal(t, "python", served(pyID, "Cookie", "QX_route=go"), "no token: ignored")

	// A visitor without a session gets a rollout cookie and keeps its side.
	anon := client(t)
	r := get(t, anon, s.url+"/pyr/hello")
	require.Len(t, r.Cookies, 1)
	assert.Regexp(t, `^QX_rollout=[A-Za-z0-9_-]{22}; Path=/; Max-Age=\d+; HttpOnly; SameSite=Lax$`, r.Cookies[0])
	side := r.Header.Get("X-Served-By")
	for range 5 {
		r = get(t, anon, s.url+"/pyr/hello")
		assert.Empty(t, r.Cookies)
		assert.Equal(t, side, r.Header.Get("X-Served-By"))
	}

	// Fallback: a failing candidate on GET gives Python's answer; on POST, its own.
	goSide := []string{"X-QX-Route", "go:s3cret"}
	r = get(t, c, s.url+"/pyr/hello?panic=1", goSide...)
	assert.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, "hello from python\n", r.Body)
	assert.Empty(t, r.Header.Get("X-Served-By"), "nothing of the candidate's answer went out")
	r = get(t, c, s.url+"/pyr/hello?fail=1", goSide...)
	assert.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, "hello from python\n", r.Body)
	r = do(t, c, http.MethodPost, s.url+"/pyr/hello?panic=1", "x=1", goSide...)
	assert.Equal(t, http.StatusInternalServerError, r.Status)
	assert.Equal(t, "Internal Server Error\n", r.Body)
	r = do(t, c, http.MethodPost, s.url+"/pyr/hello?fail=1", "x=1", goSide...)
	assert.Equal(t, http.StatusServiceUnavailable, r.Status)
	assert.Equal(t, "the candidate fails on purpose\n", r.Body)

	m := scrape(t, s.g.addr("metrics"))
	assert.Contains(t, m, `qxbridge_fallbacks_total{cause="panic",route="/pyr/"} 1`+"\n")
	assert.Contains(t, m, `qxbridge_fallbacks_total{cause="status",route="/pyr/"} 1`+"\n")
	assert.Contains(t, m, `qxbridge_candidate_panics_total{route="/pyr/"} 2`+"\n")
	assert.Contains(t, m, `qxbridge_cutover_requests_total{reason="override",route="/pyr/",side="go"}`)
	logs := s.g.log.String()
	assert.Contains(t, logs, "method=GET path=/pyr/hello route=/pyr/ status=200")
	assert.Contains(t, logs, "side=go reason=rollout")
	assert.Contains(t, logs, "side=python reason=fallback")
	assert.Contains(t, logs, `msg="Go candidate panicked; Python answers" route=/pyr/ method=GET`)
	assert.Contains(t, logs, `msg="Go candidate panicked; answered 500" route=/pyr/ method=POST`)
	// Request records are written in batches, a little after the response.
	post := regexp.MustCompile(`method=POST path=/pyr/hello route=/pyr/ status=500 .* side=go reason=override`)
	assert.Eventually(t, func() bool { return post.MatchString(s.g.log.String()) }, 10*time.Second, time.Millisecond,
		"the POST's record names the override")
}
