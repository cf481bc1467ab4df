package quixote

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/store"
)

// loadCounter is a session directory that counts the sessions read from it.
type loadCounter struct {
	*store.Directory
	loads atomic.Int32
}

func (c *loadCounter) Load(ctx context.Context, id string) ([]byte, error) {
	c.loads.Add(1)
	return c.Directory.Load(ctx, id)
}

// expireEnv is a manager over a real session directory, with a fake clock that
// starts at the real time (the files' modification times are real).
func expireEnv(t *testing.T, configure func(*Manager)) (*Manager, *loadCounter, *fakeClock) {
	t.Helper()
	dir, err := store.Open(t.TempDir())
	require.NoError(t, err)
	st := &loadCounter{Directory: dir}
	clock := &fakeClock{t: time.Now()}
	m := NewManager(st)
	m.now = clock.now
	m.Logger, _ = newLogger()
	configure(m)
	return m, st, clock
}

// storeSession saves a logged-in session created at created and last accessed at
// accessed, and returns its id and bytes.
func storeSession(t *testing.T, st *loadCounter, created, accessed time.Time) (string, []byte) {
	t.Helper()
	s := NewSession(Session3Class, "192.0.2.1", created)
	s.Touch(accessed)
	require.NoError(t, s.SetUser("alice"))
	id := randToken(Session3Class.Kind.idBytes())
	s.setID(id)
	data, err := s.Encode()
	require.NoError(t, err)
	require.NoError(t, st.Save(context.Background(), id, data))
	return id, data
}

// TestExpireIdleTimeout: Expire judges a stored session as a Go page's load does:
// one idle for longer than IdleTimeout is removed, one within it is left
// byte-identical; a session saved well within the timeout is not even read (its
// modification time decides), one saved nearly as long ago is read and judged by its
// _access_time.
func TestExpireIdleTimeout(t *testing.T) {
	m, st, clock := expireEnv(t, func(m *Manager) { m.IdleTimeout = 2 * time.Hour })
	ctx := context.Background()
	now := clock.now()
	id, data := storeSession(t, st, now, now)
	file := filepath.Join(st.Dir(), id)

	clock.advance(30 * time.Minute)
	why, err := m.Expire(ctx, id)
	require.NoError(t, err)
	assert.Empty(t, why)
	assert.Zero(t, st.loads.Load(), "saved 30 minutes ago, timeout 2h: judged by the modification time alone")

	clock.advance(89*time.Minute + 30*time.Second) // 1h59m30s idle
	why, err = m.Expire(ctx, id)
	require.NoError(t, err)
	assert.Empty(t, why)
	assert.EqualValues(t, 1, st.loads.Load(), "nearly the timeout: read and judged by _access_time")
	got, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, data, got, "a session within the limits is left byte-identical")

	clock.advance(time.Minute)
	why, err = m.Expire(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "idle timeout", why)
	assert.NoFileExists(t, file)

	why, err = m.Expire(ctx, id)
	require.NoError(t, err)
	assert.Empty(t, why, "a missing session: nothing to expire")
}

// TestExpireMaxLifetime: a session created longer ago than MaxLifetime is removed
// however recently it was accessed; a younger one is left byte-identical, and read
// only the first time: its creation time is remembered, and its modification time
// shows it active.
func TestExpireMaxLifetime(t *testing.T) {
	m, st, clock := expireEnv(t, func(m *Manager) {
		m.IdleTimeout = 2 * time.Hour
		m.MaxLifetime = 8 * time.Hour
	})
	ctx := context.Background()
	now := clock.now()
	old, _ := storeSession(t, st, now.Add(-8*time.Hour-time.Minute), now)
	young, data := storeSession(t, st, now.Add(-7*time.Hour), now)

	why, err := m.Expire(ctx, old)
	require.NoError(t, err)
	assert.Equal(t, "lifetime", why)
	assert.NoFileExists(t, filepath.Join(st.Dir(), old))

	why, err = m.Expire(ctx, young)
	require.NoError(t, err)
	assert.Empty(t, why)
	got, err := os.ReadFile(filepath.Join(st.Dir(), young))
	require.NoError(t, err)
	assert.Equal(t, data, got)
	assert.EqualValues(t, 2, st.loads.Load())

	clock.advance(30 * time.Minute)
	why, err = m.Expire(ctx, young)
	require.NoError(t, err)
	assert.Empty(t, why)
	assert.EqualValues(t, 2, st.loads.Load(), "judged without reading it again")

	clock.advance(31 * time.Minute) // created 8h01 ago; saved (for the store) 1h01 ago
	why, err = m.Expire(ctx, young)
	require.NoError(t, err)
	assert.Equal(t, "lifetime", why)
	assert.EqualValues(t, 3, st.loads.Load(), "read to be judged")
	assert.NoFileExists(t, filepath.Join(st.Dir(), young))
}

// TestExpireAgreesWithHandler: for the same stored session and time, Expire and a
// page served by Handler reach the same verdict (one rule).
func TestExpireAgreesWithHandler(t *testing.T) {
	for _, idle := range []time.Duration{time.Hour - time.Second, time.Hour + 2*time.Second} {
		e := newTestEnv(t, func(m *Manager) { m.IdleTimeout = time.Hour })
		id := newCookieID(t, e.get("/login?user=alice", ""))
		data, _ := e.st.get(id)
		e.clock.advance(idle)
		why, err := e.m.Expire(context.Background(), id)
		require.NoError(t, err)
		_, kept := e.st.get(id)

		e.st.put(id, data) // as it was, for the page
		user := e.status(`QX_session="` + id + `"`)["user"]
		assert.Equal(t, why == "", kept, "idle %v", idle)
		assert.Equal(t, why == "", user == "alice", "idle %v: Expire says %q, the page sees user %v", idle, why, user)
	}
}

// TestExpireOff: with no limits Expire reads nothing and keeps everything.
func TestExpireOff(t *testing.T) {
	m, st, clock := expireEnv(t, func(*Manager) {})
	now := clock.now()
	id, _ := storeSession(t, st, now.Add(-1000*time.Hour), now.Add(-1000*time.Hour))
	why, err := m.Expire(context.Background(), id)
	require.NoError(t, err)
	assert.Empty(t, why)
	assert.Zero(t, st.loads.Load())
	assert.FileExists(t, filepath.Join(st.Dir(), id))
}
