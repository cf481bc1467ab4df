// Package systemd_test checks the systemd units shipped in dist/systemd: systemd
// accepts them (systemd-analyze verify), and the gateway started the way they start
// it — its ExecStart, the socket of the .socket unit passed as systemd passes it —
// serves behind nginx and restarts under load without failing a request.
package systemd_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	installedBinary = "/usr/local/bin/scgi-gateway"
	installedConfig = "/etc/qxbridge/gateway.toml"
)

// testConfig writes dist/gateway.toml into dir for a test: the session directory
// sessions, the lock directory dir/run/locks (dir/run stands for RuntimeDirectory=),
// metrics on a free port, the Python pool at address pool.
func testConfig(t *testing.T, dir, sessions, pool string) string {
	t.Helper()
	b, err := os.ReadFile("../gateway.toml")
	require.NoError(t, err)
	conf := string(b)
	for old, new := range map[string]string{
		`dir = "/var/lib/myapp/sessions"`:  fmt.Sprintf("dir = %q", sessions),
		`lock_dir = "/run/qxbridge/locks"`: fmt.Sprintf("lock_dir = %q", filepath.Join(dir, "run", "locks")),
		`metrics = "127.0.0.1:9100"`:       `metrics = "127.0.0.1:0"`,
		`addresses = ["127.0.0.1:4000"]`:   fmt.Sprintf("addresses = [%q]", pool),
	} {
		require.Equal(t, 1, strings.Count(conf, old), "dist/gateway.toml has %s", old)
		conf = strings.Replace(conf, old, new, 1)
	}
	name := filepath.Join(dir, "gateway.toml")
	require.NoError(t, os.WriteFile(name, []byte(conf), 0o644))
	return name
}

// unit is a parsed unit file: section → key → values, in order.
type unit map[string]map[string][]string

func readUnit(t *testing.T, name string) unit {
	t.Helper()
	f, err := os.Open(name)
	require.NoError(t, err)
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			require.True(t, ok, "%s: %q", name, line)
			u[section][k] = append(u[section][k], v)
		}
	}
	require.NoError(t, sc.Err())
	return u
}

// one returns the single value of key in section.
func (u unit) one(t *testing.T, section, key string) string {
	t.Helper()
	vs := u[section][key]
	require.Len(t, vs, 1, "[%s] %s=", section, key)
	return vs[0]
}

// buildGateway builds cmd/scgi-gateway, once per test run.
func buildGateway(t *testing.T) string {
	t.Helper()
	return testpeer.Build(t, "./cmd/scgi-gateway")
}

func TestMain(m *testing.M) {
	code := m.Run()
	testpeer.RemoveBuilds()
	os.Exit(code)
}

// TestUnitsVerify runs systemd-analyze verify on the units, with ExecStart pointing
// at a freshly built gateway (verify checks that the command exists): any complaint
// (an unknown key, a bad value, a missing command) fails the test.
func TestUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		testpeer.Missing(t, "systemd-analyze (Debian's systemd package)")
	}
	dir := t.TempDir()
	bin := buildGateway(t)
	for _, name := range []string{"scgi-gateway.socket", "scgi-gateway.service"} {
		b, err := os.ReadFile(name)
		require.NoError(t, err)
		text := string(b)
		if strings.HasSuffix(name, ".service") {
			require.Equal(t, 1, strings.Count(text, "ExecStart="+installedBinary+" "))
			text = strings.Replace(text, "ExecStart="+installedBinary+" ", "ExecStart="+bin+" ", 1)
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
	}
	cmd := exec.Command(analyze, "verify", "--man=no", filepath.Join(dir, "scgi-gateway.socket"), filepath.Join(dir, "scgi-gateway.service"))
	out, err := cmd.CombinedOutput()
	assert.NoError(t, err)
	assert.Empty(t, string(out), "systemd-analyze verify has something to say")
}

// TestUnitsAgree checks what the two units must agree on with each other and with
// the documented front-server snippets.
func TestUnitsAgree(t *testing.T) {
	sock := readUnit(t, "scgi-gateway.socket")
	svc := readUnit(t, "scgi-gateway.service")
	assert.Equal(t, testpeer.DocsSocket, sock.one(t, "Socket", "ListenStream"), "the socket docs/*.conf pass to")
	name := sock.one(t, "Socket", "FileDescriptorName")
	assert.NotContains(t, []string{"http", "metrics"}, name, "a socket the gateway serves as SCGI")
	assert.Equal(t, testpeer.FrontUser, sock.one(t, "Socket", "SocketGroup"), "the front servers' group")
	assert.Equal(t, "0660", sock.one(t, "Socket", "SocketMode"))
	assert.Equal(t, svc.one(t, "Service", "User"), sock.one(t, "Socket", "SocketUser"))
	assert.Equal(t, filepath.Base(filepath.Dir(testpeer.DocsSocket)), svc.one(t, "Service", "RuntimeDirectory"))
	assert.Equal(t, "yes", svc.one(t, "Service", "RuntimeDirectoryPreserve"), "a stopped service must not remove the socket systemd listens on")
	assert.Equal(t, []string{"scgi-gateway.socket"}, svc["Unit"]["Requires"])
	assert.Equal(t, installedBinary+" -config "+installedConfig, svc.one(t, "Service", "ExecStart"))
	b, err := os.ReadFile("../gateway.toml")
	require.NoError(t, err)
	assert.NotContains(t, string(b), "scgi =", "the SCGI socket comes from the socket unit")
	assert.Contains(t, string(b), fmt.Sprintf("lock_dir = %q", filepath.Join("/run", svc.one(t, "Service", "RuntimeDirectory"), "locks")),
		"the ordering's lock files live in the runtime directory, which ProtectSystem=strict leaves writable")
	assert.Equal(t, "/bin/kill -HUP $MAINPID", svc.one(t, "Service", "ExecReload"), "SIGHUP reloads the configuration file")
}
