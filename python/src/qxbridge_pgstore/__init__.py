"""Quixote sessions in PostgreSQL, shared with qxbridge's Go gateway.

    from qxbridge_pgstore.session3_store import PostgresSessionStore   # session3
    from qxbridge_pgstore.quixote_store import PostgresSessionStore    # quixote.session / session4
"""

from .core import (  # noqa: F401
    DEFAULT_TABLE,
    DEFAULT_TIMEOUT,
    PgSessions,
    SessionStoreError,
    SessionStoreUnavailable,
    lock_key,
    session_meta,
    user_name,
    valid_id,
)

__version__ = "0.1.0"
