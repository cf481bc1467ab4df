// Package testapache runs a private Apache 2.4 (Debian's apache2) for a test: its own
// ServerRoot, configuration, pid file and logs under t.TempDir(), listening on a free
// loopback port, stopped when the test ends.
//
// The configuration is a fixed skeleton around what the test supplies:
//
//	inst := testapache.Start(t, testapache.Config{
//	    Modules: []string{"proxy", "proxy_scgi"},
//	    Site:    `ProxyPass "/" "unix:/tmp/qxsock1/gw.sock|scgi://localhost/"`,
//	})
//	resp, err := http.Get(inst.URL + "/path")
//
// The skeleton loads, from /usr/lib/apache2/modules, the modules a fresh Debian
// install enables that need no configuration of their own (mpm_event, authz_core,
// authz_host, alias, dir, env, mime, setenvif, filter, deflate, reqtimeout), then
// Config.Modules, named as a2enmod takes them. A2enmod reads those names from a
// documented snippet's "a2enmod" line, so that a test loads exactly what the
// documentation tells users to enable.
//
// Apache does not serve requests as root: when the tests run as root its workers run
// as testpeer.FrontUser (www-data, as on Debian), which cannot reach t.TempDir();
// sockets the workers connect to belong in testpeer.SocketDir, with
// testpeer.GrantSocket. As an ordinary user Apache runs as that user.
package testapache

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testpeer"
)

// ModuleDir is where Debian's apache2 installs its modules.
const ModuleDir = "/usr/lib/apache2/modules"

// BaseModules are the modules every instance loads: those Debian enables on a fresh
// install that need no configuration of their own.
var BaseModules = []string{"mpm_event", "authz_core", "authz_host", "alias", "dir", "env", "mime", "setenvif", "filter", "deflate", "reqtimeout"}

// Config is what a test puts into the Apache configuration.
type Config struct {
	// Site is appended to the server configuration: ProxyPass, SetEnvIf, <Location>
	// sections and the like.
	Site string
	// Modules are loaded after BaseModules, named as a2enmod takes them ("proxy",
	// "proxy_scgi").
	Modules []string
	// AccessLog, if true, writes Dir/access.log (dumped with error.log on failure).
	AccessLog bool
	// LogLevel is Apache's LogLevel; "" means "info".
	LogLevel string
}

// Instance is a running Apache.
type Instance struct {
	// URL is "http://127.0.0.1:PORT", without a trailing slash.
	URL string
	// Addr is "127.0.0.1:PORT".
	Addr string
	// Dir is the ServerRoot: configuration, logs and pid file.
	Dir string
	// Config is the configuration file Apache was started with.
	Config string

	d *testpeer.Daemon
}

// Binary returns the path of Debian's apache2, or skips/fails t (see testpeer.Missing).
func Binary(t testing.TB) string {
	t.Helper()
	bin := testpeer.Binary("apache2")
	if bin == "" {
		testpeer.Missing(t, "apache2 (Debian's apache2 package)")
	}
	return bin
}

var a2enmodLine = regexp.MustCompile(`(?m)\ba2enmod((?:[ \t]+[a-z_0-9]+)+)`)

// A2enmod returns the module names of the "a2enmod NAME..." commands in a documented
// snippet (typically in a comment), in order.
func A2enmod(snippet string) []string {
	var mods []string
	for _, m := range a2enmodLine.FindAllStringSubmatch(snippet, -1) {
		mods = append(mods, strings.Fields(m[1])...)
	}
	return mods
}

// Start writes the configuration and runs Apache in the foreground. It returns once
// Apache has reported that it is serving and accepts connections on its port, and
// stops Apache when the test ends, logging its error log if the test failed. A
// missing apache2 or module skips the test, or fails it under CI=true.
func Start(t testing.TB, cfg Config) *Instance {
	t.Helper()
	bin := Binary(t)
	for _, m := range append(append([]string(nil), BaseModules...), cfg.Modules...) {
		if _, err := os.Stat(modulePath(m)); err != nil {
			testpeer.Missing(t, "Apache module "+modulePath(m))
		}
	}
	return testpeer.OnFreePort(t, "testapache", func(addr string) (*Instance, error) {
		return start(t, bin, addr, cfg)
	})
}

func modulePath(name string) string {
	return filepath.Join(ModuleDir, "mod_"+name+".so")
}

func start(t testing.TB, bin, addr string, cfg Config) (*Instance, error) {
	t.Helper()
	dir := t.TempDir()
	conf := configText(dir, addr, cfg)
	confPath := filepath.Join(dir, "apache2.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	inst := &Instance{URL: "http://" + addr, Addr: addr, Dir: dir, Config: conf}
	var err error
	inst.d, err = testpeer.StartDaemon(t, "apache2", exec.Command(bin, "-d", dir, "-f", confPath, "-DFOREGROUND"))
	if err != nil {
		return nil, err
	}
	// Apache logs this line once its workers are being started.
	if err := inst.d.WaitReady(15*time.Second, testpeer.LogReady(inst.errorLogPath(), "resuming normal operations", addr)); err != nil {
		inst.Stop()
		return nil, fmt.Errorf("%w\napache2.conf:\n%s\noutput:\n%s\nerror.log:\n%s", err, conf, inst.d.Output.String(), inst.ErrorLog())
	}
	t.Cleanup(func() {
		inst.Stop()
		if t.Failed() {
			t.Logf("testapache: error.log of %s:\n%s", inst.URL, inst.ErrorLog())
			if cfg.AccessLog {
				b, _ := os.ReadFile(filepath.Join(dir, "access.log"))
				t.Logf("testapache: access.log:\n%s", b)
			}
		}
	})
	return inst, nil
}

func configText(dir, addr string, cfg Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by testapache\nServerRoot %q\nServerName 127.0.0.1\nListen %s\n", dir, addr)
	fmt.Fprintf(&b, "PidFile %q\nDefaultRuntimeDir %q\nMutex file:%s default\n", filepath.Join(dir, "apache2.pid"), dir, dir)
	level := cfg.LogLevel
	if level == "" {
		level = "info"
	}
	fmt.Fprintf(&b, "ErrorLog %q\nLogLevel %s\n", filepath.Join(dir, "error.log"), level)
	for _, m := range append(append([]string(nil), BaseModules...), cfg.Modules...) {
		fmt.Fprintf(&b, "LoadModule %s_module %s\n", m, modulePath(m))
	}
	if os.Geteuid() == 0 {
		fmt.Fprintf(&b, "User %s\nGroup #%d\n", testpeer.FrontUser, frontGID())
	}
	b.WriteString("TypesConfig /etc/mime.types\nStartServers 1\nServerLimit 2\nThreadsPerChild 16\nMaxRequestWorkers 32\n")
	fmt.Fprintf(&b, "DocumentRoot %q\n<Directory />\n    Require all denied\n</Directory>\n", dir)
	if cfg.AccessLog {
		fmt.Fprintf(&b, "LoadModule log_config_module %s\n", modulePath("log_config"))
		fmt.Fprintf(&b, "CustomLog %q \"%%h %%r %%>s %%b\"\n", filepath.Join(dir, "access.log"))
	}
	b.WriteString("\n# site\n")
	b.WriteString(cfg.Site)
	b.WriteString("\n")
	return b.String()
}

func frontGID() int {
	gid, err := testpeer.FrontGID()
	if err != nil {
		return 65534 // nogroup
	}
	return gid
}

// PID returns the process id of Apache's parent process.
func (inst *Instance) PID() int { return inst.d.PID() }

// ErrorLog returns Apache's error log so far.
func (inst *Instance) ErrorLog() string {
	b, _ := os.ReadFile(inst.errorLogPath())
	return string(b)
}

func (inst *Instance) errorLogPath() string { return filepath.Join(inst.Dir, "error.log") }

// Stop stops Apache (SIGTERM: the parent stops its workers and exits) and waits for
// it; Start arranges it for the end of the test, and calling it earlier is fine.
func (inst *Instance) Stop() { inst.d.Stop(10 * time.Second) }
