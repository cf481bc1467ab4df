// Package testlighttpd runs a private lighttpd (Debian's lighttpd) for a test: its own
// configuration, pid file and logs in a temporary directory, listening on a free loopback
// port, stopped when the test ends.
//
// The configuration is a fixed skeleton (document root, bind address and port, error
// log, pid file) followed by what the test supplies, at the top level, so that a
// documented snippet such as docs/lighttpd.conf goes in as it is:
//
//	inst := testlighttpd.Start(t, testlighttpd.Config{Site: `
//	server.modules += ( "mod_scgi" )
//	scgi.server = ( "/" => (( "socket" => "/tmp/qxsock1/gw.sock", "check-local" => "disable" )))`})
//	resp, err := http.Get(inst.URL + "/path")
//
// lighttpd is not left to serve as root: when the tests run as root it drops to
// testpeer.FrontUser (www-data, as Debian's configuration has it), which cannot
// reach t.TempDir(); sockets it connects to belong in testpeer.SocketDir, with
// testpeer.GrantSocket. Request bodies are buffered in lighttpd's default
// server.upload-dirs, /var/tmp.
package testlighttpd

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testpeer"
)

// Config is what a test puts into the lighttpd configuration.
type Config struct {
	// Site is appended to the configuration, at the top level: server.modules,
	// scgi.server, conditionals.
	Site string
	// AccessLog, if true, writes Dir/access.log (dumped with error.log on failure).
	AccessLog bool
}

// Instance is a running lighttpd.
type Instance struct {
	// URL is "http://127.0.0.1:PORT", without a trailing slash.
	URL string
	// Addr is "127.0.0.1:PORT".
	Addr string
	// Dir holds the configuration, logs and pid file.
	Dir string
	// Config is the configuration lighttpd was started with.
	Config string

	d *testpeer.Daemon
}

// Binary returns the path of Debian's lighttpd, or skips/fails t (see testpeer.Missing).
func Binary(t testing.TB) string {
	t.Helper()
	bin := testpeer.Binary("lighttpd")
	if bin == "" {
		testpeer.Missing(t, "lighttpd (Debian's lighttpd package)")
	}
	return bin
}

// Start writes the configuration and runs lighttpd in the foreground (-D). It returns
// once lighttpd has logged that it started and accepts connections, and stops it when
// the test ends, logging its error log if the test failed. A missing lighttpd skips
// the test, or fails it under CI=true.
func Start(t testing.TB, cfg Config) *Instance {
	t.Helper()
	bin := Binary(t)
	return testpeer.OnFreePort(t, "testlighttpd", func(addr string) (*Instance, error) {
		return start(t, bin, addr, cfg)
	})
}

func start(t testing.TB, bin, addr string, cfg Config) (*Instance, error) {
	t.Helper()
	dir, err := ownDir(t)
	if err != nil {
		return nil, err
	}
	conf, err := configText(dir, addr, cfg)
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "lighttpd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	inst := &Instance{URL: "http://" + addr, Addr: addr, Dir: dir, Config: conf}
	inst.d, err = testpeer.StartDaemon(t, "lighttpd", exec.Command(bin, "-D", "-f", confPath))
	if err != nil {
		return nil, err
	}
	if err := inst.d.WaitReady(10*time.Second, testpeer.LogReady(inst.errorLogPath(), "server started", addr)); err != nil {
		inst.Stop()
		return nil, fmt.Errorf("%w\nlighttpd.conf:\n%s\noutput:\n%s\nerror.log:\n%s", err, conf, inst.d.Output.String(), inst.ErrorLog())
	}
	t.Cleanup(func() {
		inst.Stop()
		if t.Failed() {
			t.Logf("testlighttpd: error.log of %s:\n%s\noutput:\n%s", inst.URL, inst.ErrorLog(), inst.d.Output.String())
			if cfg.AccessLog {
				b, _ := os.ReadFile(filepath.Join(dir, "access.log"))
				t.Logf("testlighttpd: access.log:\n%s", b)
			}
		}
	})
	return inst, nil
}

// ownDir returns a new directory for the configuration and logs. lighttpd opens its
// logs after dropping to testpeer.FrontUser, who cannot reach t.TempDir(): as root
// the directory is a new one under os.TempDir(), owned by that user.
func ownDir(t testing.TB) (string, error) {
	if os.Geteuid() != 0 {
		return t.TempDir(), nil
	}
	dir, err := os.MkdirTemp("", "qxlighttpd")
	if err != nil {
		return "", err
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	u, err := user.Lookup(testpeer.FrontUser)
	if err != nil {
		return "", err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return dir, os.Chown(dir, uid, gid)
}

func configText(dir, addr string, cfg Config) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# written by testlighttpd\nserver.document-root = %q\nserver.bind = %q\nserver.port = %s\n", dir, host, port)
	fmt.Fprintf(&b, "server.errorlog = %q\nserver.pid-file = %q\n", filepath.Join(dir, "error.log"), filepath.Join(dir, "lighttpd.pid"))
	if os.Geteuid() == 0 {
		fmt.Fprintf(&b, "server.username = %q\nserver.groupname = %q\n", testpeer.FrontUser, testpeer.FrontUser)
	}
	b.WriteString("mimetype.assign = ( \".txt\" => \"text/plain\", \".html\" => \"text/html\" )\n")
	if cfg.AccessLog {
		fmt.Fprintf(&b, "server.modules += ( \"mod_accesslog\" )\naccesslog.filename = %q\n", filepath.Join(dir, "access.log"))
	}
	b.WriteString("\n# site\n")
	b.WriteString(cfg.Site)
	b.WriteString("\n")
	return b.String(), nil
}

// PID returns lighttpd's process id.
func (inst *Instance) PID() int { return inst.d.PID() }

// ErrorLog returns lighttpd's error log so far.
func (inst *Instance) ErrorLog() string {
	b, _ := os.ReadFile(inst.errorLogPath())
	return string(b)
}

func (inst *Instance) errorLogPath() string { return filepath.Join(inst.Dir, "error.log") }

// Stop stops lighttpd (SIGTERM) and waits for it; Start arranges it for the end of the
// test, and calling it earlier is fine.
func (inst *Instance) Stop() { inst.d.Stop(10 * time.Second) }
