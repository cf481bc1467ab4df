package gateway

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testnginx"
	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/qxbridge/qxbridge/internal/testwrk"
	"github.com/qxbridge/qxbridge/scgi"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Filesystem magic numbers (statfs(2)) of the two kinds of session directory compared.
const (
	ext4Magic  = 0xEF53
	tmpfsMagic = 0x01021994
)

// benchSessionParent makes a fresh directory under parent and checks that it lies on
// the filesystem the figures are labelled with.
func benchSessionParent(b *testing.B, parent, fsName string, magic int64) string {
	b.Helper()
	d, err := os.MkdirTemp(parent, "qxbench")
	require.NoError(b, err)
	b.Cleanup(func() { os.RemoveAll(d) })
	var st unix.Statfs_t
	require.NoError(b, unix.Statfs(d, &st))
	require.Equal(b, magic, int64(st.Type), "%s is not on %s (statfs type %#x): set BENCH_EXT4_DIR / BENCH_TMPFS_DIR", d, fsName, st.Type)
	return d
}

// headWriter keeps the first max bytes written to it and drops the rest: a gateway's
// start-up lines for a failure message, without keeping a request log line per request.
type headWriter struct {
	mu  sync.Mutex
	b   bytes.Buffer
	max int
}

func (w *headWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if room := w.max - w.b.Len(); room > 0 {
		w.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (w *headWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// benchGateway is the gateway as its own process (the test binary as the
// scgi-gateway command), so that its resident memory is its own.
type benchGateway struct {
	cmd  *exec.Cmd
	http string // its HTTP listener's address
	log  *headWriter
}

// startBenchGateway runs the gateway process with args plus an HTTP listener on a
// free port, and returns once that listener accepts. Its request log is written, as a
// deployment writes it, and thrown away.
func startBenchGateway(b *testing.B, args ...string) *benchGateway {
	b.Helper()
	addr := freeAddr(b)
	g := &benchGateway{http: addr, log: &headWriter{max: 64 << 10}}
	g.cmd = exec.Command(os.Args[0], append(args, "-http", addr)...)
	g.cmd.Env = append(os.Environ(), "SCGI_GATEWAY_MAIN=1")
	g.cmd.Stderr = g.log
	require.NoError(b, g.cmd.Start())
	exited := make(chan struct{})
	go func() { _ = g.cmd.Wait(); close(exited) }()
	b.Cleanup(func() {
		_ = g.cmd.Process.Signal(syscall.SIGTERM) // stops as deployed (and writes GATEWAY_CPUPROFILE)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = g.cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return g
		}
		select {
		case <-exited:
			b.Fatalf("gateway exited: %v\n%s", g.cmd.ProcessState, g.log)
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("gateway did not listen on %s\n%s", addr, g.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rss returns the process's resident set size and its peak (VmRSS, VmHWM) in bytes.
func (g *benchGateway) rss(b *testing.B) (rss, hwm int64) {
	b.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.cmd.Process.Pid))
	require.NoError(b, err)
	for _, line := range strings.Split(string(status), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		require.NoError(b, err, line)
		if name == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm
}

// userHZ is the unit of the CPU times in /proc/PID/stat on Linux.
const userHZ = 100

// cpuTime returns the CPU time (user and system) that the processes of process group
// pgid have used, including that of their children already reaped, or, with pgid 0,
// that of process pid alone.
func cpuTime(b *testing.B, pid, pgid int) time.Duration {
	b.Helper()
	pids := []int{pid}
	if pgid != 0 {
		pids = pids[:0]
		entries, err := os.ReadDir("/proc")
		require.NoError(b, err)
		for _, e := range entries {
			if n, err := strconv.Atoi(e.Name()); err == nil {
				pids = append(pids, n)
			}
		}
	}
	var ticks int64
	for _, p := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue // exited meanwhile
		}
		// After "pid (comm) ": state ppid pgrp ... utime stime cutime cstime are
		// fields 14–17 of the line, 12–15 after the comm.
		i := bytes.LastIndexByte(stat, ')')
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 15 {
			continue
		}
		if pgid != 0 {
			if g, _ := strconv.Atoi(f[2]); g != pgid {
				continue
			}
		}
		for _, v := range f[11:15] {
			n, _ := strconv.ParseInt(v, 10, 64)
			ticks += n
		}
	}
	return time.Duration(ticks) * time.Second / userHZ
}

// loadavg is the first three fields of /proc/loadavg.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// counterSetup is one session directory with the real Quixote application and the
// gateway on it, each behind its own nginx with the same configuration (the
// documented one: docs/nginx.conf).
type counterSetup struct {
	fs       string
	sessions string
	goURL    string // nginx → gateway (SCGI, UNIX socket) → the Go demo
	pyURL    string // nginx → Quixote's SCGI server (UNIX socket) → qxsite
	httpURL  string // the gateway's own HTTP listener
	goNginx  *testnginx.Instance
	pyNginx  *testnginx.Instance
	gw       *benchGateway
	py       *testquixote.Server
	cookies  []string // logged-in sessions, made through Python
}

// goCPU and pyCPU are the CPU time the gateway process and Quixote's SCGI server (its
// parent and all its children) have used so far.
func (s *counterSetup) goCPU(b *testing.B) time.Duration { return cpuTime(b, s.gw.cmd.Process.Pid, 0) }
func (s *counterSetup) pyCPU(b *testing.B) time.Duration { return cpuTime(b, 0, s.py.Pid()) }

func newCounterSetup(b *testing.B, fs, parent string, nSessions int) *counterSetup {
	b.Helper()
	s := &counterSetup{fs: fs, sessions: filepath.Join(parent, "sessions")}
	require.NoError(b, os.Mkdir(s.sessions, 0o755))
	py := testquixote.Start(b, testquixote.Options{Unix: true, SessionDir: s.sessions,
		Env: []string{"QXSITE_COOKIE_PATH=/"}})
	s.py = py
	sock := "unix:" + filepath.Join(shortTempDir(b), "gw.sock")
	args := []string{"-scgi", sock, "-sessions", s.sessions, "-route", "/=demo", "-cookie-path", "/"}
	s.gw = startBenchGateway(b, append(args, strings.Fields(os.Getenv("BENCH_GATEWAY_FLAGS"))...)...)
	s.httpURL = "http://" + s.gw.http
	workers := envInt("BENCH_NGINX_WORKERS", 1)
	s.goNginx = testnginx.Start(b, testnginx.Config{Workers: workers, Locations: documentedNginx(b, sock)})
	s.pyNginx = testnginx.Start(b, testnginx.Config{Workers: workers, Locations: documentedNginx(b, py.Addr)})
	s.goURL, s.pyURL = s.goNginx.URL, s.pyNginx.URL

	for i := range nSessions {
		r := get(b, client(b), fmt.Sprintf("%s/login?user=user%d", s.pyURL, i))
		require.Equal(b, http.StatusOK, r.Status, r.Body)
		require.Len(b, r.Cookies, 1)
		s.cookies = append(s.cookies, "QX_session="+strings.Split(r.Cookies[0], `"`)[1])
	}
	// Both pages count for these sessions before anything is measured.
	r := get(b, &http.Client{}, s.goURL+"/counter", "Cookie", s.cookies[0])
	require.Contains(b, r.Body, "Counter: 1")
	r = get(b, &http.Client{}, s.pyURL+"/counter", "Cookie", s.cookies[0])
	require.Equal(b, "2", r.Body)
	return s
}

// counterRow is one row of the table: Go's and Python's rounds.
type counterRow struct {
	name         string
	goR, pyR     []testwrk.Result
	goInc, pyN   int64         // counter increments found in the files, for Go and Python
	goReq, pyQ   int           // requests wrk completed
	goCPU        time.Duration // CPU time of the gateway process during Go's runs
	pyCPU        time.Duration // CPU time of Quixote's processes during Python's runs
	goWrk, pyWrk time.Duration // CPU time of wrk during Go's and Python's runs
	goNgx, pyNgx time.Duration // CPU time of each side's nginx (master and worker)
}

// cpuPerRequest is a side's CPU time per completed request, in µs.
func cpuPerRequest(cpu time.Duration, requests int) float64 {
	return float64(cpu.Microseconds()) / float64(max(requests, 1))
}

// BenchmarkGatewayCounter reproduces, in one run, the throughput table of
// BENCHMARKS.md (## gateway): the Go demo's /counter served by the gateway against the
// real Quixote 3.8 + session3 /counter served by Quixote's own SCGI server (python-scgi,
// its default 5 children), each through nginx with docs/nginx.conf, with a session
// directory on ext4 and on tmpfs, for one shared logged-in session and for 200
// distinct ones (wrk -t1 -c16, each request with the next session's cookie, so every
// request loads and saves a logged-in session). Go and Python alternate within each
// round; ratios are taken round by round and the medians reported. For scale it also
// measures, on tmpfs, the gateway's own HTTP listener (no nginx) with /counter and 200
// sessions, and GET / (no session work). Each side's CPU time per request is taken
// from /proc (the gateway process; Quixote's parent and children). Then it runs the
// 200-session ext4 load on the gateway 10 times in a row and records its resident
// memory after each.
//
// With the first filesystem (ext4 unless BENCH_ONLY says otherwise) it also measures,
// in each round beside the Python /counter, what bounds any Go page behind nginx here
// (newCeilingRows): nginx answering by itself; nginx → SCGI (one connection per
// request) → a bare scgi.Server with a constant page, and → the gateway's GET /; nginx
// → HTTP/1.1 with upstream keepalive → a bare net/http server with the same page, and →
// the gateway's HTTP listener (GET /, and /counter with 200 sessions and one). For every
// row it splits the CPU time per request between wrk, nginx and the server behind it.
//
// It ignores b.N: run it with -benchtime=1x (scripts/bench-gateway.sh). Environment:
// WRK_DURATION (default 4s), WRK_ROUNDS (default 2), WRK_CONNS (default 16),
// BENCH_RSS_RUNS (default 10), BENCH_EXT4_DIR (default /var/tmp), BENCH_TMPFS_DIR
// (default /dev/shm), BENCH_NGINX_WORKERS (default 1), BENCH_ONLY (ext4 or tmpfs),
// BENCH_CEILING (0: leave out the ceiling rows), BENCH_GATEWAY_FLAGS (more flags for
// the gateway, split on spaces, e.g. "-order=false").
func BenchmarkGatewayCounter(b *testing.B) {
	conns := envInt("WRK_CONNS", 16)
	rounds := envInt("WRK_ROUNDS", 2)
	rssRuns := envInt("BENCH_RSS_RUNS", 10)
	dur := envDuration(b, "WRK_DURATION", 4*time.Second)
	const many = 200
	type fsKind struct {
		name, env, def string
		magic          int64
	}
	var out []string
	logf := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	logf("load average at start: %s", loadavg())

	ceilingOn := os.Getenv("BENCH_CEILING") != "0"
	var ceilingFS string   // the filesystem whose run measured the ceiling rows
	var ceilTable []string // their tables, printed after the main ones

	b.ResetTimer()
	var rows []*counterRow
	var ext4 *counterSetup
	for _, fs := range []fsKind{{"ext4", "BENCH_EXT4_DIR", "/var/tmp", ext4Magic}, {"tmpfs", "BENCH_TMPFS_DIR", "/dev/shm", tmpfsMagic}} {
		if only := os.Getenv("BENCH_ONLY"); only != "" && only != fs.name {
			continue
		}
		parent := os.Getenv(fs.env)
		if parent == "" {
			parent = fs.def
		}
		s := newCounterSetup(b, fs.name, benchSessionParent(b, parent, fs.name, fs.magic), many)
		if fs.name == "ext4" {
			ext4 = s
		}
		one := &counterRow{name: "1 session, " + fs.name}
		all := &counterRow{name: fmt.Sprintf("%d sessions, %s", many, fs.name)}
		var viaHTTP, noSession, ceiling []testwrk.Result
		measure := func(row *counterRow, cookies []string) {
			before, cpu0, ngx0 := counterSum(b, s.sessions), s.goCPU(b), nginxCPU(b, s.goNginx)
			g := runWrk(b, s.goURL+"/counter", cookies, conns, dur)
			time.Sleep(100 * time.Millisecond) // requests wrk gave up on at the end finish
			row.goCPU += s.goCPU(b) - cpu0
			row.goNgx += nginxCPU(b, s.goNginx) - ngx0
			mid, cpu0, ngx0 := counterSum(b, s.sessions), s.pyCPU(b), nginxCPU(b, s.pyNginx)
			p := runWrk(b, s.pyURL+"/counter", cookies, conns, dur)
			time.Sleep(100 * time.Millisecond)
			row.pyCPU += s.pyCPU(b) - cpu0
			row.pyNgx += nginxCPU(b, s.pyNginx) - ngx0
			row.goWrk, row.pyWrk = row.goWrk+g.CPU, row.pyWrk+p.CPU
			row.goInc += mid - before
			row.pyN += counterSum(b, s.sessions) - mid
			row.goR, row.pyR = append(row.goR, g), append(row.pyR, p)
			row.goReq += g.Requests
			row.pyQ += p.Requests
		}
		// The ceiling rows go with the first filesystem measured, beside its Python rows.
		var ceil []*ceilingRow
		if ceilingOn && ceilingFS == "" {
			ceilingFS = fs.name
			ceil = newCeilingRows(b, s)
		}
		// Warm up both sides (children forked, caches filled).
		runWrk(b, s.goURL+"/counter", s.cookies, conns, time.Second)
		runWrk(b, s.pyURL+"/counter", s.cookies, conns, time.Second)
		for _, c := range ceil {
			runWrk(b, c.url, c.cookies, conns, time.Second)
		}
		// Requests wrk gave up on finish before the first count: a save in flight lists
		// its temporary file in the session directory.
		time.Sleep(100 * time.Millisecond)
		for range rounds {
			measure(all, s.cookies)
			measure(one, s.cookies[:1])
			for _, c := range ceil {
				c.measure(b, conns, dur)
			}
			if fs.name == "tmpfs" {
				viaHTTP = append(viaHTTP, runWrk(b, s.httpURL+"/counter", s.cookies, conns, dur))
				noSession = append(noSession, runWrk(b, s.httpURL+"/", []string{"x=y"}, conns, dur))
				ceiling = append(ceiling, runWrk(b, s.goURL+"/", []string{"x=y"}, conns, dur))
			}
		}
		rows = append(rows, all, one)
		if ceil != nil {
			ceilTable = ceilingTable(ceil, all, one, conns, dur)
		}
		if fs.name == "tmpfs" {
			logf("%d sessions, tmpfs, gateway's own HTTP listener (no nginx), Go /counter: %s req/s", many, rpsList(viaHTTP))
			logf("no session work (GET /, gateway's HTTP listener): %s req/s", rpsList(noSession))
			logf("no session work through nginx (GET /, nginx → gateway): %s req/s", rpsList(ceiling))
		}
		logf("load average after %s: %s", fs.name, loadavg())
	}

	logf("")
	logf("| measure (wrk -t1 -c%d, %v, %d rounds) | Go (gateway, demo `/counter`) | Python (Quixote `/counter`) | Go / Python per round |", conns, dur, rounds)
	logf("| --- | ---: | ---: | ---: |")
	for _, r := range rows {
		var ratios []float64
		for i := range r.goR {
			ratios = append(ratios, r.goR[i].RPS/r.pyR[i].RPS)
		}
		logf("| %s | %s | %s | %s |", r.name, rpsList(r.goR), rpsList(r.pyR), ratioList(ratios))
		b.ReportMetric(median(ratios), "go/py-x-"+strings.NewReplacer(" ", "", ",", "-").Replace(r.name))
	}
	logf("")
	logf("| CPU time per request, all rounds | gateway process | Quixote's processes | Python / Go |")
	logf("| --- | ---: | ---: | ---: |")
	for _, r := range rows {
		g, p := cpuPerRequest(r.goCPU, r.goReq), cpuPerRequest(r.pyCPU, r.pyQ)
		logf("| %s | %.0f µs | %.0f µs | %.1f× |", r.name, g, p, p/g)
	}
	logf("")
	logf("| CPU time per request by process, all rounds (µs) | wrk | nginx | behind nginx | total | 2 cores ÷ total |")
	logf("| --- | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range rows {
		logf("%s", cpuSplit{r.goWrk, r.goNgx, r.goCPU, r.goReq}.row("Go `/counter` (nginx → SCGI → gateway), "+r.name))
		logf("%s", cpuSplit{r.pyWrk, r.pyNgx, r.pyCPU, r.pyQ}.row("Python `/counter` (nginx → SCGI → Quixote), "+r.name))
	}
	logf("")
	for _, r := range rows {
		logf("%s: counter increments in the files / requests wrk completed: Go %d / %d, Python %d / %d",
			r.name, r.goInc, r.goReq, r.pyN, r.pyQ)
	}
	if ceilTable != nil {
		logf("")
		logf("What bounds a Go page behind nginx (%s run; ratios to that run's Python `/counter` in the same round):", ceilingFS)
		out = append(out, ceilTable...)
	}

	if ext4 != nil && rssRuns > 0 {
		var series []string
		var first, last int64
		var cpuSeries []string
		for i := range rssRuns {
			cpu0 := ext4.goCPU(b)
			r := runWrk(b, ext4.goURL+"/counter", ext4.cookies, conns, dur)
			cpuSeries = append(cpuSeries, fmt.Sprintf("%.0f req/s %.0f µs", r.RPS, cpuPerRequest(ext4.goCPU(b)-cpu0, r.Requests)))
			rss, hwm := ext4.gw.rss(b)
			if i == 0 {
				first = rss
			}
			last = rss
			series = append(series, fmt.Sprintf("%.1f (peak %.1f)", mib(rss), mib(hwm)))
		}
		logf("gateway resident memory after each of %d consecutive %v runs of the %d-session ext4 load, MiB: %s",
			rssRuns, dur, many, strings.Join(series, ", "))
		logf("the same runs, throughput and the gateway's CPU time per request: %s", strings.Join(cpuSeries, ", "))
		b.ReportMetric(mib(first), "rss-first-MiB")
		b.ReportMetric(mib(last), "rss-last-MiB")
	}
	b.StopTimer()
	logf("load average at end: %s", loadavg())
	b.Log("\n" + strings.Join(out, "\n"))
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// nginxCPU is the CPU time nginx's processes (its process group: master and workers)
// have used so far.
func nginxCPU(b *testing.B, inst *testnginx.Instance) time.Duration {
	return cpuTime(b, 0, inst.PID())
}

// cpuSplit is where the CPU time of a page's requests went: wrk, nginx, and the
// process(es) behind nginx.
type cpuSplit struct {
	wrk, nginx, backend time.Duration
	requests            int
}

// row is a table row of the split per request, in µs, with the rate the two cores
// would allow if they did nothing else.
func (c cpuSplit) row(name string) string {
	w, n, s := cpuPerRequest(c.wrk, c.requests), cpuPerRequest(c.nginx, c.requests), cpuPerRequest(c.backend, c.requests)
	total := w + n + s
	return fmt.Sprintf("| %s | %.0f | %.0f | %.0f | %.0f | %.0f req/s |", name, w, n, s, total, 2e6/max(total, 1))
}

// ceilingRow is a page measured beside the Python /counter for scale.
type ceilingRow struct {
	name    string
	url     string
	cookies []string
	nginx   *testnginx.Instance
	backend func(*testing.B) time.Duration // CPU time so far of the server behind nginx; nil for none
	rs      []testwrk.Result
	cpu     cpuSplit
}

func (c *ceilingRow) measure(b *testing.B, conns int, dur time.Duration) {
	b.Helper()
	ngx0 := nginxCPU(b, c.nginx)
	var back0 time.Duration
	if c.backend != nil {
		back0 = c.backend(b)
	}
	r := runWrk(b, c.url, c.cookies, conns, dur)
	time.Sleep(100 * time.Millisecond)
	c.cpu.nginx += nginxCPU(b, c.nginx) - ngx0
	if c.backend != nil {
		c.cpu.backend += c.backend(b) - back0
	}
	c.cpu.wrk += r.CPU
	c.cpu.requests += r.Requests
	c.rs = append(c.rs, r)
}

// constPage is the page of the bare servers: no session, no routing, no log.
var constPage = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
})

// keepaliveNginx is nginx proxying over HTTP/1.1 to addr with upstream connections
// kept open between requests (nginx's SCGI module opens one per request). Host is
// passed as the client sent it, and the client's address and scheme as
// X-Forwarded-For and X-Forwarded-Proto, as such a deployment would.
func keepaliveNginx(b *testing.B, addr string) *testnginx.Instance {
	b.Helper()
	return testnginx.Start(b, testnginx.Config{Workers: envInt("BENCH_NGINX_WORKERS", 1),
		HTTP: fmt.Sprintf("    upstream backend { server %s; keepalive 32; }", addr),
		Locations: `        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }`})
}

// newCeilingRows starts, beside setup s, what the ceiling rows measure: an nginx that
// answers by itself, a bare scgi.Server and a bare net/http server with constPage in
// this process (idle otherwise while wrk runs, so its CPU time is theirs), each behind
// its own nginx, and an nginx with upstream keepalive in front of the gateway's HTTP
// listener; and checks that each answers as it should.
func newCeilingRows(b *testing.B, s *counterSetup) []*ceilingRow {
	b.Helper()
	workers := envInt("BENCH_NGINX_WORKERS", 1)
	self := func(b *testing.B) time.Duration { return cpuTime(b, os.Getpid(), 0) }
	gw := func(b *testing.B) time.Duration { return s.goCPU(b) }
	noCookie := []string{"x=y"}

	alone := testnginx.Start(b, testnginx.Config{Workers: workers, Locations: `        location / { return 200 "ok\n"; }`})

	sock := filepath.Join(shortTempDir(b), "const.sock")
	sl, err := net.Listen("unix", sock)
	require.NoError(b, err)
	ss := &scgi.Server{Handler: constPage}
	go func() { _ = ss.Serve(sl) }()
	b.Cleanup(func() { _ = ss.Close() })
	scgiConst := testnginx.Start(b, testnginx.Config{Workers: workers, Locations: documentedNginx(b, "unix:"+sock)})

	hl, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	hs := &http.Server{Handler: constPage, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(hl) }()
	b.Cleanup(func() { _ = hs.Close() })
	httpConst := keepaliveNginx(b, hl.Addr().String())

	gwHTTP := keepaliveNginx(b, s.gw.http)

	rows := []*ceilingRow{
		{name: "nginx alone (`return 200`)", url: alone.URL + "/", cookies: noCookie, nginx: alone},
		{name: "nginx → SCGI, UNIX socket → bare `scgi.Server`, constant page", url: scgiConst.URL + "/", cookies: noCookie, nginx: scgiConst, backend: self},
		{name: "nginx → SCGI, UNIX socket → gateway, Go `GET /`", url: s.goURL + "/", cookies: noCookie, nginx: s.goNginx, backend: gw},
		{name: "nginx → HTTP keepalive, TCP → bare `net/http` server, constant page", url: httpConst.URL + "/", cookies: noCookie, nginx: httpConst, backend: self},
		{name: "nginx → HTTP keepalive, TCP → gateway's `-http`, Go `GET /`", url: gwHTTP.URL + "/", cookies: noCookie, nginx: gwHTTP, backend: gw},
		{name: fmt.Sprintf("nginx → HTTP keepalive, TCP → gateway's `-http`, Go `/counter`, %d sessions, %s", len(s.cookies), s.fs), url: gwHTTP.URL + "/counter", cookies: s.cookies, nginx: gwHTTP, backend: gw},
		{name: "nginx → HTTP keepalive, TCP → gateway's `-http`, Go `/counter`, 1 session, " + s.fs, url: gwHTTP.URL + "/counter", cookies: s.cookies[:1], nginx: gwHTTP, backend: gw},
	}
	for _, r := range rows {
		resp := get(b, &http.Client{}, r.url, "Cookie", r.cookies[0])
		require.Equal(b, http.StatusOK, resp.Status, "%s: %s", r.name, resp.Body)
		if strings.HasSuffix(r.url, "/counter") {
			require.Contains(b, resp.Body, "Counter: ", r.name)
		}
	}
	return rows
}

// ceilingTable prints the ceiling rows' rates, their ratios to the Python /counter
// (200 sessions and one) of the same round, and their CPU split.
func ceilingTable(ceil []*ceilingRow, all, one *counterRow, conns int, dur time.Duration) []string {
	var out []string
	ratios := func(rs, py []testwrk.Result) string {
		var xs []float64
		for i := range rs {
			xs = append(xs, rs[i].RPS/py[i].RPS)
		}
		return ratioList(xs)
	}
	out = append(out, fmt.Sprintf("| page (wrk -t1 -c%d, %v, %d rounds) | req/s per round | ÷ Python `/counter`, %s | ÷ Python `/counter`, %s |", conns, dur, len(all.pyR), all.name, one.name))
	out = append(out, "| --- | ---: | ---: | ---: |")
	out = append(out, fmt.Sprintf("| Python `/counter` (nginx → SCGI → Quixote), %s | %s | | |", all.name, rpsList(all.pyR)))
	out = append(out, fmt.Sprintf("| Python `/counter` (nginx → SCGI → Quixote), %s | %s | | |", one.name, rpsList(one.pyR)))
	out = append(out, fmt.Sprintf("| Go `/counter` (nginx → SCGI → gateway), %s | %s | %s | |", all.name, rpsList(all.goR), ratios(all.goR, all.pyR)))
	out = append(out, fmt.Sprintf("| Go `/counter` (nginx → SCGI → gateway), %s | %s | | %s |", one.name, rpsList(one.goR), ratios(one.goR, one.pyR)))
	for _, c := range ceil {
		out = append(out, fmt.Sprintf("| %s | %s | %s | %s |", c.name, rpsList(c.rs), ratios(c.rs, all.pyR), ratios(c.rs, one.pyR)))
	}
	out = append(out, "")
	out = append(out, "| CPU time per request by process, all rounds (µs) | wrk | nginx | behind nginx | total | 2 cores ÷ total |")
	out = append(out, "| --- | ---: | ---: | ---: | ---: | ---: |")
	for _, c := range ceil {
		out = append(out, c.cpu.row(c.name))
	}
	return out
}

func rpsList(rs []testwrk.Result) string {
	var s []string
	for _, r := range rs {
		s = append(s, strconv.FormatFloat(r.RPS, 'f', 0, 64))
	}
	return strings.Join(s, " / ")
}

func ratioList(xs []float64) string {
	var s []string
	for _, x := range xs {
		s = append(s, strconv.FormatFloat(x, 'f', 2, 64)+"×")
	}
	return strings.Join(s, " / ")
}

// median is the middle value, or the mean of the two middle values.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
