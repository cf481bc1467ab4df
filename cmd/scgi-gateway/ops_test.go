package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func scrape(t *testing.T, addr string) string {
	t.Helper()
	return get(t, &http.Client{Timeout: 5 * time.Second}, "http://"+addr+"/metrics").body
}

// TestMetricsAndHealth drives requests through every kind of route and checks what
// /metrics and /healthz report about them.
func TestMetricsAndHealth(t *testing.T) {
	w := startPy(t, nil, "scgi_worker.py", "--listen", "127.0.0.1:0", "--children", "2")
	dead := freeAddr(t)
	dir := filepath.Join(t.TempDir(), "sessions")
	g := startGateway(t, "-http", "127.0.0.1:0", "-metrics", "127.0.0.1:0", "-sessions", dir,
		"-route", "/=demo", "-mount", "/py/="+w.scgiTarget(), "-route", "/dead/=scgi://"+dead)
	c := client(t)
	u := g.url()
	require.Equal(t, 200, get(t, c, u+"/").status)
	require.Equal(t, 200, do(t, c, "POST", u+"/login", "name=m").status)
	require.Equal(t, 200, get(t, c, u+"/counter").status)
	require.Equal(t, 404, get(t, c, u+"/nope").status)
	require.Equal(t, "hello from python\n", get(t, c, u+"/py/hello").body)
	require.Equal(t, 200, get(t, &http.Client{}, u+"/py/hello", "Cookie", "QX_session=../x").status)
	require.Equal(t, http.StatusBadGateway, get(t, c, u+"/dead/x").status)

	m := scrape(t, g.Addr("metrics"))
	for _, want := range []string{
		`qxbridge_requests_total{route="/",status="200"} 3`,
		`qxbridge_requests_total{route="/",status="404"} 1`,
		`qxbridge_requests_total{route="/py/",status="200"} 2`,
		`qxbridge_requests_total{route="/dead/",status="502"} 1`,
		`qxbridge_request_duration_seconds_count{route="/py/"} 2`,
		`qxbridge_backend_errors_total{route="/dead/",status="502"} 1`,
		`qxbridge_backend_up{route="/dead/",backend="` + dead + `"} 0`,
		`qxbridge_backend_up{route="/py/",backend="` + w.addr + `"} 1`,
		`qxbridge_backend_failures_total{route="/dead/",backend="` + dead + `"} 1`,
		`qxbridge_backend_connections_total{route="/py/",backend="` + w.addr + `"} 2`,
		`qxbridge_rejected_session_cookies_total{route="/py/"} 1`,
		`qxbridge_session_operations_total{op="load",result="ok"} 2`, // /counter and /nope
		`qxbridge_session_operations_total{op="save",result="ok"} 2`,
		`qxbridge_session_operations_total{op="has",result="ok"} 1`,
		`qxbridge_session_operation_duration_seconds_count{op="save"} 2`,
	} {
		assert.Contains(t, m, want+"\n")
	}
	assert.Regexp(t, `(?m)^qxbridge_request_duration_seconds_bucket\{route="/",le="\+Inf"\} 4$`, m)

	h := get(t, c, "http://"+g.Addr("metrics")+"/healthz")
	assert.Equal(t, http.StatusOK, h.status)
	assert.True(t, strings.HasPrefix(h.body, "ok\nsessions "+dir+": ok\n"), h.body)
	assert.Contains(t, h.body, "route /py/ backend "+w.addr+": up\n")
	assert.Regexp(t, `route /dead/ backend `+regexp.QuoteMeta(dead)+`: resting until \d{4}-`, h.body)

	require.NoError(t, os.RemoveAll(dir))
	h = get(t, c, "http://"+g.Addr("metrics")+"/healthz")
	assert.Equal(t, http.StatusServiceUnavailable, h.status)
	assert.True(t, strings.HasPrefix(h.body, "unhealthy\nsessions "+dir+": unavailable"), h.body)
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
	require.Len(t, r.cookies, 1)
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
	assert.Contains(t, get(t, c, g.url()+"/counter").body, "Counter: 1")
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, "the load waited for the file to be written")
	require.NoError(t, <-written)
	assert.NotContains(t, scrape(t, g.Addr("metrics")), "qxbridge_session_lock_waits_total{", "no lock was waited for")

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
	assert.Contains(t, get(t, c, g.url()+"/counter").body, "Counter: 2")
	assert.GreaterOrEqual(t, time.Since(start), 150*time.Millisecond, "the load waited for the lock")
	m := scrape(t, g.Addr("metrics"))
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
	require.Len(t, do(t, c, "POST", g.url()+"/login", "name=s").cookies, 1)
	assert.Contains(t, get(t, c, g.url()+"/counter").body, "Counter: 1")
	files := sessionFiles(t, dir)
	require.Len(t, files, 1)
	n, ok := readSession(t, dir, files[0]).GetInt("counter")
	assert.True(t, ok)
	assert.Equal(t, int64(1), n)
	assert.Empty(t, sessionFiles(t, staging))

	var stderr strings.Builder
	code := run(t.Context(), []string{"-http", "127.0.0.1:0", "-sessions", dir, "-staging-dir", dir}, io.Discard, &stderr, nil)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), "must be outside the session directory")
	stderr.Reset()
	code = run(t.Context(), []string{"-http", "127.0.0.1:0", "-sessions", dir, "-staging-dir", filepath.Join(base, "missing")}, io.Discard, &stderr, nil)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), "staging directory "+filepath.Join(base, "missing"))
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
	for !strings.Contains(scrape(t, g.Addr("metrics")), "qxbridge_sweep_deleted_sessions_total 3\n") {
		require.True(t, time.Now().Before(deadline), "no sweep:\n%s", g.log)
		time.Sleep(20 * time.Millisecond)
	}
	assert.ElementsMatch(t, []string{"4qihCikDywk", "_dz4opoXoCaSYW452SPgjQ", "counterTokens"}, sessionFiles(t, dir))
	m := scrape(t, g.Addr("metrics"))
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
	w := startPy(t, nil, "scgi_worker.py", "--listen", "127.0.0.1:0", "--children", "2")
	g := startGateway(t, "-http", "127.0.0.1:0", "-sessions", t.TempDir(), "-mount", "/py/="+w.scgiTarget())
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
