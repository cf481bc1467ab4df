package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/qxbridge/qxbridge/internal/testpg"
	"github.com/qxbridge/qxbridge/quixote"
	"github.com/qxbridge/qxbridge/store"
	"github.com/qxbridge/qxbridge/store/pgstore"
)

// openPG opens the sessions table of the database dsn names, as the gateway does,
// for a test to look at what the gateway stored.
func openPG(t *testing.T, dsn string) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// loadPG decodes a session from the database.
func loadPG(t *testing.T, s *pgstore.Store, id string) *quixote.Session {
	t.Helper()
	data, err := s.Load(context.Background(), id)
	require.NoError(t, err)
	sess, err := quixote.Decode(data)
	require.NoError(t, err)
	return sess
}

// sessionCookie returns the session id of a client's QX_session cookie for u.
func sessionCookie(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	require.NoError(t, err)
	for _, ck := range c.Jar.Cookies(req.URL) {
		if ck.Name == quixote.DefaultCookieName {
			return ck.Value
		}
	}
	t.Fatalf("no session cookie for %s", u)
	return ""
}

// TestPostgresSessions: with -sessions postgres://… the gateway keeps its sessions
// in the database (the table created at start), with the session's user beside it;
// /healthz and /metrics report on the database, and every admin command works on it.
func TestPostgresSessions(t *testing.T) {
	srv := testpg.Start(t)
	g := startGateway(t, "-http", "127.0.0.1:0", "-metrics", "127.0.0.1:0", "-sessions", srv.DSN, "-max-idle", "1h")
	_, isDB := g.Sessions().(*pgstore.Store)
	require.True(t, isDB, "%T", g.Sessions())
	c := client(t)
	u := g.url()
	require.Equal(t, 200, do(t, c, "POST", u+"/login", "name=margaret").Status)
	for range 3 {
		require.Equal(t, 200, get(t, c, u+"/counter").Status)
	}
	id := sessionCookie(t, c, u)
	db := openPG(t, srv.DSN)
	s := loadPG(t, db, id)
	assert.Equal(t, "margaret", s.User())
	n, _ := s.GetInt("counter")
	assert.Equal(t, int64(3), n)
	ids, err := db.UserIDs(context.Background(), "margaret")
	require.NoError(t, err)
	assert.Equal(t, []string{id}, ids, "the gateway stores the user beside the session")

	m := scrape(t, g.addr("metrics"))
	assert.Contains(t, m, `qxbridge_session_operations_total{op="save",result="ok"} 4`+"\n")
	assert.Contains(t, m, `qxbridge_session_operations_total{op="load",result="ok"} 3`+"\n")
	h := get(t, c, "http://"+g.addr("metrics")+"/healthz")
	assert.Equal(t, http.StatusOK, h.Status)
	assert.Regexp(t, `^ok\nsessions postgres postgres@`+regexp.QuoteMeta(srv.Dir)+`:5432/postgres table sessions: ok\n`, h.Body)
	assert.NotContains(t, g.log.String(), "password")

	// The admin commands, on the database.
	code, out, errs := admin(t, srv.DSN, "list")
	require.Equal(t, 0, code, errs)
	assert.Regexp(t, `(?m)^`+id+`\s+margaret\s+session3\.Session\.Session\s+\d+s$`, out)
	code, out, errs = admin(t, srv.DSN, "show", id)
	require.Equal(t, 0, code, errs)
	var shown map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &shown), out)
	assert.Contains(t, shown["store"], "table sessions")
	assert.NotContains(t, shown, "file")
	assert.Contains(t, out, `"counter": {`)
	code, out, errs = admin(t, srv.DSN, "set", id, "counter=41")
	require.Equal(t, 0, code, errs)
	assert.Equal(t, id+": counter = 41 (int)\n", out)
	assert.Contains(t, get(t, c, u+"/counter").Body, "Counter: 42")
	code, out, errs = admin(t, srv.DSN, "sweep", "-older", "1h")
	require.Equal(t, 0, code, errs)
	assert.Equal(t, "deleted 0, remaining 1\n", out)
	code, out, errs = admin(t, srv.DSN, "delete", id)
	require.Equal(t, 0, code, errs)
	assert.Equal(t, "deleted "+id+"\n", out)
	assert.Contains(t, get(t, c, u+"/").Body, "Not logged in.")
	code, _, errs = admin(t, srv.DSN, "show", id)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "no session "+id)

	// The configuration file names the database as it names a directory.
	conf := filepath.Join(t.TempDir(), "gateway.toml")
	require.NoError(t, os.WriteFile(conf, []byte("[sessions]\ndir = \""+srv.DSN+"\"\n"), 0o644))
	var o, e strings.Builder
	require.Equal(t, 0, newTestGateway().Run(t.Context(), []string{"sessions", "-config", conf, "list", "-json"}, &o, &e), e.String())
	assert.Equal(t, "[]\n", o.String())
	// A staging directory is for session files.
	e.Reset()
	assert.Equal(t, 2, newTestGateway().Run(t.Context(), []string{"-sessions", srv.DSN, "-staging-dir", t.TempDir()}, &o, &e))
	assert.Contains(t, e.String(), "a staging directory is for a session directory")
}

// TestSessionsMigrate: `sessions migrate` copies a session directory into
// PostgreSQL and back, byte for byte; running it again copies nothing, and an
// interrupted copy is finished by running it again.
func TestSessionsMigrate(t *testing.T) {
	srv := testpg.Start(t)
	dir := fixtureDir(t)
	migrate := func(args ...string) (int, string, string) {
		var o, e strings.Builder
		code := newTestGateway().Run(t.Context(), append([]string{"sessions", "migrate"}, args...), &o, &e)
		return code, o.String(), e.String()
	}
	code, out, errs := migrate("-from", dir, "-to", srv.DSN)
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "copying sessions from "+dir+" to postgres ")
	assert.Contains(t, out, "5 listed: 5 copied, 0 unchanged, 0 kept, 0 vanished, 0 failed\n")
	db := openPG(t, srv.DSN)
	for id, name := range fixtureIDs {
		want, err := os.ReadFile(testpeer.Testdata("session3", name))
		require.NoError(t, err)
		got, err := db.Load(t.Context(), id)
		require.NoError(t, err)
		assert.Equal(t, want, got, id)
	}

	// Idempotent: nothing to do the second time.
	code, out, errs = migrate("-from", dir, "-to", srv.DSN)
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "5 listed: 0 copied, 5 unchanged, 0 kept")

	// Resumable: a copy that stopped with two sessions missing, one session that
	// the gateway changed meanwhile in the database.
	require.NoError(t, db.Delete(t.Context(), "Q4PJ1fkwwK8"))
	require.NoError(t, db.Delete(t.Context(), "bb2_-Qy4sEs"))
	changed, err := os.ReadFile(testpeer.Testdata("session3", "session3-counter-tokens.pkl"))
	require.NoError(t, err)
	require.NoError(t, db.Save(t.Context(), "4qihCikDywk", changed))
	code, out, errs = migrate("-from", dir, "-to", srv.DSN, "-keep-existing")
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "5 listed: 2 copied, 2 unchanged, 1 kept")
	got, err := db.Load(t.Context(), "4qihCikDywk")
	require.NoError(t, err)
	assert.Equal(t, changed, got, "-keep-existing keeps the database's newer session")

	// And back, into a directory that does not exist yet: session3 reads the files.
	back := filepath.Join(t.TempDir(), "back")
	code, out, errs = migrate("-from", srv.DSN, "-to", back)
	require.Equal(t, 0, code, errs)
	assert.Contains(t, out, "5 listed: 5 copied")
	for id, name := range fixtureIDs {
		want, err := os.ReadFile(testpeer.Testdata("session3", name))
		require.NoError(t, err)
		if id == "4qihCikDywk" {
			want = changed
		}
		got, err := os.ReadFile(filepath.Join(back, id))
		require.NoError(t, err)
		assert.Equal(t, want, got, id)
	}
	code, out, errs = admin(t, back, "list")
	require.Equal(t, 0, code, errs)
	assert.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 6)

	// Mistakes are usage errors; a database that is down is a failure that says
	// what to do, with the counts so far.
	code, _, errs = migrate("-from", dir)
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, "usage:")
	code, _, errs = migrate("-from", dir, "-to", dir)
	assert.Equal(t, 2, code)
	assert.Contains(t, errs, "the same store")
	code, _, errs = migrate("-from", filepath.Join(t.TempDir(), "missing"), "-to", srv.DSN)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "-from: session directory")
	srv.Stop(t)
	code, _, errs = migrate("-from", dir, "-to", srv.DSN)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs, "-to: sessions database")
}

// TestPostgresOutage: while the database is down, restarting or too slow, the Go
// pages whose session cannot be loaded answer 503, and the failures are logged and
// counted; the gateway serves again by itself once the database is back, with every
// session whole as last saved.
func TestPostgresOutage(t *testing.T) {
	srv := testpg.Start(t)
	// The throw-away cluster acknowledges commits before they reach its log, and
	// would lose the last ones in the crash below: commits here wait, as they do
	// in a deployment's database.
	srv.SQL(t, "ALTER DATABASE postgres SET synchronous_commit = on")
	g := startGateway(t, "-http", "127.0.0.1:0", "-metrics", "127.0.0.1:0", "-sessions", srv.DSN)
	c := client(t)
	u := g.url()
	require.Equal(t, 200, do(t, c, "POST", u+"/login", "name=ned").Status)
	require.Contains(t, get(t, c, u+"/counter").Body, "Counter: 1")
	id := sessionCookie(t, c, u)

	srv.Stop(t)
	r := get(t, c, u+"/counter")
	assert.Equal(t, http.StatusServiceUnavailable, r.Status)
	assert.Contains(t, r.Body, "session temporarily unavailable")
	h := get(t, c, "http://"+g.addr("metrics")+"/healthz")
	assert.Equal(t, http.StatusServiceUnavailable, h.Status)
	assert.Contains(t, h.Body, "unhealthy\nsessions postgres ")
	// The request fails at its first step, taking its session's turn through the
	// database's advisory lock.
	m := scrape(t, g.addr("metrics"))
	assert.Contains(t, m, `qxbridge_session_queue_rejections_total{reason="lock_error",route="/"} 1`+"\n")
	assert.Contains(t, m, `qxbridge_requests_total{route="/",status="503"} 1`+"\n")
	assert.Contains(t, g.log.String(), "session store unavailable")

	srv.Start(t)
	assert.Contains(t, get(t, c, u+"/counter").Body, "Counter: 2", "the session survived the restart")
	assert.Equal(t, http.StatusOK, get(t, c, "http://"+g.addr("metrics")+"/healthz").Status)

	// A crash (no shutdown checkpoint) in the middle of a burst of requests: each is
	// answered 200 or 503, and the session is whole afterwards, with every count
	// that was answered 200.
	var ok, unavailable atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			switch s := get(t, c, u+"/counter").Status; s {
			case 200:
				ok.Add(1)
			case 503:
				unavailable.Add(1)
			default:
				t.Errorf("status %d", s)
			}
		}
	}()
	waitFor := func(cond func() bool) {
		for !cond() {
			select {
			case <-done:
				t.Fatal("the burst ended too soon")
			case <-time.After(time.Millisecond):
			}
		}
	}
	waitFor(func() bool { return ok.Load() >= 20 })
	srv.Kill(t)
	waitFor(func() bool { return unavailable.Load() > 0 })
	srv.Start(t)
	<-done
	db := openPG(t, srv.DSN)
	n, _ := loadPG(t, db, id).GetInt("counter")
	// The manager answers a page only once its session is saved: every count
	// answered 200 is stored, and at most the one in flight at the crash (saved,
	// its acknowledgement lost, answered 503) is stored unanswered.
	assert.GreaterOrEqual(t, n, int64(2)+ok.Load(), "every count answered 200 is stored")
	assert.LessOrEqual(t, n, int64(2)+ok.Load()+1)
	assert.Contains(t, get(t, c, u+"/counter").Body, "Counter: ")
	n2, _ := loadPG(t, db, id).GetInt("counter")
	assert.Equal(t, n+1, n2, "the gateway serves the session as saved")

	// A database too slow to answer within the query timeout: the table is locked.
	tx, err := db.Pool().Begin(t.Context())
	require.NoError(t, err)
	_, err = tx.Exec(t.Context(), `LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE`)
	require.NoError(t, err)
	r = get(t, c, u+"/counter")
	assert.Equal(t, http.StatusServiceUnavailable, r.Status)
	assert.Contains(t, r.Body, "session temporarily unavailable")
	assert.Regexp(t, `(?m)^qxbridge_session_operations_total\{op="load",result="unavailable"\} [1-9]`, scrape(t, g.addr("metrics")))
	require.NoError(t, tx.Rollback(t.Context()))
	assert.Equal(t, 200, get(t, c, u+"/counter").Status)
	n3, _ := loadPG(t, db, id).GetInt("counter")
	assert.Equal(t, n2+1, n3)
}

// countingStore is a program's own session store: a directory, counting saves.
type countingStore struct {
	*store.Directory
	saves *atomic.Int64
}

func (s countingStore) Save(ctx context.Context, id string, data []byte) error {
	s.saves.Add(1)
	return s.Directory.Save(ctx, id, data)
}

// TestOwnStore: a program sets Gateway.Store, and its Go pages, the idle sweep and
// Sessions use that store instead of Config.SessionsDir.
func TestOwnStore(t *testing.T) {
	dir, err := store.Open(t.TempDir())
	require.NoError(t, err)
	saves := new(atomic.Int64)
	g := newTestGateway()
	g.Config.SessionsDir = filepath.Join(t.TempDir(), "unused")
	g.Logger = discardLogger()
	g.Store = countingStore{dir, saves}
	require.NoError(t, g.Open())
	t.Cleanup(func() { g.Close() })
	assert.Equal(t, g.Store, g.Sessions())
	srv := httptest.NewServer(g)
	defer srv.Close()
	c := client(t)
	require.Equal(t, 200, do(t, c, "POST", srv.URL+"/login", "name=olga").Status)
	require.Equal(t, 200, get(t, c, srv.URL+"/counter").Status)
	assert.Equal(t, int64(2), saves.Load())
	assert.Len(t, sessionFiles(t, dir.Dir()), 1)
	_, err = os.Stat(g.Config.SessionsDir)
	assert.ErrorIs(t, err, os.ErrNotExist, "Config.SessionsDir is not opened")
}

// TestPostgresIdleSweep: -max-idle sweeps the database by its modified column, as it
// sweeps a directory by the files' modification times.
func TestPostgresIdleSweep(t *testing.T) {
	srv := testpg.Start(t)
	db := openPG(t, srv.DSN)
	for id, name := range fixtureIDs {
		data, err := os.ReadFile(testpeer.Testdata("session3", name))
		require.NoError(t, err)
		require.NoError(t, db.Save(t.Context(), id, data))
	}
	srv.SQL(t, `UPDATE sessions SET modified = now() - interval '2 hours' WHERE id IN ('Q4PJ1fkwwK8', 'bb2_-Qy4sEs')`)
	g := startGateway(t, "-http", "127.0.0.1:0", "-metrics", "127.0.0.1:0", "-sessions", srv.DSN, "-max-idle", "1h")
	require.Eventually(t, func() bool {
		return strings.Contains(scrape(t, g.addr("metrics")), "qxbridge_sweep_deleted_sessions_total 2\n")
	}, 10*time.Second, 20*time.Millisecond, "no sweep:\n%s", g.log)
	ids, err := db.IDs(t.Context())
	require.NoError(t, err)
	assert.Equal(t, []string{"4qihCikDywk", "_dz4opoXoCaSYW452SPgjQ", "counterTokens"}, ids)
	assert.Contains(t, scrape(t, g.addr("metrics")), "qxbridge_sweep_remaining_sessions 3\n")
	assert.Contains(t, g.log.String(), "msg=\"idle sweep\" deleted=2 remaining=3 max_idle=1h0m0s")
}
