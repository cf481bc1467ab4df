package gateway

import (
	"bufio"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestApacheWholePathScriptName: Apache's mod_proxy_scgi sends SCRIPT_NAME = the whole
// path and no PATH_INFO. A Go route must not take that for a mount point (the demo
// would set its cookie for /login/ only): scgi.FrontScriptName is "" for it.
func TestApacheWholePathScriptName(t *testing.T) {
	g := startGateway(t, "-scgi", "127.0.0.1:0", "-sessions", filepath.Join(t.TempDir(), "s"))
	var h []byte
	for _, v := range []string{"CONTENT_LENGTH", "0", "SCGI", "1", "REQUEST_METHOD", "GET",
		"REQUEST_URI", "/login?name=m", "QUERY_STRING", "name=m", "SCRIPT_NAME", "/login",
		"SERVER_PROTOCOL", "HTTP/1.1", "SERVER_NAME", "127.0.0.1", "SERVER_PORT", "80",
		"REMOTE_ADDR", "127.0.0.1", "HTTP_HOST", "127.0.0.1"} {
		h = append(append(h, v...), 0)
	}
	conn, err := net.Dial("tcp", g.addr("scgi"))
	require.NoError(t, err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	_, err = conn.Write(append(append(strconv.AppendInt(nil, int64(len(h)), 10), ':'), append(h, ',')...))
	require.NoError(t, err)
	// The CGI head is an HTTP response head without its status line.
	resp, err := http.ReadResponse(bufio.NewReader(&prefixed{"HTTP/1.1 200 OK\r\n", conn}), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	cookie := resp.Header.Get("Set-Cookie")
	assert.Regexp(t, `; path=/$`, cookie, "the cookie is for the whole site, not for /login/")
}

// prefixed reads s, then r.
type prefixed struct {
	s string
	r net.Conn
}

func (p *prefixed) Read(b []byte) (int, error) {
	if p.s != "" {
		n := copy(b, p.s)
		p.s = p.s[n:]
		return n, nil
	}
	return p.r.Read(b)
}
