// Package pgstore keeps sessions in a PostgreSQL table that Go (this package) and
// Python (the qxbridge-pgstore package under python/, for session3 and Quixote's own
// session API) share, so that processes on several hosts can serve the same sessions.
//
//	s, err := pgstore.Open(ctx, "postgres://app@db/app")
//	data, err := s.Load(ctx, id) // errors.Is(err, store.ErrNotFound)
//	err = s.Save(ctx, id, data)
//
// A Store has the methods of *store.Directory that quixote.Manager and the gateway's
// admin commands and sweep use (Load, Save, Delete, Has, IDs, DeleteIdle), with the
// same ids (store.ValidID) and errors. Like the directory store it stores bytes: a
// session's pickle, byte for byte what session3's DirectorySessionStore would write
// in its file.
//
// # Schema
//
// One table (WithTable, default "sessions"), created by whichever side starts first
// (Open and Setup here, setup() in Python), with the statements of schema.sql:
//
//	id text PRIMARY KEY, pickle bytea NOT NULL,
//	created, accessed, modified timestamptz NOT NULL, user_name text
//
// with an index on modified (the sweep) and one on user_name (a user's sessions).
// Every save sets modified to the database's now(); the sweep (DeleteIdle, Python's
// delete_old_sessions) deletes by it, as session3 deletes by file mtime. The store does
// not decode pickles: user_name, created and accessed come from a hook (WithMeta) that
// the caller plugs in with its session decoder; without one, user_name is NULL and
// created and accessed are the times of the first and last saves. The Python store
// fills them from the session object (user when it is a string, _creation_time,
// _access_time).
//
// # Failures
//
// Each call is one statement, bounded by the query timeout (WithQueryTimeout) or the
// context's deadline. A save is one INSERT ... ON CONFLICT DO UPDATE: the session holds
// its old bytes or its new ones, never part of either. Whatever keeps the database from
// answering — no connection, a restart, a full disk, a statement too slow, a missing
// table — is returned as an error wrapping store.ErrUnavailable (and the driver's
// error, e.g. a *pgconn.PgError), which callers answer with 503; a caller's cancelled
// context is returned as context.Canceled. A save that fails while its commit is on
// the wire may still have been applied: the session then holds the new bytes, whole.
// The pool drops broken connections and makes new ones as needed, so the store serves
// again by itself once the database is back. A call whose connection turns out to be
// lost drops the pool's idle connections (dead too, after a restart) and runs once more
// on a new one, so a restart between requests is not seen by them at all.
//
// # Ordering across hosts
//
// Lock takes a session-level advisory lock keyed by the session id (LockKey), held on
// a connection of its own pool until released, with the same bounded wait as the
// directory store's file locks (the lock timeout, store.ErrLockTimeout; waits are
// reported to WithLockWaitHook). Gateways on
// several hosts that lock each request's session id serve one request per session at
// a time between them. Python processes do not lock: requests they serve without a
// gateway in front are unordered, as with session3's directory store.
package pgstore
