package testnginx

import (
	"bytes"
	"net"
	"net/http"
	"testing"

	"github.com/qxbridge/qxbridge/internal/testenvecho"
	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDocumentedSnippet records what nginx sends with docs/nginx.conf (the facts of
// docs/front-servers.md): SCRIPT_NAME empty, PATH_INFO the decoded, normalized path;
// HTTP_HOST twice, the client's Host with its port last;
// one HTTP_* variable per request header line, repeats included, Content-Length as
// well; a 5 MB body passes.
func TestDocumentedSnippet(t *testing.T) {
	echo := testenvecho.Start(t)
	inst := Start(t, Config{Locations: testpeer.DocSnippet(t, "nginx.conf", echo.Socket)})

	rep := testenvecho.Get(t, inst.URL+"/login?next=%2Fa&x=1")
	assert.Equal(t, "", rep.One(t, "SCRIPT_NAME"))
	assert.Equal(t, "/login", rep.One(t, "PATH_INFO"))
	assert.Equal(t, "/login?next=%2Fa&x=1", rep.One(t, "REQUEST_URI"))
	assert.Equal(t, "next=%2Fa&x=1", rep.One(t, "QUERY_STRING"))
	assert.Equal(t, "CONTENT_LENGTH", rep.Env[0].Name, "CONTENT_LENGTH comes first")
	assert.Equal(t, "0", rep.One(t, "CONTENT_LENGTH"))
	_, port, _ := net.SplitHostPort(inst.Addr)
	assert.Equal(t, port, rep.One(t, "SERVER_PORT"))
	assert.Equal(t, []string{"127.0.0.1", inst.Addr}, rep.Env.Values("HTTP_HOST"),
		"Debian's scgi_params: $host, without the port; then the snippet's $http_host")
	assert.Equal(t, inst.Addr, rep.Env.Get("HTTP_HOST"), "the last one is the one that counts")

	rep = testenvecho.Get(t, inst.URL+"/a%20b/%C3%A9/c%2Fd/../e")
	assert.Equal(t, "/a%20b/%C3%A9/c%2Fd/../e", rep.One(t, "REQUEST_URI"))
	assert.Equal(t, "", rep.One(t, "SCRIPT_NAME"))
	assert.Equal(t, "/a b/\u00e9/c/e", rep.One(t, "PATH_INFO"), "decoded, then normalized: %2F is a slash like any other")

	rep = testenvecho.Do(t, testenvecho.Request(t, http.MethodGet, inst.URL+"/h", nil, http.Header{
		"X-Dup": {"a", "b"}, "Cookie": {"QX_session=abc", "other=1"},
	}))
	assert.Equal(t, []string{"a", "b"}, rep.Env.Values("HTTP_X_DUP"), "one variable per header line")
	assert.Equal(t, []string{"QX_session=abc", "other=1"}, rep.Env.Values("HTTP_COOKIE"))

	// A 5 MB form post passes whole: the snippet raises client_max_body_size.
	rep = testenvecho.Upload(t, inst.URL+"/upload", 5<<20)
	assert.Equal(t, "5242880", rep.One(t, "CONTENT_LENGTH"))
	assert.Equal(t, "5242880", rep.One(t, "HTTP_CONTENT_LENGTH"), "nginx passes the Content-Length header on as well")

	resp, err := testenvecho.Client.Head(inst.URL + "/login")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "HEAD", echo.Last(t).One(t, "REQUEST_METHOD"))
}

// TestDefaultBodyLimit shows why the snippet sets client_max_body_size: without it
// nginx refuses a body over 1 MB with 413 before the gateway sees the request.
func TestDefaultBodyLimit(t *testing.T) {
	echo := testenvecho.Start(t)
	// nginx's default, which this harness's skeleton raises for the other tests.
	inst := Start(t, Config{Locations: "location / {\n    client_max_body_size 1m;\n    include scgi_params;\n    scgi_pass unix:" + echo.Socket + ";\n}\n"})
	resp, err := testenvecho.Client.Post(inst.URL+"/upload", "application/x-www-form-urlencoded", bytes.NewReader(make([]byte, 1<<20+1)))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Empty(t, echo.Replies())
}
