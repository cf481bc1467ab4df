package systemd_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testenvecho"
	"github.com/qxbridge/qxbridge/internal/testnginx"
	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gateway is one gateway process started as systemd starts the service.
type gateway struct {
	cmd    *exec.Cmd
	log    *testpeer.Output
	exited chan error
}

func startGateway(t *testing.T, bin string, args []string, listener *os.File, fdName string) *gateway {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.ExtraFiles = []*os.File{listener} // file descriptor 3, SD_LISTEN_FDS_START
	// systemd sets LISTEN_PID to the service's pid after fork; the gateway takes
	// the sockets when LISTEN_PID is absent too.
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1", "LISTEN_FDNAMES="+fdName)
	g := &gateway{cmd: cmd, log: &testpeer.Output{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = g.log, g.log
	require.NoError(t, cmd.Start())
	go func() { g.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("gateway %d log:\n%s", cmd.Process.Pid, g.log.String())
		}
	})
	return g
}

// stop is systemd's stop: SIGTERM (KillSignal=), then wait for the exit.
func (g *gateway) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, g.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-g.exited:
		assert.NoError(t, err, "the gateway exits 0 on SIGTERM")
	case <-time.After(30 * time.Second): // TimeoutStopSec=
		t.Fatalf("the gateway did not exit within TimeoutStopSec after SIGTERM:\n%s", g.log.String())
	}
}

// TestRestartUnderLoad starts the gateway as the units do — ExecStart's arguments,
// with dist/gateway.toml (the Python pool replaced by an SCGI test backend, paths and
// ports by the test's), the socket of ListenStream= created, given SocketMode= and
// passed as file descriptor 3 named FileDescriptorName= — behind nginx with
// docs/nginx.conf, and restarts it three times the way systemctl restart does
// (SIGTERM, wait for the exit, start again) while clients keep sending requests.
// Every request is answered 200: the socket stays open between the two processes,
// so connections wait in its queue instead of failing, and a connection the old
// process accepted as it stopped is still served. The same holds for a socket named
// "http", served as plain HTTP behind nginx's proxy_pass.
func TestRestartUnderLoad(t *testing.T) {
	sock := readUnit(t, "scgi-gateway.socket")
	t.Run("scgi", func(t *testing.T) {
		restartUnderLoad(t, sock.one(t, "Socket", "FileDescriptorName"), func(path string) string {
			return testpeer.DocSnippet(t, "nginx.conf", path)
		})
	})
	t.Run("http", func(t *testing.T) {
		// nginx talks HTTP/1.0 without keep-alive to a proxy_pass upstream: one
		// connection per request, as with SCGI.
		restartUnderLoad(t, "http", func(path string) string {
			return fmt.Sprintf("location / {\n    proxy_set_header Host $http_host;\n    proxy_pass http://unix:%s:;\n}\n", path)
		})
	})
}

// restartUnderLoad runs TestRestartUnderLoad for the socket named fdName, behind
// nginx configured with the locations for the socket at path.
func restartUnderLoad(t *testing.T, fdName string, locations func(path string) string) {
	sock := readUnit(t, "scgi-gateway.socket")
	svc := readUnit(t, "scgi-gateway.service")
	bin := buildGateway(t)
	echo := testenvecho.Start(t)

	args := strings.Fields(svc.one(t, "Service", "ExecStart"))[1:]
	require.Equal(t, []string{"-config", installedConfig}, args)
	args[1] = testConfig(t, t.TempDir(), t.TempDir(), "unix:"+echo.Socket)

	path := filepath.Join(testpeer.SocketDir(t), filepath.Base(sock.one(t, "Socket", "ListenStream")))
	l, err := net.Listen("unix", path)
	require.NoError(t, err)
	defer l.Close()
	mode, err := strconv.ParseUint(sock.one(t, "Socket", "SocketMode"), 8, 32)
	require.NoError(t, err)
	require.NoError(t, os.Chmod(path, os.FileMode(mode)))
	lf, err := l.(*net.UnixListener).File()
	require.NoError(t, err)
	defer lf.Close()

	site := testnginx.Start(t, testnginx.Config{Locations: locations(path)})
	g := startGateway(t, bin, args, lf, fdName)

	client := &http.Client{Timeout: 60 * time.Second}
	get := func(i int) (int, error) {
		resp, err := client.Get(fmt.Sprintf("%s/load/%d", site.URL, i))
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, err
	}
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if code, err := get(0); err == nil && code == http.StatusOK {
			break
		}
		require.Less(t, time.Since(start), 20*time.Second, "the socket-activated gateway did not serve:\n%s", g.log.String())
	}

	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		failures []string
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				code, err := get(w*1_000_000 + i)
				mu.Lock()
				statuses[code]++
				if err != nil || code != http.StatusOK {
					failures = append(failures, fmt.Sprintf("%d: %v", code, err))
				}
				mu.Unlock()
			}
		}()
	}
	served := func() int {
		mu.Lock()
		defer mu.Unlock()
		return statuses[http.StatusOK]
	}
	// waitServed waits until n more requests have been answered.
	waitServed := func(n int) {
		target := served() + n
		for start := time.Now(); served() < target; time.Sleep(5 * time.Millisecond) {
			require.Less(t, time.Since(start), 60*time.Second, "requests stopped being answered")
		}
	}
	waitServed(50)
	for range 3 {
		g.stop(t)
		_, err := os.Stat(path)
		require.NoError(t, err, "the socket file outlives the gateway that served it")
		g = startGateway(t, bin, args, lf, fdName)
		waitServed(50)
	}
	close(stop)
	wg.Wait()
	g.stop(t)

	t.Logf("statuses: %v", statuses)
	assert.Empty(t, failures, "requests failed across restarts")
	assert.Equal(t, 1, len(statuses), "only 200s: %v", statuses)
	assert.GreaterOrEqual(t, statuses[http.StatusOK], 200)
	assert.NotContains(t, site.ErrorLog(), "[error]")
}
