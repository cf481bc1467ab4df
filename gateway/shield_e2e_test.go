package gateway

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestShieldKeepsBacktrackingBaitFromQuixote: through the gateway, a Cookie header
// whose bait (an unterminated quoted value and 60 backslashes) would keep a Quixote
// worker inside parse_cookies for far longer than this test lasts reaches the real
// Quixote (one worker) defused: the request is answered, with the user's session,
// and the worker serves the next request.
func TestShieldKeepsBacktrackingBaitFromQuixote(t *testing.T) {
	tmp := shortTempDir(t)
	sessions := filepath.Join(tmp, "sessions")
	require.NoError(t, os.Mkdir(sessions, 0o770))
	w := testquixote.Start(t, testquixote.Options{Unix: true, Children: 1, SessionDir: sessions,
		Env: []string{"QXSITE_COOKIE_PATH=/"}})
	g := startGateway(t, "-http", "127.0.0.1:0", "-sessions", sessions,
		"-mount", "/py/=scgi+unix://"+strings.TrimPrefix(w.Addr, "unix:"), "-route", "/=demo")
	c := &http.Client{Timeout: 30 * time.Second}
	r := get(t, c, g.url()+"/py/login?user=alice")
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	require.Len(t, r.Cookies, 1)
	id := strings.Split(r.Cookies[0], `"`)[1]

	bait := `QX_session="` + id + `"; a="` + strings.Repeat(`\`, 60)
	s := statusOf(t, get(t, c, g.url()+"/py/status", "Cookie", bait))
	assert.Equal(t, "alice", s.User, "Python read the session cookie of the defused header")
	s = statusOf(t, get(t, c, g.url()+"/py/status", "Cookie", `QX_session="`+id+`"`))
	assert.Equal(t, "alice", s.User, "the worker is free")
	assert.Contains(t, g.log.String(), "defused a Cookie header")
}
