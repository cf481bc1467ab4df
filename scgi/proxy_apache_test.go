package scgi

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startApache runs Debian's apache2 in the foreground with mod_proxy_scgi and the given
// directives, on a free loopback port, until the test ends. It returns the base URL.
func startApache(t *testing.T, directives string) string {
	t.Helper()
	bin, err := exec.LookPath("apache2")
	if err != nil {
		bin = "/usr/sbin/apache2"
		if _, err := os.Stat(bin); err != nil {
			testpeer.Missing(t, "apache2 (Debian package apache2)")
		}
	}
	const mods = "/usr/lib/apache2/modules"
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	user := ""
	if os.Geteuid() == 0 {
		user = "User nobody\nGroup nogroup\n"
	}
	conf := fmt.Sprintf(`ServerRoot %[1]s
ServerName 127.0.0.1
Listen %[2]s
PidFile %[1]s/httpd.pid
ErrorLog %[1]s/error.log
LoadModule mpm_event_module %[3]s/mod_mpm_event.so
LoadModule authz_core_module %[3]s/mod_authz_core.so
LoadModule proxy_module %[3]s/mod_proxy.so
LoadModule proxy_scgi_module %[3]s/mod_proxy_scgi.so
LoadModule setenvif_module %[3]s/mod_setenvif.so
%[4]s%[5]s
`, dir, addr, mods, user, directives)
	confPath := filepath.Join(dir, "httpd.conf")
	require.NoError(t, os.WriteFile(confPath, []byte(conf), 0o600))
	cmd := exec.Command(bin, "-f", confPath, "-DFOREGROUND")
	out := new(testpeer.Output)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("apache2 output:\n%s\nerror.log:\n%s", out, log)
		}
	})
	url := "http://" + addr
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("apache2 exited: %s", out)
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return url
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("apache2 not listening on %s after 15s: %s", addr, out)
		}
	}
}

// TestProxyBehindApache: Apache's mod_proxy_scgi sends SCRIPT_NAME = the whole
// (decoded) path and no PATH_INFO. The gateway treats that as no mount point at all,
// so Quixote routes on the whole path and sets its cookie for "/", and Go handlers see
// FrontScriptName "". With proxy-scgi-pathinfo set, Apache sends a real split, which
// is kept.
func TestProxyBehindApache(t *testing.T) {
	w := startQuixote(t, testquixote.Options{Children: 2})
	p, _ := newTestProxy(t, w.Addr)
	mux := http.NewServeMux()
	mux.Handle("/", p)
	mux.HandleFunc("/go/", func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(rw, "%s|%s", FrontScriptName(r), r.URL.Path)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	serveSCGIOn(t, l, mux)
	base := startApache(t, fmt.Sprintf(`
SetEnvIf Request_URI ^/mounted/ proxy-scgi-pathinfo
ProxyPass /mounted/ scgi://%[1]s/
ProxyPass / scgi://%[1]s/
`, l.Addr()))

	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := noRedirect.Get(base + path)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		return resp, string(body)
	}

	t.Run("no path info", func(t *testing.T) {
		e := getEcho(t, noRedirect, newReq(t, "GET", base+"/env?q=%41", nil))
		assert.Equal(t, "", e.Env["SCRIPT_NAME"])
		assert.Equal(t, "/env", e.Env["PATH_INFO"])
		assert.Equal(t, "/env?q=%41", e.Env["REQUEST_URI"])
		assert.Equal(t, "Apache/2.4", e.Env["SERVER_SOFTWARE"][:len("Apache/2.4")], "Apache's own variables pass through")

		resp, body := get("/login?user=alice")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "ok", body, "Quixote ran the login page, not the index")
		assert.True(t, strings.HasSuffix(resp.Header.Get("Set-Cookie"), "; path=/"), resp.Header.Get("Set-Cookie"))

		_, body = get("/go/a%20b/c")
		assert.Equal(t, "|/go/a b/c", body, "Go sees no mount point either")
	})

	t.Run("proxy-scgi-pathinfo", func(t *testing.T) {
		e := getEcho(t, noRedirect, newReq(t, "GET", base+"/mounted/env", nil))
		assert.Equal(t, "/mounted", e.Env["SCRIPT_NAME"])
		assert.Equal(t, "/env", e.Env["PATH_INFO"])
		resp, _ := get("/mounted/login?user=bob")
		assert.True(t, strings.HasSuffix(resp.Header.Get("Set-Cookie"), "; path=/mounted/"), resp.Header.Get("Set-Cookie"))
		assert.True(t, strings.HasPrefix(resp.Header.Get("Set-Cookie"), "QX_session="))
	})
}
