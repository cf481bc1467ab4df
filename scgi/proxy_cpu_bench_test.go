package scgi

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/qxbridge/qxbridge/internal/testwrk"
	"github.com/stretchr/testify/require"
)

// BenchmarkProxyCPU measures the CPU this process spends per request behind nginx (wrk
// on loopback, WRK_CONNS connections, default 4), for four Go SCGI sides, rounds
// alternating:
//
//	floor-server: the least an SCGI server can do: accept, one read, one fixed 18-byte
//	  answer, close (no parsing, no limits, no departure watch);
//	server: scgi.Serve with a Go handler answering the same 18 bytes;
//	floor-proxy: the least a proxy can do: accept, one read, dial the real Quixote SCGI
//	  server, forward the request as it came, copy the answer back, close both;
//	proxy: scgi.Serve(Proxy) in front of the same Quixote (GET /hello).
//
// server minus floor-server is what scgi.Server's work costs; proxy minus floor-proxy
// what the Server and the Proxy add to the two connections a proxied request needs. It
// ignores b.N: run it with -benchtime=1x. WRK_DURATION (default 3s), WRK_ROUNDS
// (default 3), BENCH_UNIX=1 for UNIX sockets on every SCGI hop.
func BenchmarkProxyCPU(b *testing.B) {
	conns, rounds, dur := wrkSettings(b, 4, 3*time.Second)
	unix := os.Getenv("BENCH_UNIX") == "1"
	w := startQuixote(b, testquixote.Options{Unix: unix, Children: 2})
	p, err := NewProxy(w.Addr)
	require.NoError(b, err)

	answer := []byte("Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 18\r\n\r\nhello from python\n")
	floorServer := listenRaw(b, unix, func(c net.Conn) {
		buf := make([]byte, 4096)
		if _, err := c.Read(buf); err == nil {
			c.Write(answer)
		}
	})
	backendNet, backendAddr := "tcp", w.Addr
	if a, ok := strings.CutPrefix(w.Addr, "unix:"); ok {
		backendNet, backendAddr = "unix", a
	}
	floorProxy := listenRaw(b, unix, func(c net.Conn) {
		buf := make([]byte, 32<<10)
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		bc, err := net.Dial(backendNet, backendAddr)
		if err != nil {
			return
		}
		defer bc.Close()
		if _, err := bc.Write(buf[:n]); err != nil {
			return
		}
		io.CopyBuffer(c, bc, buf)
	})
	server := listenSCGI(b, unix, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "hello from python\n")
	}))
	proxy := listenSCGI(b, unix, p)

	site := func(pass string) string { return nginxTo(b, pass).URL + "/hello" }
	names := []string{"floor-server", "server", "floor-proxy", "proxy"}
	urls := []string{site(floorServer), site(server), site(floorProxy), site(proxy)}
	b.ResetTimer()
	for _, u := range urls { // warm up
		testwrk.Run(b, u, testwrk.Options{Conns: conns, Duration: time.Second})
	}
	cpu := make([][]processCPU, len(urls))
	res := make([][]testwrk.Result, len(urls))
	for range rounds {
		for i, u := range urls {
			before := readProcessCPU(b)
			r := testwrk.Run(b, u, testwrk.Options{Conns: conns, Duration: dur})
			cpu[i] = append(cpu[i], readProcessCPU(b).since(before, r.Requests))
			res[i] = append(res[i], r)
		}
	}
	b.StopTimer()
	for i, name := range names {
		b.ReportMetric(medianCPU(cpu[i], func(c processCPU) time.Duration { return c.user + c.sys }), name+"-cpu-µs/req")
		b.ReportMetric(medianCPU(cpu[i], func(c processCPU) time.Duration { return c.user }), name+"-user-µs/req")
		var line []string
		for j := range cpu[i] {
			line = append(line, fmt.Sprintf("%v+%v (%.0f req/s, p50 %v)", cpu[i][j].user, cpu[i][j].sys, res[i][j].RPS, res[i][j].P50))
		}
		fmt.Printf("%s: CPU per request user+sys by round: %s\n", name, strings.Join(line, ", "))
	}
}

// listenRaw serves each connection with serve on its own goroutine, then closes it.
func listenRaw(t testing.TB, unix bool, serve func(net.Conn)) string {
	network, addr := "tcp", "127.0.0.1:0"
	if unix {
		network, addr = "unix", unixSocketPath(t, "raw.sock")
	}
	l, err := net.Listen(network, addr)
	require.NoError(t, err)
	acceptOn(t, l, func(c net.Conn) {
		defer c.Close()
		serve(c)
	})
	if unix {
		return "unix:" + l.Addr().String()
	}
	return l.Addr().String()
}
