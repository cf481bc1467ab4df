package docs_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/gateway"
	"github.com/qxbridge/qxbridge/internal/testapache"
	"github.com/qxbridge/qxbridge/internal/testlighttpd"
	"github.com/qxbridge/qxbridge/internal/testnginx"
	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/qxbridge/qxbridge/quixote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// frontServers start each documented front server, configured with its docs/ snippet
// as README.md shows it, in front of the gateway's SCGI socket; each returns the
// site's base URL.
var frontServers = []struct {
	name  string
	start func(t *testing.T, socket string) string
}{
	{"nginx", func(t *testing.T, socket string) string {
		return testnginx.Start(t, testnginx.Config{Locations: testpeer.DocSnippet(t, "nginx.conf", socket)}).URL
	}},
	{"apache", func(t *testing.T, socket string) string {
		mods := testapache.A2enmod(readDoc(t, "apache.conf"))
		return testapache.Start(t, testapache.Config{Modules: mods, Site: testpeer.DocSnippet(t, "apache.conf", socket)}).URL
	}},
	{"lighttpd", func(t *testing.T, socket string) string {
		return testlighttpd.Start(t, testlighttpd.Config{Site: testpeer.DocSnippet(t, "lighttpd.conf", socket)}).URL
	}},
}

// whoami is the Go page of the end-to-end test: it counts in the shared session
// (the attribute Python's /counter counts too) and says who is logged in.
func whoami(w http.ResponseWriter, r *http.Request) {
	s := quixote.SessionFrom(r)
	n, _ := s.GetInt("counter")
	if err := s.Set("counter", n+1); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	user, _ := s.UserString()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "go: user=%q counter=%d\n", user, n+1)
}

// startGateway runs the gateway library on an SCGI socket a front server can reach:
// /go/ served by whoami, everything else by the real Quixote worker.
func startGateway(t *testing.T, sessions, python string) string {
	t.Helper()
	g := gateway.New()
	g.HandleFunc("whoami", whoami)
	g.Config.SessionsDir = sessions
	g.Config.Routes = []gateway.Route{{Prefix: "/go/", Target: "whoami"}, {Prefix: "/", Target: python}}
	logs := &testpeer.Output{}
	g.Logger = slog.New(slog.NewTextHandler(logs, nil))
	require.NoError(t, g.Open())
	socket := filepath.Join(testpeer.SocketDir(t), "gateway.sock")
	l, err := net.Listen("unix", socket)
	require.NoError(t, err)
	testpeer.GrantSocket(t, socket)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = g.ServeSCGI(l)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, g.Shutdown(ctx))
		<-done
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	return socket
}

type answer struct {
	status int
	header http.Header
	body   string
}

func send(t *testing.T, c *http.Client, method, u string, body io.Reader) answer {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// TestFrontServersEndToEnd runs each front server with its README snippet, verbatim,
// in front of the gateway and the real Quixote 3.8 worker (python-scgi, session3's
// DirectorySessionStore) on one session directory: a user logs in through Python and
// is redirected (an absolute URL Quixote builds from HTTP_HOST, which must keep the
// site's port) to a Go page that sees the login and counts on the same session;
// Python sees Go's count; a 5 MB POST reaches Python whole; HEAD works on both sides;
// logging out in Python logs out of Go.
func TestFrontServersEndToEnd(t *testing.T) {
	for _, fs := range frontServers {
		t.Run(fs.name, func(t *testing.T) {
			sessions := t.TempDir()
			py := testquixote.Start(t, testquixote.Options{Unix: true, SessionDir: sessions})
			socket := startGateway(t, sessions, "scgi+unix://"+strings.TrimPrefix(py.Addr, "unix:"))
			site := fs.start(t, socket)

			jar, err := cookiejar.New(nil)
			require.NoError(t, err)
			c := &http.Client{Jar: jar, Timeout: 60 * time.Second,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

			// Log in through Python; its redirect keeps the site's port.
			a := send(t, c, http.MethodGet, site+"/login?user=alice&next=/go/whoami", nil)
			require.Equal(t, http.StatusFound, a.status, a.body)
			assert.Equal(t, site+"/go/whoami", a.header.Get("Location"))
			require.Len(t, a.header.Values("Set-Cookie"), 1)
			assert.Regexp(t, `^QX_session="[A-Za-z0-9_-]+"; path=/$`, a.header.Get("Set-Cookie"), "Quixote's cookie, path /")
			base, _ := url.Parse(site + "/")
			require.Len(t, jar.Cookies(base), 1)
			id := jar.Cookies(base)[0].Value

			// Go sees the login and counts on the same session.
			a = send(t, c, http.MethodGet, site+"/go/whoami", nil)
			assert.Equal(t, http.StatusOK, a.status)
			assert.Equal(t, "go: user=\"alice\" counter=1\n", a.body)
			assert.Empty(t, a.header.Values("Set-Cookie"), "Go keeps Python's session and cookie")

			// Python sees Go's count, and Go Python's.
			a = send(t, c, http.MethodGet, site+"/counter", nil)
			assert.Equal(t, "2", a.body)
			a = send(t, c, http.MethodGet, site+"/go/whoami", nil)
			assert.Equal(t, "go: user=\"alice\" counter=3\n", a.body)
			entries, err := os.ReadDir(sessions)
			require.NoError(t, err)
			require.Len(t, entries, 1)
			assert.Equal(t, id, entries[0].Name(), "one session file, the cookie's")

			// A 5 MB POST reaches Python whole.
			body := strings.Repeat("0123456789abcdef", 5<<20/16)
			sum := sha256.Sum256([]byte(body))
			a = send(t, c, http.MethodPost, site+"/hash", strings.NewReader(body))
			require.Equal(t, http.StatusOK, a.status, a.body)
			var h struct {
				Len    int    `json:"body_len"`
				SHA256 string `json:"body_sha256"`
			}
			require.NoError(t, json.Unmarshal([]byte(a.body), &h))
			assert.Equal(t, len(body), h.Len)
			assert.Equal(t, hex.EncodeToString(sum[:]), h.SHA256)

			// HEAD on both sides: the status and headers, no body.
			for _, p := range []string{"/check", "/go/whoami"} {
				a = send(t, c, http.MethodHead, site+p, nil)
				assert.Equal(t, http.StatusOK, a.status, p)
				assert.Empty(t, a.body, p)
				assert.Equal(t, "text/plain; charset=utf-8", a.header.Get("Content-Type"), p)
			}

			// Logging out in Python logs out of Go: session3 drops a session without
			// a user (has_info is false), so Go starts a new one.
			assert.Equal(t, "user alice\n", send(t, c, http.MethodGet, site+"/check", nil).body)
			assert.Equal(t, "ok", send(t, c, http.MethodGet, site+"/logout", nil).body)
			assert.Equal(t, "anonymous\n", send(t, c, http.MethodGet, site+"/check", nil).body)
			a = send(t, c, http.MethodGet, site+"/go/whoami", nil)
			assert.Equal(t, "go: user=\"\" counter=1\n", a.body)
			assert.NotContains(t, py.Output.String(), "Traceback")
		})
	}
}
