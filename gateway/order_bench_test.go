package gateway

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testnginx"
	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/qxbridge/qxbridge/internal/testwrk"
)

// BenchmarkOrdering measures what per-session ordering costs: throughput of a mixed
// load, the Go demo's /counter and the real Quixote 3.8 application's /py/counter in
// alternation (both load and save a logged-in session), over BENCH_SESSIONS (default
// 200) sessions, through nginx → gateway, with wrk -c WRK_CONNS (default 16). Two
// gateways serve the same session directory and Python workers, one with ordering
// and one with -order=false, each behind its own nginx; runs alternate between them
// (the order swapped every round) and each figure is the median over WRK_ROUNDS
// (default 3) runs of WRK_DURATION (default 5s). It ignores b.N:
//
//	go test -run '^$' -bench '^BenchmarkOrdering$' -benchtime=1x ./gateway/
func BenchmarkOrdering(b *testing.B) {
	nSessions := envInt("BENCH_SESSIONS", 200)
	conns := envInt("WRK_CONNS", 16)
	rounds := envInt("WRK_ROUNDS", 3)
	d := envDuration(b, "WRK_DURATION", 5*time.Second)
	children := envInt("BENCH_CHILDREN", 4)

	tmp := shortTempDir(b)
	sessions := filepath.Join(tmp, "sessions")
	require.NoError(b, os.Mkdir(sessions, 0o770))
	py := testquixote.Start(b, testquixote.Options{Unix: true, Children: children, SessionDir: sessions,
		Env: []string{"QXSITE_COOKIE_PATH=/"}})
	target := "scgi+unix://" + strings.TrimPrefix(py.Addr, "unix:")
	site := func(name string, extra ...string) string {
		sock := "unix:" + filepath.Join(tmp, name+".sock")
		startGateway(b, append([]string{"-scgi", sock, "-sessions", sessions, "-log-level", "warn",
			"-route", "/=demo", "-mount", "/py/=" + target, "-cookie-path", "/",
			"-backend-max-conns", fmt.Sprint(children)}, extra...)...)
		return testnginx.Start(b, testnginx.Config{Locations: documentedNginx(b, sock)}).URL
	}
	on, off := site("on"), site("off", "-order=false")

	var cookies []string
	c := &http.Client{}
	for i := range nSessions {
		r := get(b, c, on+fmt.Sprintf("/py/login?user=u%d", i))
		require.Equal(b, http.StatusOK, r.Status, r.Body)
		require.Len(b, r.Cookies, 1)
		cookies = append(cookies, strings.SplitN(r.Cookies[0], ";", 2)[0])
	}
	var lua strings.Builder
	lua.WriteString("local cookies = {\n")
	for _, ck := range cookies {
		fmt.Fprintf(&lua, "  %q,\n", ck)
	}
	// Request i goes to session i mod n, on the Go side or the Python side in turn,
	// the turns shifted each pass over the sessions so that every session sees both.
	lua.WriteString(`}
local paths = { "/counter", "/py/counter" }
local i = 0
request = function()
  i = i + 1
  local n = #cookies
  return wrk.format(nil, paths[(i + math.floor(i / n)) % 2 + 1], { ["Cookie"] = cookies[i % n + 1] })
end
`)
	script := filepath.Join(b.TempDir(), "mixed.lua")
	require.NoError(b, os.WriteFile(script, []byte(lua.String()), 0o644))
	run := func(url string) testwrk.Result {
		return testwrk.Run(b, url+"/", testwrk.Options{Conns: conns, Duration: d, Timeout: 10 * time.Second, Script: script})
	}

	var onR, offR []testwrk.Result
	for round := range rounds {
		if round%2 == 0 {
			onR = append(onR, run(on))
			offR = append(offR, run(off))
		} else {
			offR = append(offR, run(off))
			onR = append(onR, run(on))
		}
	}
	rps := func(r testwrk.Result) float64 { return r.RPS }
	onRPS, offRPS := testwrk.Median(onR, rps).RPS, testwrk.Median(offR, rps).RPS
	for i := range onR {
		b.Logf("round %d: ordering on %.0f req/s (p50 %v), off %.0f req/s (p50 %v)", i+1, onR[i].RPS, onR[i].P50, offR[i].RPS, offR[i].P50)
	}
	b.ReportMetric(onRPS, "on-req/s")
	b.ReportMetric(offRPS, "off-req/s")
	b.ReportMetric(onRPS/offRPS, "on/off")
}

// BenchmarkOrderTurn measures the cost per request of taking and ending an
// uncontended session turn (200 sessions in rotation, as many goroutines as
// GOMAXPROCS): in this process only, and with the lock directory's flock(2) files
// (on the temporary directory's filesystem) for the gateways of a host.
//
//	go test -run '^$' -bench '^BenchmarkOrderTurn$' ./gateway/
func BenchmarkOrderTurn(b *testing.B) {
	ids := make([]string, 200)
	for i := range ids {
		ids[i] = fmt.Sprintf("session%04d", i)
	}
	for _, bc := range []struct {
		name   string
		locker func(b *testing.B) SessionLocker
	}{
		{"process", func(*testing.B) SessionLocker { return nil }},
		{"lockdir", func(b *testing.B) SessionLocker {
			d, err := OpenLockDir(filepath.Join(b.TempDir(), "sessions.locks"), "")
			require.NoError(b, err)
			return d
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			o := newOrderer(Ordering{}, bc.locker(b), newGatewayMetrics(prometheus.NewRegistry()))
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					release, err := o.acquire(context.Background(), ids[next.Add(1)%int64(len(ids))])
					if err != nil {
						b.Error(err)
						return
					}
					release()
				}
			})
		})
	}
}
