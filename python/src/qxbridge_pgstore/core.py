"""The table both languages share, and one connection to it.

`PgSessions` stores bytes under session ids, with the same statements and the same
meaning as qxbridge's Go store (store/pgstore): one table created by whichever side
starts first, a save that is one upsert (the session holds its old or its new pickle,
never a mix), the sweep by the database's clock, and one error, `SessionStoreError`,
for every failure to get an answer from the database (`SessionStoreUnavailable`, a
503, while a request's session is being loaded).
"""

from __future__ import annotations

import datetime
import importlib.resources
import os
import re
import threading
from typing import Iterator, Optional

import psycopg
from psycopg import sql
from quixote.errors import PublishError

DEFAULT_TABLE = "sessions"
DEFAULT_TIMEOUT = 5.0  # seconds: connecting, and each statement
SWEEP_BATCH = 5000  # sessions deleted per statement by delete_old_sessions
MAX_ID_LENGTH = 64

_VALID_ID = re.compile(r"[A-Za-z0-9_-]{1,%d}\Z" % MAX_ID_LENGTH)
_SCHEMA = importlib.resources.files(__package__).joinpath("schema.sql").read_text("utf-8")


class SessionStoreError(Exception):
    """The database cannot serve the call now: unreachable, restarting, out of
    space, too slow, or without the table. The session keeps whole bytes, old or
    new, never a mix. Raised at the end of a request (a save, a delete, the
    manager's has_session), Quixote treats it as a failed request (500) and does not
    answer as if the session had been saved."""


class SessionStoreUnavailable(PublishError, SessionStoreError):
    """SessionStoreError as raised while a request's session is being loaded: a
    PublishError with status 503, which Quixote answers with its error page. Only
    raised before the request has a session: raised later, Quixote would call the
    session manager's finish again from its PublishError handling, outside any
    exception handler."""

    status_code = 503
    title = "Service unavailable"
    description = "Sessions are temporarily unavailable. Please try again."


def _failure(exc: Exception) -> SessionStoreError:
    """The error for a failed call: SessionStoreUnavailable while the current
    request has no session yet (the session manager is loading it), else
    SessionStoreError (the end of a request, or no request: a cron job)."""
    try:
        from quixote import get_request

        request = get_request()
    except Exception:  # no publisher
        request = None
    if request is not None and getattr(request, "session", None) is None:
        return SessionStoreUnavailable(private_msg=str(exc))
    return SessionStoreError(str(exc))


def valid_id(id) -> bool:
    """Whether id can name a session: 1 to 64 characters of [A-Za-z0-9_-], the
    ids Quixote and session3 make (the Go store refuses the others too)."""
    return isinstance(id, str) and _VALID_ID.match(id) is not None


def lock_key(name: str) -> int:
    """The 64-bit advisory lock key of name, as the Go store computes it: FNV-1a
    (64-bit) of "qxbridge:" + name, as a signed integer. Sessions are locked as
    "session:" + id, the schema as "schema:" + table."""
    h = 0xCBF29CE484222325
    for b in ("qxbridge:" + name).encode("utf-8"):
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h - (1 << 64) if h >= 1 << 63 else h


def _timestamp(t) -> Optional[datetime.datetime]:
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        return datetime.datetime.fromtimestamp(t, tz=datetime.timezone.utc)
    return None


# The attributes user_name() reads from a user that is an object, in order: the
# same rule as the gateway's default (quixote.Session.UserName in Go).
USER_NAME_ATTRS = ("login", "username", "user_name", "user_id", "id", "name")


def user_name(user) -> Optional[str]:
    """The name a session's user is known by outside the application (the
    user_name column, the gateway's `sessions delete -user NAME`): the user when it
    is a non-empty str; for an object, the first of its attributes USER_NAME_ATTRS
    that is a non-empty str or an int (in decimal); else None."""
    if isinstance(user, str):
        return user or None
    if user is None or isinstance(user, (bool, int, float, bytes, tuple, list, dict, set, frozenset)):
        return None
    for attr in USER_NAME_ATTRS:
        v = getattr(user, "__dict__", {}).get(attr)
        if isinstance(v, str) and v:
            return v
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
    return None


def session_meta(session, name_user=None) -> tuple:
    """(user_name, created, accessed) of a session object for the columns beside
    its pickle: its user's name (name_user(user), by default user_name(user)), its
    creation and access times."""
    return (
        (name_user or user_name)(getattr(session, "user", None)),
        _timestamp(getattr(session, "_creation_time", None)),
        _timestamp(getattr(session, "_access_time", None)),
    )


class PgSessions:
    """Session bytes in a PostgreSQL table, over one psycopg connection (made when
    first needed, made anew after it breaks or in a forked child). Safe to share
    between threads: calls take turns on the connection."""

    def __init__(self, conninfo: str, table: str = DEFAULT_TABLE, timeout: float = DEFAULT_TIMEOUT,
                 create: bool = True):
        """With create, the first call creates the table if it does not exist."""
        self.conninfo = conninfo
        self._need_setup = create
        self.table = table
        self.timeout = timeout
        self._conn: Optional[psycopg.Connection] = None
        self._pid = 0
        self._lock = threading.Lock()
        t = sql.Identifier(table)
        self._sql_load = sql.SQL("SELECT pickle FROM {} WHERE id = %s").format(t)
        self._sql_save = sql.SQL(
            "INSERT INTO {} AS s (id, pickle, created, accessed, modified, user_name)"
            " VALUES (%s, %s, coalesce(%s, now()), coalesce(%s, now()), now(), %s)"
            " ON CONFLICT (id) DO UPDATE SET pickle = excluded.pickle, accessed = excluded.accessed,"
            " modified = excluded.modified, user_name = excluded.user_name"
        ).format(t)
        self._sql_delete = sql.SQL("DELETE FROM {} WHERE id = %s").format(t)
        self._sql_has = sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE id = %s)").format(t)
        self._sql_ids = sql.SQL("SELECT id FROM {} ORDER BY id").format(t)
        self._sql_user = sql.SQL("SELECT id FROM {} WHERE user_name = %s ORDER BY id").format(t)
        self._sql_sweep = sql.SQL(
            # The cutoff is in the outer condition too: PostgreSQL re-checks only that
            # one against a row whose save commits while the DELETE waits for it.
            "DELETE FROM {0} WHERE modified < %(cutoff)s AND id IN"
            " (SELECT id FROM {0} WHERE modified < %(cutoff)s LIMIT %(limit)s)"
        ).format(t)
        self._sql_count = sql.SQL("SELECT count(*) FROM {}").format(t)
        self._schema = sql.SQL(
            _SCHEMA.replace("{table}", "{t}")
            .replace("{index_modified}", "{im}")
            .replace("{index_user}", "{iu}")
        ).format(
            t=t, im=sql.Identifier(table + "_modified_idx"), iu=sql.Identifier(table + "_user_name_idx")
        )

    # -- connection ----------------------------------------------------------

    def _connect(self) -> psycopg.Connection:
        conn = psycopg.connect(
            self.conninfo, autocommit=True, connect_timeout=max(1, round(self.timeout))
        )
        conn.execute("SELECT set_config('statement_timeout', %s, false)", (str(int(self.timeout * 1000)),))
        return conn

    def _run(self, fn):
        """Run fn(conn), after setup() on the first call if the store was made
        with create."""
        if self._need_setup:
            self.setup()
        return self._call(fn)

    def _call(self, fn):
        """Run fn(conn) on the connection. A connection that turns out dead before
        the call could use it (the database restarted since) is replaced and fn run
        once more: every call of the store is idempotent."""
        with self._lock:
            if self._pid != os.getpid():
                # A forked child must not use (nor close) its parent's connection.
                self._conn, self._pid = None, os.getpid()
            fresh = False
            for _ in range(2):
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn, fresh = self._connect(), True
                    return fn(self._conn)
                except psycopg.Error as exc:
                    broken = self._conn is None or self._conn.closed or self._conn.broken
                    if broken and self._conn is not None:
                        self._conn.close()
                    if broken:
                        self._conn = None
                    if not (broken and not fresh and isinstance(exc, psycopg.OperationalError)):
                        raise _failure(exc) from exc
                    fresh = True  # retry once, on a new connection

    def close(self):
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    # -- the store -----------------------------------------------------------

    def setup(self):
        """Create the table and its indexes if they do not exist (never drops
        anything), under the same advisory lock as the Go store's Setup."""

        def create(conn):
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("schema:" + self.table),))
                conn.execute(self._schema)

        self._call(create)
        self._need_setup = False

    def load(self, id: str) -> Optional[bytes]:
        if not valid_id(id):
            return None
        row = self._run(lambda c: c.execute(self._sql_load, (id,)).fetchone())
        return None if row is None else bytes(row[0])

    def save(self, id: str, data: bytes, user=None, created=None, accessed=None):
        if not valid_id(id):
            raise ValueError("invalid session id %r" % (id,))
        if not data:
            raise ValueError("refusing to save an empty session")
        self._run(lambda c: c.execute(self._sql_save, (id, data, created, accessed, user)))

    def delete(self, id: str) -> bool:
        if not valid_id(id):
            return False
        return self._run(lambda c: c.execute(self._sql_delete, (id,)).rowcount) > 0

    def has(self, id: str) -> bool:
        if not valid_id(id):
            return False
        return self._run(lambda c: c.execute(self._sql_has, (id,)).fetchone()[0])

    def ids(self) -> list:
        return self._run(lambda c: [r[0] for r in c.execute(self._sql_ids)])

    def user_ids(self, user: str) -> list:
        """The ids of the sessions of user (their user_name), sorted."""
        return self._run(lambda c: [r[0] for r in c.execute(self._sql_user, (user,))])

    def delete_old(self, minutes) -> tuple:
        """Delete the sessions not saved for minutes, by the database's clock, in
        batches; return (deleted, remaining). A session saved meanwhile is kept."""
        cutoff = self._run(
            lambda c: c.execute("SELECT now() - make_interval(secs => %s)", (float(minutes) * 60,)).fetchone()[0]
        )
        deleted = 0
        while True:
            n = self._run(lambda c: c.execute(self._sql_sweep, {"cutoff": cutoff, "limit": SWEEP_BATCH}).rowcount)
            deleted += n
            if n < SWEEP_BATCH:
                break
        remaining = self._run(lambda c: c.execute(self._sql_count).fetchone()[0])
        return deleted, remaining

    def iter_ids(self) -> Iterator[str]:
        return iter(self.ids())
