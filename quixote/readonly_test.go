package quixote

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestManagerReadOnly: a read-only manager serves the stored session to its handler,
// but whatever the handler does (count, log in as someone else, log out, expire it, or
// make a new session with information) nothing is saved or deleted and no cookie is
// set or revoked.
func TestManagerReadOnly(t *testing.T) {
	e := newTestEnv(t, nil)
	id := newCookieID(t, e.get("/login?user=alice", ""))
	before, ok := e.st.get(id)
	require.True(t, ok)
	_, saves0, deletes0 := e.st.counts()

	ro := NewManager(e.st)
	ro.ReadOnly = true
	ro.Logger = e.m.Logger
	srv := httptest.NewServer(ro.Handler(testApp()))
	t.Cleanup(srv.Close)
	e2 := &testEnv{t: t, m: ro, st: e.st, log: e.log, srv: srv}
	cookie := `QX_session="` + id + `"`

	assert.Equal(t, "alice", e2.status(cookie)["user"], "the handler reads the stored session")
	for _, path := range []string{"/counter", "/login?user=mallory", "/logout", "/expire", "/token"} {
		r := e2.get(path, cookie)
		assert.Equal(t, 200, r.status, path)
		assert.Empty(t, r.cookies, path)
	}
	r := e2.get("/login?user=bob", "")
	assert.Empty(t, r.cookies, "a new session with information gets no cookie")
	after, ok := e.st.get(id)
	require.True(t, ok, "not deleted")
	assert.Equal(t, before, after, "not saved")
	_, saves, deletes := e.st.counts()
	assert.Equal(t, saves0, saves)
	assert.Equal(t, deletes0, deletes)
	assert.Equal(t, []string{id}, e.st.ids())
	assert.Empty(t, e.log.warnings())
}
