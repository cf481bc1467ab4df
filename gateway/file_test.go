package gateway

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/quixote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
}

const fullConfig = `
[listen]
scgi = "unix:/run/qxbridge/gateway.sock"
metrics = "127.0.0.1:9100"
socket_mode = "0600"
scgi_half_close = true

[sessions]
dir = "/var/lib/shop/sessions"
staging_dir = "/var/lib/shop/staging"
in_place = true
max_idle = "24h"
idle_timeout = "2h"
file_mode = "0640"
max_lifetime = "72h"
new_class = "shop.session.ShopSession"

[[sessions.class]]
name = "shop.session.ShopSession"
kind = "quixote"
max_form_tokens = 8

[cookie]
name = "shop_session"
path = "/"
domain = "shop.example"
secure = true
httponly = true
samesite = "lax"

[limits]
shutdown_timeout = "3s"
backend_max_conns = 5
backend_timeout = "20s"
backend_warm_conns = 1
backend_drain_timeout = "5s"
backend_drain_bytes = 1048576

[log]
format = "json"
level = "warn"

[pool.python]
addresses = ["127.0.0.1:4000", "unix:/run/shop/scgi.sock"]
max_conns = 3
timeout = "5s"
warm_conns = 2

[[route]]
prefix = "/cart/"
target = "demo"

[[route]]
prefix = "/"
target = "python"

[[mount]]
prefix = "/archive/"
target = "scgi://127.0.0.1:4100"
`

// TestConfigFile: every section of the file reaches Config, flags override it, and
// flag routes are added to the file's (replacing one of the same prefix).
func TestConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway.toml")
	writeFile(t, path, fullConfig)
	g := newTestGateway()
	hasInfo := func(*quixote.Session) bool { return true }
	g.Config.Classes = []quixote.Class{{Module: "shop.session", Name: "ShopSession", HasInfo: hasInfo}}
	cfg, used, st, err := g.parseFlags([]string{"-config", path}, io.Discard, noEnv)
	require.NoError(t, err)
	assert.Equal(t, path, st.configFile)
	assert.False(t, used.routes)
	assert.False(t, used.listener)
	assert.Empty(t, cfg.HTTPAddr)
	assert.Equal(t, "unix:/run/qxbridge/gateway.sock", cfg.SCGIAddr)
	assert.Equal(t, "127.0.0.1:9100", cfg.MetricsAddr)
	assert.Equal(t, 0o600, int(cfg.SocketMode))
	assert.True(t, cfg.SCGIHalfClose)
	assert.Equal(t, "/var/lib/shop/sessions", cfg.SessionsDir)
	assert.Equal(t, "/var/lib/shop/staging", cfg.StagingDir)
	assert.True(t, cfg.InPlace)
	assert.Equal(t, 24*time.Hour, cfg.MaxIdle)
	assert.Equal(t, 2*time.Hour, cfg.IdleTimeout)
	assert.Equal(t, 0o640, int(cfg.FileMode))
	assert.Equal(t, 72*time.Hour, cfg.MaxLifetime)
	require.Len(t, cfg.Classes, 1)
	c := cfg.Classes[0]
	assert.Equal(t, "shop.session.ShopSession", c.String())
	assert.Equal(t, quixote.KindQuixote, c.Kind)
	assert.Equal(t, 8, c.MaxFormTokens)
	assert.NotNil(t, c.HasInfo, "the HasInfo the program gave the class is kept")
	newClass, err := resolveClass(cfg.NewClass, cfg.Classes)
	require.NoError(t, err)
	assert.Equal(t, quixote.KindQuixote, newClass.Kind, "new sessions take the class's description")
	assert.Equal(t, quixote.Cookie{Name: "shop_session", Path: "/", Domain: "shop.example", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}, cfg.Cookie)
	assert.Equal(t, 3*time.Second, cfg.ShutdownTimeout)
	assert.Equal(t, 5, cfg.BackendMaxConns)
	assert.Equal(t, 20*time.Second, cfg.BackendTimeout)
	assert.Equal(t, 1, cfg.BackendWarmConns)
	assert.Equal(t, 5*time.Second, cfg.BackendDrainTimeout)
	assert.Equal(t, int64(1<<20), cfg.BackendDrainBytes)
	assert.Equal(t, "json", cfg.LogFormat)
	assert.Equal(t, "WARN", cfg.LogLevel.String())
	assert.Equal(t, map[string]Pool{"python": {Addresses: []string{"127.0.0.1:4000", "unix:/run/shop/scgi.sock"}, MaxConns: 3, Timeout: 5 * time.Second, WarmConns: 2}}, cfg.Pools)
	assert.Equal(t, []Route{{Prefix: "/cart/", Target: "demo"}, {Prefix: "/", Target: "python"}, {Prefix: "/archive/", Target: "scgi://127.0.0.1:4100", Mount: true}}, cfg.Routes)
	p, isPool, err := cfg.pool("scgi://127.0.0.1:4100")
	require.NoError(t, err)
	assert.True(t, isPool)
	assert.Equal(t, Pool{Addresses: []string{"127.0.0.1:4100"}, MaxConns: 5, Timeout: 20 * time.Second, WarmConns: 1,
		drainTimeout: 5 * time.Second, drainBytes: 1 << 20}, p, "an address pool takes the global limits")

	cfg, _, _, err = g.parseFlags([]string{"-config", path, "-cookie-name", "sid", "-log-level", "debug",
		"-route", "/cart=python", "-route", "/counter=demo"}, io.Discard, noEnv)
	require.NoError(t, err)
	assert.Equal(t, "sid", cfg.Cookie.Name)
	assert.Equal(t, "/", cfg.Cookie.Path, "the rest of the file stays")
	assert.Equal(t, "DEBUG", cfg.LogLevel.String())
	assert.Equal(t, []Route{{Prefix: "/", Target: "python"}, {Prefix: "/archive/", Target: "scgi://127.0.0.1:4100", Mount: true},
		{Prefix: "/cart", Target: "python"}, {Prefix: "/counter", Target: "demo"}}, cfg.Routes)
}

// TestConfigFileErrors: a file that cannot be used is refused with an error naming
// the file and what is wrong.
func TestConfigFileErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ text, msg string }{
		{"[listen]\nhtp = \"x\"\n", "unknown key listen.htp"},
		{"[[route]\nprefix = \"/\"\n", "line 2: expected end of table array name"},
		{"[listen]\nsocket_mode = \"999\"\n", "octal"},
		{"[cookie]\nsamesite = \"sometimes\"\n", "lax, strict or none"},
		{"[sessions]\nmax_idle = \"soon\"\n", "max_idle"},
		{"[[sessions.class]]\nname = \"Session\"\n", "dotted Python class"},
		{"[[route]]\nprefix = \"/\"\ntarget = \"reports\"\n", `no Go handler is registered as "reports"`},
		{"[[route]]\nprefix = \"x\"\ntarget = \"demo\"\n", "must start with /"},
		{"[pool.py]\naddresses = []\n[[route]]\nprefix = \"/\"\ntarget = \"py\"\n", "pool py: no addresses"},
		{"[pool.py]\naddresses = [\"nohost\"]\n[[route]]\nprefix = \"/\"\ntarget = \"py\"\n", `"nohost" is not host:port`},
		{"[pool.demo]\naddresses = [\"127.0.0.1:1\"]\n[[route]]\nprefix = \"/\"\ntarget = \"demo\"\n", "names both a pool and a Go handler"},
		{"[log]\nformat = \"xml\"\n", `log format "xml"`},
	} {
		path := filepath.Join(dir, "bad.toml")
		writeFile(t, path, tc.text)
		_, _, _, err := newTestGateway().parseFlags([]string{"-config", path}, io.Discard, noEnv)
		if assert.Error(t, err, tc.text) {
			assert.Contains(t, err.Error(), tc.msg, tc.text)
		}
	}
	_, _, _, err := newTestGateway().parseFlags([]string{"-config", filepath.Join(dir, "missing.toml")}, io.Discard, noEnv)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// TestReloadSIGHUP: SIGHUP applies the file's new routes and pools while a request
// is in flight on the old ones (it completes), on the same listener and keep-alive
// connection; a bad file is refused with a clear error and the running configuration
// stays.
func TestReloadSIGHUP(t *testing.T) {
	w := startQuixote(t)
	tmp := t.TempDir()
	path := filepath.Join(tmp, "gateway.toml")
	head := `
[listen]
http = "127.0.0.1:0"
metrics = "127.0.0.1:0"
[sessions]
dir = "` + filepath.Join(tmp, "sessions") + `"
[pool.py]
addresses = ["` + w.Addr + `"]
[[mount]]
prefix = "/py/"
target = "py"
`
	writeFile(t, path, head+"[[route]]\nprefix = \"/\"\ntarget = \"demo\"\n")
	p := startGatewayProcess(t, 2, nil, nil, "", "-config", path)
	u := "http://" + p.addrs["http"]

	// One keep-alive connection, used before and after the reload.
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	reused := func(url string) (int, bool) {
		var info httptrace.GotConnInfo
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(),
			&httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { info = i }}), "GET", url, nil)
		require.NoError(t, err)
		resp, err := c.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, info.Reused
	}
	status, _ := reused(u + "/")
	require.Equal(t, 200, status)

	slow := make(chan response, 1)
	go func() { slow <- get(t, &http.Client{Timeout: 20 * time.Second}, u+"/py/sleep?s=1.5") }()
	waitInFlight(t, p.addrs["metrics"], 1)

	writeFile(t, path, head+"[[mount]]\nprefix = \"/demo2/\"\ntarget = \"demo\"\n")
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	waitLog(t, p, "msg=reloaded")

	status, wasReused := reused(u + "/")
	assert.Equal(t, http.StatusNotFound, status, "the / route is gone")
	assert.True(t, wasReused, "the connection made before the reload still serves")
	status, _ = reused(u + "/demo2/check")
	assert.Equal(t, http.StatusOK, status, "the new route serves")
	r := <-slow
	assert.Equal(t, http.StatusOK, r.Status, "the request in flight finished")
	assert.Equal(t, "slept\n", r.Body)

	// A bad file, then a file naming a handler that does not exist: both refused.
	writeFile(t, path, head+"[[route]\n")
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	waitLog(t, p, "reload refused")
	writeFile(t, path, head+"[[route]]\nprefix = \"/\"\ntarget = \"nothing\"\n")
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	waitLog(t, p, `no Go handler is registered as \"nothing\"`)
	status, _ = reused(u + "/demo2/check")
	assert.Equal(t, http.StatusOK, status, "the running configuration stays")
	assert.Equal(t, "hello from python\n", get(t, c, u+"/py/hello").Body)

	m := scrape(t, p.addrs["metrics"])
	assert.Contains(t, m, `qxbridge_config_reloads_total{result="ok"} 1`+"\n")
	assert.Contains(t, m, `qxbridge_config_reloads_total{result="refused"} 2`+"\n")
	logs := p.log.String()
	assert.Contains(t, logs, path, "the refusal names the file")
	assert.Equal(t, 2, strings.Count(logs, "msg=listening"), "no listener was opened again")
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 0, p.wait(t, 10*time.Second))
}

// waitLog waits until the gateway process has logged text.
func waitLog(t *testing.T, p *gatewayProcess, text string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.log.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not log %q:\n%s", text, p.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestVersionAndSessionsConfig: -version prints the build information; the sessions
// commands find the session directory in the configuration file.
func TestVersionAndSessionsConfig(t *testing.T) {
	var out, errOut strings.Builder
	require.Equal(t, 0, newTestGateway().Run(t.Context(), []string{"-version"}, &out, &errOut), errOut.String())
	assert.Regexp(t, `^scgi-gateway: qxbridge \S+\nprogram   \S+\nrevision  \S+`, out.String())
	assert.Contains(t, out.String(), "go        go1.")

	dir := fixtureDir(t)
	path := filepath.Join(t.TempDir(), "gateway.toml")
	writeFile(t, path, "[sessions]\ndir = \""+dir+"\"\n")
	out.Reset()
	require.Equal(t, 0, newTestGateway().Run(t.Context(), []string{"sessions", "-config", path, "list"}, &out, &errOut), errOut.String())
	assert.Contains(t, out.String(), "session3.Session.Session")
}

// TestDocConfigExample: the configuration file shown in the package documentation
// is one the gateway reads.
func TestDocConfigExample(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	require.NoError(t, err)
	text := string(doc)
	start := strings.Index(text, "// # Configuration file")
	end := strings.Index(text, "// The routes of the file")
	require.True(t, start > 0 && end > start)
	var toml strings.Builder
	for _, line := range strings.Split(text[start:end], "\n") {
		if l, ok := strings.CutPrefix(line, "//\t"); ok {
			toml.WriteString(l + "\n")
		}
	}
	path := filepath.Join(t.TempDir(), "doc.toml")
	writeFile(t, path, toml.String())
	cfg := defaultConfig()
	hasRoutes, err := loadFile(path, &cfg)
	require.NoError(t, err)
	assert.True(t, hasRoutes)
	assert.Len(t, cfg.Routes, 5)
	assert.Contains(t, cfg.Routes, Route{Prefix: "/cart/", Target: "python", Candidate: "cart", Shadow: true, Rollout: 10, Fallback: true})
	assert.Equal(t, defaultCutover().MaxBody, cfg.Cutover.MaxBody)
	assert.Len(t, cfg.Cutover.Replace, 1)
	assert.Equal(t, Route{Prefix: "/static/", Target: "python", Unordered: true}, cfg.Routes[1])
	assert.Equal(t, Ordering{MaxQueue: 15, MaxWait: 30 * time.Second, LockDir: "/var/lib/myapp/sessions.locks"}, cfg.Ordering)
	assert.Equal(t, "unix:/run/qxbridge/gateway.sock", cfg.SCGIAddr)
	assert.NoError(t, cfg.validate())
}

// TestReload: Reload swaps the routes of an open gateway, keeps a pool whose route and
// limits did not change (with its state), and refuses an invalid configuration,
// keeping the running one.
func TestReload(t *testing.T) {
	g := newTestGateway()
	g.Logger = discardLogger()
	g.Config.SessionsDir = t.TempDir()
	g.Config.Routes = []Route{{Prefix: "/", Target: "demo"}, {Prefix: "/py/", Target: "scgi://127.0.0.1:1", Mount: true}}
	require.ErrorContains(t, g.Reload(g.Config), "before Open")
	require.NoError(t, g.Open())
	defer g.Close()
	serve := func(path string) int {
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code
	}
	pyProxy := g.table.Load().lookup("/py/x").proxy
	require.NotNil(t, pyProxy)
	assert.Equal(t, http.StatusOK, serve("/"))

	cfg := g.Config.clone()
	cfg.Routes = []Route{{Prefix: "/py/", Target: "scgi://127.0.0.1:1", Mount: true}, {Prefix: "/demo/", Target: "demo", Mount: true}}
	require.NoError(t, g.Reload(cfg))
	assert.Equal(t, http.StatusNotFound, serve("/"))
	assert.Equal(t, http.StatusOK, serve("/demo/"))
	assert.Same(t, pyProxy, g.table.Load().lookup("/py/x").proxy, "an unchanged pool is kept")
	assert.Equal(t, cfg.Routes, g.Config.Routes)

	cfg.BackendMaxConns = 3
	require.NoError(t, g.Reload(cfg))
	assert.NotSame(t, pyProxy, g.table.Load().lookup("/py/x").proxy, "a pool whose limits changed is new")
	pyProxy = g.table.Load().lookup("/py/x").proxy
	assert.Zero(t, pyProxy.WarmConns)
	cfg.BackendWarmConns = 1
	require.NoError(t, g.Reload(cfg))
	assert.NotSame(t, pyProxy, g.table.Load().lookup("/py/x").proxy, "so is one whose warm connections changed")
	assert.Equal(t, 1, g.table.Load().lookup("/py/x").proxy.WarmConns)
	pyProxy = g.table.Load().lookup("/py/x").proxy
	assert.Zero(t, pyProxy.DrainTimeout, "the proxy's defaults")
	cfg.BackendDrainTimeout, cfg.BackendDrainBytes = 2*time.Second, 1<<20
	require.NoError(t, g.Reload(cfg))
	assert.NotSame(t, pyProxy, g.table.Load().lookup("/py/x").proxy, "and one whose drain limits changed")
	assert.Equal(t, 2*time.Second, g.table.Load().lookup("/py/x").proxy.DrainTimeout)
	assert.Equal(t, int64(1<<20), g.table.Load().lookup("/py/x").proxy.DrainBytes)

	for _, bad := range [][]Route{
		{{Prefix: "/", Target: "nothing"}},
		{{Prefix: "/", Target: "demo"}, {Prefix: "/", Target: "scgi://127.0.0.1:1"}},
		{{Prefix: "nope", Target: "demo"}},
	} {
		cfg.Routes = bad
		assert.Error(t, g.Reload(cfg), "%v", bad)
	}
	assert.Equal(t, http.StatusOK, serve("/demo/"), "the running configuration stays")
	assert.Equal(t, []Route{{Prefix: "/py/", Target: "scgi://127.0.0.1:1", Mount: true}, {Prefix: "/demo/", Target: "demo", Mount: true}}, g.Config.Routes)
}

// TestOpenAndServe: the library without Main. An Open that fails (a route to no
// handler) can be retried once the configuration is fixed; Serve and ServeSCGI
// started at once open the gateway once; Shutdown ends them with
// http.ErrServerClosed.
func TestOpenAndServe(t *testing.T) {
	g := New()
	g.Logger = discardLogger()
	g.HandleFunc("hello", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello\n")
	})
	g.Config.SessionsDir = t.TempDir()
	g.Config.Routes = []Route{{Prefix: "/", Target: "nothing"}}
	require.ErrorContains(t, g.Open(), `no Go handler is registered as "nothing" (registered: hello)`)
	g.Config.Routes = []Route{{Prefix: "/", Target: "hello"}}

	hl, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sl, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	errc := make(chan error, 2)
	go func() { errc <- g.Serve(hl) }()
	go func() { errc <- g.ServeSCGI(sl) }()
	var r response
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + hl.Addr().String() + "/x")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r = response{Status: resp.StatusCode, Body: string(b)}
		return true
	}, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, response{Status: 200, Body: "hello\n"}, r)

	require.NoError(t, g.Shutdown(t.Context()))
	assert.ErrorIs(t, <-errc, http.ErrServerClosed)
	assert.ErrorIs(t, <-errc, http.ErrServerClosed)
	assert.ErrorIs(t, g.Serve(hl), http.ErrServerClosed, "no serving after Shutdown")
}

// TestSessionClasses: the application's classes declared in the configuration file
// reach the session manager: a new session of the configured class behaves like the
// built-in class it derives from (a DictSession's data), with its MAX_FORM_TOKENS.
func TestSessionClasses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gateway.toml")
	writeFile(t, path, `
[sessions]
dir = "`+filepath.Join(dir, "sessions")+`"
new_class = "shop.session.ShopSession"
[[sessions.class]]
name = "shop.session.ShopSession"
kind = "dict"
max_form_tokens = 2
[[route]]
prefix = "/"
target = "show"
`)
	g := New()
	g.Logger = discardLogger()
	g.HandleFunc("show", func(w http.ResponseWriter, r *http.Request) {
		s := quixote.SessionFrom(r)
		for range 3 {
			s.CreateFormToken()
		}
		fmt.Fprintln(w, s.Class(), s.Class().Kind, s.Data() != nil, len(s.FormTokens()))
	})
	cfg, _, _, err := g.parseFlags([]string{"-config", path}, io.Discard, noEnv)
	require.NoError(t, err)
	g.Config = cfg
	require.NoError(t, g.Open())
	defer g.Close()
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	assert.Equal(t, "shop.session.ShopSession dictsession true 2\n", rec.Body.String())
}
