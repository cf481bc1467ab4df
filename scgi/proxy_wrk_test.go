package scgi

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/qxbridge/qxbridge/internal/testwrk"
	"github.com/stretchr/testify/require"
)

// BenchmarkProxyEndToEnd compares, in one run, nginx → the real Quixote 3.8 SCGI server
// (python-scgi, 2 children, publishing qxsite) with
// nginx → scgi.Serve(Proxy) → the same server, and with the same through a Proxy with
// WarmConns = 1 (one connection dialled ahead), using wrk on loopback. Runs of
// the three setups alternate so that drift in the machine's load hits both alike; each
// figure is the median over the rounds. It ignores b.N: run it with -benchtime=1x.
// Environment: WRK_CONNS (default 1), WRK_DURATION (default 5s), WRK_ROUNDS (default 3),
// BENCH_PATHS (worker routes, default "/hello,/page"), BENCH_UNIX=1 to put every SCGI
// hop on UNIX sockets instead of loopback TCP.
func BenchmarkProxyEndToEnd(b *testing.B) {
	conns, rounds, dur := wrkSettings(b, 1, 5*time.Second)
	paths := strings.Split(os.Getenv("BENCH_PATHS"), ",")
	if paths[0] == "" {
		paths = []string{"/hello", "/page"}
	}

	unix := os.Getenv("BENCH_UNIX") == "1"
	w := startQuixote(b, testquixote.Options{Unix: unix, Children: 2})
	p, err := NewProxy(w.Addr)
	require.NoError(b, err)
	gw := listenSCGI(b, unix, p)
	pw, err := NewProxy(w.Addr)
	require.NoError(b, err)
	pw.WarmConns = 1
	// Not closed, and kept however long a round of the other setups takes: a warm
	// connection closed unused costs the worker a child (see Proxy.WarmConns).
	pw.WarmMaxAge = time.Hour
	gwWarm := listenSCGI(b, unix, pw)

	site := func(pass string) string { return nginxTo(b, pass).URL }
	direct, viaGo, viaWarm := site(w.Addr), site(gw), site(gwWarm)

	b.ResetTimer()
	var lines []string
	for _, path := range paths {
		warm := testwrk.Options{Conns: conns, Duration: time.Second}
		testwrk.Run(b, direct+path, warm) // warm up both paths
		testwrk.Run(b, viaGo+path, warm)
		testwrk.Run(b, viaWarm+path, warm)
		var d, g, h []testwrk.Result
		var cpu []processCPU // this process's CPU per request in the proxy's rounds
		for range rounds {
			d = append(d, testwrk.Run(b, direct+path, testwrk.Options{Conns: conns, Duration: dur}))
			before := readProcessCPU(b)
			g = append(g, testwrk.Run(b, viaGo+path, testwrk.Options{Conns: conns, Duration: dur}))
			cpu = append(cpu, readProcessCPU(b).since(before, g[len(g)-1].Requests))
			h = append(h, testwrk.Run(b, viaWarm+path, testwrk.Options{Conns: conns, Duration: dur}))
		}
		name := strings.Trim(path, "/")
		if name == "" {
			name = "root"
		}
		p50 := func(r testwrk.Result) float64 { return float64(r.P50) }
		rps := func(r testwrk.Result) float64 { return r.RPS }
		dp50, gp50, hp50 := float64(testwrk.Median(d, p50).P50), float64(testwrk.Median(g, p50).P50), float64(testwrk.Median(h, p50).P50)
		b.ReportMetric(dp50/1e3, name+"-direct-p50-µs")
		b.ReportMetric(gp50/1e3, name+"-proxy-p50-µs")
		b.ReportMetric((gp50-dp50)/1e3, name+"-added-p50-µs")
		b.ReportMetric(100*(gp50/dp50-1), name+"-p50-overhead-%")
		b.ReportMetric(hp50/1e3, name+"-warm-p50-µs")
		b.ReportMetric((hp50-dp50)/1e3, name+"-warm-added-p50-µs")
		b.ReportMetric(hp50/dp50, name+"-warm-ratio")
		b.ReportMetric(testwrk.Median(d, rps).RPS, name+"-direct-req/s")
		b.ReportMetric(testwrk.Median(g, rps).RPS, name+"-proxy-req/s")
		b.ReportMetric(medianCPU(cpu, func(c processCPU) time.Duration { return c.user + c.sys }), name+"-proxy-cpu-µs/req")
		b.ReportMetric(medianCPU(cpu, func(c processCPU) time.Duration { return c.user }), name+"-proxy-user-µs/req")
		b.ReportMetric(medianCPU(cpu, func(c processCPU) time.Duration { return c.sys }), name+"-proxy-sys-µs/req")
		for i := range d {
			lines = append(lines, fmt.Sprintf("%s round %d: direct p50 %v p90 %v %.0f req/s | proxy p50 %v p90 %v %.0f req/s, CPU %v user + %v sys per request | warm p50 %v p90 %v %.0f req/s",
				path, i+1, d[i].P50, d[i].P90, d[i].RPS, g[i].P50, g[i].P90, g[i].RPS, cpu[i].user, cpu[i].sys, h[i].P50, h[i].P90, h[i].RPS))
		}
	}
	b.StopTimer()
	// Every round, on stdout: b.Log output of a benchmark is cut short.
	fmt.Println(strings.Join(lines, "\n"))
}

// processCPU is the user and system CPU time of this process: in the proxy's rounds of
// BenchmarkProxyEndToEnd, the proxy's (and its SCGI server's) CPU, since wrk, nginx and
// the worker are processes of their own.
type processCPU struct{ user, sys time.Duration }

func readProcessCPU(t testing.TB) processCPU {
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return processCPU{time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())}
}

// since returns the CPU used since before, per request of n.
func (c processCPU) since(before processCPU, n int) processCPU {
	n = max(n, 1)
	return processCPU{(c.user - before.user) / time.Duration(n), (c.sys - before.sys) / time.Duration(n)}
}

// medianCPU returns the median of f over cs, in microseconds.
func medianCPU(cs []processCPU, f func(processCPU) time.Duration) float64 {
	v := make([]time.Duration, len(cs))
	for i, c := range cs {
		v[i] = f(c)
	}
	slices.Sort(v)
	return float64(v[len(v)/2]) / 1e3
}

// listenSCGI serves h over SCGI on loopback TCP or a UNIX socket and returns its
// address as NewProxy takes it.
func listenSCGI(t testing.TB, unix bool, h http.Handler) string {
	network, addr := "tcp", "127.0.0.1:0"
	if unix {
		network, addr = "unix", unixSocketPath(t, "scgi.sock")
	}
	l, err := net.Listen(network, addr)
	require.NoError(t, err)
	serveSCGIOn(t, l, h)
	if unix {
		return "unix:" + l.Addr().String()
	}
	return l.Addr().String()
}

// wrkSettings reads WRK_CONNS, WRK_ROUNDS (default 3) and WRK_DURATION.
func wrkSettings(t testing.TB, conns int, dur time.Duration) (int, int, time.Duration) {
	if s := os.Getenv("WRK_DURATION"); s != "" {
		var err error
		dur, err = time.ParseDuration(s)
		require.NoError(t, err)
	}
	return envInt("WRK_CONNS", conns), envInt("WRK_ROUNDS", 3), dur
}

func envInt(name string, def int) int {
	if s := os.Getenv(name); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	return def
}
