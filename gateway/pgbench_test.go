package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testpg"
	"github.com/qxbridge/qxbridge/internal/testwrk"
	"github.com/qxbridge/qxbridge/quixote"
)

// BenchmarkGatewayStores compares the gateway's throughput on a page that loads and
// saves a logged-in session (the Go demo's /counter, over plain HTTP, wrk on
// loopback) with its sessions in a session directory and in PostgreSQL
// (-sessions postgres://…, a local cluster over a UNIX socket), each request with
// the next of BENCH_SESSIONS (default 200) sessions. Runs alternate between the two
// so that drift in the machine's load hits both alike; each figure is the median
// over the rounds. It ignores b.N: run it with -benchtime=1x. Environment:
// WRK_CONNS (default 8), WRK_DURATION (default 5s), WRK_ROUNDS (default 3),
// BENCH_SESSIONS_PARENT (where the session directory is made; default the
// temporary directory).
func BenchmarkGatewayStores(b *testing.B) {
	conns := envInt("WRK_CONNS", 8)
	rounds := envInt("WRK_ROUNDS", 3)
	nSessions := envInt("BENCH_SESSIONS", 200)
	dur := 5 * time.Second
	if s := os.Getenv("WRK_DURATION"); s != "" {
		var err error
		dur, err = time.ParseDuration(s)
		require.NoError(b, err)
	}
	parent := os.Getenv("BENCH_SESSIONS_PARENT")
	if parent == "" {
		parent = b.TempDir()
	}
	dir, err := os.MkdirTemp(parent, "qxbench")
	require.NoError(b, err)
	b.Cleanup(func() { os.RemoveAll(dir) })
	srv := testpg.Start(b)

	type setup struct {
		name    string
		url     string
		store   quixote.IterableStore
		cookies []string
	}
	var setups []*setup
	for _, s := range []struct{ name, sessions string }{{"directory", filepath.Join(dir, "sessions")}, {"postgres", srv.DSN}} {
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan *Gateway, 1)
		exited := make(chan int, 1)
		g := newTestGateway()
		g.onReady = func(g *Gateway) { ready <- g }
		go func() {
			exited <- g.Run(ctx, []string{"-http", "127.0.0.1:0", "-sessions", s.sessions, "-route", "/=demo"}, io.Discard, io.Discard)
		}()
		select {
		case <-ready:
		case code := <-exited:
			b.Fatalf("gateway exited with %d", code)
		}
		b.Cleanup(func() { cancel(); <-exited })
		st := &setup{name: s.name, url: "http://" + g.addr("http"), store: g.Sessions()}
		for i := range nSessions {
			c := client(b)
			r := do(b, c, http.MethodPost, st.url+"/login", fmt.Sprintf("name=user%d", i))
			require.Equal(b, http.StatusOK, r.Status)
			id := strings.Split(r.Cookies[0], `"`)[1]
			st.cookies = append(st.cookies, "QX_session="+id)
		}
		setups = append(setups, st)
	}
	sum := func(st *setup) int64 {
		ids, err := st.store.IDs(context.Background())
		require.NoError(b, err)
		var n int64
		for _, id := range ids {
			data, err := st.store.Load(context.Background(), id)
			require.NoError(b, err)
			s, err := quixote.Decode(data)
			require.NoError(b, err)
			c, _ := s.GetInt("counter")
			n += c
		}
		return n
	}

	b.ResetTimer()
	results := map[string][]testwrk.Result{}
	completed, counted := map[string]int{}, map[string]int64{}
	for _, st := range setups {
		runWrk(b, st.url+"/counter", st.cookies, conns, time.Second) // warm up
	}
	for range rounds {
		for _, st := range setups {
			before := sum(st)
			r := runWrk(b, st.url+"/counter", st.cookies, conns, dur)
			time.Sleep(100 * time.Millisecond) // requests wrk gave up on at the end finish
			counted[st.name] += sum(st) - before
			completed[st.name] += r.Requests
			results[st.name] = append(results[st.name], r)
		}
	}
	b.StopTimer()

	rps := func(r testwrk.Result) float64 { return r.RPS }
	dirRPS := testwrk.Median(results["directory"], rps).RPS
	pgRPS := testwrk.Median(results["postgres"], rps).RPS
	b.ReportMetric(dirRPS, "directory-req/s")
	b.ReportMetric(pgRPS, "postgres-req/s")
	b.ReportMetric(pgRPS/dirRPS, "postgres/directory-x")
	var lines []string
	for i := range rounds {
		d, p := results["directory"][i], results["postgres"][i]
		lines = append(lines, fmt.Sprintf("round %d (-c%d, %d sessions): directory %.0f req/s (p50 %v, p99 %v) | postgres %.0f req/s (p50 %v, p99 %v)",
			i+1, conns, nSessions, d.RPS, d.P50, d.P99, p.RPS, p.P50, p.P99))
	}
	lines = append(lines, fmt.Sprintf("counter increments stored / requests wrk completed: directory %d/%d, postgres %d/%d",
		counted["directory"], completed["directory"], counted["postgres"], completed["postgres"]))
	b.Log("\n" + strings.Join(lines, "\n"))
}
