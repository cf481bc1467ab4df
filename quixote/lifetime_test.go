package quixote

import (
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestManagerIdleTimeout: a session not accessed for longer than IdleTimeout is
// treated as absent at load and its file removed; one accessed in time lives on.
func TestManagerIdleTimeout(t *testing.T) {
	e := newTestEnv(t, func(m *Manager) { m.IdleTimeout = 30 * time.Minute })
	id := newCookieID(t, e.get("/login?user=alice", ""))
	cookie := `QX_session="` + id + `"`
	for range 4 {
		e.clock.advance(20 * time.Minute)
		assert.Equal(t, "alice", e.status(cookie)["user"], "accessed every 20 minutes: alive")
	}
	e.clock.advance(31 * time.Minute)
	st := e.status(cookie)
	assert.Nil(t, st["user"], "idle for 31 minutes: gone")
	assert.Nil(t, st["id"])
	assert.Empty(t, e.st.ids(), "the file is removed")
}

// TestManagerMaxLifetime: however active, a session created longer than MaxLifetime
// ago is treated as absent and removed.
func TestManagerMaxLifetime(t *testing.T) {
	e := newTestEnv(t, func(m *Manager) { m.MaxLifetime = 2 * time.Hour })
	id := newCookieID(t, e.get("/login?user=alice", ""))
	cookie := `QX_session="` + id + `"`
	for range 7 {
		e.clock.advance(15 * time.Minute)
		assert.Equal(t, "alice", e.status(cookie)["user"])
	}
	e.clock.advance(16 * time.Minute)
	assert.Nil(t, e.status(cookie)["user"], "created 2h01 ago: gone")
	assert.Empty(t, e.st.ids())
}

// TestManagerLifetimeOffByDefault: without limits, as in session3, a session idle
// for a year is still there.
func TestManagerLifetimeOffByDefault(t *testing.T) {
	e := newTestEnv(t, nil)
	id := newCookieID(t, e.get("/login?user=alice", ""))
	e.clock.advance(365 * 24 * time.Hour)
	assert.Equal(t, "alice", e.status(`QX_session="` + id + `"`)["user"])
}

// TestIdleTimeoutRealQuixote: the times checked are the ones the real Quixote
// (session3's and session4's managers) writes: a session Python logged in is alive
// for a Go page within the idle timeout and gone past it, file removed, after which
// Python too has no session for the id.
func TestIdleTimeoutRealQuixote(t *testing.T) {
	for _, class := range []Class{Session3Class, Session4Class} {
		t.Run(class.String(), func(t *testing.T) {
			clock := &fakeClock{t: time.Now()}
			dir, pyURL, goURL := goAndPython(t, class, func(m *Manager) {
				m.IdleTimeout = time.Hour
				m.MaxLifetime = 24 * time.Hour
				m.now = clock.now
			})
			client := &http.Client{Timeout: 20 * time.Second}

			resp, err := client.Get(pyURL + "/login?user=alice")
			require.NoError(t, err)
			resp.Body.Close()
			var cookie string
			for _, c := range resp.Cookies() {
				if c.Name == "QX_session" {
					cookie = `QX_session="` + c.Value + `"`
				}
			}
			require.NotEmpty(t, cookie, "Python logged in")
			py := func() map[string]any { return getStatus(t, client, pyURL, cookie) }
			goSt := func() map[string]any { return getStatus(t, client, goURL, cookie) }

			clock.advance(50 * time.Minute)
			assert.Equal(t, "alice", goSt()["user"], "50 minutes after Python's access")
			clock.advance(50 * time.Minute) // Go's access 50 minutes ago refreshed it
			assert.Equal(t, "alice", goSt()["user"])
			clock.advance(61 * time.Minute)
			assert.Nil(t, goSt()["user"], "61 minutes idle")
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Empty(t, entries, "the file is removed")
			assert.Nil(t, py()["user"], "Python has no session for the id either")
		})
	}
}
