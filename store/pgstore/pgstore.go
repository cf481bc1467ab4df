package pgstore

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qxbridge/qxbridge/store"
)

// Defaults for the options.
const (
	// DefaultTable is the table of sessions, as in session2's PostgresSessionStore.
	DefaultTable = "sessions"
	// DefaultQueryTimeout bounds each call's time in the database (and in waiting
	// for a connection) when the context has no earlier deadline.
	DefaultQueryTimeout = 5 * time.Second
	// DefaultLockConns is the size of the pool Open makes for advisory locks: the
	// number of sessions whose locks can be held at once by this process.
	DefaultLockConns = 64
	// sweepBatch is how many idle sessions one statement of DeleteIdle deletes, so
	// that a sweep of millions of sessions is many short statements, each within
	// the query timeout, rather than one long one.
	sweepBatch = 5000
)

//go:embed schema.sql
var schemaSQL string

// Meta is what a store keeps beside a session's bytes, for finding a user's
// sessions and for operators. The store does not decode sessions; WithMeta plugs in
// a function that does.
type Meta struct {
	// User names the session's user; "" stores NULL.
	User string
	// Created and Accessed are the session's creation and last access times; zero
	// stores the database's now().
	Created, Accessed time.Time
}

// Store is a session store in a PostgreSQL table, shared with the Python store of
// the qxbridge-pgstore package. It has the methods of *store.Directory that the
// session manager and the admin commands use, with the same errors. It is safe for
// concurrent use.
type Store struct {
	pool, lockPool *pgxpool.Pool
	ownPool        bool   // Open made pool: Close closes it
	ownLockPool    bool   // Open made lockPool: Close closes it
	table          string // quoted identifier
	rawTable       string
	queryTimeout   time.Duration
	lockTimeout    time.Duration
	lockConns      int32
	maxSize        int64
	meta           func(id string, data []byte) Meta
	lockWaitHook   func(op string, waited time.Duration)

	sqlLoad, sqlSave, sqlDelete, sqlHas, sqlIDs, sqlUser, sqlSweep, sqlCount, sqlModified string
}

// Option configures a Store.
type Option func(*Store)

// WithTable stores sessions in the named table (DefaultTable) of the connection's
// search_path; its indexes are named after it.
func WithTable(name string) Option { return func(s *Store) { s.rawTable = name } }

// WithQueryTimeout bounds each call's time in the database, waiting for a connection
// included (DefaultQueryTimeout); a context deadline that comes sooner wins. A call
// that runs out of time returns ErrUnavailable. Zero or less leaves only the context.
func WithQueryTimeout(d time.Duration) Option { return func(s *Store) { s.queryTimeout = d } }

// WithLockTimeout bounds each wait of Lock for a session's advisory lock
// (store.DefaultLockTimeout); a context deadline that comes sooner wins. Zero or less
// leaves only the context.
func WithLockTimeout(d time.Duration) Option { return func(s *Store) { s.lockTimeout = d } }

// WithMaxSize bounds the size of the sessions Load reads and Save writes
// (store.DefaultMaxSize).
func WithMaxSize(n int64) Option { return func(s *Store) { s.maxSize = n } }

// WithMeta calls meta with each session Save writes; what it returns is stored
// beside the bytes (user_name, created, accessed). Without it those columns hold
// NULL and the times of the saves.
func WithMeta(meta func(id string, data []byte) Meta) Option {
	return func(s *Store) { s.meta = meta }
}

// WithLockWaitHook calls hook each time Lock could not take a session's lock at once
// (another holder had it), once the wait is over, whether the lock was granted or the
// wait ended with the context or the lock timeout; op is "lock". It runs on the
// goroutine of the Lock call, so it must be quick and safe for concurrent use. Like
// store.WithLockWaitHook, it suits a metric of contention.
func WithLockWaitHook(hook func(op string, waited time.Duration)) Option {
	return func(s *Store) { s.lockWaitHook = hook }
}

// WithLockConns sets the size of the connection pool Open makes for Lock
// (DefaultLockConns). Each held lock keeps one connection.
func WithLockConns(n int) Option { return func(s *Store) { s.lockConns = int32(max(n, 1)) } }

// WithLockPool makes Lock take its connections from p. New uses the store's pool
// otherwise; then every request that holds a lock and loads its session needs two
// of the pool's connections, and a pool exhausted by lock holders would stall them.
func WithLockPool(p *pgxpool.Pool) Option { return func(s *Store) { s.lockPool = p } }

// Open connects to the database named by dsn — a postgres:// URL or a key=value
// connection string, with pgxpool's pool_* parameters if wanted — and returns a
// store over it, after creating the table and its indexes if they do not exist
// (Setup). It makes two pools, one for sessions and one for Lock; Close closes them.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	s := newStore(pool, opts)
	s.ownPool = true
	if s.lockPool == nil {
		s.ownLockPool = true
		lcfg := cfg.Copy()
		lcfg.MaxConns = s.lockConns
		lcfg.MinConns = 0
		if s.lockPool, err = pgxpool.NewWithConfig(ctx, lcfg); err != nil {
			pool.Close()
			return nil, fmt.Errorf("pgstore: %w", err)
		}
	}
	if err := s.Setup(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// New returns a store over pool without touching the database: call Setup before
// the first use if the table may not exist. Close does not close pool.
func New(pool *pgxpool.Pool, opts ...Option) *Store {
	s := newStore(pool, opts)
	if s.lockPool == nil {
		s.lockPool = pool
	}
	return s
}

func newStore(pool *pgxpool.Pool, opts []Option) *Store {
	s := &Store{
		pool:         pool,
		rawTable:     DefaultTable,
		queryTimeout: DefaultQueryTimeout,
		lockTimeout:  store.DefaultLockTimeout,
		lockConns:    DefaultLockConns,
		maxSize:      store.DefaultMaxSize,
	}
	for _, o := range opts {
		o(s)
	}
	s.table = pgx.Identifier{s.rawTable}.Sanitize()
	t := s.table
	s.sqlLoad = `SELECT CASE WHEN octet_length(pickle) <= $2 THEN pickle END, octet_length(pickle) FROM ` + t + ` WHERE id = $1`
	s.sqlSave = `INSERT INTO ` + t + ` AS s (id, pickle, created, accessed, modified, user_name)
VALUES ($1, $2, coalesce($3, now()), coalesce($4, now()), now(), $5)
ON CONFLICT (id) DO UPDATE SET pickle = excluded.pickle, accessed = excluded.accessed,
    modified = excluded.modified, user_name = excluded.user_name`
	s.sqlDelete = `DELETE FROM ` + t + ` WHERE id = $1`
	s.sqlHas = `SELECT EXISTS (SELECT 1 FROM ` + t + ` WHERE id = $1)`
	s.sqlIDs = `SELECT id FROM ` + t + ` ORDER BY id`
	s.sqlUser = `SELECT id FROM ` + t + ` WHERE user_name = $1 ORDER BY id`
	// The cutoff is repeated in the outer condition: when a save commits while the
	// DELETE waits for the row's lock, PostgreSQL re-checks only that condition
	// against the new row, not the subquery that picked it.
	s.sqlSweep = `DELETE FROM ` + t + ` WHERE modified < $1 AND id IN (SELECT id FROM ` + t + ` WHERE modified < $1 LIMIT ` + strconv.Itoa(sweepBatch) + `)`
	s.sqlCount = `SELECT count(*) FROM ` + t
	s.sqlModified = `SELECT modified FROM ` + t + ` WHERE id = $1`
	return s
}

// Close closes the pools Open made (not one given with WithLockPool or New). It
// waits for connections in use to be returned.
func (s *Store) Close() {
	if s.ownPool {
		s.pool.Close()
	}
	if s.ownLockPool {
		s.lockPool.Close()
	}
}

// Pool returns the store's connection pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Table returns the name of the sessions table.
func (s *Store) Table() string { return s.rawTable }

// Schema returns the statements Setup runs: the table and its indexes, created if
// they do not exist.
func (s *Store) Schema() string {
	return strings.NewReplacer(
		"{table}", s.table,
		"{index_modified}", pgx.Identifier{s.rawTable + "_modified_idx"}.Sanitize(),
		"{index_user}", pgx.Identifier{s.rawTable + "_user_name_idx"}.Sanitize(),
	).Replace(schemaSQL)
}

// Setup creates the sessions table and its indexes if they do not exist. Both
// languages' stores run the same statements under the same transaction-level
// advisory lock (LockKey("schema:" + table)), so that two processes setting up
// at once do not collide.
func (s *Store) Setup(ctx context.Context) error {
	ctx, cancel := s.timeout(ctx, s.queryTimeout)
	defer cancel()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, LockKey("schema:"+s.rawTable)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, s.Schema(), pgx.QueryExecModeSimpleProtocol)
		return err
	})
	if err != nil {
		return s.fail("setup", "", ctx, err)
	}
	return nil
}

// timeout derives the context of one call.
func (s *Store) timeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// fail turns an error from the database into the error a call returns. Every
// failure to get an answer from the database — no connection, a restart, a full
// disk, a statement cancelled by the timeout, even a missing table — is
// ErrUnavailable: the session cannot be served now, and serving a new one instead
// would log its user out. A caller's cancelled context is returned as it is.
func (s *Store) fail(op, id string, ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(cerr, context.DeadlineExceeded) {
		return opError(op, id, cerr) // the caller gave up (a client that left)
	}
	return opError(op, id, fmt.Errorf("%w: %w", store.ErrUnavailable, err))
}

func opError(op, id string, err error) error {
	if id == "" {
		return fmt.Errorf("pgstore: %s: %w", op, err)
	}
	if len(id) > 2*store.MaxIDLength {
		id = id[:2*store.MaxIDLength] + "..."
	}
	return fmt.Errorf("pgstore: %s %s: %w", op, strconv.Quote(id), err)
}

// retry runs fn, and once more if it failed because its connection was lost: the
// database restarted, or the network dropped. The pool's other idle connections are
// then most likely dead as well, so they are dropped first (pgxpool's Reset) and the
// second attempt gets a new connection. This hides a restart of the database from all
// but the calls in flight during it. Every call of the store may run twice: loads and
// listings read, a save writes the same bytes again, and a delete whose first attempt
// went through reports store.ErrNotFound.
func (s *Store) retry(ctx context.Context, fn func() error) error {
	err := fn()
	if err != nil && ctx.Err() == nil && (pgconn.SafeToRetry(err) || connLost(err)) {
		if connLost(err) {
			s.pool.Reset()
		}
		err = fn()
	}
	return err
}

// connLost reports whether err says the connection is gone, rather than that the
// server refused the statement or the context ended.
func connLost(err error) bool {
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, pgx.ErrNoRows):
		return false
	case errors.As(err, &pgErr):
		// Class 08, connection exception; 57P01-57P03: the server is shutting
		// down, crashed, or not accepting connections yet.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P0")
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return false // no server to retry against: a new connection would fail too
	}
	return true
}

// Load returns the bytes of the session id. A missing session gives an error
// wrapping store.ErrNotFound; a session larger than the maximum size
// store.ErrTooLarge (and is not read).
func (s *Store) Load(ctx context.Context, id string) ([]byte, error) {
	if err := store.ValidID(id); err != nil {
		return nil, opError("load", id, err)
	}
	qctx, cancel := s.timeout(ctx, s.queryTimeout)
	defer cancel()
	var data []byte
	var size int64
	err := s.retry(qctx, func() error { return s.pool.QueryRow(qctx, s.sqlLoad, id, s.maxSize).Scan(&data, &size) })
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, opError("load", id, store.ErrNotFound)
	case err != nil:
		return nil, s.fail("load", id, ctx, err)
	case data == nil:
		return nil, opError("load", id, fmt.Errorf("%w: %d bytes, more than %d", store.ErrTooLarge, size, s.maxSize))
	}
	return data, nil
}

// Save stores data as the session id, replacing its bytes in one statement: the
// session holds the old bytes or the new ones, never a mix, whatever fails.
// Empty data gives store.ErrNoData, as with the directory store.
func (s *Store) Save(ctx context.Context, id string, data []byte) error {
	if err := store.ValidID(id); err != nil {
		return opError("save", id, err)
	}
	if len(data) == 0 {
		return opError("save", id, store.ErrNoData)
	}
	if int64(len(data)) > s.maxSize {
		return opError("save", id, fmt.Errorf("%w: %d bytes, more than %d", store.ErrTooLarge, len(data), s.maxSize))
	}
	var m Meta
	if s.meta != nil {
		m = s.meta(id, data)
	}
	qctx, cancel := s.timeout(ctx, s.queryTimeout)
	defer cancel()
	err := s.retry(qctx, func() error {
		_, err := s.pool.Exec(qctx, s.sqlSave, id, data, optTime(m.Created), optTime(m.Accessed), optText(m.User))
		return err
	})
	if err != nil {
		return s.fail("save", id, ctx, err)
	}
	return nil
}

func optTime(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

func optText(v string) pgtype.Text { return pgtype.Text{String: v, Valid: v != ""} }

// Delete removes the session id. A missing session gives store.ErrNotFound.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := store.ValidID(id); err != nil {
		return opError("delete", id, err)
	}
	qctx, cancel := s.timeout(ctx, s.queryTimeout)
	defer cancel()
	var tag pgconn.CommandTag
	err := s.retry(qctx, func() (err error) {
		tag, err = s.pool.Exec(qctx, s.sqlDelete, id)
		return err
	})
	switch {
	case err != nil:
		return s.fail("delete", id, ctx, err)
	case tag.RowsAffected() == 0:
		return opError("delete", id, store.ErrNotFound)
	}
	return nil
}

// Has reports whether the session id exists, without reading it.
func (s *Store) Has(ctx context.Context, id string) (bool, error) {
	if err := store.ValidID(id); err != nil {
		return false, opError("has", id, err)
	}
	qctx, cancel := s.timeout(ctx, s.queryTimeout)
	defer cancel()
	var has bool
	if err := s.retry(qctx, func() error { return s.pool.QueryRow(qctx, s.sqlHas, id).Scan(&has) }); err != nil {
		return false, s.fail("has", id, ctx, err)
	}
	return has, nil
}

// IDs returns the ids of all sessions, sorted.
func (s *Store) IDs(ctx context.Context) ([]string, error) {
	return s.ids(ctx, "list", s.sqlIDs)
}

// UserIDs returns the ids of the sessions whose user_name is user (see WithMeta),
// sorted.
func (s *Store) UserIDs(ctx context.Context, user string) ([]string, error) {
	return s.ids(ctx, "list user", s.sqlUser, user)
}

func (s *Store) ids(ctx context.Context, op, sql string, args ...any) ([]string, error) {
	qctx, cancel := s.timeout(ctx, s.queryTimeout)
	defer cancel()
	var ids []string
	err := s.retry(qctx, func() error {
		rows, err := s.pool.Query(qctx, sql, args...)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, s.fail(op, "", ctx, err)
	}
	return ids, nil
}

// DeleteIdle deletes the sessions not saved for olderThan, like the directory
// store's DeleteIdle and session3's delete_old_sessions(minutes), and returns how
// many it deleted and how many sessions remain. Times are the database's, so hosts
// with skewed clocks agree. It deletes in batches, each one statement within the
// query timeout. A session saved meanwhile is kept, even one whose save commits
// while the sweep waits to delete it: the row is deleted only if it is still idle
// once the save has committed.
func (s *Store) DeleteIdle(olderThan time.Duration) (deleted, remaining int, err error) {
	return s.DeleteIdleContext(context.Background(), olderThan)
}

// DeleteIdleContext is DeleteIdle with a context, which ends the sweep between
// batches or within one.
func (s *Store) DeleteIdleContext(ctx context.Context, olderThan time.Duration) (deleted, remaining int, err error) {
	call := func(fn func(ctx context.Context) error) error {
		qctx, cancel := s.timeout(ctx, s.queryTimeout)
		defer cancel()
		if err := s.retry(qctx, func() error { return fn(qctx) }); err != nil {
			return s.fail("delete idle", "", ctx, err)
		}
		return nil
	}
	var cutoff time.Time
	err = call(func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, `SELECT now() - make_interval(secs => $1)`, olderThan.Seconds()).Scan(&cutoff)
	})
	for err == nil {
		var tag pgconn.CommandTag
		err = call(func(ctx context.Context) (err error) {
			tag, err = s.pool.Exec(ctx, s.sqlSweep, cutoff)
			return err
		})
		deleted += int(tag.RowsAffected())
		if tag.RowsAffected() < sweepBatch {
			break
		}
	}
	if err != nil {
		return deleted, 0, err
	}
	var n int64
	err = call(func(ctx context.Context) error { return s.pool.QueryRow(ctx, s.sqlCount).Scan(&n) })
	return deleted, int(n), err
}

// LockKey is the 64-bit key of the advisory lock for name: FNV-1a (64-bit) of
// "qxbridge:" + name, as a signed integer. Session locks are named "session:" + id,
// the schema lock "schema:" + table. The Python store computes the same keys.
func LockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("qxbridge:"))
	h.Write([]byte(name))
	return int64(h.Sum64())
}
