package gateway

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testquixote"
)

// BenchmarkShadowLatency measures what shadowing costs the user: pages of the real
// Quixote application for a logged-in session (/check, which only reads the session,
// and /page, which renders a table), through the gateway, on two
// routes over the same Python pool with the same Go candidate, one shadowed and one
// not, requested in alternation (the order swapped every round) on one keep-alive
// connection. It reports each route's median and 90th percentile latency and the
// ratio of the medians (the goal: below 1.05).
//
//	go test -run '^$' -bench BenchmarkShadowLatency -benchtime 3000x ./gateway/
func BenchmarkShadowLatency(b *testing.B) {
	tmp := shortTempDir(b)
	sessions := filepath.Join(tmp, "sessions")
	require.NoError(b, os.Mkdir(sessions, 0o755))
	w := testquixote.Start(b, testquixote.Options{Unix: true, Children: 2, SessionDir: sessions,
		Env: []string{"QXSITE_COOKIE_PATH=/"}})
	target := "scgi+unix://" + strings.TrimPrefix(w.Addr, "unix:")
	g := startGatewayWith(b, func(g *Gateway) { g.Handle("qxgo", &qxsiteGo{}) },
		"-http", "127.0.0.1:0", "-sessions", sessions, "-cookie-path", "/", "-log-level", "warn",
		"-mount", "/plain/="+target, "-candidate", "/plain/=qxgo",
		"-mount", "/shadowed/="+target, "-candidate", "/shadowed/=qxgo", "-shadow", "/shadowed/")
	c := client(b)
	r := do(b, c, http.MethodPost, g.url()+"/plain/login", "user=alice")
	require.Equal(b, "ok", r.Body)
	for _, page := range []string{"check", "page"} {
		b.Run(page, func(b *testing.B) { shadowLatency(b, g, c, page) })
	}
}

func shadowLatency(b *testing.B, g *runningGateway, c *http.Client, page string) {
	before := g.cutover.report("/shadowed/", DefaultShadowSamples).copy()

	var plain, shadowed []time.Duration
	timed := func(path string) time.Duration {
		start := time.Now()
		r := get(b, c, g.url()+path)
		d := time.Since(start)
		if r.Status != http.StatusOK {
			b.Fatalf("%s: %d %q", path, r.Status, r.Body)
		}
		return d
	}
	i := 0
	for b.Loop() {
		if i%2 == 0 {
			plain = append(plain, timed("/plain/"+page))
			shadowed = append(shadowed, timed("/shadowed/"+page))
		} else {
			shadowed = append(shadowed, timed("/shadowed/"+page))
			plain = append(plain, timed("/plain/"+page))
		}
		i++
	}
	b.StopTimer()
	rep := g.cutover.report("/shadowed/", DefaultShadowSamples).copy()
	if rep.Counts[outcomeDiffers]+rep.Counts[outcomeGoFailed] > 0 {
		b.Fatalf("the shadow runs differ: %+v", rep)
	}
	compared, dropped := rep.Counts[outcomeSame]-before.Counts[outcomeSame], rep.Counts[outcomeDropped]-before.Counts[outcomeDropped]
	q := func(ds []time.Duration, p float64) float64 {
		slices.Sort(ds)
		return float64(ds[int(float64(len(ds)-1)*p)].Microseconds())
	}
	b.ReportMetric(q(plain, 0.5), "plain-p50-µs")
	b.ReportMetric(q(shadowed, 0.5), "shadowed-p50-µs")
	b.ReportMetric(q(plain, 0.9), "plain-p90-µs")
	b.ReportMetric(q(shadowed, 0.9), "shadowed-p90-µs")
	b.ReportMetric(q(shadowed, 0.5)/q(plain, 0.5), "p50-ratio")
	b.ReportMetric(float64(compared), "compared")
	b.ReportMetric(float64(dropped), "dropped")
}
