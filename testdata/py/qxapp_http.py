"""Serves qxsite (testdata/py/sites) over HTTP with wsgiref, on a session directory.

usage: qxapp_http.py SESSION_DIR [--class DOTTED] [--port N]

The application is qxsite's real quixote.publish.Publisher (through quixote.wsgi.QWIP):
session3's SessionManager over its DirectorySessionStore on SESSION_DIR (created if
missing), or session4's manager and store when DOTTED (the class of new sessions,
default session3.Session.Session) is a subclass of session4's Session4. The other
QXSITE_* settings of qxsite are read from the environment; see qxsite for the pages.

Once listening it prints one line "listening http://127.0.0.1:PORT" on stdout (port 0,
the default, picks a free port) and serves until killed or its stdin closes, so a test
that started it can stop it by closing the pipe. Requests are served one at a time:
Quixote's publisher holds one current request.
"""

import argparse
import os
import sys
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from quixote.wsgi import QWIP

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sites"))
import qxsite  # noqa: E402


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--class", dest="session_class", default="session3.Session.Session")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    os.environ["QXSITE_SESSION_DIR"] = args.directory
    os.environ["QXSITE_SESSION_CLASS"] = args.session_class
    stdout = sys.stdout  # Quixote's logger points sys.stdout at its error log
    publisher = qxsite.create_publisher()
    server = make_server("127.0.0.1", args.port, QWIP(publisher), server_class=WSGIServer, handler_class=QuietHandler)
    print("listening http://127.0.0.1:%d" % server.server_port, file=stdout, flush=True)

    def watch_stdin():
        sys.stdin.read()
        server.shutdown()

    threading.Thread(target=watch_stdin, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
