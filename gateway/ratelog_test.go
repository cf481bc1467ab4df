package gateway

import (
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHostileInputLogIsLimited: a flood of requests with invalid session cookies
// (the shield's warnings) and of malformed SCGI requests (the SCGI server's) writes
// at most a burst of lines of each kind, each line short, where it wrote one line
// per request, as long as the client made it.
func TestHostileInputLogIsLimited(t *testing.T) {
	g := startGateway(t, "-http", "127.0.0.1:0", "-scgi", "127.0.0.1:0",
		"-sessions", filepath.Join(t.TempDir(), "sessions"), "-route", "/=scgi://127.0.0.1:1")
	c := &http.Client{Timeout: 10 * time.Second}
	bad := `QX_session="../../` + strings.Repeat("x", 100_000) + `"`
	for range 30 {
		req, err := http.NewRequest("GET", g.url()+"/", nil)
		require.NoError(t, err)
		req.Header.Set("Cookie", bad)
		resp, err := c.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for range 30 {
		conn, err := net.Dial("tcp", g.addr("scgi"))
		require.NoError(t, err)
		_, _ = io.WriteString(conn, "5:abcde,")
		_, _ = io.Copy(io.Discard, conn)
		conn.Close()
	}
	var shield, scgi int
	for _, line := range strings.Split(g.log.String(), "\n") {
		if strings.Contains(line, "hostile=cookie") {
			shield++
		}
		if strings.Contains(line, "hostile=scgi ") {
			scgi++
		}
		assert.Less(t, len(line), 2048, "a log line stays short: %.200s", line)
	}
	assert.Equal(t, 5, shield, "the shield's warnings, limited")
	assert.Equal(t, 5, scgi, "the SCGI server's, limited")
}
