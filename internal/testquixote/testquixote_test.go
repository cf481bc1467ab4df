package testquixote

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStartServes(t *testing.T) {
	for name, opt := range map[string]Options{
		"tcp":               {},
		"unix":              {Unix: true, Children: 2},
		"port flag":         {PortFlag: true},
		"children":          {Children: 1},
		"port and children": {PortFlag: true, Children: 2},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := Start(t, opt)
			resp, err := s.Do("/hello")
			require.NoError(t, err)
			assert.True(t, bytes.HasPrefix(resp, []byte("Status: 200 OK\r\n")), "%q", resp)
			assert.True(t, bytes.HasSuffix(resp, []byte("\r\n\r\nhello from python\n")), "%q", resp)
			assert.Contains(t, s.Output.String(), "started child", "python-scgi's pre-forking server")
		})
	}
}

func TestSessionsInTheGivenDirectory(t *testing.T) {
	dir := t.TempDir()
	s := Start(t, Options{SessionDir: dir})
	resp, err := s.Do("/login?user=alice")
	require.NoError(t, err)
	require.Contains(t, string(resp), "Set-Cookie: QX_session=")
	files, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, files, 1, "session3's DirectorySessionStore saved the logged-in session")
}

func TestStopKillsTheProcessGroup(t *testing.T) {
	s := Start(t, Options{Children: 2})
	for range 3 { // the parent forks its children on demand
		_, err := s.Do("/hello")
		require.NoError(t, err)
	}
	go s.Do("/sleep?s=60") // a child busy in a request does not notice its parent die
	time.Sleep(200 * time.Millisecond)
	_, err := s.Do("/hello") // served by another child while one sleeps (a late sleeper only weakens the test)
	require.NoError(t, err)
	pgid := s.cmd.Process.Pid
	require.NoError(t, syscall.Kill(-pgid, 0), "the server's process group exists")
	s.Stop()
	assert.Eventually(t, func() bool { return syscall.Kill(-pgid, 0) == syscall.ESRCH }, 10*time.Second, 10*time.Millisecond,
		"no process of the group may survive Stop")
}

// TestMaxChildrenFlagCrashes records why Start never passes --max-children: Quixote
// 3.8 declares it as a string and the server dies on its first request.
func TestMaxChildrenFlagCrashes(t *testing.T) {
	py := testpeer.Python(t)
	port := itoa(freePort(t))
	cmd := exec.Command(py, "-c", `
import subprocess, socket, sys, time
p = subprocess.Popen([sys.executable, "-m", "quixote.server.scgi_server", "--factory", "qxsite.create_publisher",
                      "--host", "127.0.0.1", "--port", sys.argv[1], "--max-children", "2"], stderr=subprocess.PIPE)
for _ in range(300):
    try:
        c = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); break
    except OSError:
        time.sleep(0.02)
c.sendall(bytes.fromhex(sys.argv[2]))
try:
    c.recv(100)
except ConnectionResetError:
    print("connection reset")
p.wait(timeout=20)
sys.stdout.write(p.stderr.read().decode())
`, port, hex.EncodeToString(Request("GET", "/hello", "")))
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "PYTHONPATH="+SitesDir(), "QXSITE_SESSION_DIR="+filepath.Join(cmd.Dir, "s"))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "connection reset")
	assert.Contains(t, string(out), "TypeError: '<' not supported between instances of 'int' and 'str'")
}

func itoa(n int) string { return strconv.Itoa(n) }
