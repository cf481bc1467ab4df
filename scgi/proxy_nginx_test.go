package scgi

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/qxbridge/qxbridge/internal/testnginx"
	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serveSCGIOn runs the server half with h on l until the test ends.
func serveSCGIOn(t testing.TB, l net.Listener, h http.Handler) {
	t.Helper()
	srv := &Server{Handler: h, ErrorLog: slog.New(slog.NewTextHandler(io.Discard, nil))}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
}

// nginxToProxy starts nginx → scgi.Serve(p) and returns nginx's base URL. The Go side
// listens on TCP or on a UNIX socket. The site is configured as a Quixote site would be
// (COMPAT.md): SCRIPT_NAME and PATH_INFO supplied, and buffering off for streaming;
// the application at /app/ is mounted with SCRIPT_NAME /app.
func nginxToProxy(t *testing.T, p *Proxy, unix bool) string {
	t.Helper()
	var l net.Listener
	var err error
	pass := ""
	if unix {
		path := unixSocketPath(t, "gw.sock")
		l, err = net.Listen("unix", path)
		pass = "unix:" + path
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
		pass = l.Addr().String()
	}
	require.NoError(t, err)
	serveSCGIOn(t, l, p)
	inst := testnginx.Start(t, testnginx.Config{Locations: fmt.Sprintf(`
        location / {
            include scgi_params;
            scgi_param SCRIPT_NAME "";
            scgi_param PATH_INFO $document_uri;
            scgi_buffering off;
            scgi_pass %[1]s;
        }
        location /app/ {
            include scgi_params;
            scgi_param SCRIPT_NAME /app;
            scgi_buffering off;
            scgi_pass %[1]s;
        }`, pass)})
	return inst.URL
}

// TestProxyThroughNginx runs the core request suite as production has it:
// nginx → scgi.Serve(Proxy) → the real Quixote SCGI server.
func TestProxyThroughNginx(t *testing.T) {
	w := startQuixote(t, testquixote.Options{Children: 3})
	for _, unix := range []bool{false, true} {
		t.Run(fmt.Sprintf("unix=%v", unix), func(t *testing.T) {
			p, _ := newTestProxy(t, w.Addr)
			base := nginxToProxy(t, p, unix)
			runRequestSuite(t, base, "")
			t.Run("SCRIPT_NAME from nginx", func(t *testing.T) {
				runRequestSuite(t, base, "/app")
			})
		})
	}
}

// TestProxyThroughNginxFailures checks what a browser sees through nginx when the
// worker fails.
func TestProxyThroughNginxFailures(t *testing.T) {
	w := startQuixote(t, testquixote.Options{Unix: true, Children: 2})
	p, _ := newTestProxy(t, w.Addr, deadAddr(t))
	base := nginxToProxy(t, p, false)

	resp, err := noRedirect.Get(base + "/die?after=1000")
	require.NoError(t, err)
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Error(t, err, "a worker killed mid-response must not look like a whole response")

	// The dead pool member: GETs keep succeeding (retried, then the dead one rests).
	for range 4 {
		assert.Equal(t, http.StatusOK, getStatus(t, "GET", base+"/hello", nil))
	}
	assert.False(t, p.Stats()[1].Healthy)
}

// TestProxyThroughNginxHostWithPort runs the configuration nginx users write to keep
// the port in Host (Debian's scgi_params sends HTTP_HOST $host, without it):
// `scgi_param HTTP_HOST $http_host;` after `include scgi_params;`, which makes nginx
// send HTTP_HOST twice. The later one counts, as in python-scgi: the Go handler's
// r.Host and the Quixote page's HTTP_HOST keep the port, and so does Quixote's
// absolute redirect.
func TestProxyThroughNginxHostWithPort(t *testing.T) {
	w := startQuixote(t, testquixote.Options{Children: 2})
	p, _ := newTestProxy(t, w.Addr)
	mux := http.NewServeMux()
	mux.Handle("/", p)
	mux.HandleFunc("/go/host", func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(rw, "%s|%s", r.Host, strings.Join(RequestEnv(r).Values("HTTP_HOST"), ","))
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	serveSCGIOn(t, l, mux)
	inst := testnginx.Start(t, testnginx.Config{Locations: fmt.Sprintf(`
        location / {
            include scgi_params;
            scgi_param HTTP_HOST $http_host;
            scgi_pass %s;
        }`, l.Addr())})
	host := inst.Addr // 127.0.0.1:PORT, what the client sent as Host

	resp, err := noRedirect.Get(inst.URL + "/go/host")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "a repeated HTTP_HOST must not be refused")
	assert.Equal(t, host+"|127.0.0.1,"+host, string(body), "nginx sends both; the Go side takes the last")

	e := getEcho(t, noRedirect, newReq(t, "GET", inst.URL+"/env", nil))
	assert.Equal(t, host, e.Env["HTTP_HOST"], "the proxy forwards the host with its port, once")
	assert.Equal(t, "/env", e.Env["PATH_INFO"])

	resp, err = noRedirect.Get(inst.URL + "/redirect?to=/hello")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusFound, resp.StatusCode)
	assert.Equal(t, "http://"+host+"/hello", resp.Header.Get("Location"), "Quixote's absolute redirect keeps the port")
}
