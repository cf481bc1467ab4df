package store

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/require"
)

// peer returns a command running testdata/py/store_peer.py (the real session3) with
// myapp importable and a fixed hash seed (so every process pickles sets the same way).
func peer(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	cmd := testpeer.PythonCmd(t, "store_peer.py", args...)
	cmd.Env = append(cmd.Env, "PYTHONHASHSEED=0")
	if nfsLocks {
		cmd.Env = append(cmd.Env, "QXBRIDGE_STORE_LOCKS=posix")
	}
	return cmd
}

// runningPeer is a store_peer.py process driven line by line.
type runningPeer struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *strings.Builder
}

// startPeer starts store_peer.py; the test's cleanup ends it.
func startPeer(t testing.TB, args ...string) *runningPeer {
	t.Helper()
	cmd := peer(t, args...)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	p := &runningPeer{cmd: cmd, stdin: stdin, lines: make(chan string, 64), stderr: &strings.Builder{}}
	cmd.Stderr = p.stderr
	require.NoError(t, cmd.Start())
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return p
}

// next returns the peer's next output line, failing t if none comes within timeout.
func (p *runningPeer) next(t testing.TB, timeout time.Duration) string {
	t.Helper()
	select {
	case line, ok := <-p.lines:
		require.True(t, ok, "peer exited early; stderr: %s", p.stderr.String())
		return line
	case <-time.After(timeout):
		require.FailNow(t, "peer said nothing", "after %v; stderr: %s", timeout, p.stderr.String())
		return ""
	}
}

// expect fails t unless the peer's next line is want.
func (p *runningPeer) expect(t testing.TB, want string) {
	t.Helper()
	require.Equal(t, want, p.next(t, 20*time.Second), "stderr: %s", p.stderr.String())
}

// quiet reports whether the peer printed nothing for d.
func (p *runningPeer) quiet(d time.Duration) (string, bool) {
	select {
	case line := <-p.lines:
		return line, false
	case <-time.After(d):
		return "", true
	}
}

func (p *runningPeer) send(t testing.TB, format string, args ...any) {
	t.Helper()
	_, err := fmt.Fprintf(p.stdin, format+"\n", args...)
	require.NoError(t, err)
}
