"""A small Quixote 3.8 application for qxbridge's proxy and end-to-end tests.

It runs on the real Quixote Publisher with session3's SessionManager and
DirectorySessionStore, served by Quixote's own SCGI server (python-scgi's pre-forking
server, connections passed to children over UNIX sockets):

    python -m quixote.server.scgi_server --factory qxsite.create_publisher \\
        --host 127.0.0.1 --port 3000

Each child calls create_publisher once. It is configured from the environment:

  QXSITE_SESSION_DIR    the session directory (required unless QXSITE_SESSION_DSN is
                        set; created if missing)
  QXSITE_SESSION_DSN    keep the sessions in PostgreSQL instead, in the table the Go
                        gateway shares (python/'s qxbridge_pgstore, one line in place
                        of DirectorySessionStore)
  QXSITE_SESSION_CLASS  dotted class name of new sessions (default
                        session3.Session.Session); for a subclass of session4's
                        Session4 the manager and store are session4's (Quixote's
                        BaseSessionManager over session4.DirectorySessionStore), as a
                        Quixote 4 site runs them
  QXSITE_COOKIE_PATH, QXSITE_COOKIE_DOMAIN, QXSITE_COOKIE_SECURE=1,
  QXSITE_COOKIE_HTTPONLY=1   Quixote's SESSION_COOKIE_* settings

Pages (see qxsite.root for what each answers):
  sessions  /login (form, or ?user=NAME), /logout, /expire, /counter, /token,
            /submit (form token check), /item, /fail, /status (JSON), /check
  protocol  /hello, /env (JSON echo of the SCGI environment and the body's hash),
            /hash, /stream (a streamed page), /sleep, /respond (any status),
            /cookie (two Set-Cookie lines), /die (the child dies mid-response),
            /page (a typical page, for benchmarks)
An unknown path answers 404 with the /env echo.
"""

import importlib
import os

from quixote.config import Config
from quixote.publish import Publisher
from session3.SessionManager import SessionManager
from session3.store.DirectorySessionStore import DirectorySessionStore
from session4.DirectorySessionStore import DirectorySessionStore as Session4Store
from session4.Session4Session import Session4, Session4SessionManager

from qxsite.root import RootDirectory


def load_class(dotted):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def config_from_env(env):
    settings = {"allowed_methods": ["GET", "HEAD", "POST", "PUT"], "display_exceptions": False}
    if env.get("QXSITE_COOKIE_PATH"):
        settings["session_cookie_path"] = env["QXSITE_COOKIE_PATH"]
    if env.get("QXSITE_COOKIE_DOMAIN"):
        settings["session_cookie_domain"] = env["QXSITE_COOKIE_DOMAIN"]
    if env.get("QXSITE_COOKIE_SECURE") == "1":
        settings["session_cookie_secure"] = True
    if env.get("QXSITE_COOKIE_HTTPONLY") == "1":
        settings["session_cookie_httponly"] = True
    return Config(**settings)


class Quixote4SessionManager(Session4SessionManager):
    # Quixote 4's BaseSessionManager has ACCESS_TIME_RESOLUTION = 1; Quixote 3.8's
    # lacks it, and its get_session reads it, so session4's manager fails on 3.8
    # without it.
    ACCESS_TIME_RESOLUTION = 1


def create_publisher(env=None):
    """The Publisher factory Quixote's servers call (--factory qxsite.create_publisher)."""
    env = os.environ if env is None else env
    directory = env.get("QXSITE_SESSION_DIR")
    dsn = env.get("QXSITE_SESSION_DSN")
    if not directory and not dsn:
        raise RuntimeError("QXSITE_SESSION_DIR is not set")
    session_class = load_class(env.get("QXSITE_SESSION_CLASS") or "session3.Session.Session")
    if dsn:
        from qxbridge_pgstore.session3_store import PostgresSessionStore

        manager = SessionManager(PostgresSessionStore(dsn), session_class)
    elif issubclass(session_class, Session4):
        manager = Quixote4SessionManager(session_class, Session4Store(directory, create_directory=True))
    else:
        manager = SessionManager(DirectorySessionStore(directory, create=True), session_class)
    return Publisher(RootDirectory(), session_manager=manager, config=config_from_env(env))
