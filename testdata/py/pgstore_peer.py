"""Runs the real Quixote 3.8 publisher with session3's SessionManager over the
PostgreSQL store of python/ (qxbridge_pgstore), for the Go store's interop tests.

usage: pgstore_peer.py DSN TABLE setup
       pgstore_peer.py DSN TABLE request PATH [SESSION_ID]
       pgstore_peer.py DSN TABLE dirsave ID DIR

setup      creates the table (the store's setup()).
request    serves one GET of PATH (qxsite's pages, testdata/py/sites: /login?user=NAME, /counter,
           /status...) with the session cookie SESSION_ID, and prints one JSON line:
           {"status": ..., "body": ..., "cookie": new cookie value or null}.
dirsave    loads session ID through the store and saves it with session3's
           DirectorySessionStore into DIR, for byte comparisons.
"""

import io
import json
import os
import sys

from quixote.publish import Publisher
from session3.SessionManager import SessionManager
from session3.store.DirectorySessionStore import DirectorySessionStore

from qxbridge_pgstore.session3_store import PostgresSessionStore

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sites"))
from qxsite.root import RootDirectory as Root  # noqa: E402


def main():
    dsn, table, cmd, *args = sys.argv[1:]
    store = PostgresSessionStore(dsn, table=table)
    if cmd == "setup":
        store.setup()
    elif cmd == "request":
        stdout = sys.stdout  # Quixote's logger points sys.stdout at its error log
        publisher = Publisher(Root(), session_manager=SessionManager(store))
        path, _, query = args[0].partition("?")
        env = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": query,
               "SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.0",
               "REMOTE_ADDR": "192.0.2.9"}
        if len(args) > 1:
            env["HTTP_COOKIE"] = "QX_session=" + args[1]
        resp = publisher.process(io.BytesIO(b""), env)
        body = b"".join(resp.generate_body_chunks()).decode("utf-8", "replace")
        cookie = (resp.cookies or {}).get("QX_session", {}).get("value")
        print(json.dumps({"status": resp.status_code, "body": body, "cookie": cookie}), file=stdout)
    elif cmd == "dirsave":
        session = store.load_session(args[0])
        DirectorySessionStore(args[1]).save_session(session)
    else:
        sys.exit("unknown command " + cmd)
    store.close()


if __name__ == "__main__":
    main()
