package scgi

import (
	"fmt"
	"net"
	"os"
	"os/exec"
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
}

var (
	wrkPercentile = regexp.MustCompile(`(?m)^\s+(50|90|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$`)
	wrkRate       = regexp.MustCompile(`(?m)^Requests/sec:\s+([\d.]+)`)
)

func runWrk(b *testing.B, url string, conns int, d time.Duration) wrkResult {
	b.Helper()
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		testpeer.Missing(b, "wrk")
	}
	out, err := exec.Command(wrk, "-t1", "-c"+strconv.Itoa(conns), "-d"+d.String(), "--latency", url).CombinedOutput()
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
	require.NotZero(b, r.p50, text)
	return r
}

// BenchmarkProxyEndToEnd compares, in one run, nginx → CPython worker with
// nginx → scgi.Serve(Proxy) → the same CPython worker, using wrk on loopback. Runs of
// the two setups alternate so that drift in the machine's load hits both alike; each
// figure is the median over the rounds. It ignores b.N: run it with -benchtime=1x.
// Environment: WRK_CONNS (default 1), WRK_DURATION (default 5s), WRK_ROUNDS (default 3),
// BENCH_PATHS (worker routes, default "/hello,/page"), BENCH_UNIX=1 to put every SCGI
// hop on UNIX sockets instead of loopback TCP.
func BenchmarkProxyEndToEnd(b *testing.B) {
	conns := envInt("WRK_CONNS", 1)
	rounds := envInt("WRK_ROUNDS", 3)
	dur := 5 * time.Second
	if s := os.Getenv("WRK_DURATION"); s != "" {
		var err error
		dur, err = time.ParseDuration(s)
		require.NoError(b, err)
	}
	paths := strings.Split(os.Getenv("BENCH_PATHS"), ",")
	if paths[0] == "" {
		paths = []string{"/hello", "/page"}
	}

	unix := os.Getenv("BENCH_UNIX") == "1"
	listen, network, gwAddr := "127.0.0.1:0", "tcp", "127.0.0.1:0"
	if unix {
		listen = "unix:" + unixSocketPath(b, "w.sock")
		network, gwAddr = "unix", unixSocketPath(b, "gw.sock")
	}
	w := startPyWorker(b, listen, 2)
	p, err := NewProxy(w.addr)
	require.NoError(b, err)
	l, err := net.Listen(network, gwAddr)
	require.NoError(b, err)
	serveSCGIOn(b, l, p)
	gw := l.Addr().String()
	if unix {
		gw = "unix:" + gw
	}

	site := func(pass string) string {
		return testnginx.Start(b, testnginx.Config{Locations: fmt.Sprintf(`
        location / {
            include scgi_params;
            scgi_param SCRIPT_NAME "";
            scgi_param PATH_INFO $document_uri;
            scgi_pass %s;
        }`, pass)}).URL
	}
	direct, viaGo := site(w.addr), site(gw)

	b.ResetTimer()
	var lines []string
	for _, path := range paths {
		runWrk(b, direct+path, conns, time.Second) // warm up both paths
		runWrk(b, viaGo+path, conns, time.Second)
		var d, g []wrkResult
		for range rounds {
			d = append(d, runWrk(b, direct+path, conns, dur))
			g = append(g, runWrk(b, viaGo+path, conns, dur))
		}
		name := strings.Trim(path, "/")
		dp50, gp50 := medianOf(d, func(r wrkResult) float64 { return float64(r.p50) }), medianOf(g, func(r wrkResult) float64 { return float64(r.p50) })
		b.ReportMetric(dp50/1e3, name+"-direct-p50-µs")
		b.ReportMetric(gp50/1e3, name+"-proxy-p50-µs")
		b.ReportMetric((gp50-dp50)/1e3, name+"-added-p50-µs")
		b.ReportMetric(100*(gp50/dp50-1), name+"-p50-overhead-%")
		b.ReportMetric(medianOf(d, func(r wrkResult) float64 { return r.rps }), name+"-direct-req/s")
		b.ReportMetric(medianOf(g, func(r wrkResult) float64 { return r.rps }), name+"-proxy-req/s")
		for i := range d {
			lines = append(lines, fmt.Sprintf("%s round %d: direct p50 %v p90 %v p99 %v %.0f req/s | proxy p50 %v p90 %v p99 %v %.0f req/s",
				path, i+1, d[i].p50, d[i].p90, d[i].p99, d[i].rps, g[i].p50, g[i].p90, g[i].p99, g[i].rps))
		}
	}
	b.StopTimer()
	// Every round, on stdout: b.Log output of a benchmark is cut short.
	fmt.Println(strings.Join(lines, "\n"))
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
