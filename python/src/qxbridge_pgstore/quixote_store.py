"""Quixote's own SessionStore API (quixote.session, what session4 and Quixote 4's
session managers call) over the shared PostgreSQL table."""

from __future__ import annotations

import pickle

from quixote.session import SessionStore

from .core import DEFAULT_TABLE, DEFAULT_TIMEOUT, PgSessions, session_meta


class PostgresSessionStore(SessionStore):
    """A drop-in replacement for session4's DirectorySessionStore that keeps the
    sessions in PostgreSQL, in the table qxbridge's Go gateway shares:

        store = PostgresSessionStore("postgres://app@db/app")
        publisher = Publisher(root, session_manager=Session4SessionManager(
            session_class=Session4, session_store=store))

    Like session4's directory store it pickles with pickle.HIGHEST_PROTOCOL and
    calls the session's preserve_current_values() (when it has one) before pickling.
    """

    is_multiprocess_safe = True
    is_thread_safe = True
    pickle_protocol = pickle.HIGHEST_PROTOCOL

    def __init__(self, conninfo: str, table: str = DEFAULT_TABLE, timeout: float = DEFAULT_TIMEOUT,
                 create: bool = True, user_name=None):
        self.db = PgSessions(conninfo, table, timeout, create)
        self.user_name = user_name  # names a session's user for user_name; None: qxbridge_pgstore.user_name

    def load_session(self, id):
        if not id:
            return None
        data = self.db.load(id)
        return None if data is None else pickle.loads(data)

    def save_session(self, session):
        preserve = getattr(session, "preserve_current_values", None)
        if preserve is not None:
            preserve()
        user, created, accessed = session_meta(session, self.user_name)
        self.db.save(session.id, pickle.dumps(session, self.pickle_protocol), user, created, accessed)

    def delete_session(self, session_id):
        if session_id:
            self.db.delete(session_id)

    def has_session(self, id):
        return bool(id) and self.db.has(id)

    def __iter__(self):
        return iter(self.db.ids())

    def setup(self):
        """Create the table and its indexes if they do not exist."""
        self.db.setup()

    def delete_old_sessions(self, minutes):
        """Delete the sessions not saved for minutes; return (deleted, remaining)."""
        return self.db.delete_old(minutes)

    def user_session_ids(self, user):
        """The ids of user's sessions (where session.user == user)."""
        return self.db.user_ids(user)

    def close(self):
        self.db.close()
