package pgstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/qxbridge/qxbridge/internal/testpg"
	"github.com/qxbridge/qxbridge/store"
	"github.com/qxbridge/qxbridge/store/pgstore"
)

// open returns a store over srv in its own table, closed when the test ends.
func open(t *testing.T, srv *testpg.Server, opts ...pgstore.Option) *pgstore.Store {
	t.Helper()
	table := "s_" + strings.NewReplacer("/", "_", "-", "_").Replace(strings.ToLower(t.Name()))
	s, err := pgstore.Open(context.Background(), srv.DSN, append([]pgstore.Option{pgstore.WithTable(table)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// session3Pickle returns the bytes of a session file written by the real session3.
func session3Pickle(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(testpeer.Testdata("session3", "session3-login.pkl"))
	require.NoError(t, err)
	return data
}

func TestStore(t *testing.T) {
	srv := testpg.Start(t)
	ctx := context.Background()

	t.Run("roundtrip", func(t *testing.T) {
		s := open(t, srv)
		data := session3Pickle(t)
		_, err := s.Load(ctx, "abc")
		require.ErrorIs(t, err, store.ErrNotFound)
		has, err := s.Has(ctx, "abc")
		require.NoError(t, err)
		assert.False(t, has)

		require.NoError(t, s.Save(ctx, "abc", data))
		got, err := s.Load(ctx, "abc")
		require.NoError(t, err)
		assert.Equal(t, data, got)
		has, err = s.Has(ctx, "abc")
		require.NoError(t, err)
		assert.True(t, has)

		require.NoError(t, s.Save(ctx, "abc", []byte("second")))
		require.NoError(t, s.Save(ctx, "Zz_-9", []byte("other")))
		got, err = s.Load(ctx, "abc")
		require.NoError(t, err)
		assert.Equal(t, []byte("second"), got)
		ids, err := s.IDs(ctx)
		require.NoError(t, err)
		assert.Equal(t, []string{"Zz_-9", "abc"}, ids)

		require.NoError(t, s.Delete(ctx, "abc"))
		require.ErrorIs(t, s.Delete(ctx, "abc"), store.ErrNotFound)
		_, err = s.Load(ctx, "abc")
		require.ErrorIs(t, err, store.ErrNotFound)
	})

	t.Run("refusals", func(t *testing.T) {
		s := open(t, srv, pgstore.WithMaxSize(8))
		for _, id := range []string{"", "a/b", "a.b", strings.Repeat("x", store.MaxIDLength+1), "a\x00"} {
			_, err := s.Load(ctx, id)
			assert.ErrorIs(t, err, store.ErrInvalidID, "%q", id)
			assert.ErrorIs(t, s.Save(ctx, id, []byte("x")), store.ErrInvalidID, "%q", id)
			assert.ErrorIs(t, s.Delete(ctx, id), store.ErrInvalidID, "%q", id)
			_, err = s.Has(ctx, id)
			assert.ErrorIs(t, err, store.ErrInvalidID, "%q", id)
		}
		assert.ErrorIs(t, s.Save(ctx, "a", nil), store.ErrNoData)
		assert.ErrorIs(t, s.Save(ctx, "a", []byte("123456789")), store.ErrTooLarge)
		// A larger session written by another process is refused without being read.
		big := open(t, srv, pgstore.WithTable(s.Table()))
		require.NoError(t, big.Save(ctx, "a", []byte("123456789")))
		_, err := s.Load(ctx, "a")
		assert.ErrorIs(t, err, store.ErrTooLarge)
	})

	t.Run("setup-concurrent", func(t *testing.T) {
		// Several processes starting at once all create the schema, none fails.
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := pgstore.Open(ctx, srv.DSN, pgstore.WithTable("concurrent_setup"))
				if err == nil {
					err = s.Setup(ctx) // and again: idempotent
					s.Close()
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		assert.Equal(t, "concurrent_setup_modified_idx\nconcurrent_setup_pkey\nconcurrent_setup_user_name_idx",
			srv.SQL(t, "SELECT indexname FROM pg_indexes WHERE tablename = 'concurrent_setup' ORDER BY 1"))
	})

	t.Run("sweep", func(t *testing.T) {
		s := open(t, srv)
		for _, id := range []string{"old1", "old2", "new1"} {
			require.NoError(t, s.Save(ctx, id, []byte(id)))
		}
		srv.SQL(t, fmt.Sprintf("UPDATE %s SET modified = now() - interval '2 hours' WHERE id LIKE 'old%%'", s.Table()))
		deleted, remaining, err := s.DeleteIdle(time.Hour)
		require.NoError(t, err)
		assert.Equal(t, 2, deleted)
		assert.Equal(t, 1, remaining)
		ids, err := s.IDs(ctx)
		require.NoError(t, err)
		assert.Equal(t, []string{"new1"}, ids)
	})

	t.Run("meta", func(t *testing.T) {
		created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
		s := open(t, srv, pgstore.WithMeta(func(id string, data []byte) pgstore.Meta {
			return pgstore.Meta{User: string(data), Created: created, Accessed: created.Add(time.Hour)}
		}))
		require.NoError(t, s.Save(ctx, "s1", []byte("alice")))
		require.NoError(t, s.Save(ctx, "s2", []byte("bob")))
		require.NoError(t, s.Save(ctx, "s3", []byte("alice")))
		ids, err := s.UserIDs(ctx, "alice")
		require.NoError(t, err)
		assert.Equal(t, []string{"s1", "s3"}, ids)
		assert.Equal(t, "2024-05-06 07:08:09+00|2024-05-06 08:08:09+00|t",
			srv.SQL(t, "SET TIME ZONE UTC; SELECT created, accessed, modified > accessed FROM "+s.Table()+" WHERE id = 's1'"))
		// Without the hook the columns say what the store knows: no user.
		plain := open(t, srv, pgstore.WithTable(s.Table()))
		require.NoError(t, plain.Save(ctx, "s1", []byte("x")))
		ids, err = s.UserIDs(ctx, "alice")
		require.NoError(t, err)
		assert.Equal(t, []string{"s3"}, ids)
	})

	t.Run("full-disk", func(t *testing.T) {
		// The database refuses the write (as when its disk is full): the save
		// reports ErrUnavailable and the stored session keeps its old bytes.
		s := open(t, srv)
		require.NoError(t, s.Save(ctx, "kept", []byte("old")))
		srv.SQL(t, `CREATE FUNCTION full_disk() RETURNS trigger LANGUAGE plpgsql AS
			$$BEGIN RAISE EXCEPTION 'could not extend file' USING ERRCODE = 'disk_full'; END$$;
			CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON `+s.Table()+` FOR EACH ROW EXECUTE FUNCTION full_disk()`)
		err := s.Save(ctx, "kept", []byte("new"))
		require.ErrorIs(t, err, store.ErrUnavailable)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		assert.Equal(t, "53100", pgErr.Code)
		require.ErrorIs(t, s.Save(ctx, "fresh", []byte("new")), store.ErrUnavailable)
		got, err := s.Load(ctx, "kept")
		require.NoError(t, err)
		assert.Equal(t, []byte("old"), got)
		_, err = s.Load(ctx, "fresh")
		require.ErrorIs(t, err, store.ErrNotFound)
		srv.SQL(t, "DROP TRIGGER refuse ON "+s.Table())
		require.NoError(t, s.Save(ctx, "kept", []byte("new")))
	})

	t.Run("slow-query", func(t *testing.T) {
		// A statement the database does not finish within the query timeout is
		// cancelled and reported as ErrUnavailable; the pool serves the next call.
		s := open(t, srv, pgstore.WithQueryTimeout(2*time.Second))
		require.NoError(t, s.Save(ctx, "a", []byte("a")))
		blocker, err := pgconn.Connect(ctx, srv.DSN)
		require.NoError(t, err)
		defer blocker.Close(ctx)
		_, err = blocker.Exec(ctx, "BEGIN; LOCK TABLE "+s.Table()+" IN ACCESS EXCLUSIVE MODE").ReadAll()
		require.NoError(t, err)
		_, err = s.Load(ctx, "a")
		require.ErrorIs(t, err, store.ErrUnavailable)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorIs(t, s.Save(ctx, "a", []byte("b")), store.ErrUnavailable)
		_, err = blocker.Exec(ctx, "ROLLBACK").ReadAll()
		require.NoError(t, err)
		got, err := s.Load(ctx, "a")
		require.NoError(t, err)
		assert.Equal(t, []byte("a"), got)
	})

	t.Run("caller-cancel", func(t *testing.T) {
		s := open(t, srv)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.Load(cctx, "a")
		require.ErrorIs(t, err, context.Canceled)
		require.NotErrorIs(t, err, store.ErrUnavailable)
	})

	t.Run("lock", func(t *testing.T) {
		// Two stores stand for two hosts sharing the database.
		a := open(t, srv)
		b := open(t, srv, pgstore.WithTable(a.Table()), pgstore.WithLockTimeout(200*time.Millisecond))
		unlock, err := a.Lock(ctx, "sess")
		require.NoError(t, err)

		_, ok, err := b.TryLock(ctx, "sess")
		require.NoError(t, err)
		assert.False(t, ok, "a second holder got the lock")
		unlockOther, ok, err := b.TryLock(ctx, "other")
		require.NoError(t, err)
		require.True(t, ok, "another session's lock is independent")
		unlockOther()

		_, err = b.Lock(ctx, "sess")
		require.ErrorIs(t, err, store.ErrLockTimeout)
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err = b.Lock(cctx, "sess")
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.NotErrorIs(t, err, store.ErrLockTimeout)

		// A waiter gets the lock when the holder lets go, and reports its wait.
		var waits atomic.Int32
		wait := open(t, srv, pgstore.WithTable(a.Table()),
			pgstore.WithLockWaitHook(func(op string, waited time.Duration) {
				assert.Equal(t, "lock", op)
				waits.Add(1)
			}))
		got := make(chan error, 1)
		go func() {
			unlock, err := wait.Lock(ctx, "sess")
			if err == nil {
				unlock()
			}
			got <- err
		}()
		require.Eventually(t, func() bool {
			return srv.SQL(t, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") == "1"
		}, time.Minute, 10*time.Millisecond, "the waiter never queued for the lock")
		unlock()
		require.NoError(t, <-got)
		assert.Equal(t, int32(1), waits.Load(), "the wait was reported")

		// A holder whose connection dies releases the lock.
		unlockDead, err := a.Lock(ctx, "sess")
		require.NoError(t, err)
		defer unlockDead() // fails on the dead connection, which closes it
		require.Equal(t, "t", srv.SQL(t, fmt.Sprintf("SELECT pg_terminate_backend(pid, 60000) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid() AND ((classid::bigint << 32) | objid::bigint) = %d", pgstore.LockKey("session:sess"))), "one holder terminated")
		unlockB, err := b.Lock(ctx, "sess")
		require.NoError(t, err)
		unlockB()
	})
}

func TestLockKey(t *testing.T) {
	// FNV-1a 64 of "qxbridge:session:abc", a fixed value the Python store shares.
	assert.Equal(t, int64(0x46e4ff5a645ed53d), pgstore.LockKey("session:abc"))
}

// TestRestart restarts the database while goroutines save sessions: calls during the
// outage fail with ErrUnavailable, every session holds bytes that were saved whole
// (the last acknowledged save or a later attempt), and the store serves again once
// the database is back, without being reopened.
func TestRestart(t *testing.T) {
	srv := testpg.Start(t)
	ctx := context.Background()
	s := open(t, srv, pgstore.WithQueryTimeout(2*time.Second))

	const workers = 4
	type state struct {
		acked    string   // the value of the last save that returned nil
		attempts []string // values of saves that returned an error after it
		failures int
	}
	states := make([]state, workers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("w%d", w)
			st := &states[w]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				v := fmt.Sprintf("%s-%06d-%s", id, i, strings.Repeat("x", 1000+i%3000))
				if err := s.Save(ctx, id, []byte(v)); err != nil {
					if !errors.Is(err, store.ErrUnavailable) {
						t.Errorf("save: %v", err)
						return
					}
					st.attempts = append(st.attempts, v)
					st.failures++
					time.Sleep(5 * time.Millisecond)
					continue
				}
				st.acked, st.attempts = v, nil
			}
		}()
	}
	// Let each worker save before the outage, then restart mid-run.
	require.Eventually(t, func() bool { return count(t, srv, s.Table()) == workers }, time.Minute, 10*time.Millisecond)
	srv.Stop(t)
	_, err := s.Load(ctx, "w0")
	require.ErrorIs(t, err, store.ErrUnavailable)
	require.ErrorIs(t, s.Save(ctx, "w0", []byte("during outage")), store.ErrUnavailable)
	srv.Start(t)
	// Saves succeed again: wait for every worker to have an acknowledged save after
	// the restart.
	require.NoError(t, s.Save(ctx, "after", []byte("x")))
	close(stop)
	wg.Wait()

	for w, st := range states {
		assert.Positive(t, st.failures, "worker %d never saw the outage", w)
		got, err := s.Load(ctx, fmt.Sprintf("w%d", w))
		require.NoError(t, err)
		ok := string(got) == st.acked
		for _, a := range st.attempts {
			ok = ok || bytes.Equal(got, []byte(a))
		}
		assert.True(t, ok, "worker %d: stored %.20q..., last acknowledged %.20q...", w, got, st.acked)
	}
}

func count(t *testing.T, srv *testpg.Server, table string) int {
	var n int
	fmt.Sscan(srv.SQL(t, "SELECT count(*) FROM "+table), &n)
	return n
}

// TestLockOrdersAcrossStores: two stores stand for gateways on two hosts; each runs
// goroutines that increment one session's counter under Lock (load, change, save).
// No increment is lost: the lock makes the read-modify-write cycles take turns
// across both.
func TestLockOrdersAcrossStores(t *testing.T) {
	srv := testpg.Start(t)
	ctx := context.Background()
	hostA := open(t, srv)
	hostB := open(t, srv, pgstore.WithTable(hostA.Table()))
	require.NoError(t, hostA.Save(ctx, "shared", []byte("0")))
	const perWorker, workersPerHost = 25, 3
	var wg sync.WaitGroup
	for _, host := range []*pgstore.Store{hostA, hostB} {
		for range workersPerHost {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range perWorker {
					unlock, err := host.Lock(ctx, "shared")
					if !assert.NoError(t, err) {
						return
					}
					data, err := host.Load(ctx, "shared")
					if assert.NoError(t, err) {
						var n int
						fmt.Sscan(string(data), &n)
						assert.NoError(t, host.Save(ctx, "shared", []byte(fmt.Sprint(n+1))))
					}
					unlock()
				}
			}()
		}
	}
	wg.Wait()
	data, err := hostA.Load(ctx, "shared")
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprint(2*workersPerHost*perWorker), string(data))
}

// TestRestartBetweenCalls: the database restarts while the pool holds idle
// connections that it does not check before use (no ping on acquire here, as for
// connections idle for less than a second by default). The next calls, locks as
// well as loads and saves, still succeed: the first one finds its connection dead,
// the stale ones are dropped, and it runs again on a new connection.
func TestRestartBetweenCalls(t *testing.T) {
	srv := testpg.Start(t)
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(srv.DSN)
	require.NoError(t, err)
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	defer pool.Close()
	s := pgstore.New(pool)
	require.NoError(t, s.Setup(ctx))
	require.NoError(t, s.Save(ctx, "kept", []byte("whole")))
	var conns []*pgxpool.Conn
	for range 4 {
		c, err := pool.Acquire(ctx)
		require.NoError(t, err)
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
	require.Equal(t, int32(4), pool.Stat().IdleConns())

	srv.Stop(t)
	srv.Start(t)
	// Lock first: its own retry drops the dead connections (the store's pool is its
	// lock pool here).
	for range 4 {
		unlock, err := s.Lock(ctx, "kept")
		require.NoError(t, err)
		unlock()
	}
	srv.Stop(t)
	srv.Start(t)
	for range 4 {
		got, err := s.Load(ctx, "kept")
		require.NoError(t, err)
		assert.Equal(t, []byte("whole"), got)
		require.NoError(t, s.Save(ctx, "kept", []byte("whole")))
	}
}

// TestSweepKeepsSessionSavedDuringIt: a save of an idle session that commits while
// the sweep's DELETE waits for its row lock must survive. PostgreSQL re-checks only
// the outer DELETE's condition against the newly saved row, so the cutoff has to be
// there, not only in the subquery that picked the row.
func TestSweepKeepsSessionSavedDuringIt(t *testing.T) {
	srv := testpg.Start(t)
	ctx := context.Background()
	s := open(t, srv)
	require.NoError(t, s.Save(ctx, "idle", []byte("old")))
	srv.SQL(t, fmt.Sprintf("UPDATE %s SET modified = now() - interval '2 hours'", s.Table()))

	// A save held in a transaction: the row is locked and newly modified, not yet
	// committed.
	tx, err := s.Pool().Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, fmt.Sprintf("UPDATE %s SET pickle = 'new', modified = now() WHERE id = 'idle'", s.Table()))
	require.NoError(t, err)

	type result struct{ deleted, remaining int }
	done := make(chan result, 1)
	go func() {
		deleted, remaining, err := s.DeleteIdle(time.Hour)
		assert.NoError(t, err)
		done <- result{deleted, remaining}
	}()
	// Commit once the sweep's DELETE waits for the row.
	for {
		var waiting bool
		require.NoError(t, s.Pool().QueryRow(ctx,
			`SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'DELETE%')`).Scan(&waiting))
		if waiting {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, tx.Commit(ctx))
	r := <-done
	assert.Equal(t, result{0, 1}, r, "the sweep deleted a session saved while it ran")
	data, err := s.Load(ctx, "idle")
	require.NoError(t, err)
	assert.Equal(t, "new", string(data))
}
