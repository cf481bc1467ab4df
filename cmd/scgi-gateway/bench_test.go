package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testnginx"
	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/require"
)

// wrkResult is what one wrk run measured.
type wrkResult struct {
	p50, p90, p99 time.Duration
	rps           float64
	requests      int
}

var (
	wrkPercentile = regexp.MustCompile(`(?m)^\s+(50|90|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$`)
	wrkRate       = regexp.MustCompile(`(?m)^Requests/sec:\s+([\d.]+)`)
	wrkCount      = regexp.MustCompile(`(?m)^\s+(\d+) requests in`)
)

// runWrk runs wrk with a Lua script that sends each request with the next of the
// session cookies, so that every request loads and saves a logged-in session.
func runWrk(b *testing.B, url string, cookies []string, conns int, d time.Duration) wrkResult {
	b.Helper()
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		testpeer.Missing(b, "wrk")
	}
	var lua strings.Builder
	lua.WriteString("local cookies = {\n")
	for _, c := range cookies {
		fmt.Fprintf(&lua, "  %q,\n", c)
	}
	lua.WriteString("}\nlocal i = 0\nrequest = function()\n  i = i % #cookies + 1\n  return wrk.format(nil, nil, { [\"Cookie\"] = cookies[i] })\nend\n")
	script := filepath.Join(b.TempDir(), "cookies.lua")
	require.NoError(b, os.WriteFile(script, []byte(lua.String()), 0o644))
	out, err := exec.Command(wrk, "-t1", "-c"+strconv.Itoa(conns), "-d"+d.String(), "--timeout", "10s", "--latency", "-s", script, url).CombinedOutput()
	require.NoError(b, err, string(out))
	text := string(out)
	require.NotContains(b, text, "Non-2xx", text)
	require.NotContains(b, text, "Socket errors", text)
	var r wrkResult
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}
	for _, m := range wrkPercentile.FindAllStringSubmatch(text, -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		require.NoError(b, err)
		d := time.Duration(v * float64(unit[m[3]]))
		switch m[1] {
		case "50":
			r.p50 = d
		case "90":
			r.p90 = d
		case "99":
			r.p99 = d
		}
	}
	m := wrkRate.FindStringSubmatch(text)
	require.NotNil(b, m, text)
	r.rps, err = strconv.ParseFloat(m[1], 64)
	require.NoError(b, err)
	m = wrkCount.FindStringSubmatch(text)
	require.NotNil(b, m, text)
	r.requests, _ = strconv.Atoi(m[1])
	require.NotZero(b, r.p50, text)
	return r
}

func medianOf(rs []wrkResult, f func(wrkResult) float64) float64 {
	var xs []float64
	for _, r := range rs {
		xs = append(xs, f(r))
	}
	slices.Sort(xs)
	return xs[len(xs)/2]
}

func envInt(name string, def int) int {
	if s := os.Getenv(name); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	return def
}

// counterSum adds up the counter attribute of every session in dir.
func counterSum(b *testing.B, dir string) int64 {
	var sum int64
	for _, id := range sessionFiles(b, dir) {
		n, _ := readSession(b, dir, id).GetInt("counter")
		sum += n
	}
	return sum
}

// BenchmarkGatewayEndToEnd measures, in one run on one machine, the two comparisons of
// BENCHMARKS.md (## gateway), every request going through nginx with wrk on loopback:
//
//   - throughput of a page that loads and saves a logged-in session: nginx → gateway
//     → the Go demo's /counter, against nginx → the CPython SCGI worker (qxapp's
//     /counter: session3's manager steps over the DirectorySessionStore) directly;
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
	dur := 5 * time.Second
	if s := os.Getenv("WRK_DURATION"); s != "" {
		var err error
		dur, err = time.ParseDuration(s)
		require.NoError(b, err)
	}

	tmp := shortTempDir(b)
	sessions := filepath.Join(tmp, "sessions")
	if parent := os.Getenv("BENCH_SESSIONS_PARENT"); parent != "" {
		d, err := os.MkdirTemp(parent, "qxbench")
		require.NoError(b, err)
		b.Cleanup(func() { os.RemoveAll(d) })
		sessions = filepath.Join(d, "sessions")
	}
	require.NoError(b, os.Mkdir(sessions, 0o755))
	w := startPy(b, []string{"QXAPP_COOKIE_PATH=/"}, "gateway_worker.py", sessions,
		"--listen", "unix:"+filepath.Join(tmp, "py.sock"), "--children", strconv.Itoa(children))
	sock := "unix:" + filepath.Join(tmp, "gw.sock")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *gateway, 1)
	exited := make(chan int, 1)
	// The request log is written (and thrown away), as a deployment writes it.
	go func() {
		exited <- run(ctx, []string{"-scgi", sock, "-sessions", sessions, "-route", "/=demo",
			"-mount", "/py/=" + w.scgiTarget(), "-cookie-path", "/", "-backend-max-conns", strconv.Itoa(children)},
			io.Discard, io.Discard, func(g *gateway) { ready <- g })
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
        }`, w.addr)}).URL

	var cookies []string
	for i := range nSessions {
		c := client(b)
		r := get(b, c, fmt.Sprintf("%s/login?user=user%d", direct, i))
		require.Equal(b, http.StatusOK, r.status)
		id := strings.Split(r.cookies[0], `"`)[1]
		cookies = append(cookies, "QX_session="+id)
	}
	// Both pages answer for these sessions before measuring.
	r := get(b, &http.Client{}, viaGateway+"/counter", "Cookie", cookies[0])
	require.Contains(b, r.body, "Counter: 1")
	r = get(b, &http.Client{}, direct+"/counter", "Cookie", cookies[0])
	require.Equal(b, "2", r.body)

	b.ResetTimer()
	var goT, pyT, viaL, dirL, ceil []wrkResult
	var goInc, pyInc int64
	runCounting := func(url string, conns int, d time.Duration, inc *int64) wrkResult {
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
		goReq += g.requests
		pyReq += p.requests
		// The harness's ceiling: a Go page without any session work, through the same
		// nginx, wrk and SCGI hop. No backend can go faster than this here.
		ceil = append(ceil, runWrk(b, viaGateway+"/", []string{"x=y"}, conns, dur))
		viaL = append(viaL, runCounting(viaGateway+"/py/counter", 1, dur, &ignore))
		dirL = append(dirL, runCounting(direct+"/counter", 1, dur, &ignore))
	}
	b.StopTimer()

	rps := func(r wrkResult) float64 { return r.rps }
	p50 := func(r wrkResult) float64 { return float64(r.p50) }
	goRPS, pyRPS := medianOf(goT, rps), medianOf(pyT, rps)
	viaP50, dirP50 := medianOf(viaL, p50), medianOf(dirL, p50)
	b.ReportMetric(goRPS, "go-counter-req/s")
	b.ReportMetric(pyRPS, "py-counter-req/s")
	b.ReportMetric(goRPS/pyRPS, "go/py-throughput-x")
	b.ReportMetric(medianOf(ceil, rps), "ceiling-go-no-session-req/s")
	b.ReportMetric(dirP50/1e3, "py-direct-p50-µs")
	b.ReportMetric(viaP50/1e3, "py-via-gateway-p50-µs")
	b.ReportMetric(100*(viaP50/dirP50-1), "gateway-p50-overhead-%")
	var lines []string
	for i := range goT {
		lines = append(lines, fmt.Sprintf("round %d: throughput (-c%d) go %.0f req/s (p50 %v) | python %.0f req/s (p50 %v) | ceiling %.0f req/s; latency (-c1) python via gateway p50 %v p90 %v p99 %v | direct p50 %v p90 %v p99 %v",
			i+1, conns, goT[i].rps, goT[i].p50, pyT[i].rps, pyT[i].p50, ceil[i].rps, viaL[i].p50, viaL[i].p90, viaL[i].p99, dirL[i].p50, dirL[i].p90, dirL[i].p99))
	}
	lines = append(lines, fmt.Sprintf("counter increments in the files / requests wrk completed: go %d/%d, python %d/%d",
		goInc, goReq, pyInc, pyReq))
	b.Log("\n" + strings.Join(lines, "\n"))
}
