// Package testnginx runs a private nginx for a test: its own configuration, pid file,
// logs and temporary directories under t.TempDir(), listening on a free loopback port,
// stopped when the test ends.
//
// The configuration is a fixed http{} skeleton around what the test supplies:
//
//	inst := testnginx.Start(t, testnginx.Config{Locations: `
//	    location / {
//	        include scgi_params;
//	        scgi_pass 127.0.0.1:9000;
//	    }`})
//	resp, err := http.Get(inst.URL + "/path")
//
// Relative includes resolve in Instance.Dir, which links Debian's scgi_params,
// fastcgi_params, uwsgi_params, proxy_params and mime.types from /etc/nginx, so
// `include scgi_params;` and `include /etc/nginx/scgi_params;` both work.
//
// When the tests run as root, nginx's workers would drop to nobody and fail to use
// the 0700 test directories (a large POST then fails with 500 because the body cannot
// be buffered to disk), so the configuration says `user root;` in that case.
package testnginx

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testpeer"
)

// Config is what a test puts into the nginx configuration.
type Config struct {
	// Locations is inserted in the server{} block: location blocks and any
	// server-level directives.
	Locations string
	// HTTP is inserted at the http{} level, before the server block: upstream
	// blocks, maps, and the like.
	HTTP string
	// Workers is worker_processes; 0 means 1.
	Workers int
	// AccessLog, if true, writes Dir/access.log (dumped with error.log on failure).
	AccessLog bool
}

// Instance is a running nginx.
type Instance struct {
	// URL is "http://127.0.0.1:PORT", without a trailing slash.
	URL string
	// Addr is "127.0.0.1:PORT".
	Addr string
	// Dir is nginx's prefix directory: configuration, logs, pid and temp files.
	Dir string

	d *testpeer.Daemon
}

// ReadyPath is answered 204 by every instance; Start polls it to know that a worker
// is serving.
const ReadyPath = "/.testnginx-ready"

// Start writes the configuration and runs nginx in the foreground (daemon off). It
// returns once nginx answers on its port, and stops nginx when the test ends, logging
// nginx's error log if the test failed. A missing nginx skips the test, or fails it
// under CI=true (see testpeer.Nginx).
func Start(t testing.TB, cfg Config) *Instance {
	t.Helper()
	bin := testpeer.Nginx(t)
	if _, err := os.Stat("/etc/nginx/scgi_params"); err != nil {
		testpeer.Missing(t, "/etc/nginx/scgi_params (Debian's nginx-common)")
	}
	return testpeer.OnFreePort(t, "testnginx", func(addr string) (*Instance, error) {
		return start(t, bin, addr, cfg)
	})
}

func start(t testing.TB, bin, addr string, cfg Config) (*Instance, error) {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"scgi_params", "fastcgi_params", "uwsgi_params", "proxy_params", "mime.types"} {
		if _, err := os.Stat(filepath.Join("/etc/nginx", name)); err == nil {
			if err := os.Symlink(filepath.Join("/etc/nginx", name), filepath.Join(dir, name)); err != nil {
				return nil, err
			}
		}
	}
	conf := configText(dir, addr, cfg)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}

	inst := &Instance{URL: "http://" + addr, Addr: addr, Dir: dir}
	var err error
	inst.d, err = testpeer.StartDaemon(t, "nginx", exec.Command(bin, "-p", dir+"/", "-c", confPath, "-e", filepath.Join(dir, "error.log")))
	if err != nil {
		return nil, err
	}
	if err := inst.d.WaitReady(10*time.Second, inst.ready); err != nil {
		inst.Stop()
		return nil, fmt.Errorf("%w\nnginx.conf:\n%s\noutput:\n%s\nerror.log:\n%s", err, conf, inst.d.Output.String(), inst.ErrorLog())
	}
	t.Cleanup(func() {
		inst.Stop()
		if t.Failed() {
			t.Logf("testnginx: error.log of %s:\n%s", inst.URL, inst.ErrorLog())
			if cfg.AccessLog {
				b, _ := os.ReadFile(filepath.Join(dir, "access.log"))
				t.Logf("testnginx: access.log:\n%s", b)
			}
		}
	})
	return inst, nil
}

func configText(dir, addr string, cfg Config) string {
	workers := cfg.Workers
	if workers <= 0 {
		workers = 1
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	accessLog := "access_log off;"
	if cfg.AccessLog {
		accessLog = fmt.Sprintf("access_log %s;", filepath.Join(dir, "access.log"))
	}
	mime := "types { text/html html; text/plain txt; }"
	if _, err := os.Stat(filepath.Join(dir, "mime.types")); err == nil {
		mime = "include mime.types;"
	}
	return fmt.Sprintf(`# written by testnginx
daemon off;
master_process on;
worker_processes %d;
%s
pid %[3]s/nginx.pid;
error_log %[3]s/error.log info;
events { worker_connections 1024; }
http {
    %[4]s
    default_type application/octet-stream;
    %[5]s
    client_body_temp_path %[3]s/client_body_temp;
    proxy_temp_path %[3]s/proxy_temp;
    fastcgi_temp_path %[3]s/fastcgi_temp;
    uwsgi_temp_path %[3]s/uwsgi_temp;
    scgi_temp_path %[3]s/scgi_temp;
    client_max_body_size 100m;
%[6]s
    server {
        listen %[7]s;
        server_name localhost;
        location = %[8]s { return 204; }
%[9]s
    }
}
`, workers, user, dir, mime, accessLog, cfg.HTTP, addr, ReadyPath, cfg.Locations)
}

// ready reports whether a worker answers ReadyPath.
func (inst *Instance) ready() error {
	if log := inst.ErrorLog(); strings.Contains(log, "[emerg]") {
		return fmt.Errorf("%w: nginx reported an error: %s", testpeer.ErrStartup, log)
	}
	resp, err := readyClient.Get(inst.URL + ReadyPath)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("%s answered %s", ReadyPath, resp.Status)
	}
	return nil
}

var readyClient = &http.Client{Timeout: time.Second}

// PID returns the process id of nginx's master process.
func (inst *Instance) PID() int { return inst.d.PID() }

// ErrorLog returns nginx's error log so far.
func (inst *Instance) ErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(inst.Dir, "error.log"))
	return string(b)
}

// Stop stops nginx (SIGTERM: fast shutdown of master and workers) and waits for it;
// Start arranges it for the end of the test, and calling it earlier is fine.
func (inst *Instance) Stop() { inst.d.Stop(5 * time.Second) }
