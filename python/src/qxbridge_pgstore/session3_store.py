"""session3's SessionStore API over the shared PostgreSQL table."""

from __future__ import annotations

import pickle

from session3.store.SessionStore import SessionStore

from .core import DEFAULT_TABLE, DEFAULT_TIMEOUT, PgSessions, session_meta


class PostgresSessionStore(SessionStore):
    """A drop-in replacement for session3's DirectorySessionStore that keeps the
    sessions in PostgreSQL, in the table qxbridge's Go gateway shares:

        store = PostgresSessionStore("postgres://app@db/app")
        publisher = Publisher(root, session_manager=SessionManager(store))

    Pickles are protocol 4, byte for byte what DirectorySessionStore writes in its
    files. The table is created on first use if it does not exist (setup()).
    Requests this process serves are not ordered with each other's saves (as with
    the directory store); behind the Go gateway they are.
    """

    is_multiprocess_safe = True
    is_thread_safe = True
    pickle_protocol = 4  # DirectorySessionStore's

    def __init__(self, conninfo: str, table: str = DEFAULT_TABLE, timeout: float = DEFAULT_TIMEOUT,
                 create: bool = True, user_name=None):
        """conninfo is a libpq connection string or postgres:// URL; timeout (in
        seconds) bounds connecting and each statement. With create, the table is
        created (if missing) at the first call. user_name(user) names a session's
        user for the user_name column (default qxbridge_pgstore.user_name, the
        gateway's default rule: pass the same rule as its Config.UserName)."""
        self.db = PgSessions(conninfo, table, timeout, create)
        self.user_name = user_name  # names a session's user for user_name; None: qxbridge_pgstore.user_name

    def load_session(self, id, default=None):
        data = self.db.load(id)
        return default if data is None else pickle.loads(data)

    def save_session(self, session):
        user, created, accessed = session_meta(session, self.user_name)
        self.db.save(session.id, pickle.dumps(session, self.pickle_protocol), user, created, accessed)

    def delete_session(self, session):
        self.db.delete(session.id)

    def has_session(self, id):
        return self.db.has(id)

    def iter_sessions(self):
        """(id, session) for every session, as session3's API has it; sessions
        deleted while iterating are skipped."""
        for id in self.db.ids():
            session = self.load_session(id)
            if session is not None:
                yield id, session

    def setup(self):
        """Create the table and its indexes if they do not exist. Unlike session3's
        own PostgresSessionStore.setup it never drops an existing table."""
        self.db.setup()

    def delete_old_sessions(self, minutes):
        """Delete the sessions not saved for minutes; return (deleted, remaining)
        like DirectorySessionStore.delete_old_sessions."""
        return self.db.delete_old(minutes)

    def user_session_ids(self, user):
        """The ids of user's sessions (where session.user == user)."""
        return self.db.user_ids(user)

    def close(self):
        self.db.close()
