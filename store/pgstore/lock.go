package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/qxbridge/qxbridge/store"
)

// unlockTimeout bounds the statement that releases an advisory lock. If it fails the
// connection is closed, which releases the lock too.
const unlockTimeout = 5 * time.Second

// Lock takes the advisory lock of session id (pg_advisory_lock(LockKey("session:" +
// id)), session-level, on a connection of the lock pool kept for the holder) and
// returns the function that releases it. Every process that locks through the same
// database — gateways on several hosts — is ordered by it: one holder at a time per
// session id. The wait ends with the context or after the lock timeout
// (WithLockTimeout), whichever comes first: the lock timeout gives
// store.ErrLockTimeout, a database that cannot be reached store.ErrUnavailable, a
// cancelled context the context's error. If the holder's process dies or its
// connection breaks, the database releases the lock.
//
// Python processes (the qxbridge-pgstore store) do not take these locks: requests
// they serve without a gateway in front are not ordered, as with session3.
func (s *Store) Lock(ctx context.Context, id string) (unlock func(), err error) {
	if err := store.ValidID(id); err != nil {
		return nil, opError("lock", id, err)
	}
	lctx, cancel := s.timeout(ctx, s.lockTimeout)
	defer cancel()
	key := LockKey("session:" + id)
	var conn *pgxpool.Conn
	var got bool
	for attempt := 0; ; attempt++ {
		if conn, err = s.lockPool.Acquire(lctx); err != nil {
			return nil, s.lockFail(ctx, lctx, id, err)
		}
		// Try first: an uncontended lock costs one statement, and a contended one
		// is known as such, for the lock-wait hook.
		err = conn.QueryRow(lctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got)
		if err == nil || attempt > 0 || lctx.Err() != nil || !(pgconn.SafeToRetry(err) || connLost(err)) {
			break
		}
		// The connection was lost (the database restarted): so most likely were
		// the pool's other idle ones. As retry does for the other calls, drop them
		// and try once more on a new connection. A lock a lost connection held is
		// gone with it.
		conn.Conn().Close(context.Background())
		conn.Release()
		s.lockPool.Reset()
	}
	if err == nil && !got {
		start := time.Now()
		_, err = conn.Exec(lctx, `SELECT pg_advisory_lock($1)`, key)
		if s.lockWaitHook != nil {
			s.lockWaitHook("lock", time.Since(start))
		}
	}
	if err != nil {
		// The connection may hold the lock if it was granted as the wait was cut
		// short: close it, and the database releases whatever it held.
		conn.Conn().Close(context.Background())
		conn.Release()
		return nil, s.lockFail(ctx, lctx, id, err)
	}
	return unlocker(conn, key), nil
}

// TryLock is Lock without waiting: ok is false when another holder has the lock.
func (s *Store) TryLock(ctx context.Context, id string) (unlock func(), ok bool, err error) {
	if err := store.ValidID(id); err != nil {
		return nil, false, opError("lock", id, err)
	}
	qctx, cancel := s.timeout(ctx, s.queryTimeout)
	defer cancel()
	conn, err := s.lockPool.Acquire(qctx)
	if err != nil {
		return nil, false, s.fail("lock", id, ctx, err)
	}
	key := LockKey("session:" + id)
	if err := conn.QueryRow(qctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil || !ok {
		if err != nil {
			conn.Conn().Close(context.Background())
		}
		conn.Release()
		if err != nil {
			return nil, false, s.fail("lock", id, ctx, err)
		}
		return nil, false, nil
	}
	return unlocker(conn, key), true, nil
}

// lockFail names why a lock wait ended: the caller's context, the lock timeout, or
// the database.
func (s *Store) lockFail(ctx, lctx context.Context, id string, err error) error {
	switch {
	case ctx.Err() != nil:
		return opError("lock", id, ctx.Err())
	case errors.Is(lctx.Err(), context.DeadlineExceeded):
		return opError("lock", id, fmt.Errorf("%w (%v)", store.ErrLockTimeout, s.lockTimeout))
	}
	return s.fail("lock", id, ctx, err)
}

// unlocker returns the function that releases the advisory lock key held by conn
// and gives conn back to its pool. A release that fails closes the connection,
// which releases the lock too.
func unlocker(conn *pgxpool.Conn, key int64) func() {
	return func() {
		uctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
		defer cancel()
		var released bool
		if err := conn.QueryRow(uctx, `SELECT pg_advisory_unlock($1)`, key).Scan(&released); err != nil || !released {
			conn.Conn().Close(context.Background())
		}
		conn.Release()
	}
}
