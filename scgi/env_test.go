package scgi

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// proxiedEnv builds the header netstring for r and parses it back with the server
// half's strict parser (ReadEnv), which checks the framing: length, CONTENT_LENGTH
// first, SCGI=1, trailing comma.
func proxiedEnv(t *testing.T, r *http.Request, length int64, scriptName string) Env {
	t.Helper()
	var h headerBuf
	require.NoError(t, buildEnv(&h, r, length, scriptName, RequestEnv(r)))
	ns, err := h.finish()
	require.NoError(t, err)
	env, err := ReadEnv(bufio.NewReader(bytes.NewReader(ns)), 0)
	require.NoError(t, err, "the proxy's netstring must parse: %q", ns)
	seen := map[string]bool{}
	for _, v := range env {
		require.False(t, seen[v.Name], "name %s sent twice (python-scgi keeps only the last)", v.Name)
		seen[v.Name] = true
	}
	require.Equal(t, "CONTENT_LENGTH", env[0].Name)
	require.Equal(t, "1", env.Get("SCGI"))
	return env
}

// TestBuildEnvFromNginxCaptures replays requests nginx really sent, as the server half
// turns them into http.Requests, and checks what the proxy sends on to a worker.
func TestBuildEnvFromNginxCaptures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "scgi", "*.bin"))
	require.NoError(t, err)
	require.Len(t, files, 3)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			require.NoError(t, err)
			in, err := ReadEnv(bufio.NewReader(bytes.NewReader(raw)), 0)
			require.NoError(t, err)
			r, err := ReadRequest(bufio.NewReader(bytes.NewReader(raw)), 0)
			require.NoError(t, err)
			out := proxiedEnv(t, r, r.ContentLength, "")

			// Every CGI variable of the front end arrives unchanged.
			for _, v := range in {
				if strings.HasPrefix(v.Name, "HTTP_") {
					continue
				}
				assert.Equal(t, v.Value, out.Get(v.Name), v.Name)
			}
			// Headers arrive once each, repeated lines joined; the framing headers
			// are CONTENT_LENGTH / CONTENT_TYPE only.
			want := in.Map()
			delete(want, "HTTP_CONTENT_LENGTH")
			delete(want, "HTTP_CONTENT_TYPE")
			for name, value := range want {
				if strings.HasPrefix(name, "HTTP_") {
					assert.Equal(t, value, out.Get(name), name)
				}
			}
			for _, v := range out {
				if strings.HasPrefix(v.Name, "HTTP_") {
					assert.Contains(t, want, v.Name, "no header invented")
				}
			}
			assert.NotContains(t, out.Map(), "HTTP_CONTENT_LENGTH")
			if c, ok := out.Lookup("HTTP_COOKIE"); ok {
				assert.Equal(t, "HTTP_COOKIE", out[2].Name, "the cookie comes right after the framing")
				assert.NotEmpty(t, c)
			}
		})
	}

	raw, err := os.ReadFile(filepath.Join("testdata", "scgi", "nginx-scgi-request-dupheaders.bin"))
	require.NoError(t, err)
	r, err := ReadRequest(bufio.NewReader(bytes.NewReader(raw)), 0)
	require.NoError(t, err)
	out := proxiedEnv(t, r, 0, "")
	assert.Equal(t, "a=1; QX_session=0123456789abcdef", out.Get("HTTP_COOKIE"))
	assert.Equal(t, "1, 2", out.Get("HTTP_X_DUP"))
	assert.Equal(t, "evil.example", out.Get("HTTP_HOST"))
	assert.Equal(t, "42990", out.Get("REMOTE_PORT"))
}

func scgiRequest(t *testing.T, vars ...string) *http.Request {
	t.Helper()
	var env Env
	for i := 0; i < len(vars); i += 2 {
		env = append(env, Var{vars[i], vars[i+1]})
	}
	r, err := RequestFromEnv(env)
	require.NoError(t, err)
	return r
}

func TestBuildEnvFrontEndMount(t *testing.T) {
	// A front end that mounted the application at /app and terminated TLS.
	vars := []string{"CONTENT_LENGTH", "0", "SCGI", "1", "REQUEST_METHOD", "GET",
		"REQUEST_URI", "/app/x/y?q=1", "QUERY_STRING", "q=1", "SERVER_PROTOCOL", "HTTP/1.1",
		"HTTPS", "on", "REQUEST_SCHEME", "https", "REMOTE_ADDR", "203.0.113.9",
		"REMOTE_PORT", "5555", "SERVER_NAME", "example.org", "SERVER_PORT", "443",
		"SCRIPT_NAME", "/app", "PATH_INFO", "/ignored", "SSL_CLIENT_S_DN", "CN=x",
		"HTTP_HOST", "example.org"}

	out := proxiedEnv(t, scgiRequest(t, vars...), 0, "")
	assert.Equal(t, "/app", out.Get("SCRIPT_NAME"), "the front end's SCRIPT_NAME is kept")
	assert.Equal(t, "/x/y", out.Get("PATH_INFO"), "PATH_INFO is the path under it")
	assert.Equal(t, "on", out.Get("HTTPS"))
	assert.Equal(t, "https", out.Get("REQUEST_SCHEME"))
	assert.Equal(t, "203.0.113.9", out.Get("REMOTE_ADDR"))
	assert.Equal(t, "5555", out.Get("REMOTE_PORT"))
	assert.Equal(t, "443", out.Get("SERVER_PORT"))
	assert.Equal(t, "CN=x", out.Get("SSL_CLIENT_S_DN"), "variables the proxy does not know pass too")
	assert.Equal(t, "/app/x/y?q=1", out.Get("REQUEST_URI"))

	// ScriptName set: it decides.
	out = proxiedEnv(t, scgiRequest(t, vars...), 0, "/app/x")
	assert.Equal(t, "/app/x", out.Get("SCRIPT_NAME"))
	assert.Equal(t, "/y", out.Get("PATH_INFO"))
	var h headerBuf
	assert.ErrorIs(t, buildEnv(&h, scgiRequest(t, vars...), 0, "/other", RequestEnv(scgiRequest(t, vars...))), errNotMounted)

	// nginx's usual SCRIPT_NAME "" with the whole path.
	for i := range vars {
		if vars[i] == "SCRIPT_NAME" {
			vars[i+1] = ""
		}
	}
	out = proxiedEnv(t, scgiRequest(t, vars...), 0, "")
	assert.Equal(t, "", out.Get("SCRIPT_NAME"))
	assert.Equal(t, "/app/x/y", out.Get("PATH_INFO"))
}

func TestBuildEnvPlainHTTP(t *testing.T) {
	r := httptest.NewRequest("POST", "https://example.org/a%20b/c?x=%2F", strings.NewReader("hello"))
	r.TLS = &tls.ConnectionState{}
	r.Header.Set("Content-Type", "text/plain")
	r.Header.Set("Connection", "keep-alive, X-Hop")
	r.Header.Set("X-Hop", "hop")
	r.Header.Set("Keep-Alive", "300")
	r.Header.Set("Te", "trailers")
	r.Header.Set("Proxy", "http://evil:3128")
	r.Header["X_user"] = []string{"forged"}
	r.Header.Set("X-User", "real")
	r.Header.Add("Accept", "text/html")
	r.Header.Add("Accept", "*/*")
	r.Header.Set("Content-Length", "5")
	r.Header.Set("Authorization", "Basic eDp5")

	out := proxiedEnv(t, r, 5, "")
	assert.Equal(t, "5", out.Get("CONTENT_LENGTH"))
	assert.Equal(t, "text/plain", out.Get("CONTENT_TYPE"))
	assert.Equal(t, "POST", out.Get("REQUEST_METHOD"))
	assert.Equal(t, "https://example.org/a%20b/c?x=%2F", out.Get("REQUEST_URI"), "httptest's RequestURI, as given")
	assert.Equal(t, "/a b/c", out.Get("PATH_INFO"), "PATH_INFO is decoded, as CGI has it")
	assert.Equal(t, "", out.Get("SCRIPT_NAME"))
	assert.Equal(t, "x=%2F", out.Get("QUERY_STRING"))
	assert.Equal(t, "on", out.Get("HTTPS"))
	assert.Equal(t, "https", out.Get("REQUEST_SCHEME"))
	assert.Equal(t, "192.0.2.1", out.Get("REMOTE_ADDR"))
	assert.Equal(t, "1234", out.Get("REMOTE_PORT"))
	assert.Equal(t, "example.org", out.Get("SERVER_NAME"))
	assert.Equal(t, "443", out.Get("SERVER_PORT"))
	assert.Equal(t, "HTTP/1.1", out.Get("SERVER_PROTOCOL"))
	assert.Equal(t, "example.org", out.Get("HTTP_HOST"))
	assert.Equal(t, "real", out.Get("HTTP_X_USER"))
	assert.Equal(t, "text/html, */*", out.Get("HTTP_ACCEPT"))
	assert.Equal(t, "Basic eDp5", out.Get("HTTP_AUTHORIZATION"))
	for _, gone := range []string{"HTTP_PROXY", "HTTP_CONNECTION", "HTTP_X_HOP", "HTTP_KEEP_ALIVE",
		"HTTP_TE", "HTTP_CONTENT_LENGTH", "HTTP_CONTENT_TYPE"} {
		assert.NotContains(t, out.Map(), gone)
	}

	r = httptest.NewRequest("GET", "/p", nil)
	r.RequestURI = ""
	out = proxiedEnv(t, r, 0, "/")
	assert.Equal(t, "/p", out.Get("REQUEST_URI"), "built from the URL when the request has none")
	assert.Equal(t, "", out.Get("SCRIPT_NAME"), `"/" is the root`)
	assert.Equal(t, "/p", out.Get("PATH_INFO"))
	assert.Equal(t, "80", out.Get("SERVER_PORT"))
	assert.Equal(t, "http", out.Get("REQUEST_SCHEME"))
	assert.NotContains(t, out.Map(), "HTTPS")
}

func TestBuildEnvRefusesNUL(t *testing.T) {
	var h headerBuf
	r := httptest.NewRequest("GET", "/a%00b", nil)
	require.NoError(t, buildEnv(&h, r, 0, "", nil))
	_, err := h.finish()
	assert.ErrorIs(t, err, errBadRequestEnv)
	assert.Equal(t, http.StatusBadRequest, StatusForError(err))

	r = httptest.NewRequest("GET", "/", nil)
	r.Header["X-A"] = []string{"a\x00b"}
	require.NoError(t, buildEnv(&h, r, 0, "", nil))
	_, err = h.finish()
	assert.ErrorIs(t, err, errBadRequestEnv)

	// The buffer is reusable after a refusal.
	require.NoError(t, buildEnv(&h, httptest.NewRequest("GET", "/ok", nil), 0, "", nil))
	_, err = h.finish()
	assert.NoError(t, err)
}

func TestMountSplit(t *testing.T) {
	sn := func(v string) Env { return Env{{"SCRIPT_NAME", v}} }
	snpi := func(v, pi string) Env { return Env{{"SCRIPT_NAME", v}, {"PATH_INFO", pi}} }
	for _, c := range []struct {
		scriptName string
		front      Env
		path       string
		script     string
		pathInfo   string
		ok         bool
	}{
		{"", nil, "/x", "", "/x", true},
		{"/", nil, "/x", "", "/x", true},
		{"/app", nil, "/app", "/app", "", true},
		{"/app", nil, "/app/", "/app", "/", true},
		{"/app/", nil, "/app/x/y", "/app", "/x/y", true},
		{"/app", nil, "/application", "", "", false},
		{"/app", nil, "/", "", "", false},
		{"", sn("/app"), "/app/x", "/app", "/x", true}, // nginx: scgi_param SCRIPT_NAME /app;
		{"", sn("/app"), "/app/", "/app", "/", true},
		{"", sn("/app"), "/other", "", "/other", true},
		{"", sn("/app"), "/application", "", "/application", true},
		// Apache's mod_proxy_scgi: SCRIPT_NAME is the whole path, no PATH_INFO.
		{"", sn("/app/x/y"), "/app/x/y", "", "/app/x/y", true},
		{"", sn("/login"), "/login", "", "/login", true},
		{"", sn("/"), "/", "", "/", true},
		// With proxy-scgi-pathinfo (or any front end sending PATH_INFO) it is a mount.
		{"", snpi("/app", "/x/y"), "/app/x/y", "/app", "/x/y", true},
		{"", snpi("/app", ""), "/app", "/app", "", true},
		{"", Env{{"SCRIPT_NAME", "/zzz"}, {"SCRIPT_NAME", "/app"}}, "/app/x", "/app", "/x", true}, // the last counts
		{"/app", sn("/zzz"), "/app/x", "/app", "/x", true},
	} {
		script, pathInfo, ok := mountSplit(c.scriptName, c.front, c.path)
		assert.Equal(t, c.ok, ok, "%+v", c)
		if c.ok {
			assert.Equal(t, c.script, script, "%+v", c)
			assert.Equal(t, c.pathInfo, pathInfo, "%+v", c)
		}
	}
}

func TestFrontScriptName(t *testing.T) {
	r := scgiRequest(t, "REQUEST_METHOD", "GET", "REQUEST_URI", "/login?x=1", "SCRIPT_NAME", "/login")
	assert.Equal(t, "", FrontScriptName(r), "Apache's whole-path SCRIPT_NAME is no mount point")
	r = scgiRequest(t, "REQUEST_METHOD", "GET", "REQUEST_URI", "/app/login", "SCRIPT_NAME", "/app/", "PATH_INFO", "/login")
	assert.Equal(t, "/app", FrontScriptName(r))
	assert.Equal(t, "", FrontScriptName(httptest.NewRequest("GET", "/app/login", nil)))
}

// TestBuildEnvRepeatedFrontVariables: a variable the front end's configuration sets
// twice reaches the worker once, with the value python-scgi would have kept (the last).
func TestBuildEnvRepeatedFrontVariables(t *testing.T) {
	vars := []string{"REQUEST_METHOD", "GET", "REQUEST_URI", "/x", "HTTP_HOST", "127.0.0.1", "HTTP_HOST", "127.0.0.1:8080",
		"HTTPS", "off", "HTTPS", "on", "SERVER_PORT", "80", "SERVER_PORT", "8080"}
	r := scgiRequest(t, vars...)
	assert.Equal(t, "127.0.0.1:8080", r.Host)
	env := proxiedEnv(t, r, 0, "")
	for name, want := range map[string]string{"HTTP_HOST": "127.0.0.1:8080", "HTTPS": "on", "SERVER_PORT": "8080"} {
		assert.Equal(t, []string{want}, env.Values(name), name)
	}
	// Many variables: the same rule, in linear time.
	for i := range 200 {
		vars = append(vars, fmt.Sprintf("X_%d", i%50), strconv.Itoa(i))
	}
	env = proxiedEnv(t, scgiRequest(t, vars...), 0, "")
	assert.Equal(t, []string{"199"}, env.Values("X_49"))
	assert.Equal(t, []string{"on"}, env.Values("HTTPS"))
}

// recordingConn records each Write, to check the header netstring is one write.
type recordingConn struct {
	netConnStub
	writes [][]byte
	reply  *bytes.Reader
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func (c *recordingConn) Read(p []byte) (int, error) { return c.reply.Read(p) }

func TestHeaderNetstringIsOneWrite(t *testing.T) {
	r := httptest.NewRequest("POST", "/x", strings.NewReader("body"))
	r.Header.Set("Cookie", "QX_session="+strings.Repeat("a", 5000))
	for i := range 50 {
		r.Header.Set("X-Filler-"+string(rune('a'+i%26))+string(rune('a'+i/26)), strings.Repeat("v", 100))
	}
	var h headerBuf
	require.NoError(t, buildEnv(&h, r, 4, "", nil))
	ns, err := h.finish()
	require.NoError(t, err)
	require.Greater(t, len(ns), 8192)

	conn := &recordingConn{reply: bytes.NewReader([]byte("Status: 204\r\n\r\n"))}
	x := newExchange(conn, DefaultResponseHeaderTimeout, DefaultDrainTimeout)
	resp, err := x.send(ns, strings.NewReader("body"), 4)
	require.NoError(t, err)
	x.wait()
	assert.Equal(t, 204, resp.status)
	require.Len(t, conn.writes, 2)
	assert.Equal(t, ns, conn.writes[0], "the whole header netstring goes out in one write")
	assert.Equal(t, "body", string(conn.writes[1]))
	// python-scgi's session-affinity server looks for the cookie in the first 4 KiB.
	assert.Less(t, bytes.Index(ns, []byte("HTTP_COOKIE\x00QX_session=")), 100)
}
