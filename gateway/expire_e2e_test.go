package gateway

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testenvecho"
	"github.com/qxbridge/qxbridge/internal/testpg"
	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/qxbridge/qxbridge/quixote"
)

// expireSite is the real Quixote app at /py/ and an SCGI echo (which never touches
// a session) at /echo/ behind a gateway started with extra flags, over one session
// store: a directory, or a PostgreSQL database (Quixote then on qxbridge-pgstore).
// st reads the store as the gateway does; login logs alice in through Python and
// returns her session id and cookie.
type expireSite struct {
	g     *runningGateway
	st    quixote.IterableStore
	c     *http.Client
	login func() (id, cookie string)
}

// expireStores are the stores the expiry tests run over.
var expireStores = []string{"directory", "postgres"}

func startExpireSite(t *testing.T, kind string, flags ...string) *expireSite {
	t.Helper()
	ctx := context.Background()
	var spec string
	var env []string
	switch kind {
	case "directory":
		spec = filepath.Join(t.TempDir(), "sessions")
		require.NoError(t, os.Mkdir(spec, 0o770))
	case "postgres":
		spec = testpg.Start(t).DSN
		env = []string{"QXSITE_SESSION_DSN=" + spec}
	}
	st, closeStore, err := openStore(ctx, spec, storeOptions{})
	require.NoError(t, err)
	t.Cleanup(closeStore)
	opt := testquixote.Options{Children: 2, Env: env}
	if kind == "directory" {
		opt.SessionDir = spec
	}
	w := testquixote.Start(t, opt)
	echo := testenvecho.Start(t)
	g := startGateway(t, append([]string{"-http", "127.0.0.1:0", "-sessions", spec,
		"-mount", "/py/=" + quixoteTarget(w), "-mount", "/echo/=scgi+unix://" + echo.Socket}, flags...)...)
	s := &expireSite{g: g, st: st, c: &http.Client{Timeout: 20 * time.Second}}
	s.login = func() (string, string) {
		r := get(t, s.c, g.url()+"/py/login?user=alice")
		require.Equal(t, "ok", r.Body)
		ids := s.ids(t)
		require.Len(t, ids, 1, "Python stored the session")
		return ids[0], "QX_session=" + ids[0]
	}
	return s
}

func (s *expireSite) ids(t *testing.T) []string {
	t.Helper()
	ids, err := s.st.IDs(context.Background())
	require.NoError(t, err)
	return ids
}

// stored returns the bytes and modification time of a stored session.
func (s *expireSite) stored(t *testing.T, id string) ([]byte, time.Time) {
	t.Helper()
	data, err := s.st.Load(context.Background(), id)
	require.NoError(t, err)
	mod, ok, err := modTime(context.Background(), s.st, id)
	require.True(t, ok)
	require.NoError(t, err)
	return data, mod
}

// check asks the Python page who is logged in.
func (s *expireSite) check(t *testing.T, cookie string) string {
	t.Helper()
	r := get(t, s.c, s.g.url()+"/py/check", "Cookie", cookie)
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	return r.Body
}

// TestIdleTimeoutOnPythonPages: with -idle-timeout, a session idle past it is
// expired on the Python pages too: the gateway removes it before forwarding, and the
// real Quixote app then sees an anonymous user, as a Go page would. A session within
// the limit passes through the check untouched (byte-identical, same modification
// time). In a directory and in PostgreSQL.
func TestIdleTimeoutOnPythonPages(t *testing.T) {
	for _, kind := range expireStores {
		t.Run(kind, func(t *testing.T) {
			const idle = 4 * time.Second
			s := startExpireSite(t, kind, "-idle-timeout", idle.String())
			id, cookie := s.login()
			require.Equal(t, "user alice\n", s.check(t, cookie), "within the idle timeout")

			before, mod := s.stored(t, id)
			require.Equal(t, http.StatusOK, get(t, s.c, s.g.url()+"/echo/x", "Cookie", cookie).Status)
			after, mod2 := s.stored(t, id)
			assert.Equal(t, before, after, "the check leaves a live session byte-identical")
			assert.Equal(t, mod, mod2)

			time.Sleep(idle + time.Second) // _access_time is at most the last /py/check's
			assert.Equal(t, "anonymous\n", s.check(t, cookie), "idle past the timeout: Python sees no session")
			assert.Empty(t, s.ids(t), "the expired session is removed, and Python stored no new one")
			assert.Contains(t, s.g.log.String(), "session past its idle timeout")
		})
	}
}

// TestMaxLifetimeOnPythonPages: with -max-lifetime, a session created longer ago is
// expired on the Python pages however active it is.
func TestMaxLifetimeOnPythonPages(t *testing.T) {
	for _, kind := range expireStores {
		t.Run(kind, func(t *testing.T) {
			const lifetime = 4 * time.Second
			s := startExpireSite(t, kind, "-max-lifetime", lifetime.String())
			start := time.Now()
			_, cookie := s.login()
			for time.Since(start) < lifetime-2*time.Second {
				require.Equal(t, "user alice\n", s.check(t, cookie), "active, within its lifetime")
				time.Sleep(500 * time.Millisecond)
			}
			time.Sleep(time.Until(start.Add(lifetime + time.Second)))
			assert.Equal(t, "anonymous\n", s.check(t, cookie), "created past the lifetime: Python sees no session")
			assert.Empty(t, s.ids(t))
			assert.Contains(t, s.g.log.String(), "session past its lifetime")
		})
	}
}

// TestExpiryOffByDefault: without the flags, as in session3, the gateway reads no
// session on the way to Python: an idle session stays.
func TestExpiryOffByDefault(t *testing.T) {
	s := startExpireSite(t, "directory", "-metrics", "127.0.0.1:0")
	_, cookie := s.login()
	time.Sleep(2 * time.Second)
	require.Equal(t, "user alice\n", s.check(t, cookie))
	assert.NotContains(t, scrape(t, s.g.addr("metrics")), `qxbridge_session_operations_total{op="load"`,
		"no session read by the gateway")
}

// TestExpiryCheckReadsLittle: a session saved well within the idle timeout is judged
// by its modification time, and its lifetime by its creation time, read once: with
// only an idle timeout the check costs one stat per request and reads (decodes) no
// session; with a lifetime too, the session is read at its first request only.
func TestExpiryCheckReadsLittle(t *testing.T) {
	for _, tc := range []struct {
		flags       []string
		stats, load string
	}{
		{[]string{"-idle-timeout", "1h"}, "3", ""},
		{[]string{"-idle-timeout", "1h", "-max-lifetime", "1h"}, "2", "1"},
	} {
		t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
			s := startExpireSite(t, "directory", append(tc.flags, "-metrics", "127.0.0.1:0")...)
			_, cookie := s.login()
			for range 3 {
				require.Equal(t, "user alice\n", s.check(t, cookie))
			}
			m := scrape(t, s.g.addr("metrics"))
			assert.Contains(t, m, `qxbridge_session_operations_total{op="stat",result="ok"} `+tc.stats+"\n")
			if tc.load == "" {
				assert.NotContains(t, m, `qxbridge_session_operations_total{op="load"`)
			} else {
				assert.Contains(t, m, `qxbridge_session_operations_total{op="load",result="ok"} `+tc.load+"\n")
			}
		})
	}
}
