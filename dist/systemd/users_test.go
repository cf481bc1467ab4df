package systemd_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Numeric ids for the gateway's own user and the group it shares with the Python
// workers ("qxbridge" and "myapp" in README.md's Deploying): setpriv needs no
// /etc/passwd entry for them.
const (
	gatewayUID = 64990
	sharedGID  = 64991
)

// asUser returns a command running name with args as uid:gid with the supplementary
// group sharedGID, through setpriv(1). Its umask is set by start.
func asUser(t *testing.T, uid, gid int, name string, args ...string) *exec.Cmd {
	t.Helper()
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		testpeer.Missing(t, "setpriv (Debian's util-linux)")
	}
	return exec.Command(setpriv, append([]string{
		"--reuid", strconv.Itoa(uid), "--regid", strconv.Itoa(gid), "--groups", strconv.Itoa(sharedGID), "--", name}, args...)...)
}

// TestTwoUsersOneDirectory is README.md's Deploying layout for real: the real
// Quixote 3.8 worker runs as www-data with its usual umask 022, the gateway as a user
// of its own with the unit's UMask=, both in one group that owns the setgid session
// directory (install -d -o www-data -g myapp -m 2770). A session Python created and
// Go replaced stays readable and writable by Python, and the other way round, turn
// after turn.
func TestTwoUsersOneDirectory(t *testing.T) {
	testpeer.Root(t, "running the two sides as two users")
	py := testpeer.Python(t)
	svc := readUnit(t, "scgi-gateway.service")
	umask, err := strconv.ParseUint(svc.one(t, "Service", "UMask"), 8, 32)
	require.NoError(t, err)
	pyUID, err := testpeer.FrontGID() // www-data's uid and gid are both 33 on Debian
	require.NoError(t, err)
	pyGID := pyUID
	if out, err := asUser(t, pyUID, pyGID, py, "-c", "import quixote, session3").CombinedOutput(); err != nil {
		testpeer.Missing(t, fmt.Sprintf("a Python that %s can run (%s: %v %s)", testpeer.FrontUser, py, err, out))
	}

	base := testpeer.SocketDir(t) // 0711: both users can reach what is inside
	sessions := filepath.Join(base, "sessions")
	require.NoError(t, os.Mkdir(sessions, 0o700))
	require.NoError(t, os.Chown(sessions, pyUID, sharedGID))
	require.NoError(t, os.Chmod(sessions, 0o2770|os.ModeSetgid))

	// The Python worker, as README.md's worker command runs it.
	pyAddr, err := testpeer.FreeLoopbackAddr()
	require.NoError(t, err)
	_, pyPort, _ := net.SplitHostPort(pyAddr)
	worker := asUser(t, pyUID, pyGID, py, "-m", "quixote.server.scgi_server",
		"--factory", "qxsite.create_publisher", "--host", "127.0.0.1", "--port", pyPort)
	worker.Dir = base
	worker.Env = append(os.Environ(), "PYTHONPATH="+testquixote.SitesDir(), "PYTHONDONTWRITEBYTECODE=1", "QXSITE_SESSION_DIR="+sessions)
	pyOut := start(t, worker, 0o022)

	// The gateway, with dist/gateway.toml and the demo's counter as its Go page.
	bin := buildGateway(t)
	require.NoError(t, os.Chmod(filepath.Dir(bin), 0o755))
	conf := testConfig(t, base, sessions, pyAddr)
	// The runtime directory systemd makes for the service (RuntimeDirectory=), owned
	// by its user: the ordering's lock directory is created inside it.
	require.NoError(t, os.Mkdir(filepath.Join(base, "run"), 0o755))
	require.NoError(t, os.Chown(filepath.Join(base, "run"), gatewayUID, gatewayUID))
	httpAddr, err := testpeer.FreeLoopbackAddr()
	require.NoError(t, err)
	gw := asUser(t, gatewayUID, gatewayUID, bin, "-config", conf, "-http", httpAddr, "-route", "/counter=demo")
	gwOut := start(t, gw, int(umask))

	site := "http://" + httpAddr
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	get := func(path string) (int, string) {
		resp, err := c.Get(site + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if code, _ := get("/check"); code == http.StatusOK {
			break
		}
		require.Less(t, time.Since(start), 30*time.Second, "no answer from the gateway and the worker\ngateway:\n%s\nworker:\n%s", gwOut, pyOut)
	}
	file := func() (uid, gid uint32, mode os.FileMode) {
		t.Helper()
		entries, err := os.ReadDir(sessions)
		require.NoError(t, err)
		require.Len(t, entries, 1)
		fi, err := os.Stat(filepath.Join(sessions, entries[0].Name()))
		require.NoError(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		return st.Uid, st.Gid, fi.Mode().Perm()
	}

	code, body := get("/login?user=alice")
	require.Equal(t, http.StatusOK, code, body)
	uid, gid, mode := file()
	assert.Equal(t, []any{uint32(pyUID), uint32(sharedGID), os.FileMode(0o644)}, []any{uid, gid, mode},
		"Python's file: its user, the directory's group, umask 022")

	type pyStatus struct {
		User       string         `json:"user"`
		Attrs      map[string]any `json:"attrs"`
		FormTokens []string       `json:"form_tokens"`
	}
	status := func() pyStatus {
		t.Helper()
		code, body := get("/status")
		require.Equal(t, http.StatusOK, code, body)
		var st pyStatus
		require.NoError(t, json.Unmarshal([]byte(body), &st), body)
		return st
	}
	var tokens []string
	for turn := 1; turn <= 3; turn++ {
		// Go loads Python's file and replaces it.
		code, body = get("/counter")
		require.Equal(t, http.StatusOK, code, body)
		assert.Contains(t, body, fmt.Sprintf("<p>Counter: %d</p>", turn))
		uid, gid, mode = file()
		assert.Equal(t, []any{uint32(gatewayUID), uint32(sharedGID)}, []any{uid, gid}, "Go's file: its user, the group kept")
		assert.Equal(t, os.FileMode(0o060), mode&0o070, "the group can read and write it: mode %v", mode)
		assert.Zero(t, mode&0o007, "nothing for others: mode %v", mode)

		// Python reads Go's file and writes into it.
		st := status()
		assert.Equal(t, "alice", st.User)
		assert.Equal(t, float64(turn), st.Attrs["counter"])
		code, body = get("/token")
		require.Equal(t, http.StatusOK, code, body)
		tokens = append(tokens, body)
		st = status()
		assert.Equal(t, tokens, st.FormTokens, "Python's write is in the file")
		assert.Equal(t, float64(turn), st.Attrs["counter"])
	}
	assert.NotContains(t, pyOut.String(), "Traceback")
	assert.NotContains(t, gwOut.String(), "level=ERROR")
}

// start starts cmd with the given umask, which it inherits: the test process's is
// changed around the start (no other test of this package runs meanwhile).
func start(t *testing.T, cmd *exec.Cmd, umask int) *testpeer.Output {
	t.Helper()
	out := &testpeer.Output{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	old := syscall.Umask(umask)
	err := cmd.Start()
	syscall.Umask(old)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s:\n%s", strings.Join(cmd.Args, " "), out.String())
		}
	})
	return out
}
