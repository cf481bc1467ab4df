package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gatewayProcess is the gateway running as its own process (the test binary in
// SCGI_GATEWAY_MAIN mode, which is main itself).
type gatewayProcess struct {
	cmd   *exec.Cmd
	log   *testpeer.Output
	addrs map[string]string // kind -> address, from the "listening" log lines
	exit  chan error
}

var listeningLine = regexp.MustCompile(`msg=listening kind=(\w+) addr=(\S+)`)

// startGatewayProcess starts the gateway process and waits until it has logged its
// listeners (want of them). wrap, if given, is a shell command line the binary is run
// through.
func startGatewayProcess(t *testing.T, want int, extra []*os.File, env []string, wrap string, args ...string) *gatewayProcess {
	t.Helper()
	var cmd *exec.Cmd
	if wrap != "" {
		cmd = exec.Command("/bin/sh", append([]string{"-c", wrap, os.Args[0]}, args...)...)
	} else {
		cmd = exec.Command(os.Args[0], args...)
	}
	cmd.Env = append(append(os.Environ(), "SCGI_GATEWAY_MAIN=1"), env...)
	cmd.ExtraFiles = extra
	p := &gatewayProcess{cmd: cmd, log: &testpeer.Output{}, addrs: map[string]string{}, exit: make(chan error, 1)}
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.log.Write([]byte(sc.Text() + "\n"))
			select {
			case lines <- sc.Text():
			default:
			}
		}
		close(lines)
		p.exit <- cmd.Wait()
	}()
	deadline := time.After(15 * time.Second)
	for len(p.addrs) < want {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("gateway exited before listening:\n%s", p.log)
			}
			if m := listeningLine.FindStringSubmatch(l); m != nil {
				p.addrs[m[1]] = m[2]
			}
		case <-deadline:
			_ = cmd.Process.Kill()
			t.Fatalf("gateway did not start:\n%s", p.log)
		}
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("gateway process log:\n%s", p.log)
		}
	})
	return p
}

// wait returns the exit status, or fails after limit.
func (p *gatewayProcess) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case err := <-p.exit:
		if err == nil {
			return 0
		}
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee)
		return ee.ExitCode()
	case <-time.After(limit):
		t.Fatalf("gateway did not exit within %v", limit)
		return -1
	}
}

// waitInFlight polls the metrics until a backend has n requests in flight.
func waitInFlight(t *testing.T, metricsAddr string, n int) {
	t.Helper()
	re := regexp.MustCompile(fmt.Sprintf(`(?m)^qxbridge_backend_in_flight\{[^}]*\} %d$`, n))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if re.Match(b) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no backend reached %d requests in flight", n)
}

// TestSIGTERMFinishesRequestsInFlight: on SIGTERM the gateway stops accepting
// connections at once, lets the request in flight (a slow Python page) finish, and
// exits 0.
func TestSIGTERMFinishesRequestsInFlight(t *testing.T) {
	w := startQuixote(t)
	p := startGatewayProcess(t, 2, nil, nil, "", "-http", "127.0.0.1:0", "-metrics", "127.0.0.1:0",
		"-sessions", t.TempDir(), "-mount", "/py/="+quixoteTarget(w))

	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + p.addrs["http"] + "/py/sleep?s=1.5")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, string(b), err}
	}()
	waitInFlight(t, p.addrs["metrics"], 1)

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	// New connections are refused while the request finishes.
	refused := false
	for range 100 {
		c, err := net.DialTimeout("tcp", p.addrs["http"], 200*time.Millisecond)
		if err != nil {
			refused = true
			break
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	assert.True(t, refused, "the listener closes on SIGTERM")
	select {
	case <-done:
		t.Fatal("the request in flight ended before the backend answered")
	default:
	}

	r := <-done
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "slept\n", r.body)
	assert.Equal(t, 0, p.wait(t, 10*time.Second))
	logs := p.log.String()
	assert.Contains(t, logs, "shutting down")
	assert.Contains(t, logs, `msg=request method=GET path=/py/sleep route=/py/ status=200`)
	assert.Contains(t, logs, "msg=stopped")
	assert.NotContains(t, logs, "cut off")
}

// TestSIGTERMShutdownTimeout: a request that outlives -shutdown-timeout is cut off,
// and the gateway still exits 0, promptly.
func TestSIGTERMShutdownTimeout(t *testing.T) {
	w := startQuixote(t)
	p := startGatewayProcess(t, 2, nil, nil, "", "-http", "127.0.0.1:0", "-metrics", "127.0.0.1:0",
		"-sessions", t.TempDir(), "-route", "/=demo", "-mount", "/py/="+quixoteTarget(w), "-shutdown-timeout", "300ms")
	errc := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + p.addrs["http"] + "/py/sleep?s=2")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		errc <- err
	}()
	waitInFlight(t, p.addrs["metrics"], 1)
	start := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	assert.Equal(t, 0, p.wait(t, 5*time.Second))
	assert.Less(t, time.Since(start), 3*time.Second, "bounded by -shutdown-timeout")
	assert.Error(t, <-errc, "the request was cut off")
	assert.Contains(t, p.log.String(), "cut off")
}

// TestSystemdSocketActivation passes the gateway two listening sockets as systemd does
// (LISTEN_FDS, LISTEN_PID naming the process, LISTEN_FDNAMES): an unnamed-role UNIX
// socket serves SCGI, the one named "http" serves HTTP, and no default listener is
// opened.
func TestSystemdSocketActivation(t *testing.T) {
	tmp := shortTempDir(t)
	sockPath := filepath.Join(tmp, "gw.sock")
	ul, err := net.Listen("unix", sockPath)
	require.NoError(t, err)
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	uf, err := ul.(*net.UnixListener).File()
	require.NoError(t, err)
	tf, err := tl.(*net.TCPListener).File()
	require.NoError(t, err)

	// systemd sets LISTEN_PID to the service's pid; a shell that execs keeps its pid.
	p := startGatewayProcess(t, 2, []*os.File{uf, tf}, []string{"LISTEN_FDS=2", "LISTEN_FDNAMES=gateway.socket:http"},
		`LISTEN_PID=$$ exec "$0" "$@"`, "-sessions", filepath.Join(tmp, "sessions"))
	uf.Close()
	tf.Close()
	ul.(*net.UnixListener).SetUnlinkOnClose(false)
	ul.Close()
	tl.Close()
	assert.Equal(t, "unix:"+sockPath, p.addrs["scgi"])
	assert.Equal(t, tl.Addr().String(), p.addrs["http"])

	resp, err := http.Get("http://" + tl.Addr().String() + "/")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(b), "Not logged in.")

	// A raw SCGI request, as a front server sends it.
	c, err := net.Dial("unix", sockPath)
	require.NoError(t, err)
	hdr := "CONTENT_LENGTH\x000\x00SCGI\x001\x00REQUEST_METHOD\x00GET\x00REQUEST_URI\x00/login?name=sd\x00SERVER_PROTOCOL\x00HTTP/1.1\x00REMOTE_ADDR\x00192.0.2.9\x00"
	_, err = fmt.Fprintf(c, "%d:%s,", len(hdr), hdr)
	require.NoError(t, err)
	out, err := io.ReadAll(c)
	require.NoError(t, err)
	c.Close()
	assert.True(t, strings.HasPrefix(string(out), "Status: 200 OK\r\n"), string(out))
	assert.Contains(t, string(out), "Welcome! sd")
	assert.Contains(t, string(out), "Set-Cookie: QX_session=\"")
	files := sessionFiles(t, filepath.Join(tmp, "sessions"))
	require.Len(t, files, 1)
	assert.Equal(t, "192.0.2.9", readSession(t, filepath.Join(tmp, "sessions"), files[0]).RemoteAddress(), "REMOTE_ADDR from the front server")

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 0, p.wait(t, 10*time.Second))
	logs := p.log.String()
	assert.Equal(t, 2, strings.Count(logs, "msg=listening"), logs)
	assert.NotContains(t, logs, "8080", "no default listener under socket activation")
	assert.Contains(t, logs, "msg=stopped")
}

func TestSystemdActivatedChecksPID(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	assert.False(t, systemdActivated(env(nil)))
	assert.True(t, systemdActivated(env(map[string]string{"LISTEN_FDS": "1"})))
	assert.True(t, systemdActivated(env(map[string]string{"LISTEN_FDS": "1", "LISTEN_PID": fmt.Sprint(os.Getpid())})))
	assert.False(t, systemdActivated(env(map[string]string{"LISTEN_FDS": "1", "LISTEN_PID": "1"})), "meant for another process")
}

// TestNoFlags runs the command as `go run ./cmd/scgi-gateway` does, with no arguments,
// in a fresh directory: HTTP on 127.0.0.1:8080, the demo at /, sessions in ./sessions,
// and a log line saying so. Should another program hold port 8080, the gateway must say
// so and exit 1.
func TestNoFlags(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // the child inherits it
	l, err := net.Listen("tcp", "127.0.0.1:8080")
	if err != nil {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "SCGI_GATEWAY_MAIN=1")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, 1, ee.ExitCode())
		assert.Contains(t, string(out), "cannot listen")
		assert.Contains(t, string(out), "127.0.0.1:8080")
		return
	}
	l.Close()
	p := startGatewayProcess(t, 1, nil, nil, "")
	assert.Equal(t, "127.0.0.1:8080", p.addrs["http"])
	real, err := filepath.EvalSymlinks(dir)
	require.NoError(t, err)
	want := `msg="no flags given: demo serves / at http://127.0.0.1:8080/" sessions=` + filepath.Join(real, "sessions")
	assert.Eventually(t, func() bool { return strings.Contains(p.log.String(), want) }, 5*time.Second, 10*time.Millisecond, want)
	assert.DirExists(t, filepath.Join(dir, "sessions"))
	r := get(t, client(t), "http://127.0.0.1:8080/")
	assert.Contains(t, r.Body, "Not logged in.")
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 0, p.wait(t, 10*time.Second))
}
