package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func scrape(t *testing.T, addr string) string {
	t.Helper()
	return get(t, &http.Client{Timeout: 5 * time.Second}, "http://"+addr+"/metrics").Body
}

// TestMetricsAndHealth drives requests through every kind of route and checks what
// /metrics and /healthz report about them.
func TestMetricsAndHealth(t *testing.T) {
	w := startQuixote(t)
	dead := freeAddr(t)
	dir := filepath.Join(t.TempDir(), "sessions")
	g := startGateway(t, "-http", "127.0.0.1:0", "-metrics", "127.0.0.1:0", "-sessions", dir,
		"-route", "/=demo", "-mount", "/py/="+quixoteTarget(w), "-route", "/dead/=scgi://"+dead)
	c := client(t)
	u := g.url()
	require.Equal(t, 200, get(t, c, u+"/").Status)
	require.Equal(t, 200, do(t, c, "POST", u+"/login", "name=m").Status)
	require.Equal(t, 200, get(t, c, u+"/counter").Status)
	require.Equal(t, 404, get(t, c, u+"/nope").Status)
	require.Equal(t, "hello from python\n", get(t, c, u+"/py/hello").Body)
	require.Equal(t, 200, get(t, &http.Client{}, u+"/py/hello", "Cookie", "QX_session=../x").Status)
	require.Equal(t, http.StatusBadGateway, get(t, c, u+"/dead/x").Status)

	m := scrape(t, g.addr("metrics"))
	for _, want := range []string{
		`qxbridge_requests_total{route="/",status="200"} 3`,
		`qxbridge_requests_total{route="/",status="404"} 1`,
		`qxbridge_requests_total{route="/py/",status="200"} 2`,
		`qxbridge_requests_total{route="/dead/",status="502"} 1`,
		`qxbridge_request_duration_seconds_count{route="/py/"} 2`,
		`qxbridge_backend_errors_total{route="/dead/",status="502"} 1`,
		`qxbridge_backend_up{backend="` + dead + `",route="/dead/"} 0`,
		`qxbridge_backend_up{backend="` + w.Addr + `",route="/py/"} 1`,
		`qxbridge_backend_failures_total{backend="` + dead + `",route="/dead/"} 1`,
		`qxbridge_backend_connections_total{backend="` + w.Addr + `",route="/py/"} 2`,
		`qxbridge_rejected_session_cookies_total{route="/py/"} 1`,
		`qxbridge_session_operations_total{op="load",result="ok"} 2`, // /counter and /nope
		`qxbridge_session_operations_total{op="save",result="ok"} 2`,
		`qxbridge_session_operations_total{op="has",result="ok"} 1`,
		`qxbridge_session_operation_duration_seconds_count{op="save"} 2`,
	} {
		assert.Contains(t, m, want+"\n")
	}
	assert.Regexp(t, `(?m)^qxbridge_request_duration_seconds_bucket\{route="/",le="\+Inf"\} 4$`, m)
	// The runtime and process collectors operators expect, and the build.
	assert.Regexp(t, `(?m)^go_goroutines \d+$`, m)
	assert.Regexp(t, `(?m)^process_open_fds \d+$`, m)
	assert.Regexp(t, `(?m)^qxbridge_build_info\{goversion="go1\.[^"]+",program="[^"]+",revision="[^"]+",version="[^"]+"\} 1$`, m)

	// A program's own series, registered on the gateway's registry after start,
	// are served on the same endpoint.
	mine := prometheus.NewCounter(prometheus.CounterOpts{Name: "myapp_reports_total", Help: "Reports rendered."})
	g.Registry.MustRegister(mine)
	mine.Add(3)
	assert.Contains(t, scrape(t, g.addr("metrics")), "\nmyapp_reports_total 3\n")

	h := get(t, c, "http://"+g.addr("metrics")+"/healthz")
	assert.Equal(t, http.StatusOK, h.Status)
	assert.True(t, strings.HasPrefix(h.Body, "ok\nsessions "+dir+": ok\n"), h.Body)
	assert.Contains(t, h.Body, "route /py/ backend "+w.Addr+": up\n")
	assert.Regexp(t, `route /dead/ backend `+regexp.QuoteMeta(dead)+`: resting until \d{4}-`, h.Body)

	require.NoError(t, os.RemoveAll(dir))
	h = get(t, c, "http://"+g.addr("metrics")+"/healthz")
	assert.Equal(t, http.StatusServiceUnavailable, h.Status)
	assert.True(t, strings.HasPrefix(h.Body, "unhealthy\nsessions "+dir+": unavailable"), h.Body)
}

// TestMetricsLockWait: the lock-wait metric counts real waits for a session file's
// lock, reported by the store: a Go page whose session file another process holds
// locked waits for the lock and is counted; a load slowed by something else — a
// Python writer that has truncated the file and not yet written it — is not.
func TestMetricsLockWait(t *testing.T) {
	dir := t.TempDir()
	g := startGateway(t, "-http", "127.0.0.1:0", "-metrics", "127.0.0.1:0", "-sessions", dir)
	c := client(t)
	r := do(t, c, "POST", g.url()+"/login", "name=w")
	require.Len(t, r.Cookies, 1)
	id := sessionFiles(t, dir)[0]
	path := filepath.Join(dir, id)
	data, err := os.ReadFile(path)
	require.NoError(t, err)

	// A session3 writer's truncated file, written 200 ms later without any lock held
	// when the load takes its own: the load waits, but for the file, not for a lock.
	require.NoError(t, os.Truncate(path, 0))
	written := make(chan error, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		written <- os.WriteFile(path, data, 0o644)
	}()
	start := time.Now()
	assert.Contains(t, get(t, c, g.url()+"/counter").Body, "Counter: 1")
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, "the load waited for the file to be written")
	require.NoError(t, <-written)
	assert.NotContains(t, scrape(t, g.addr("metrics")), "qxbridge_session_lock_waits_total{", "no lock was waited for")

	// Hold the lock as a session3 writer does (flock LOCK_EX on the file) for a while.
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	fd := int(f.Fd())
	require.NoError(t, unix.Flock(fd, unix.LOCK_EX))
	released := make(chan struct{})
	defer func() { <-released }()
	go func() {
		defer close(released)
		time.Sleep(200 * time.Millisecond)
		_ = unix.Flock(fd, unix.LOCK_UN)
	}()
	start = time.Now()
	assert.Contains(t, get(t, c, g.url()+"/counter").Body, "Counter: 2")
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, "the load waited for the lock")
	m := scrape(t, g.addr("metrics"))
	assert.Contains(t, m, `qxbridge_session_lock_waits_total{op="load"} 1`+"\n")
	assert.NotContains(t, m, `qxbridge_session_lock_waits_total{op="save"}`, "the save that followed took its lock at once")
}

// TestStagingDirFlag: with -staging-dir the Go pages' saves go through the staging
// directory, which stays empty between them, and the session directory holds only
// sessions; a staging directory the store cannot use stops the gateway at start-up.
func TestStagingDirFlag(t *testing.T) {
	base := t.TempDir()
	dir, staging := filepath.Join(base, "sessions"), filepath.Join(base, "staging")
	require.NoError(t, os.Mkdir(staging, 0o755))
	g := startGateway(t, "-http", "127.0.0.1:0", "-sessions", dir, "-staging-dir", staging)
	c := client(t)
	require.Len(t, do(t, c, "POST", g.url()+"/login", "name=s").Cookies, 1)
	assert.Contains(t, get(t, c, g.url()+"/counter").Body, "Counter: 1")
	files := sessionFiles(t, dir)
	require.Len(t, files, 1)
	n, ok := readSession(t, dir, files[0]).GetInt("counter")
	assert.True(t, ok)
	assert.Equal(t, int64(1), n)
	assert.Empty(t, sessionFiles(t, staging))

	var stderr strings.Builder
	code := newTestGateway().Run(t.Context(), []string{"-http", "127.0.0.1:0", "-sessions", dir, "-staging-dir", dir}, io.Discard, &stderr)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), "must be outside the session directory")
	stderr.Reset()
	code = newTestGateway().Run(t.Context(), []string{"-http", "127.0.0.1:0", "-sessions", dir, "-staging-dir", filepath.Join(base, "missing")}, io.Discard, &stderr)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), "staging directory "+filepath.Join(base, "missing"))
}

// TestSessionInPlaceFlag: with -session-in-place a Go page's save writes over the
// session file (it keeps its inode); without it, each save swaps a new file in.
func TestSessionInPlaceFlag(t *testing.T) {
	ino := func(path string) uint64 {
		var st unix.Stat_t
		require.NoError(t, unix.Lstat(path, &st))
		return st.Ino
	}
	for _, inPlace := range []bool{true, false} {
		dir := filepath.Join(t.TempDir(), "sessions")
		args := []string{"-http", "127.0.0.1:0", "-sessions", dir}
		if inPlace {
			args = append(args, "-session-in-place")
		}
		g := startGateway(t, args...)
		c := client(t)
		require.Len(t, do(t, c, "POST", g.url()+"/login", "name=s").Cookies, 1)
		assert.Contains(t, get(t, c, g.url()+"/counter").Body, "Counter: 1")
		files := sessionFiles(t, dir)
		require.Len(t, files, 1)
		path := filepath.Join(dir, files[0])
		before := ino(path)
		assert.Contains(t, get(t, c, g.url()+"/counter").Body, "Counter: 2")
		assert.Equal(t, inPlace, ino(path) == before, "in place: %v", inPlace)
		n, ok := readSession(t, dir, files[0]).GetInt("counter")
		assert.True(t, ok)
		assert.Equal(t, int64(2), n)
	}
	var e strings.Builder
	assert.Equal(t, 2, newTestGateway().Run(t.Context(), []string{"-sessions", "postgres://app@127.0.0.1:1/app", "-session-in-place"}, io.Discard, &e))
	assert.Contains(t, e.String(), "in-place saves are for a session directory")
}

// TestAdminReadsInPlaceTails: a session file an in-place save left with the end of a
// longer session after its STOP reads, for the admin commands, as the session alone.
func TestAdminReadsInPlaceTails(t *testing.T) {
	dir := fixtureDir(t)
	login, err := os.ReadFile(filepath.Join(dir, "4qihCikDywk"))
	require.NoError(t, err)
	cart, err := os.ReadFile(filepath.Join(dir, "bb2_-Qy4sEs"))
	require.NoError(t, err)
	require.Less(t, len(login), len(cart))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "4qihCikDywk"), append(login, cart[len(login):]...), 0o600))
	code, out, errs := admin(t, dir, "list")
	require.Equal(t, 0, code, errs)
	assert.Regexp(t, `(?m)^4qihCikDywk\s+alice\s+session3\.Session\.Session\s`, out)
	code, out, errs = admin(t, dir, "show", "4qihCikDywk")
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, `"class": "session3.Session.Session"`)
	assert.NotContains(t, out, `"cart"`)
}

// TestIdleSweep: with -max-idle the gateway deletes idle sessions and stale empty files
// at start-up and periodically, and reports it.
func TestIdleSweep(t *testing.T) {
	dir := fixtureDir(t)
	old := time.Now().Add(-2 * time.Hour)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "crashedWrt1"), nil, 0o644)) // a Python writer died here
	for _, id := range []string{"Q4PJ1fkwwK8", "bb2_-Qy4sEs", "crashedWrt1"} {
		require.NoError(t, os.Chtimes(filepath.Join(dir, id), old, old))
	}
	g := startGateway(t, "-http", "127.0.0.1:0", "-metrics", "127.0.0.1:0", "-sessions", dir, "-max-idle", "1h")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(scrape(t, g.addr("metrics")), "qxbridge_sweep_deleted_sessions_total 3\n") {
		require.True(t, time.Now().Before(deadline), "no sweep:\n%s", g.log)
		time.Sleep(20 * time.Millisecond)
	}
	assert.ElementsMatch(t, []string{"4qihCikDywk", "_dz4opoXoCaSYW452SPgjQ", "counterTokens"}, sessionFiles(t, dir))
	m := scrape(t, g.addr("metrics"))
	assert.Contains(t, m, "qxbridge_sweep_remaining_sessions 3\n")
	assert.Regexp(t, `(?m)^qxbridge_sweep_last_run_timestamp_seconds \d+`, m)
	assert.Contains(t, g.log.String(), "msg=\"idle sweep\" deleted=3 remaining=3 max_idle=1h0m0s")
	assert.Equal(t, time.Second, sweepInterval(time.Second))
	assert.Equal(t, 6*time.Hour/6, sweepInterval(4*time.Hour))
	assert.Equal(t, time.Hour, sweepInterval(24*time.Hour))
}

// TestProxyStreamsThroughGateway: a Python page that streams reaches the client chunk
// by chunk through the router's logging and the proxy (the first chunk arrives while
// the worker still waits for the test to let it go on).
func TestProxyStreamsThroughGateway(t *testing.T) {
	w := startQuixote(t)
	g := startGateway(t, "-http", "127.0.0.1:0", "-sessions", t.TempDir(), "-mount", "/py/="+quixoteTarget(w))
	gate := filepath.Join(t.TempDir(), "gate")
	resp, err := http.Get(g.url() + "/py/stream?n=3&gate=" + gate)
	require.NoError(t, err)
	defer resp.Body.Close()
	buf := make([]byte, 64)
	n, err := resp.Body.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "chunk 0\n", string(buf[:n]), "the first chunk before the worker goes on")
	require.NoError(t, os.WriteFile(gate, nil, 0o644))
	rest, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "chunk 1\nchunk 2\nend\n", string(rest))
	assert.Eventually(t, func() bool {
		return strings.Contains(g.log.String(), "msg=request method=GET path=/py/stream route=/py/ status=200")
	}, 5*time.Second, 10*time.Millisecond)
}

// TestShieldThroughGateway sends hostile session cookies through the gateway to the
// real Quixote application, which echoes the HTTP_COOKIE it received: the invalid session
// cookie never reaches it, the other cookies do, byte for byte, and each cleaned
// request is logged once and counted.
func TestShieldThroughGateway(t *testing.T) {
	w := startQuixote(t)
	g := startGateway(t, "-http", "127.0.0.1:0", "-metrics", "127.0.0.1:0", "-sessions", t.TempDir(),
		"-route", "/=demo", "-route", "/py/="+quixoteTarget(w))
	c := client(t)
	echo := func(cookies ...string) string {
		var h []string
		for _, v := range cookies {
			h = append(h, "Cookie", v)
		}
		r := get(t, c, g.url()+"/py/env", h...)
		require.Equal(t, http.StatusNotFound, r.Status, "a route, not a mount: qxsite sees /py/env, which it answers 404 with its environment")
		var env struct {
			Env map[string]string `json:"env"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.Body), &env), r.Body)
		return env.Env["HTTP_COOKIE"]
	}

	assert.Equal(t, `theme=dark; QX_session=good1234567`, echo(`theme=dark; QX_session=good1234567`), "valid: forwarded as is")
	assert.Equal(t, `theme=dark; lang="en"`, echo(`theme=dark; QX_session="/etc/hostname"; lang="en"`))
	assert.Equal(t, `a=1,`, echo(`a=1, QX_session=../../dev/null`), "the comma form Quixote splits on")
	assert.Equal(t, `theme=dark; lang=en`, echo(`theme=dark`, `QX_session=../../x; lang=en`), "two Cookie lines are judged as Python sees them, joined")
	got := echo(`x="\"; QX_session=../x"`)
	assert.Equal(t, `x="\"; QX_session=../x"`, got, "inside a quoted value it is no cookie for Python: left alone")
	assert.Empty(t, echo(`QX_session=../x`), "nothing left: no Cookie header at all")

	logs := g.log.String()
	assert.Equal(t, 4, strings.Count(logs, "removed a session cookie with an invalid id"), logs)
	assert.Contains(t, logs, `values="\"/etc/hostname\""`)
	metrics := get(t, c, "http://"+g.addr("metrics")+"/metrics").Body
	assert.Contains(t, metrics, `qxbridge_rejected_session_cookies_total{route="/py/"} 4`)
	assert.NotContains(t, w.Output.String(), "Traceback")
}

func TestDemoMounted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	g := startGateway(t, "-http", "127.0.0.1:0", "-sessions", dir, "-mount", "/demo/=demo")
	c := client(t)
	r := get(t, c, g.url()+"/demo")
	assert.Equal(t, http.StatusMovedPermanently, r.Status)
	assert.Equal(t, "/demo/", r.Header.Get("Location"))
	r = get(t, c, g.url()+"/demo/login?name=m")
	assert.Contains(t, r.Body, "Welcome! m")
	assert.Regexp(t, `^QX_session="[A-Za-z0-9_-]{11}"; path=/demo/$`, r.Cookies[0], "the cookie path is SCRIPT_NAME + /, as Quixote's")
	assert.Contains(t, get(t, c, g.url()+"/demo/check").Body, "user: m")
	assert.Equal(t, http.StatusNotFound, get(t, c, g.url()+"/check").Status, "nothing outside the mount")
}
