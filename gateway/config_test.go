package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/qxbridge/qxbridge/quixote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func noEnv(string) string { return "" }

func parseServeFlags(args []string, stderr io.Writer, getenv func(string) string) (Config, error) {
	cfg, _, _, err := newTestGateway().parseFlags(args, stderr, getenv)
	return cfg, err
}

func TestFlagsDefaults(t *testing.T) {
	cfg, used, _, err := newTestGateway().parseFlags(nil, io.Discard, noEnv)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:8080", cfg.HTTPAddr)
	assert.Equal(t, "sessions", cfg.SessionsDir)
	assert.Empty(t, cfg.StagingDir)
	assert.Equal(t, []Route{{Prefix: "/", Target: "demo"}}, cfg.Routes)
	assert.True(t, used.routes)
	assert.True(t, used.listener)
	assert.Equal(t, quixote.Session3Class, cfg.NewClass)
	assert.Equal(t, "QX_session", cfg.Cookie.Name)
	assert.Equal(t, 0o660, int(cfg.SocketMode))

	// Only an SCGI listener: no HTTP one is added.
	cfg, used, _, err = newTestGateway().parseFlags([]string{"-scgi", "unix:/tmp/x.sock"}, io.Discard, noEnv)
	require.NoError(t, err)
	assert.Empty(t, cfg.HTTPAddr)
	assert.False(t, used.listener)

	// Socket activation replaces the default listener.
	cfg, err = parseServeFlags(nil, io.Discard, func(k string) string { return map[string]string{"LISTEN_FDS": "1"}[k] })
	require.NoError(t, err)
	assert.Empty(t, cfg.HTTPAddr)
}

// TestTryRoutes: TryRoutes serve only a command line that names no deployment.
func TestTryRoutes(t *testing.T) {
	g := New()
	g.Handle("demo", http.NotFoundHandler())
	g.TryRoutes = []Route{{Prefix: "/", Target: "demo"}}
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tc := range []struct {
		args   []string
		getenv func(string) string
		want   []Route // nil: refused, "no routes"
	}{
		{nil, noEnv, g.TryRoutes},
		{[]string{"-http", ":0", "-metrics", ":0", "-max-idle", "1h"}, noEnv, g.TryRoutes},
		{nil, env("LISTEN_FDS", "2", "LISTEN_FDNAMES", "http:metrics"), g.TryRoutes},
		{nil, env("LISTEN_FDS", "1"), nil},
		{nil, env("LISTEN_FDS", "2", "LISTEN_FDNAMES", "http"), nil},
		{[]string{"-sessions", "/var/lib/myapp/sessions"}, noEnv, nil},
		{[]string{"-scgi", "unix:/run/gw.sock"}, noEnv, nil},
		{[]string{"-sessions", "sessions"}, noEnv, nil}, // named, even as the default
		{[]string{"-route", "/x/=demo"}, noEnv, []Route{{Prefix: "/x/", Target: "demo"}}},
	} {
		cfg, _, _, err := g.parseFlags(tc.args, io.Discard, tc.getenv)
		if tc.want == nil {
			if assert.Error(t, err, "%v", tc.args) {
				assert.Equal(t, "no routes: give -route PREFIX=TARGET or -mount PREFIX=TARGET, or [[route]] in the configuration file "+
					"(demo at / serves only when none of -route, -mount, -config, -sessions, -scgi is given)", err.Error())
			}
			continue
		}
		if assert.NoError(t, err, "%v", tc.args) {
			assert.Equal(t, tc.want, cfg.Routes, "%v", tc.args)
		}
	}
}

func TestFlagsRoutes(t *testing.T) {
	cfg, err := parseServeFlags([]string{
		"-route", "/counter=demo",
		"-route", "/=scgi://127.0.0.1:4000,[::1]:4001,py.internal:4002",
		"-mount", "/app/=scgi+unix:///run/app.sock",
		"-cookie-path", "/", "-cookie-domain", "example.org", "-cookie-secure", "-cookie-httponly", "-cookie-samesite", "Lax",
		"-cookie-name", "sid", "-session-class", "myapp.sessions.Shop", "-session-kind", "quixote",
		"-socket-mode", "0600", "-max-idle", "24h", "-staging-dir", "/var/lib/myapp/staging",
		"-idle-timeout", "30m", "-max-lifetime", "12h", "-file-mode", "0600", "-scgi-half-close",
		"-backend-drain-timeout", "-1s", "-backend-drain-bytes", "4096",
	}, io.Discard, noEnv)
	require.NoError(t, err)
	assert.Equal(t, []Route{
		{Prefix: "/counter", Target: "demo"},
		{Prefix: "/", Target: "scgi://127.0.0.1:4000,[::1]:4001,py.internal:4002"},
		{Prefix: "/app/", Target: "scgi+unix:///run/app.sock", Mount: true},
	}, cfg.Routes)
	backends, err := parseTarget(cfg.Routes[1].Target)
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1:4000", "[::1]:4001", "py.internal:4002"}, backends)
	backends, err = parseTarget(cfg.Routes[2].Target)
	require.NoError(t, err)
	assert.Equal(t, []string{"unix:/run/app.sock"}, backends)
	assert.Equal(t, quixote.Cookie{Name: "sid", Path: "/", Domain: "example.org", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}, cfg.Cookie)
	assert.Equal(t, quixote.Class{Module: "myapp.sessions", Name: "Shop", Kind: quixote.KindQuixote}, cfg.NewClass)
	assert.Equal(t, 0o600, int(cfg.SocketMode))
	assert.Equal(t, "24h0m0s", cfg.MaxIdle.String())
	assert.Equal(t, 30*time.Minute, cfg.IdleTimeout)
	assert.Equal(t, 12*time.Hour, cfg.MaxLifetime)
	assert.Equal(t, 0o600, int(cfg.FileMode))
	assert.Equal(t, "/var/lib/myapp/staging", cfg.StagingDir)
	assert.True(t, cfg.SCGIHalfClose)
	assert.Equal(t, -time.Second, cfg.BackendDrainTimeout, "negative: close at once")
	assert.Equal(t, int64(4096), cfg.BackendDrainBytes)

	cfg, err = parseServeFlags([]string{"-session-class", "session3.DictSession.DictSession"}, io.Discard, noEnv)
	require.NoError(t, err)
	assert.Equal(t, quixote.DictSessionClass, cfg.NewClass)

	// Every Kind by the name its String gives, and "dict".
	for _, k := range []quixote.Kind{quixote.KindSession3, quixote.KindDictSession, quixote.KindQuixote, quixote.KindSession4} {
		cfg, err = parseServeFlags([]string{"-session-class", "myapp.S", "-session-kind", k.String()}, io.Discard, noEnv)
		require.NoError(t, err, k.String())
		assert.Equal(t, quixote.Class{Module: "myapp", Name: "S", Kind: k}, cfg.NewClass)
	}
	cfg, err = parseServeFlags([]string{"-session-class", "myapp.S", "-session-kind", "dict"}, io.Discard, noEnv)
	require.NoError(t, err)
	assert.Equal(t, quixote.KindDictSession, cfg.NewClass.Kind)
}

func TestFlagsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-route", "counter=demo"}, "must start with /"},
		{[]string{"-route", "/x"}, "want PREFIX=TARGET"},
		{[]string{"-route", "/x=http://a:1"}, "unknown target"},
		{[]string{"-route", "/x=reports"}, `no Go handler is registered as "reports" (registered: demo)`},
		{[]string{"-route", "/x=scgi://a"}, "not HOST:PORT"},
		{[]string{"-route", "/x=scgi://a:0"}, "bad port"},
		{[]string{"-route", "/x=scgi://a:1/path"}, "not HOST:PORT"},
		{[]string{"-route", "/x=scgi+unix://rel.sock"}, "absolute"},
		{[]string{"-route", "/../x=demo"}, "plain path"},
		{[]string{"-route", "/a//b=demo"}, "plain path"},
		{[]string{"-mount", "/=demo"}, "mounting at /"},
		{[]string{"-route", "/a=demo", "-mount", "/a/=demo"}, "cover the same prefix"},
		{[]string{"-socket-mode", "999"}, "octal"},
		{[]string{"-cookie-samesite", "sometimes"}, "lax, strict or none"},
		{[]string{"-cookie-name", "a b"}, "not a cookie name"},
		{[]string{"-cookie-name", "$sid"}, "ignores names starting with $"},
		{[]string{"-session-class", "Session"}, "dotted Python class"},
		{[]string{"-session-kind", "other"}, "session3, dict (or dictsession), quixote or session4"},
		{[]string{"-log-level", "loud"}, "-log-level"},
		{[]string{"-log-format", "xml"}, "log format \"xml\""},
		{[]string{"extra"}, "unexpected argument"},
		{[]string{"-sessions", ""}, "session directory must be named"},
	} {
		_, err := parseServeFlags(tc.args, io.Discard, noEnv)
		if assert.Error(t, err, "%v", tc.args) {
			assert.Contains(t, err.Error(), tc.msg, "%v", tc.args)
		}
	}
}

func TestRunUsageErrors(t *testing.T) {
	var stderr strings.Builder
	assert.Equal(t, 2, newTestGateway().Run(t.Context(), []string{"-route", "nope"}, io.Discard, &stderr))
	assert.Contains(t, stderr.String(), "want PREFIX=TARGET")
	stderr.Reset()
	assert.Equal(t, 0, newTestGateway().Run(t.Context(), []string{"-help"}, io.Discard, &stderr))
	assert.Contains(t, stderr.String(), "usage: scgi-gateway")
	assert.Contains(t, stderr.String(), "-mount PREFIX=TARGET")

	// A listener that cannot be opened is reported, with exit status 1.
	stderr.Reset()
	busy := startGateway(t, "-http", "127.0.0.1:0", "-sessions", t.TempDir())
	assert.Equal(t, 1, newTestGateway().Run(t.Context(), []string{"-http", busy.addr("http"), "-sessions", t.TempDir()}, io.Discard, &stderr))
	assert.Contains(t, stderr.String(), "cannot listen")
}

func TestRouterLongestPrefix(t *testing.T) {
	mk := func(prefix string) *route {
		return &route{Route: Route{Prefix: prefix}, handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, prefix)
		})}
	}
	rt := newRouterForTest([]*route{mk("/"), mk("/app/"), mk("/app/admin"), mk("/counter")})
	for path, want := range map[string]string{
		"/":             "/",
		"/x":            "/",
		"/app":          "/app/",
		"/app/":         "/app/",
		"/app/x":        "/app/",
		"/apple":        "/",
		"/app/admin":    "/app/admin",
		"/app/admin/u":  "/app/admin",
		"/app/adminx":   "/app/",
		"/counter":      "/counter",
		"/counter/":     "/counter",
		"/counterfeit":  "/",
		"/app/./admin/": "redirect",
	} {
		rec := httptest.NewRecorder()
		rt.ServeHTTP(rec, httptest.NewRequest("GET", "http://x"+path, nil))
		if want == "redirect" {
			assert.Equal(t, http.StatusMovedPermanently, rec.Code, path)
			assert.Equal(t, "/app/admin/", rec.Header().Get("Location"))
			continue
		}
		assert.Equal(t, want, rec.Body.String(), path)
	}

	rt = newRouterForTest([]*route{mk("/app/")})
	rec := httptest.NewRecorder()
	rt.ServeHTTP(rec, httptest.NewRequest("GET", "/other", nil))
	assert.Equal(t, http.StatusNotFound, rec.Code, "no route: 404")
}

// newRouterForTest returns a gateway serving a routing table of the given routes.
func newRouterForTest(routes []*route) *Gateway {
	g := &Gateway{Logger: discardLogger(), metrics: newGatewayMetrics(prometheus.NewRegistry())}
	g.table.Store(newTable(routes))
	return g
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"/": "/", "/a/b": "/a/b", "/a/b/": "/a/b/", "/a//b": "/a/b", "/a/../b": "/b",
		"/../x": "/x", "/a/./": "/a/", "": "", "/..": "/",
	} {
		assert.Equal(t, want, cleanPath(in), in)
	}
}
