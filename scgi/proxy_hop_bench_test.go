package scgi

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/stretchr/testify/require"
)

// BenchmarkProxyHop breaks the proxy hop down without nginx, in one run: one request at
// a time, a raw SCGI client measures the round trip (connect, request, whole response)
//
//	direct: to the real Quixote SCGI server (GET /hello);
//	proxied: to scgi.Serve(Proxy) in this process, which forwards to the same server;
//	warm: the same with Proxy.WarmConns = 1 (a connection dialled ahead);
//	go-only: to scgi.Serve with a Go handler answering the same 18 bytes (the hop alone);
//
// interleaved request by request so that the machine's load hits all three alike. The
// proxied minus direct difference is what the hop adds; compared with go-only it shows
// how much of that is the extra connection and scheduling rather than the proxy's
// work. It ignores b.N: run it with -benchtime=1x. HOP_N requests each (default 2000);
// BENCH_UNIX=1 puts both SCGI hops on UNIX sockets.
func BenchmarkProxyHop(b *testing.B) {
	n := envInt("HOP_N", 2000)
	unix := envInt("BENCH_UNIX", 0) == 1
	w := startQuixote(b, testquixote.Options{Unix: unix, Children: 2})
	p, err := NewProxy(w.Addr)
	require.NoError(b, err)
	listen := func(h http.Handler) string { return listenSCGI(b, unix, h) }
	proxied := listen(p)
	pw, err := NewProxy(w.Addr)
	require.NoError(b, err)
	pw.WarmConns = 1
	// Not closed, and kept however long a round of the other setups takes: a warm
	// connection closed unused costs the worker a child (see Proxy.WarmConns).
	pw.WarmMaxAge = time.Hour
	warm := listen(pw)
	goOnly := listen(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "hello from python\n")
	}))
	req := testquixote.Request("GET", "/hello", "")
	roundTrip := func(addr string) time.Duration {
		network, address := "tcp", addr
		if a, ok := strings.CutPrefix(addr, "unix:"); ok {
			network, address = "unix", a
		}
		start := time.Now()
		conn, err := net.Dial(network, address)
		require.NoError(b, err)
		_, err = conn.Write(req)
		require.NoError(b, err)
		resp, err := io.ReadAll(conn)
		conn.Close()
		d := time.Since(start)
		require.NoError(b, err)
		require.True(b, strings.HasSuffix(string(resp), "hello from python\n"), "%q", resp)
		return d
	}
	for range 50 { // warm up: children forked, code paths hot
		roundTrip(w.Addr)
		roundTrip(proxied)
		roundTrip(warm)
		roundTrip(goOnly)
	}
	var d, px, pw2, g []time.Duration
	b.ResetTimer()
	for range n {
		d = append(d, roundTrip(w.Addr))
		px = append(px, roundTrip(proxied))
		pw2 = append(pw2, roundTrip(warm))
		g = append(g, roundTrip(goOnly))
	}
	b.StopTimer()
	q := func(s []time.Duration, f float64) time.Duration {
		slices.Sort(s)
		return s[int(f*float64(len(s)-1))]
	}
	us := func(x time.Duration) float64 { return float64(x) / 1e3 }
	b.ReportMetric(us(q(d, 0.5)), "direct-p50-µs")
	b.ReportMetric(us(q(px, 0.5)), "proxied-p50-µs")
	b.ReportMetric(us(q(g, 0.5)), "go-only-p50-µs")
	b.ReportMetric(us(q(pw2, 0.5)), "warm-p50-µs")
	b.ReportMetric(us(q(px, 0.5)-q(d, 0.5)), "added-p50-µs")
	b.ReportMetric(us(q(pw2, 0.5)-q(d, 0.5)), "warm-added-p50-µs")
	fmt.Printf("warm: %d of %d requests on a connection dialled ahead\n", pw.Stats()[0].WarmUsed, pw.Stats()[0].Requests)
	fmt.Printf("direct p50 %v p90 %v | proxied p50 %v p90 %v | warm p50 %v p90 %v | go-only p50 %v p90 %v\n",
		q(d, .5), q(d, .9), q(px, .5), q(px, .9), q(pw2, .5), q(pw2, .9), q(g, .5), q(g, .9))
}
