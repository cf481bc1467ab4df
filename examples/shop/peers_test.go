package main

// The peers the end-to-end test runs: the Python shop on the real Quixote SCGI server
// (python-scgi), a private nginx, and the gateway itself. A missing peer skips the
// test, or fails it when CI=true.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func inCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "0" && v != "false"
}

// missing skips t, or fails it under CI, because a peer is not available.
func missing(t *testing.T, what string) {
	t.Helper()
	if inCI() {
		t.Fatalf("%s is required when CI=true but is not available", what)
	}
	t.Skipf("%s not available", what)
}

// python returns the interpreter that has Quixote 3.8, session3 and python-scgi:
// $QXBRIDGE_PYTHON, else the repository's .venv (see the repository's README).
func python(t *testing.T) string {
	t.Helper()
	pythonOnce.Do(func() {
		py := os.Getenv("QXBRIDGE_PYTHON")
		if py == "" {
			py = filepath.Join("..", "..", ".venv", "bin", "python")
		}
		if strings.Contains(py, "/") {
			py, _ = filepath.Abs(py) // the servers run in other directories
		}
		out, err := exec.Command(py, "-c", `import importlib.metadata as m, quixote.server.scgi_server, session3.SessionManager, scgi.scgi_server
print(", ".join(d + " " + m.version(d) for d in ("quixote", "session3", "scgi")))`).CombinedOutput()
		if err != nil {
			pythonErr = fmt.Sprintf("Python with Quixote, session3 and python-scgi (%s: %v %s)", py, err, out)
			return
		}
		pythonPath = py
		t.Logf("python peers: %s: %s", py, bytes.TrimSpace(out))
	})
	if pythonErr != "" {
		missing(t, pythonErr)
	}
	return pythonPath
}

var (
	pythonOnce            sync.Once
	pythonPath, pythonErr string
)

func nginxBin(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	missing(t, "nginx")
	return ""
}

// output collects a process's output for the test log.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// start runs cmd in a process group of its own, killed with everything it forked
// when the test ends; its output is logged if the test failed.
func start(t *testing.T, name string, cmd *exec.Cmd) *output {
	t.Helper()
	out := &output{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	require.NoError(t, cmd.Start(), "starting %s", name)
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out)
		}
	})
	return out
}

// startPython starts the shop's Python workers as its README says
// (python -m quixote.server.scgi_server --factory shop.publisher.create_publisher),
// on a loopback socket handed over as systemd does (python-scgi takes LISTEN_FDS),
// so that no other process can take the port in between. It returns the address.
func startPython(t *testing.T, sessions string) (string, *output) {
	t.Helper()
	py := python(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f, err := l.(*net.TCPListener).File()
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	defer f.Close()
	app, err := filepath.Abs("python")
	require.NoError(t, err)
	// LISTEN_PID must be the server's pid: the shell's, which exec keeps.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, py, "-u",
		"-m", "quixote.server.scgi_server", "--factory", "shop.publisher.create_publisher")
	cmd.ExtraFiles = []*os.File{f} // fd 3
	cmd.Dir = t.TempDir()          // not the source tree, which would be on sys.path
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1", "PYTHONPATH="+app, "PYTHONDONTWRITEBYTECODE=1",
		"SHOP_SESSION_DIR="+sessions)
	return addr, start(t, "python scgi_server", cmd)
}

// startNginx runs a private nginx on a free loopback port with the example's
// nginx.conf as its server's location, passing to the gateway's socket. It returns
// the site's URL.
func startNginx(t *testing.T, gatewaySock string) string {
	t.Helper()
	bin := nginxBin(t)
	if _, err := os.Stat("/etc/nginx/scgi_params"); err != nil {
		missing(t, "/etc/nginx/scgi_params (Debian's nginx-common)")
	}
	loc, err := os.ReadFile("nginx.conf")
	require.NoError(t, err)
	location := strings.Replace(string(loc), "unix:/run/shop/gateway.sock", "unix:"+gatewaySock, 1)
	require.NotEqual(t, string(loc), location, "nginx.conf passes to unix:/run/shop/gateway.sock")
	dir := t.TempDir()
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers dropping to nobody could not use the test's 0700 directories
	}
	for attempt := 0; ; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		l.Close()
		conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes 1;
%s
pid %[2]s/nginx.pid;
error_log %[2]s/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[2]s/client_body_temp;
    proxy_temp_path %[2]s/proxy_temp;
    fastcgi_temp_path %[2]s/fastcgi_temp;
    uwsgi_temp_path %[2]s/uwsgi_temp;
    scgi_temp_path %[2]s/scgi_temp;
    server {
        listen %[3]s;
        location = /.ready { return 204; }
%[4]s
    }
}
`, user, dir, addr, location)
		path := filepath.Join(dir, "nginx.conf")
		require.NoError(t, os.WriteFile(path, []byte(conf), 0o644))
		_ = os.Remove(filepath.Join(dir, "scgi_params"))
		require.NoError(t, os.Symlink("/etc/nginx/scgi_params", filepath.Join(dir, "scgi_params")))
		out := start(t, "nginx", exec.Command(bin, "-p", dir+"/", "-c", path, "-e", filepath.Join(dir, "error.log")))
		url := "http://" + addr
		err = waitFor(10*time.Second, func() error {
			resp, err := http.Get(url + "/.ready")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				return fmt.Errorf("%s", resp.Status)
			}
			return nil
		})
		if err == nil {
			t.Cleanup(func() {
				if t.Failed() {
					b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
					t.Logf("nginx error.log:\n%s", b)
				}
			})
			return url
		}
		b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		if attempt < 3 && strings.Contains(string(b), "Address already in use") {
			continue // the free port was taken in between
		}
		t.Fatalf("nginx did not start: %v\n%s\n%s", err, out, b)
	}
}

// startGateway runs the shop's gateway in this process, as its main does but with
// the given command line, until the test ends.
func startGateway(t *testing.T, args ...string) *output {
	t.Helper()
	log := &output{}
	g := newGateway()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- g.Run(ctx, args, log, log) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("the gateway exited with %d", code)
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", log)
		}
	})
	require.NoError(t, waitFor(20*time.Second, func() error {
		select {
		case code := <-done:
			done <- code
			t.Fatalf("the gateway exited with %d:\n%s", code, log)
		default:
		}
		if !strings.Contains(log.String(), "msg=listening") {
			return fmt.Errorf("not listening yet")
		}
		return nil
	}))
	return log
}

// waitFor polls ready until it returns nil or limit passes.
func waitFor(limit time.Duration, ready func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := ready()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
