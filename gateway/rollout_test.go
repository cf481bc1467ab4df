package gateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBucketMonotonic: raising a percentage only adds sessions to Go, and the buckets
// are spread evenly enough for a percentage to mean what it says.
func TestBucketMonotonic(t *testing.T) {
	const n = 20000
	count := map[uint64]int{}
	for i := range n {
		id := fmt.Sprintf("id%06d", i)
		b := bucket(id)
		require.Less(t, b, uint64(10000))
		for _, pct := range []float64{10, 20, 30, 50} {
			if b < basisPoints(pct) {
				count[basisPoints(pct)]++
			}
		}
	}
	for _, pct := range []uint64{1000, 2000, 3000, 5000} {
		share := float64(count[pct]) / n * 10000
		assert.InDelta(t, float64(pct), share, 300, "%d basis points", pct)
	}
	assert.Equal(t, uint64(3000), basisPoints(30))
	assert.Equal(t, uint64(1), basisPoints(0.01))
	assert.Equal(t, bucket("Xk3vQ9_aZ1b"), bucket("Xk3vQ9_aZ1b"))
}

func TestUnifiedDiff(t *testing.T) {
	assert.Empty(t, unifiedDiff("a", "b", "x\n", "x\n"))
	a := "1\n2\n3\n4\n5\n6\n7\n8\n"
	b := "1\n2\n3\n4\nfive\n6\n7\n8\n"
	assert.Equal(t, "--- a\n+++ b\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n", unifiedDiff("a", "b", a, b))
	assert.Equal(t, "--- a\n+++ b\n@@ -1,2 +1,3 @@\n x\n+y\n z\n", unifiedDiff("a", "b", "x\nz\n", "x\ny\nz\n"))
	assert.Equal(t, "--- a\n+++ b\n@@ -0,0 +1,1 @@\n+x\n", unifiedDiff("a", "b", "", "x\n"))
}

// TestCutoverNormalise: the replacement rules and IgnoreSpace decide what counts as
// the same answer.
func TestCutoverNormalise(t *testing.T) {
	c := &cutover{cfg: Cutover{Replace: []Replace{{`name="_form_token" value="[^"]*"`, `name="_form_token" value="TOKEN"`}}, IgnoreSpace: true}}
	for _, r := range c.cfg.Replace {
		c.replace = append(c.replace, regexp.MustCompile(r.Pattern))
	}
	py := "<form>\n  <input name=\"_form_token\" value=\"abc\">\n</form>\n"
	goText := "<form><input name=\"_form_token\" value=\"xyz\"></form>"
	assert.Equal(t, c.normalise(py), c.normalise(goText))
	assert.NotEqual(t, c.normalise(py), c.normalise(strings.Replace(goText, "input", "textarea", 1)))
}

// TestCutoverConfig: the flags and the configuration file set a route's candidate,
// percentage, shadow and fallback, and the cutover settings; wrong ones are refused.
func TestCutoverConfig(t *testing.T) {
	cfg, err := parseServeFlags([]string{"-route", "/cart/=scgi://127.0.0.1:4000", "-candidate", "/cart/=demo",
		"-rollout", "/cart=12.5", "-shadow", "/cart/", "-fallback", "/cart/", "-safe-methods", "GET,HEAD,OPTIONS",
		"-shadow-replace", `\d+=>N`, "-shadow-ignore-space", "-override-cookie", "QX_route", "-override-token", "tok"}, io.Discard, noEnv)
	require.NoError(t, err)
	require.Len(t, cfg.Routes, 1)
	assert.Equal(t, Route{Prefix: "/cart/", Target: "scgi://127.0.0.1:4000", Candidate: "demo", Rollout: 12.5, Shadow: true, Fallback: true}, cfg.Routes[0])
	assert.Equal(t, []string{"GET", "HEAD", "OPTIONS"}, cfg.Cutover.SafeMethods)
	assert.Equal(t, []Replace{{`\d+`, "N"}}, cfg.Cutover.Replace)
	assert.True(t, cfg.Cutover.IgnoreSpace)
	assert.Empty(t, cfg.Cutover.OverrideHeader, "off unless configured")
	assert.Equal(t, DefaultOverrideCookie, cfg.Cutover.OverrideCookie)
	assert.Equal(t, "tok", cfg.Cutover.OverrideToken)
	assert.Equal(t, DefaultRolloutCookie, cfg.Cutover.RolloutCookie)

	path := filepath.Join(t.TempDir(), "gw.toml")
	writeFile(t, path, `
[cutover]
safe_methods = ["GET"]
compare_headers = ["Content-Type"]
rollout_cookie = ""
override_header = "X-Staff-Side"
override_token = "from-file"
max_shadows = 2
samples = 5
max_body = 4096
ignore_space = true
[[cutover.replace]]
pattern = 'value="[^"]*"'
with = 'value=""'
[[route]]
prefix = "/cart/"
target = "scgi://127.0.0.1:4000"
candidate = "demo"
rollout = 30
shadow = true
fallback = true
`)
	cfg, err = parseServeFlags([]string{"-config", path, "-rollout", "/cart/=40"}, io.Discard, noEnv)
	require.NoError(t, err)
	assert.Equal(t, Route{Prefix: "/cart/", Target: "scgi://127.0.0.1:4000", Candidate: "demo", Rollout: 40, Shadow: true, Fallback: true}, cfg.Routes[0])
	assert.Equal(t, Cutover{SafeMethods: []string{"GET"}, CompareHeaders: []string{"Content-Type"}, OverrideHeader: "X-Staff-Side",
		OverrideToken: "from-file", Replace: []Replace{{`value="[^"]*"`, `value=""`}}, IgnoreSpace: true,
		MaxShadows: 2, Samples: 5, MaxBody: 4096}, cfg.Cutover)

	for args, want := range map[string]string{
		"-route /cart/=scgi://127.0.0.1:4000 -rollout /cart/=30":                         "need a Go candidate",
		"-route /cart/=scgi://127.0.0.1:4000 -candidate /cart/=nothing":                  `no Go handler is registered as "nothing"`,
		"-route /cart/=demo -candidate /cart/=demo":                                      "a candidate replaces a Python route",
		"-route /cart/=scgi://127.0.0.1:4000 -candidate /shop/=demo":                     "-candidate /shop/: no route has that prefix",
		"-route /cart/=scgi://127.0.0.1:4000 -candidate /cart/=demo -rollout /cart/=101": "want a percentage from 0 to 100",
		"-route /cart/=scgi://127.0.0.1:4000 -shadow-replace (=>x":                       "missing closing )",
	} {
		_, err := parseServeFlags(strings.Fields(args), io.Discard, noEnv)
		if strings.Contains(want, "candidate replaces") {
			// The flags accept it; building the routing table refuses it.
			require.NoError(t, err, args)
			g := newTestGateway()
			g.Config, g.Config.SessionsDir = cfg, t.TempDir()
			g.Config.Routes = []Route{{Prefix: "/cart/", Target: "demo", Candidate: "demo"}}
			err = g.Open()
		}
		require.Error(t, err, args)
		assert.Contains(t, err.Error(), want, args)
	}
}

// TestHoldWriter: a held answer goes out whole when it is not a failure, and one too
// big to hold goes out as it comes, after which no fallback is possible.
func TestHoldWriter(t *testing.T) {
	rec := httptest.NewRecorder()
	h := &holdWriter{w: rec, max: 8, header: http.Header{}}
	h.Header().Set("X-A", "1")
	_, _ = h.Write([]byte("small"))
	assert.False(t, h.sent)
	assert.Empty(t, rec.Body.String())
	require.NoError(t, h.send())
	assert.Equal(t, "small", rec.Body.String())
	assert.Equal(t, "1", rec.Header().Get("X-A"))

	rec = httptest.NewRecorder()
	h = &holdWriter{w: rec, max: 8, header: http.Header{}}
	h.WriteHeader(http.StatusAccepted)
	_, _ = h.Write([]byte("12345"))
	_, _ = h.Write([]byte("67890"))
	assert.True(t, h.sent)
	assert.Equal(t, http.StatusAccepted, rec.Code)
	assert.Equal(t, "1234567890", rec.Body.String())
}

// TestShadowDroppedWhenBusy: with every shadow slot taken, a request is served
// without a shadow run and counted as dropped; the user's answer never waits for a
// shadow run.
func TestShadowDroppedWhenBusy(t *testing.T) {
	g := New()
	g.Logger = discardLogger()
	gate := make(chan struct{})
	g.HandleFunc("slow", func(w http.ResponseWriter, r *http.Request) {
		<-gate
		_, _ = io.WriteString(w, "go")
	})
	g.Config.SessionsDir = t.TempDir()
	g.Config.Cutover.MaxShadows = 1
	// Nothing listens there: Python's side is the gateway's own 502, quickly.
	g.Config.Routes = []Route{{Prefix: "/x/", Target: "scgi://" + freeAddr(t), Candidate: "slow", Shadow: true}}
	require.NoError(t, g.Open())
	serve := func() int { // the pool's 502 or, once it rests its backend, 503
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x/page", nil))
		return rec.Code / 100
	}
	assert.Equal(t, 5, serve(), "answered while its shadow run waits")
	assert.Equal(t, 5, serve())
	rep := g.cutover.report("/x/", DefaultShadowSamples)
	assert.Equal(t, uint64(1), rep.copy().Counts[outcomeDropped])
	close(gate)
	require.Eventually(t, func() bool { return rep.copy().Counts[outcomeDiffers] == 1 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, 5, serve())
	require.Eventually(t, func() bool { return rep.copy().Counts[outcomeDiffers] == 2 }, 10*time.Second, time.Millisecond,
		"the slot was given back")
}

// TestFallbackHeld: a safe request's failing answer from the candidate is replaced by
// Python's (here the pool's own 502 or 503: nothing listens); one too big to hold has
// already gone out and stays; an unsafe request gets the candidate's answer.
func TestFallbackHeld(t *testing.T) {
	g := New()
	g.Logger = discardLogger()
	g.HandleFunc("failing", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, strings.Repeat("x", len(r.URL.Query().Get("size"))))
	})
	g.Config.SessionsDir = t.TempDir()
	g.Config.Cutover.MaxBody = 8
	g.Config.Routes = []Route{{Prefix: "/x/", Target: "scgi://" + freeAddr(t), Candidate: "failing", Rollout: 100, Fallback: true}}
	require.NoError(t, g.Open())
	serve := func(method, target string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
		return rec
	}
	r := serve(http.MethodGet, "/x/?size=small")
	assert.Contains(t, []int{http.StatusBadGateway, http.StatusServiceUnavailable}, r.Code, "Python's answer")
	assert.NotContains(t, r.Body.String(), "x")
	r = serve(http.MethodGet, "/x/?size=much-more-than-eight-bytes")
	assert.Equal(t, http.StatusInternalServerError, r.Code, "sent before its failure was known")
	assert.Equal(t, strings.Repeat("x", 26), r.Body.String())
	r = serve(http.MethodPost, "/x/?size=small")
	assert.Equal(t, http.StatusInternalServerError, r.Code)
	assert.Equal(t, "xxxxx", r.Body.String())
	assert.Equal(t, 1.0, testutil.ToFloat64(g.cutover.metrics.fallbacks.WithLabelValues("/x/", "status")))
}

// TestRolloutPercentFollowsReload: qxbridge_rollout_percent has one series per route
// with a candidate in the routing table in use: a reload that changes a percentage
// changes its value, one that removes a route, or the candidate of a route, removes
// its series, and a reload that is refused changes nothing.
func TestRolloutPercentFollowsReload(t *testing.T) {
	g := New()
	g.Logger = discardLogger()
	g.HandleFunc("cand", func(w http.ResponseWriter, r *http.Request) {})
	g.Config.SessionsDir = t.TempDir()
	py := "scgi://" + freeAddr(t)
	g.Config.Routes = []Route{
		{Prefix: "/a/", Target: py, Candidate: "cand", Rollout: 10},
		{Prefix: "/b/", Target: py, Candidate: "cand", Rollout: 20},
		{Prefix: "/c/", Target: py, Candidate: "cand", Rollout: 30},
	}
	require.NoError(t, g.Open())
	// exactly checks that the gauge has these series and no other.
	exactly := func(series string, msg ...any) {
		t.Helper()
		want := "# HELP qxbridge_rollout_percent The percentage of sessions a route with a Go candidate serves with it, as last configured.\n" +
			"# TYPE qxbridge_rollout_percent gauge\n" + series + "\n"
		assert.NoError(t, testutil.CollectAndCompare(g.cutover.metrics.percent, strings.NewReader(want)), msg...)
	}
	exactly(`qxbridge_rollout_percent{route="/a/"} 10
qxbridge_rollout_percent{route="/b/"} 20
qxbridge_rollout_percent{route="/c/"} 30`)

	cfg := g.Config.clone()
	cfg.Routes = []Route{
		{Prefix: "/a/", Target: py, Candidate: "cand", Rollout: 50}, // raised
		{Prefix: "/b/", Target: py},                                 // candidate removed
		// /c/ removed
		{Prefix: "/d/", Target: py, Candidate: "cand", Rollout: 5}, // added
	}
	require.NoError(t, g.Reload(cfg))
	want := `qxbridge_rollout_percent{route="/a/"} 50
qxbridge_rollout_percent{route="/d/"} 5`
	exactly(want)

	bad := cfg.clone()
	bad.Routes = append(bad.Routes, Route{Prefix: "/e/", Target: "nosuchhandler"})
	require.Error(t, g.Reload(bad))
	exactly(want, "a refused reload changes nothing")
}

// TestOverrideOptIn: the staff override is off by default, so no client can reach
// a candidate that is only shadowed or at 0%; configured, it picks a side, and with
// a token only a value carrying it does.
func TestOverrideOptIn(t *testing.T) {
	req := func(header, cookie string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/cart/", nil)
		if header != "" {
			r.Header.Set(DefaultOverrideHeader, header)
		}
		if cookie != "" {
			r.AddCookie(&http.Cookie{Name: DefaultOverrideCookie, Value: cookie})
		}
		return r
	}
	side := func(cfg Cutover, r *http.Request) string {
		s, _, _ := (&cutover{cfg: cfg}).side(r)
		return s
	}
	def := defaultCutover()
	require.NoError(t, def.check())
	assert.Equal(t, sidePython, side(def, req("go", "")), "off by default: the header is ignored")
	assert.Equal(t, sidePython, side(def, req("", "go")), "off by default: the cookie is ignored")

	on := def
	on.OverrideHeader, on.OverrideCookie = DefaultOverrideHeader, DefaultOverrideCookie
	assert.Equal(t, sideGo, side(on, req("go", "")))
	assert.Equal(t, sideGo, side(on, req("", "go")))

	on.OverrideToken = "s3cret"
	require.NoError(t, on.check())
	assert.Equal(t, sidePython, side(on, req("go", "")), "no token")
	assert.Equal(t, sidePython, side(on, req("go:guess", "go:s3cretx")), "wrong tokens")
	assert.Equal(t, sideGo, side(on, req("go:s3cret", "")))
	assert.Equal(t, sideGo, side(on, req("", "go:s3cret")))

	on.OverrideToken = "a b"
	assert.ErrorContains(t, on.check(), "override token")
}

// TestShadowSkipsSlowBodyOnHTTP: on the HTTP listener a safe request with a body is
// neither shadowed nor held for a fallback, so a client that sends its body slowly
// holds no shadow slot: with one slot, a body that never arrives leaves it free for
// the next request. (The proxy applies the body-rate limits to it.)
func TestShadowSkipsSlowBodyOnHTTP(t *testing.T) {
	g := startGatewayWith(t, func(g *Gateway) {
		g.HandleFunc("go", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "go") })
	}, "-http", "127.0.0.1:0", "-sessions", t.TempDir(), "-log-level", "error", "-max-shadows", "1",
		"-route", "/x/=scgi://"+freeAddr(t), "-candidate", "/x/=go", "-shadow", "/x/")
	rep := g.cutover.report("/x/", DefaultShadowSamples)

	conn, err := net.Dial("tcp", strings.TrimPrefix(g.url(), "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "GET /x/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return rep.copy().Counts[outcomeSkipped] == 1 }, 10*time.Second, time.Millisecond,
		"the request with a body is passed on without a shadow")

	r := get(t, client(t), g.url()+"/x/next")
	assert.Equal(t, 5, r.Status/100, "Python's side: nothing listens")
	require.Eventually(t, func() bool { return rep.copy().Counts[outcomeDiffers] == 1 }, 10*time.Second, time.Millisecond,
		"the next request got the shadow slot: %v", rep.copy().Counts)
	assert.Zero(t, rep.copy().Counts[outcomeDropped])
}
