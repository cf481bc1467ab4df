package scgi

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/require"
)

// pyWorker is a running testdata/py/scgi_worker.py.
type pyWorker struct {
	addr   string // as the proxy takes it: host:port or unix:/path
	cmd    *exec.Cmd
	stderr *testpeer.Output
}

// emptyConnMsg is what the worker logs when a connection closes before a complete
// request (python-scgi's child dies of it): the proxy must never cause it.
const emptyConnMsg = "connection without a complete request"

// startPyWorker starts the CPython worker listening on listen ("127.0.0.1:0" or
// "unix:/path") and waits for it to say it is ready. The worker is stopped with SIGTERM
// when the test ends, and must exit cleanly.
func startPyWorker(t testing.TB, listen string, children int) *pyWorker {
	t.Helper()
	cmd := testpeer.PythonCmd(t, "scgi_worker.py", "--listen", listen, "--children", strconv.Itoa(children))
	return runPyWorker(t, cmd)
}

func runPyWorker(t testing.TB, cmd *exec.Cmd) *pyWorker {
	t.Helper()
	w := &pyWorker{cmd: cmd, stderr: new(testpeer.Output)}
	cmd.Stderr = w.stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		addr, ok := strings.CutPrefix(strings.TrimSpace(line), "READY ")
		if !ok {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("worker did not start: %q; stderr:\n%s", line, w.stderr)
		}
		w.addr = addr
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("worker not ready after 15s; stderr:\n%s", w.stderr)
	}
	t.Cleanup(func() {
		w.stop(t)
		require.NotContains(t, w.stderr.String(), emptyConnMsg,
			"the proxy opened a connection to the worker without sending a request")
	})
	return w
}

func (w *pyWorker) stop(t testing.TB) {
	if w.cmd.ProcessState != nil {
		return
	}
	w.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- w.cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "worker did not exit cleanly on SIGTERM; stderr:\n%s", w.stderr)
	case <-time.After(10 * time.Second):
		w.cmd.Process.Kill()
		<-done
		t.Errorf("worker ignored SIGTERM for 10s; stderr:\n%s", w.stderr)
	}
}

// unixSocketPath returns a short path for a UNIX socket (the limit is 107 bytes, and
// t.TempDir can be long).
func unixSocketPath(t testing.TB, name string) string {
	dir, err := os.MkdirTemp("", "scgi")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, name)
}

// deadAddr returns a loopback TCP address where nothing listens.
func deadAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}
