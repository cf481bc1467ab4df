package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/demo"
	"github.com/qxbridge/qxbridge/internal/testhttp"
	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/stretchr/testify/require"
)

// TestMain lets the tests run the gateway as a real process: the test binary started
// with SCGI_GATEWAY_MAIN=1 is the scgi-gateway command (Main, with its signal handling
// and os.Exit), its arguments being the gateway's.
//
// With GATEWAY_CPUPROFILE=file as well, the gateway writes a CPU profile of its whole
// run to file when it stops on SIGTERM or SIGINT (for the benchmarks' gateway process).
func TestMain(m *testing.M) {
	if os.Getenv("SCGI_GATEWAY_MAIN") == "1" {
		if path := os.Getenv("GATEWAY_CPUPROFILE"); path != "" {
			os.Exit(runProfiled(path))
		}
		newTestGateway().Main()
		return
	}
	os.Exit(m.Run())
}

// runProfiled runs the gateway command with a CPU profile written to path.
func runProfiled(path string) int {
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer pprof.StopCPUProfile()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return newTestGateway().Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
}

// newTestGateway returns a gateway program with the demo registered as "demo" and
// routed at / in code (Config.Routes), which routes from flags or a configuration
// file replace. (cmd/scgi-gateway serves the demo only to try it out, as TryRoutes;
// its own tests cover that.)
func newTestGateway() *Gateway {
	g := New()
	g.Name = "scgi-gateway"
	g.Handle("demo", demo.New(g.Sessions, nil))
	g.Config.Routes = []Route{{Prefix: "/", Target: "demo"}}
	return g
}

// runningGateway is a gateway started in-process through Run, as Main starts it.
type runningGateway struct {
	*Gateway
	log  *testpeer.Output
	stop func() int // cancels the context and returns run's exit status
}

// startGateway runs the serve command with args in this process and returns once its
// listeners are open. It is stopped (gracefully, as on SIGTERM) when the test ends.
func startGateway(t testing.TB, args ...string) *runningGateway {
	t.Helper()
	return startGatewayWith(t, nil, args...)
}

// startGatewayWith is startGateway with more handlers: register adds them to the
// gateway before it runs.
func startGatewayWith(t testing.TB, register func(*Gateway), args ...string) *runningGateway {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testpeer.Output{}
	ready := make(chan *Gateway, 1)
	exit := make(chan int, 1)
	gw := newTestGateway()
	gw.onReady = func(g *Gateway) { ready <- g }
	if register != nil {
		register(gw)
	}
	go func() { exit <- gw.Run(ctx, args, io.Discard, logs) }()
	var g *Gateway
	select {
	case g = <-ready:
	case code := <-exit:
		cancel()
		t.Fatalf("gateway exited with %d before listening; log:\n%s", code, logs)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("gateway did not start; log:\n%s", logs)
	}
	var once sync.Once
	status := 0
	rg := &runningGateway{Gateway: g, log: logs}
	rg.stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case status = <-exit:
			case <-time.After(20 * time.Second):
				t.Errorf("gateway did not stop")
				status = -1
			}
		})
		return status
	}
	t.Cleanup(func() {
		if code := rg.stop(); code != 0 {
			t.Errorf("gateway exited with %d", code)
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs)
		}
	})
	return rg
}

// url returns the gateway's HTTP address as a URL prefix.
func (g *runningGateway) url() string { return "http://" + g.addr("http") }

// quixoteTarget returns the route target for a Quixote SCGI server's address.
func quixoteTarget(s *testquixote.Server) string {
	if path, ok := strings.CutPrefix(s.Addr, "unix:"); ok {
		return "scgi+unix://" + path
	}
	return "scgi://" + s.Addr
}

// startQuixote starts the real Quixote 3.8 application qxsite under Quixote's own
// SCGI server (internal/testquixote) on loopback TCP with two children: the Python
// side of the tests that proxy to a backend.
func startQuixote(t testing.TB) *testquixote.Server {
	t.Helper()
	return testquixote.Start(t, testquixote.Options{Children: 2})
}

type response = testhttp.Response

var (
	client       = testhttp.Client
	do           = testhttp.Do
	get          = testhttp.Get
	sessionFiles = testhttp.SessionFiles
	readSession  = testhttp.ReadSession
)

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// shortTempDir returns a temporary directory with a short path: UNIX socket paths are
// limited to 108 bytes, and t.TempDir's can be longer.
func shortTempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "gw")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
