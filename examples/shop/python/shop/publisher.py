"""The Publisher factory Quixote's servers call:

    python -m quixote.server.scgi_server --factory shop.publisher.create_publisher

Settings come from the environment: SHOP_SESSION_DIR, the session directory (shared
with the Go gateway's -sessions; created if missing).
"""

import os

from quixote.config import Config
from quixote.publish import Publisher
from session3.SessionManager import SessionManager
from session3.store.DirectorySessionStore import DirectorySessionStore

from shop.session import ShopSession
from shop.ui import RootDirectory


def create_publisher():
    directory = os.environ.get("SHOP_SESSION_DIR")
    if not directory:
        raise RuntimeError("SHOP_SESSION_DIR is not set")
    manager = SessionManager(DirectorySessionStore(directory, create=True), ShopSession)
    config = Config(display_exceptions=False, session_cookie_path="/", session_cookie_httponly=True)
    return Publisher(RootDirectory(), session_manager=manager, config=config)
