"""Serves qxapp.application over HTTP with wsgiref on a loopback port.

usage: qxapp_http.py SESSION_DIR [--class DOTTED] [--port N]

The other QXAPP_* settings of qxapp are read from the environment. Once listening
it prints one line "listening http://127.0.0.1:PORT" on stdout (port 0, the
default, picks a free port) and serves until killed or its stdin closes, so a
test that started it can stop it by closing the pipe. Requests are served each in
a thread, as a threaded Quixote server would.
"""

import argparse
import os
import socketserver
import sys
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--class", dest="session_class", default=None)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    os.environ["QXAPP_SESSION_DIR"] = args.directory
    if args.session_class:
        os.environ["QXAPP_SESSION_CLASS"] = args.session_class
    import qxapp

    server = make_server(
        "127.0.0.1", args.port, qxapp.application,
        server_class=ThreadingWSGIServer, handler_class=QuietHandler,
    )
    print("listening http://127.0.0.1:%d" % server.server_port, flush=True)

    def watch_stdin():
        sys.stdin.read()
        server.shutdown()

    threading.Thread(target=watch_stdin, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
