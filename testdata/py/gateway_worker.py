#!/usr/bin/env python3
"""A pre-forking SCGI worker serving qxapp.application (standard library only).

This is what a Quixote site runs behind the gateway, in miniature: python-scgi's
process model (the parent accepts, children serve, connections passed over UNIX
socket pairs), taken from scgi_worker.py, with each child serving qxapp, a WSGI
application driving session3's SessionManager over the DirectorySessionStore stand-in.
The gateway's tests use it as "the Python side" sharing a session directory with Go.

Usage:
  gateway_worker.py SESSION_DIR [--listen 127.0.0.1:0 | --listen unix:/path]
                    [--children N] [--class DOTTED]
The QXAPP_COOKIE_* settings of qxapp are read from the environment. With LISTEN_FDS=1
the listening socket is file descriptor 3. Once listening it prints
"READY <address>" on stdout; SIGTERM stops it.
"""

import argparse
import io
import os
import signal
import sys

import scgi_worker

REASONS = {200: "OK", 302: "Found", 400: "Bad Request", 403: "Forbidden",
           404: "Not Found", 500: "Internal Server Error"}


def serve_wsgi(conn):
    """Serves one SCGI connection with qxapp.application: the environ is the SCGI
    environment (python-scgi's: a dict, the last of repeated names winning) plus the
    WSGI keys; the response is written CGI-style with a Status line."""
    import qxapp

    rfile = conn.makefile("rb")
    out = conn.makefile("wb")
    try:
        try:
            env, _, _ = scgi_worker.read_env(rfile)
        except scgi_worker.BadRequest as e:
            out.write(b"Status: 400 Bad Request\r\nContent-Type: text/plain\r\n\r\n%s\n" % str(e).encode())
            out.flush()
            return
        length = int(env["CONTENT_LENGTH"])
        body = scgi_worker.read_exact(rfile, length) if length else b""
        environ = dict(env)
        environ.update({
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.version": (1, 0),
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.url_scheme": "https" if env.get("HTTPS") in ("on", "1") else "http",
        })
        started = {}

        def start_response(status, headers, exc_info=None):
            started["status"], started["headers"] = status, headers
            return out.write

        chunks = qxapp.application(environ, start_response)
        head = ["Status: " + started["status"]]
        head += ["%s: %s" % kv for kv in started["headers"]]
        out.write(("\r\n".join(head) + "\r\n\r\n").encode("iso-8859-1"))
        if env.get("REQUEST_METHOD") != "HEAD":
            for c in chunks:
                out.write(c)
        out.flush()
    finally:
        for f in (rfile, out):
            try:
                f.close()
            except OSError:
                pass
        conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("directory")
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--children", type=int, default=2)
    ap.add_argument("--class", dest="session_class", default=None)
    args = ap.parse_args()
    os.environ["QXAPP_SESSION_DIR"] = args.directory
    if args.session_class:
        os.environ["QXAPP_SESSION_CLASS"] = args.session_class
    import qxapp  # noqa: F401  (imported before forking, as a Quixote publisher is)

    # scgi_worker's children call its module-level handle_connection: serve qxapp there.
    scgi_worker.handle_connection = serve_wsgi
    sock, name = scgi_worker.listen(args.listen)
    parent = scgi_worker.Parent(sock, max(1, args.children))

    def on_term(signum, frame):
        raise scgi_worker.Stop()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    for _ in range(parent.nchildren):
        parent.spawn()
    print("READY " + name, flush=True)
    try:
        parent.serve()
    except scgi_worker.Stop:
        pass
    finally:
        parent.stop()
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
