package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testnginx"
	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/qxbridge/qxbridge/internal/testwrk"
	"github.com/qxbridge/qxbridge/quixote"
	"github.com/qxbridge/qxbridge/store"
	"github.com/stretchr/testify/require"
)

// runWrk runs wrk with a Lua script that sends each request with the next of the
// session cookies, so that every request loads and saves a logged-in session.
func runWrk(b *testing.B, url string, cookies []string, conns int, d time.Duration) testwrk.Result {
	b.Helper()
	var lua strings.Builder
	lua.WriteString("local cookies = {\n")
	for _, c := range cookies {
		fmt.Fprintf(&lua, "  %q,\n", c)
	}
	lua.WriteString("}\nlocal i = 0\nrequest = function()\n  i = i % #cookies + 1\n  return wrk.format(nil, nil, { [\"Cookie\"] = cookies[i] })\nend\n")
	script := filepath.Join(b.TempDir(), "cookies.lua")
	require.NoError(b, os.WriteFile(script, []byte(lua.String()), 0o644))
	return testwrk.Run(b, url, testwrk.Options{Conns: conns, Duration: d, Timeout: 10 * time.Second, Script: script})
}

func envInt(name string, def int) int {
	if s := os.Getenv(name); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	return def
}

// envDuration reads a duration setting of a benchmark.
func envDuration(b *testing.B, name string, def time.Duration) time.Duration {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	require.NoError(b, err, name)
	return d
}

// counterSum adds up the counter attribute of every session in dir. It loads them
// through the store, which waits out a Python writer still saving a request that wrk
// gave up on.
func counterSum(b *testing.B, dir string) int64 {
	d, err := store.Open(dir)
	require.NoError(b, err)
	var sum int64
	for _, id := range sessionFiles(b, dir) {
		data, err := d.Load(context.Background(), id)
		require.NoError(b, err)
		s, err := quixote.Decode(data)
		require.NoError(b, err)
		n, _ := s.GetInt("counter")
		sum += n
	}
	return sum
}

// BenchmarkGatewayEndToEnd measures, in one run on one machine, the two comparisons of
// BENCHMARKS.md (## gateway), every request going through nginx with wrk on loopback:
//
//   - throughput of a page that loads and saves a logged-in session: nginx → gateway
//     → the Go demo's /counter, against nginx → the real Quixote 3.8 SCGI server
//     (qxsite's /counter on session3's SessionManager and DirectorySessionStore) directly;
//   - median latency of the Python page: nginx → gateway → CPython worker, against
//     nginx → CPython worker directly;
//   - for scale, the throughput of a Go page that does no session work through the same
//     nginx and gateway: what nginx, wrk and the SCGI hop allow on the machine at all.
//
// Both sides use the same logged-in sessions (made through Python), each request the
// next of them. Runs alternate between the setups so that drift in the machine's load
// hits both alike; each figure is the median over the rounds. It ignores b.N: run it
// with -benchtime=1x. Environment: WRK_CONNS (connections for throughput, default 8),
// WRK_DURATION (default 5s), WRK_ROUNDS (default 3), BENCH_SESSIONS (default 64),
// BENCH_CHILDREN (Python worker processes, default 4), BENCH_SESSIONS_PARENT (where the
// session directory is made, e.g. /dev/shm to take the disk out of the comparison;
// default the temporary directory).
func BenchmarkGatewayEndToEnd(b *testing.B) {
	conns := envInt("WRK_CONNS", 8)
	rounds := envInt("WRK_ROUNDS", 3)
	nSessions := envInt("BENCH_SESSIONS", 64)
	children := envInt("BENCH_CHILDREN", 4)
	dur := envDuration(b, "WRK_DURATION", 5*time.Second)

	tmp := shortTempDir(b)
	sessions := filepath.Join(tmp, "sessions")
	if parent := os.Getenv("BENCH_SESSIONS_PARENT"); parent != "" {
		d, err := os.MkdirTemp(parent, "qxbench")
		require.NoError(b, err)
		b.Cleanup(func() { os.RemoveAll(d) })
		sessions = filepath.Join(d, "sessions")
	}
	require.NoError(b, os.Mkdir(sessions, 0o755))
	w := testquixote.Start(b, testquixote.Options{Unix: true, Children: children, SessionDir: sessions,
		Env: []string{"QXSITE_COOKIE_PATH=/"}})
	sock := "unix:" + filepath.Join(tmp, "gw.sock")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *Gateway, 1)
	exited := make(chan int, 1)
	// The request log is written (and thrown away), as a deployment writes it.
	g := newTestGateway()
	g.onReady = func(g *Gateway) { ready <- g }
	go func() {
		exited <- g.Run(ctx, []string{"-scgi", sock, "-sessions", sessions, "-route", "/=demo",
			"-mount", "/py/=" + quixoteTarget(w), "-cookie-path", "/", "-backend-max-conns", strconv.Itoa(children)},
			io.Discard, io.Discard)
	}()
	select {
	case <-ready:
	case code := <-exited:
		b.Fatalf("gateway exited with %d", code)
	}
	b.Cleanup(func() { cancel(); <-exited })

	viaGateway := testnginx.Start(b, testnginx.Config{Locations: documentedNginx(b, sock)}).URL
	direct := testnginx.Start(b, testnginx.Config{Locations: fmt.Sprintf(`
        location / {
            include scgi_params;
            scgi_param SCRIPT_NAME "";
            scgi_param PATH_INFO $document_uri;
            scgi_pass %s;
        }`, w.Addr)}).URL

	var cookies []string
	for i := range nSessions {
		c := client(b)
		r := get(b, c, fmt.Sprintf("%s/login?user=user%d", direct, i))
		require.Equal(b, http.StatusOK, r.Status)
		id := strings.Split(r.Cookies[0], `"`)[1]
		cookies = append(cookies, "QX_session="+id)
	}
	// Both pages answer for these sessions before measuring.
	r := get(b, &http.Client{}, viaGateway+"/counter", "Cookie", cookies[0])
	require.Contains(b, r.Body, "Counter: 1")
	r = get(b, &http.Client{}, direct+"/counter", "Cookie", cookies[0])
	require.Equal(b, "2", r.Body)

	b.ResetTimer()
	var goT, pyT, viaL, dirL, ceil []testwrk.Result
	var goInc, pyInc int64
	runCounting := func(url string, conns int, d time.Duration, inc *int64) testwrk.Result {
		before := counterSum(b, sessions)
		res := runWrk(b, url, cookies, conns, d)
		time.Sleep(100 * time.Millisecond) // requests wrk gave up on at the end finish
		*inc += counterSum(b, sessions) - before
		return res
	}
	var ignore int64
	runCounting(viaGateway+"/counter", conns, time.Second, &ignore) // warm up
	runCounting(direct+"/counter", conns, time.Second, &ignore)
	runCounting(viaGateway+"/py/counter", 1, time.Second, &ignore)
	goReq, pyReq := 0, 0
	for range rounds {
		g := runCounting(viaGateway+"/counter", conns, dur, &goInc)
		p := runCounting(direct+"/counter", conns, dur, &pyInc)
		goT, pyT = append(goT, g), append(pyT, p)
		goReq += g.Requests
		pyReq += p.Requests
		// The harness's ceiling: a Go page without any session work, through the same
		// nginx, wrk and SCGI hop. No backend can go faster than this here.
		ceil = append(ceil, runWrk(b, viaGateway+"/", []string{"x=y"}, conns, dur))
		viaL = append(viaL, runCounting(viaGateway+"/py/counter", 1, dur, &ignore))
		dirL = append(dirL, runCounting(direct+"/counter", 1, dur, &ignore))
	}
	b.StopTimer()

	rps := func(r testwrk.Result) float64 { return r.RPS }
	p50 := func(r testwrk.Result) float64 { return float64(r.P50) }
	goRPS, pyRPS := testwrk.Median(goT, rps).RPS, testwrk.Median(pyT, rps).RPS
	viaP50, dirP50 := float64(testwrk.Median(viaL, p50).P50), float64(testwrk.Median(dirL, p50).P50)
	b.ReportMetric(goRPS, "go-counter-req/s")
	b.ReportMetric(pyRPS, "py-counter-req/s")
	b.ReportMetric(goRPS/pyRPS, "go/py-throughput-x")
	b.ReportMetric(testwrk.Median(ceil, rps).RPS, "ceiling-go-no-session-req/s")
	b.ReportMetric(dirP50/1e3, "py-direct-p50-µs")
	b.ReportMetric(viaP50/1e3, "py-via-gateway-p50-µs")
	b.ReportMetric(100*(viaP50/dirP50-1), "gateway-p50-overhead-%")
	var lines []string
	for i := range goT {
		lines = append(lines, fmt.Sprintf("round %d: throughput (-c%d) go %.0f req/s (p50 %v) | python %.0f req/s (p50 %v) | ceiling %.0f req/s; latency (-c1) python via gateway p50 %v p90 %v p99 %v | direct p50 %v p90 %v p99 %v",
			i+1, conns, goT[i].RPS, goT[i].P50, pyT[i].RPS, pyT[i].P50, ceil[i].RPS, viaL[i].P50, viaL[i].P90, viaL[i].P99, dirL[i].P50, dirL[i].P90, dirL[i].P99))
	}
	lines = append(lines, fmt.Sprintf("counter increments in the files / requests wrk completed: go %d/%d, python %d/%d",
		goInc, goReq, pyInc, pyReq))
	b.Log("\n" + strings.Join(lines, "\n"))
}
