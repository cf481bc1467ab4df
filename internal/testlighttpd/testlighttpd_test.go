package testlighttpd

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qxbridge/qxbridge/internal/testenvecho"
	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDocumentedSnippet records what lighttpd's mod_scgi sends with
// docs/lighttpd.conf (the facts of docs/front-servers.md): with
// fix-root-scriptname, SCRIPT_NAME is empty and PATH_INFO the whole decoded path;
// HTTP_HOST is the client's Host, port included; the body length is sent twice,
// as CONTENT_LENGTH and HTTP_CONTENT_LENGTH; repeated Cookie lines are joined with
// "; ", other repeated headers with ", ".
func TestDocumentedSnippet(t *testing.T) {
	echo := testenvecho.Start(t)
	inst := Start(t, Config{Site: testpeer.DocSnippet(t, "lighttpd.conf", echo.Socket)})

	rep := testenvecho.Get(t, inst.URL+"/login?next=%2Fa&x=1")
	assert.Equal(t, "", rep.One(t, "SCRIPT_NAME"))
	assert.Equal(t, "/login", rep.One(t, "PATH_INFO"))
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

	rep = testenvecho.Get(t, inst.URL+"/")
	assert.Equal(t, "", rep.One(t, "SCRIPT_NAME"))
	assert.Equal(t, "/", rep.One(t, "PATH_INFO"))

	rep = testenvecho.Get(t, inst.URL+"/a%20b/%C3%A9/c%2Fd")
	assert.Equal(t, "/a%20b/%C3%A9/c%2Fd", rep.One(t, "REQUEST_URI"))
	assert.Equal(t, "", rep.One(t, "SCRIPT_NAME"))
	assert.Equal(t, "/a b/\u00e9/c/d", rep.One(t, "PATH_INFO"), "decoded, %2F included")

	rep = testenvecho.Do(t, testenvecho.Request(t, http.MethodGet, inst.URL+"/h", nil, http.Header{
		"X-Dup": {"a", "b"}, "Cookie": {"QX_session=abc", "other=1"},
	}))
	assert.Equal(t, "a, b", rep.One(t, "HTTP_X_DUP"))
	assert.Equal(t, "QX_session=abc; other=1", rep.One(t, "HTTP_COOKIE"))

	// A 5 MB form post passes whole (lighttpd buffers it first, in /var/tmp).
	rep = testenvecho.Upload(t, inst.URL+"/upload", 5<<20)
	assert.Equal(t, "5242880", rep.One(t, "CONTENT_LENGTH"))
	assert.Equal(t, "5242880", rep.One(t, "HTTP_CONTENT_LENGTH"), "lighttpd passes the Content-Length header on as well")
	assert.Equal(t, "application/x-www-form-urlencoded", rep.One(t, "CONTENT_TYPE"))

	resp, err := testenvecho.Client.Head(inst.URL + "/login")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "HEAD", echo.Last(t).One(t, "REQUEST_METHOD"))
	assert.Equal(t, "/login", echo.Last(t).One(t, "PATH_INFO"))
}

// TestWithoutFixRootScriptname records what the snippet's fix-root-scriptname
// changes: without it, a "/" mount sends the whole path as SCRIPT_NAME and no
// PATH_INFO, as Apache does.
func TestWithoutFixRootScriptname(t *testing.T) {
	echo := testenvecho.Start(t)
	site := testpeer.DocSnippet(t, "lighttpd.conf", echo.Socket)
	const fix = "\n    \"fix-root-scriptname\" => \"enable\",\n"
	require.Equal(t, 1, strings.Count(site, fix))
	inst := Start(t, Config{Site: strings.Replace(site, fix, "\n", 1)})

	rep := testenvecho.Get(t, inst.URL+"/login?x=1")
	assert.Equal(t, "/login", rep.One(t, "SCRIPT_NAME"))
	assert.False(t, rep.Has("PATH_INFO"), "no PATH_INFO:\n%s", rep)
	rep = testenvecho.Get(t, inst.URL+"/")
	assert.Equal(t, "/", rep.One(t, "SCRIPT_NAME"))
	assert.False(t, rep.Has("PATH_INFO"))
}

// TestSocketGroup shows why the documented socket belongs to lighttpd's group: with
// the mode 0660 of a socket owned by root's group, lighttpd (www-data) is refused.
func TestSocketGroup(t *testing.T) {
	testpeer.Root(t, "lighttpd runs as the test's own user unless the tests run as root")
	echo := testenvecho.Start(t)
	require.NoError(t, os.Chown(echo.Socket, 0, 0))
	inst := Start(t, Config{Site: testpeer.DocSnippet(t, "lighttpd.conf", echo.Socket)})
	resp, err := testenvecho.Client.Get(inst.URL + "/login")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Contains(t, inst.ErrorLog(), "Permission denied")
	assert.Empty(t, echo.Replies())
}

func TestStartStop(t *testing.T) {
	inst := Start(t, Config{AccessLog: true})
	assert.FileExists(t, filepath.Join(inst.Dir, "lighttpd.pid"))
	resp, err := testenvecho.Client.Get(inst.URL + "/nothing")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Server"), "lighttpd/1.4")

	b := Start(t, Config{})
	assert.NotEqual(t, inst.Addr, b.Addr)

	inst.Stop()
	_, err = net.Dial("tcp", inst.Addr)
	assert.Error(t, err, "lighttpd no longer listens after Stop")
	log, err := os.ReadFile(filepath.Join(inst.Dir, "access.log"))
	require.NoError(t, err)
	assert.Contains(t, string(log), "GET /nothing HTTP/1.1\" 404")
}
