package quixote

import (
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRenewIDRealSession3: a Go page that calls RenewID at a privilege change moves
// the session to a fresh id: the cookie changes, the new file holds the session
// (counter kept), the old file is gone, and the real Quixote (session3 and session4)
// then loads the new id, and nothing for the old one.
func TestRenewIDRealSession3(t *testing.T) {
	for _, class := range []Class{Session3Class, Session4Class} {
		t.Run(class.String(), func(t *testing.T) {
			logger, logs := newLogger()
			dir, pyURL, goURL := goAndPython(t, class, func(m *Manager) { m.Logger = logger })
			jar, err := cookiejar.New(nil)
			require.NoError(t, err)
			client := &http.Client{Jar: jar, Timeout: 20 * time.Second}
			py := &peer{t, "python", pyURL, client}
			gs := &peer{t, "go", goURL, client}
			files := func() []string {
				entries, err := os.ReadDir(dir)
				require.NoError(t, err)
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				return names
			}

			gs.must("/login?user=alice", "ok")
			require.Len(t, files(), 1)
			old := files()[0]
			py.must("/counter", "1")

			gs.must("/login-renew?user=admin", "ok")
			require.Len(t, files(), 1, "the old file is removed")
			renewed := files()[0]
			assert.NotEqual(t, old, renewed)
			v := sameView(t, "after renew", py, gs)
			assert.Equal(t, renewed, v["id"], "Python loads the new id")
			assert.Equal(t, "admin", v["user"])
			assert.Equal(t, map[string]any{"counter": float64(1)}, v["attrs"], "the session moved whole")
			py.must("/counter", "2")
			gs.must("/counter", "3")

			// The old id names no session any more, on either side.
			for _, p := range []*peer{py, gs} {
				st := getStatus(t, http.DefaultClient, p.base, `QX_session="`+old+`"`)
				assert.Nil(t, st["id"], "%s with the old id", p.name)
				assert.Nil(t, st["user"])
			}
			assert.Equal(t, []string{renewed}, files())
			assert.Empty(t, logs.warnings())
		})
	}
}

// TestRenewIDAfterHeaders: RenewID after the headers went out cannot change the
// cookie: the session keeps its id, and that is logged.
func TestRenewIDAfterHeaders(t *testing.T) {
	e := newTestEnv(t, nil)
	r := e.get("/login?user=alice", "")
	id := newCookieID(t, r)
	r = e.get("/late-renew", `QX_session="`+id+`"`)
	assert.Empty(t, r.cookies)
	assert.Equal(t, []string{id}, e.st.ids())
	w := e.log.warnings()
	require.Len(t, w, 1)
	assert.Contains(t, w[0], "RenewID was called after the response headers were written")
}

// goAndPython runs the real Quixote (qxsite, sessions of class) and the Manager
// (over store.Directory, configured by configure) on one new session directory, and
// returns the directory and both base URLs.
func goAndPython(t *testing.T, class Class, configure func(*Manager)) (dir, pyURL, goURL string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "sessions")
	st, err := store.Open(dir, store.WithCreate())
	require.NoError(t, err)
	pyURL = startQxapp(t, dir, "--class", class.String())
	m := NewManager(st)
	m.NewClass = class
	configure(m)
	goSrv := httptest.NewServer(m.Handler(testApp()))
	t.Cleanup(goSrv.Close)
	return dir, pyURL, goSrv.URL
}

// TestRenewIDPageSentBeforeSave: a page that goes out before the handler returns
// (longer than BufferLimit, or flushed) would carry the new cookie before the
// session is saved under it; the renewal is dropped instead: no new cookie, the
// session (with the handler's changes) stays under its id, and an error is logged.
// A page within the limit is renewed.
func TestRenewIDPageSentBeforeSave(t *testing.T) {
	for _, how := range []string{"long", "flushed", "short"} {
		t.Run(how, func(t *testing.T) {
			st := newMemStore()
			logger, logs := newLogger()
			m := NewManager(st)
			m.Logger = logger
			m.BufferLimit = 100
			h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s := SessionFrom(r)
				require.NoError(t, s.SetUser("alice"))
				if r.URL.Path != "/renew" {
					return
				}
				s.RenewID()
				switch how {
				case "long":
					_, _ = w.Write([]byte(strings.Repeat("x", 101)))
				case "flushed":
					_, _ = w.Write([]byte("x"))
					http.NewResponseController(w).Flush()
				case "short":
					_, _ = w.Write([]byte("x"))
				}
				require.NoError(t, s.Set("counter", int64(7)))
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/login", nil))
			id := newCookieID(t, response{cookies: rec.Header().Values("Set-Cookie")})

			rec = httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/renew", nil)
			req.Header.Set("Cookie", `QX_session="`+id+`"`)
			h.ServeHTTP(rec, req)
			require.Equal(t, http.StatusOK, rec.Code)
			ids := st.ids()
			require.Len(t, ids, 1)
			data, _ := st.get(ids[0])
			s, err := Decode(data)
			require.NoError(t, err)
			n, _ := s.GetInt("counter")
			assert.Equal(t, int64(7), n, "the handler's changes are saved")
			if how == "short" {
				assert.NotEqual(t, id, ids[0], "renewed")
				assert.Len(t, rec.Header().Values("Set-Cookie"), 1)
				return
			}
			assert.Equal(t, []string{id}, ids, "the session keeps its id")
			assert.Empty(t, rec.Header().Values("Set-Cookie"), "no new cookie went out")
			assert.Contains(t, logs.String(), "RenewID was called on a page sent before the session was saved")
		})
	}
}
