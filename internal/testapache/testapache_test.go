package testapache

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/qxbridge/qxbridge/internal/testenvecho"
	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// documented starts Apache with docs/apache.conf in front of an echo server: the
// modules its a2enmod line names, its text as README.md shows it, extra before it.
func documented(t *testing.T, extra string) (*Instance, *testenvecho.Server) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testpeer.RepoRoot(), "docs", "apache.conf"))
	require.NoError(t, err)
	mods := A2enmod(string(raw))
	require.Equal(t, []string{"proxy", "proxy_scgi"}, mods, "docs/apache.conf tells users to enable these")
	echo := testenvecho.Start(t)
	inst := Start(t, Config{Modules: mods, Site: extra + testpeer.DocSnippet(t, "apache.conf", echo.Socket)})
	return inst, echo
}

// TestDocumentedSnippet records what Apache 2.4's mod_proxy_scgi sends with
// docs/apache.conf (the facts of docs/front-servers.md): SCRIPT_NAME is the whole
// decoded path and there is no PATH_INFO; HTTP_HOST is the client's Host header,
// port included; repeated header lines arrive as one variable, joined with ", ".
func TestDocumentedSnippet(t *testing.T) {
	inst, echo := documented(t, "")

	rep := testenvecho.Get(t, inst.URL+"/login?next=%2Fa&x=1")
	assert.Equal(t, "/login", rep.One(t, "SCRIPT_NAME"))
	assert.False(t, rep.Has("PATH_INFO"), "no PATH_INFO without proxy-scgi-pathinfo:\n%s", rep)
	assert.Equal(t, "/login?next=%2Fa&x=1", rep.One(t, "REQUEST_URI"))
	assert.Equal(t, "next=%2Fa&x=1", rep.One(t, "QUERY_STRING"))
	assert.Equal(t, inst.Addr, rep.One(t, "HTTP_HOST"), "the client's Host, port included")
	assert.Equal(t, "0", rep.One(t, "CONTENT_LENGTH"))
	assert.Equal(t, "CONTENT_LENGTH", rep.Env[0].Name, "CONTENT_LENGTH comes first")
	assert.Equal(t, "1", rep.One(t, "SCGI"))
	assert.Equal(t, "GET", rep.One(t, "REQUEST_METHOD"))
	_, port, _ := net.SplitHostPort(inst.Addr)
	assert.Equal(t, port, rep.One(t, "SERVER_PORT"))
	assert.Equal(t, "http", rep.One(t, "REQUEST_SCHEME"))
	assert.False(t, rep.Has("HTTPS"))

	rep = testenvecho.Get(t, inst.URL+"/")
	assert.Equal(t, "/", rep.One(t, "SCRIPT_NAME"))
	assert.False(t, rep.Has("PATH_INFO"))

	rep = testenvecho.Get(t, inst.URL+"/a%20b/%C3%A9/")
	assert.Equal(t, "/a%20b/%C3%A9/", rep.One(t, "REQUEST_URI"))
	assert.Equal(t, "/a b/\u00e9/", rep.One(t, "SCRIPT_NAME"), "decoded")
	assert.False(t, rep.Has("PATH_INFO"))

	// An encoded slash is refused by Apache itself (AllowEncodedSlashes Off).
	n := len(echo.Replies())
	resp, err := testenvecho.Client.Get(inst.URL + "/a%2Fb")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Len(t, echo.Replies(), n, "never reaches the gateway")

	// Repeated header lines: one variable each, the values joined with ", " (Cookie
	// included, which Quixote's cookie parser splits on "," as well as ";").
	rep = testenvecho.Do(t, testenvecho.Request(t, http.MethodGet, inst.URL+"/h", nil, http.Header{
		"X-Dup": {"a", "b"}, "Cookie": {"QX_session=abc", "other=1"},
	}))
	assert.Equal(t, "a, b", rep.One(t, "HTTP_X_DUP"))
	assert.Equal(t, "QX_session=abc, other=1", rep.One(t, "HTTP_COOKIE"))

	// A 5 MB form post passes whole (Apache's LimitRequestBody default is 1 GiB).
	rep = testenvecho.Upload(t, inst.URL+"/upload", 5<<20)
	assert.Equal(t, "5242880", rep.One(t, "CONTENT_LENGTH"))
	assert.Equal(t, "application/x-www-form-urlencoded", rep.One(t, "CONTENT_TYPE"))
	assert.False(t, rep.Has("HTTP_CONTENT_LENGTH"), "the length is sent once, as CONTENT_LENGTH")

	// HEAD reaches the backend as HEAD; the client gets the head without a body.
	resp, err = testenvecho.Client.Head(inst.URL + "/login")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "HEAD", echo.Last(t).One(t, "REQUEST_METHOD"))
	assert.Equal(t, "/login", echo.Last(t).One(t, "SCRIPT_NAME"))

	assert.NotContains(t, inst.ErrorLog(), ":error]")
}

// TestProxySCGIPathinfo records what the proxy-scgi-pathinfo environment variable
// changes, and why docs/apache.conf does not set it: PATH_INFO becomes the path as
// it arrived, still percent-encoded, and SCRIPT_NAME the decoded path shortened by
// PATH_INFO's length, which for an encoded path is a piece of the path.
func TestProxySCGIPathinfo(t *testing.T) {
	inst, _ := documented(t, "SetEnvIf Request_URI . proxy-scgi-pathinfo\n")

	rep := testenvecho.Get(t, inst.URL+"/login?x=1")
	assert.Equal(t, "", rep.One(t, "SCRIPT_NAME"))
	assert.Equal(t, "/login", rep.One(t, "PATH_INFO"))
	assert.Equal(t, "/login?x=1", rep.One(t, "REQUEST_URI"))
	assert.Equal(t, "1", rep.One(t, "proxy-scgi-pathinfo"), "the variable itself is passed on")

	rep = testenvecho.Get(t, inst.URL+"/")
	assert.Equal(t, "", rep.One(t, "SCRIPT_NAME"))
	assert.Equal(t, "/", rep.One(t, "PATH_INFO"))

	rep = testenvecho.Get(t, inst.URL+"/a%20b/c")
	assert.Equal(t, "/a b", rep.One(t, "SCRIPT_NAME"), "the decoded path minus PATH_INFO's length")
	assert.Equal(t, "/a%20b/c", rep.One(t, "PATH_INFO"), "not decoded")
}

// TestSocketGroup shows why the documented socket belongs to Apache's group: with
// the mode 0660 of a socket owned by root's group, Apache's workers (www-data) are
// refused and every request is 503.
func TestSocketGroup(t *testing.T) {
	testpeer.Root(t, "Apache runs as the test's own user otherwise")
	echo := testenvecho.Start(t)
	require.NoError(t, os.Chown(echo.Socket, 0, 0))
	inst := Start(t, Config{Modules: []string{"proxy", "proxy_scgi"}, Site: testpeer.DocSnippet(t, "apache.conf", echo.Socket)})
	resp, err := testenvecho.Client.Get(inst.URL + "/login")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Contains(t, inst.ErrorLog(), "(13)Permission denied")
	assert.Empty(t, echo.Replies())
}

func TestStartStop(t *testing.T) {
	inst := Start(t, Config{})
	assert.Contains(t, inst.Config, "LoadModule mpm_event_module "+ModuleDir+"/mod_mpm_event.so\n")
	assert.FileExists(t, filepath.Join(inst.Dir, "apache2.pid"))
	resp, err := testenvecho.Client.Get(inst.URL + "/nothing")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "the skeleton serves no files")
	assert.Contains(t, resp.Header.Get("Server"), "Apache/2.4")

	b := Start(t, Config{})
	assert.NotEqual(t, inst.Addr, b.Addr)

	inst.Stop()
	_, err = net.Dial("tcp", inst.Addr)
	assert.Error(t, err, "Apache no longer listens after Stop")
	assert.NoFileExists(t, filepath.Join(inst.Dir, "apache2.pid"), "Apache removed its pid file on exit")
}

func TestA2enmod(t *testing.T) {
	assert.Equal(t, []string{"proxy", "proxy_scgi", "headers"}, A2enmod("#   a2enmod proxy proxy_scgi\n# then\nsudo a2enmod headers && x\n"))
	assert.Nil(t, A2enmod("ProxyPass / x\n"))
}
