#!/usr/bin/env python3
"""A pre-forking SCGI worker for the qxbridge proxy tests (standard library only).

It is built like python-scgi's server: a parent accepts connections and passes each
connection's file descriptor over a UNIX socket pair to a child (socket.send_fds); a child
says it is ready for the next connection by writing one byte. A child parses the SCGI
request as the spec (python-scgi doc/protocol.txt) describes and hands it to a small
Quixote-like application whose routes the tests use.

Behaviour copied on purpose from python-scgi / Quixote:
  * the environment is a dict: of repeated names the last one wins;
  * a connection closed before a complete request kills the child (python-scgi's read_env
    raises and the child exits); the parent starts a new one;
  * a response whose length is unknown is sent with "Transfer-Encoding: chunked" inside
    the SCGI stream when SERVER_PROTOCOL is HTTP/1.1, as Quixote's HTTPResponse does;
  * a response's Status line comes first; HEAD gets headers only.

Usage:
  scgi_worker.py [--listen 127.0.0.1:0 | --listen unix:/path] [--children N]
With LISTEN_FDS=1 in the environment the listening socket is file descriptor 3 (systemd
socket activation; LISTEN_PID, when present, must name this process).
Once listening, the parent prints "READY <address>" on stdout. SIGTERM stops it cleanly.
"""

import argparse
import hashlib
import html
import json
import os
import pickle
import select
import signal
import socket
import sys
import time
import urllib.parse

MAX_HEADER = 1 << 20  # bound on the header netstring this worker accepts


class BadRequest(Exception):
    pass


class NoRequest(Exception):
    """The connection closed before a complete request arrived."""


# ---------------------------------------------------------------------------
# SCGI request parsing (from the spec)

def read_exact(f, n):
    data = f.read(n)
    if data is None or len(data) < n:
        raise NoRequest("short read: wanted %d bytes, got %d" % (n, len(data or b"")))
    return data


def read_env(f):
    """Reads the header netstring; returns (env dict, names in order, repeated names)."""
    digits = b""
    while True:
        c = f.read(1)
        if not c:
            raise NoRequest("connection closed after %d length digits" % len(digits))
        if c == b":":
            break
        if not c.isdigit() or len(digits) >= 7:
            raise BadRequest("bad netstring length %r" % (digits + c))
        digits += c
    if not digits or (len(digits) > 1 and digits[0:1] == b"0"):
        raise BadRequest("bad netstring length %r" % digits)
    size = int(digits)
    if size > MAX_HEADER:
        raise BadRequest("header netstring too long: %d" % size)
    data = read_exact(f, size)
    if read_exact(f, 1) != b",":
        raise BadRequest("netstring without trailing comma")
    items = data.split(b"\0")
    if items[-1] != b"" or len(items) % 2 != 1:
        raise BadRequest("malformed header list")
    items = [x.decode("iso-8859-1") for x in items[:-1]]
    env, order, dups = {}, [], []
    for i in range(0, len(items), 2):
        name, value = items[i], items[i + 1]
        if name in env:
            dups.append(name)
        env[name] = value  # python-scgi: the last of repeated names wins
        order.append(name)
    if not order or order[0] != "CONTENT_LENGTH" or not env["CONTENT_LENGTH"].isdigit():
        raise BadRequest("CONTENT_LENGTH must come first, as digits")
    if env.get("SCGI") != "1":
        raise BadRequest("SCGI=1 missing")
    return env, order, dups


# ---------------------------------------------------------------------------
# A Quixote-like response

REASONS = {200: "OK", 302: "Found", 400: "Bad Request", 404: "Not Found",
           500: "Internal Server Error"}


class Response:
    def __init__(self, status=200, body=b"", content_type="text/plain; charset=utf-8"):
        self.status = status
        self.reason = REASONS.get(status, "Unknown")
        self.send_status = True
        self.headers = [("Content-Type", content_type)]
        self.body = body  # bytes, or an iterator of bytes (length unknown: a stream)

    def write(self, out, env):
        head = []
        if self.send_status:
            head.append("Status: %d %s" % (self.status, self.reason) if self.reason
                        else "Status: %d" % self.status)
        head += ["%s: %s" % kv for kv in self.headers]
        stream = not isinstance(self.body, (bytes, bytearray))
        chunked = stream and env.get("SERVER_PROTOCOL") == "HTTP/1.1"
        if not stream:
            head.append("Content-Length: %d" % len(self.body))
        elif chunked:
            head.append("Transfer-Encoding: chunked")
        out.write(("\r\n".join(head) + "\r\n\r\n").encode("iso-8859-1"))
        if env.get("REQUEST_METHOD") == "HEAD":
            out.flush()
            return
        if not stream:
            out.write(self.body)
            out.flush()
            return
        out.flush()
        for piece in self.body:  # unbuffered, as a Quixote Stream with buffered=False
            if not piece:
                continue
            if chunked:
                out.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            else:
                out.write(piece)
            out.flush()
        if chunked:
            out.write(b"0\r\n\r\n")
        out.flush()


def json_response(obj, status=200):
    return Response(status, json.dumps(obj, sort_keys=True).encode(), "application/json")


# ---------------------------------------------------------------------------
# Test routes, dispatched on PATH_INFO as Quixote does

def route_env(req):
    return json_response({"env": req["env"], "order": req["order"], "dups": req["dups"],
                          "body_len": req["body_len"], "body_sha256": req["body_sha256"]})


def route_hash(req):
    return json_response({"body_len": req["body_len"], "body_sha256": req["body_sha256"]})


def route_hello(req):
    return Response(200, b"hello from python\n")


def route_page(req):
    """A stand-in for a typical Quixote page, for benchmarks: load a pickled session as
    session3 does, render an escaped HTML table (as a PTL template would) and save the
    session again. Its cost is stated with the benchmark results."""
    sess = pickle.loads(PAGE_SESSION)
    sess["hits"] += 1
    rows = []
    for i, item in enumerate(sess["cart"]):
        rows.append("<tr><td>%d</td><td>%s</td><td>%s</td></tr>" % (
            i, html.escape(item[0]), html.escape("%.2f" % item[1])))
    body = ("<html><head><title>%s</title></head><body><table>%s</table></body></html>" % (
        html.escape(sess["user"]), "".join(rows))).encode()
    pickle.dumps(sess, 4)
    return Response(200, body, "text/html; charset=utf-8")


PAGE_SESSION = pickle.dumps({"user": "alice <a@example.org>", "hits": 0,
                             "cart": [("item & %d" % i, i * 1.25) for i in range(60)]}, 4)


def route_stream(req):
    """n chunks of unknown total length; with gate=PATH the stream waits after the first
    chunk until that file exists, so a client can prove it got the first chunk while the
    worker was still running."""
    q = req["query"]
    n = int(q.get("n", "3"))
    delay = float(q.get("delay", "0"))
    gate = q.get("gate")

    def gen():
        for i in range(n):
            yield b"chunk %d\n" % i
            if i == 0 and gate:
                deadline = time.time() + 10
                while not os.path.exists(gate):
                    if time.time() > deadline:
                        yield b"gate timeout\n"
                        return
                    time.sleep(0.01)
            elif delay:
                time.sleep(delay)
        yield b"end\n"
    return Response(200, gen())


def route_redirect(req):
    r = Response(200, b"")
    r.send_status = False  # CGI: a Location without Status is a redirect
    r.headers = [("Location", req["query"].get("to", "/target"))]
    return r


def route_sleep(req):
    time.sleep(float(req["query"].get("s", "1")))
    return Response(200, b"slept\n")


def route_cookie(req):
    r = Response(200, b"cookies set\n")
    r.headers.append(("Set-Cookie", 'QX_session="abc123"; path=/'))
    r.headers.append(("Set-Cookie", 'other="x y"; path=/; httponly'))
    return r


def route_status(req):
    q = req["query"]
    r = Response(int(q.get("code", "404")), b"status\n")
    r.reason = q.get("reason", "")
    if q.get("ctype") == "none":
        r.headers = []
    return r


def route_die(req, out):
    """Dies abruptly: before anything (when=early), or after the headers and part of a
    body framed by Content-Length (default) or by chunking (framing=chunked)."""
    q = req["query"]
    if q.get("when") == "early":
        os._exit(3)
    sent = int(q.get("after", "1000"))
    if q.get("framing") == "chunked":
        out.write(b"Status: 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
        out.write(b"%x\r\n%s\r\n" % (sent, b"x" * sent))
    else:
        out.write(b"Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % (sent * 10))
        out.write(b"x" * sent)
    out.flush()
    os._exit(3)


ROUTES = {"/page": route_page, "/env": route_env, "/hash": route_hash, "/hello": route_hello,
          "/stream": route_stream, "/redirect": route_redirect, "/sleep": route_sleep,
          "/cookie": route_cookie, "/status": route_status}


def handle_connection(conn):
    rfile = conn.makefile("rb")
    out = conn.makefile("wb")
    try:
        try:
            env, order, dups = read_env(rfile)
        except BadRequest as e:
            sys.stderr.write("scgi_worker: bad request: %s\n" % e)
            out.write(b"Status: 400 Bad Request\r\nContent-Type: text/plain\r\n\r\n%s\n" % str(e).encode())
            out.flush()
            return
        length = int(env["CONTENT_LENGTH"])
        h = hashlib.sha256()
        left = length
        while left > 0:
            data = rfile.read(min(left, 1 << 16))
            if not data:
                raise NoRequest("body ended %d bytes short" % left)
            h.update(data)
            left -= len(data)
        req = {"env": env, "order": order, "dups": dups, "body_len": length,
               "body_sha256": h.hexdigest(),
               "query": dict(urllib.parse.parse_qsl(env.get("QUERY_STRING", "")))}
        path = env.get("PATH_INFO", "")
        if path == "/die":
            route_die(req, out)
        handler = ROUTES.get(path)
        if handler:
            resp = handler(req)
        else:  # unknown path: 404, with the environment echoed for the tests to see
            resp = route_env(req)
            resp.status, resp.reason = 404, REASONS[404]
        resp.write(out, env)
    finally:
        for f in (rfile, out):
            try:
                f.close()
            except OSError:
                pass
        conn.close()


# ---------------------------------------------------------------------------
# Pre-forking: parent accepts, children handle

class Child:
    busy = False
    stop = False


def child_main(chan):
    def on_term(signum, frame):
        if Child.busy:
            Child.stop = True  # finish the current request first
        else:
            raise SystemExit(0)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    while not Child.stop:
        try:
            chan.send(b"1")  # ready for one connection
            _, fds, _, _ = socket.recv_fds(chan, 1, 1)
        except OSError:
            break
        if not fds:
            break  # the parent closed our channel: exit
        conn = socket.socket(fileno=fds[0])
        conn.setblocking(True)
        Child.busy = True
        try:
            handle_connection(conn)
        except NoRequest as e:
            # python-scgi's child dies on an empty or cut connection; so does this one.
            sys.stderr.write("scgi_worker: connection without a complete request (%s); child exits\n" % e)
            sys.stderr.flush()
            os._exit(2)
        except (BrokenPipeError, ConnectionResetError) as e:
            sys.stderr.write("scgi_worker: client went away: %s\n" % e)
        Child.busy = False
    os._exit(0)


class Stop(Exception):
    pass


class Parent:
    def __init__(self, sock, nchildren):
        self.sock = sock
        self.nchildren = nchildren
        self.children = {}  # pid -> parent end of the channel

    def spawn(self, conn=None):
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            try:
                mine.close()
                self.sock.close()
                if conn is not None:
                    # The connection being delegated must not stay open in this child
                    # too, or its peer would never see it end (python-scgi does this).
                    conn.close()
                for other in self.children.values():
                    other.close()
                child_main(theirs)
            finally:
                os._exit(0)
        theirs.close()
        mine.setblocking(False)
        self.children[pid] = mine

    def reap(self, pid=None):
        while self.children:
            try:
                got, _ = os.waitpid(pid or -1, 0 if pid else os.WNOHANG)
            except ChildProcessError:
                got = pid
            if not got:
                return
            chan = self.children.pop(got, None)
            if chan:
                chan.close()
            if pid:
                return

    def delegate(self, conn):
        while True:
            if len(self.children) < self.nchildren:
                self.spawn(conn)
            by_fd = {c.fileno(): pid for pid, c in self.children.items()}
            ready, _, _ = select.select(list(by_fd), [], [], 1.0)
            for fd in sorted(ready):
                pid = by_fd[fd]
                chan = self.children[pid]
                try:
                    byte = chan.recv(1)
                except BlockingIOError:
                    continue
                except OSError:
                    byte = b""
                if not byte:  # that child died
                    self.reap(pid)
                    continue
                try:
                    socket.send_fds(chan, [b"x"], [conn.fileno()])
                    return
                except OSError:
                    self.reap(pid)
            self.reap()

    def serve(self):
        while True:
            conn, _ = self.sock.accept()
            try:
                self.delegate(conn)
            finally:
                conn.close()

    def stop(self):
        for pid, chan in list(self.children.items()):
            chan.close()  # an idle child sees EOF and exits
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.time() + 5
        while self.children and time.time() < deadline:
            got, _ = os.waitpid(-1, os.WNOHANG)
            if got:
                self.children.pop(got, None)
            else:
                time.sleep(0.01)
        for pid in self.children:
            os.kill(pid, signal.SIGKILL)


def listen(spec):
    if os.environ.get("LISTEN_FDS") == "1" and os.environ.get("LISTEN_PID", str(os.getpid())) == str(os.getpid()):
        sock = socket.socket(fileno=3)
        addr = sock.getsockname()
        name = "unix:" + addr if sock.family == socket.AF_UNIX else "%s:%d" % addr[:2]
        return sock, name
    if spec.startswith("unix:"):
        path = spec[len("unix:"):]
        if os.path.exists(path):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        sock.listen(128)
        return sock, spec
    host, _, port = spec.rpartition(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    sock.listen(128)
    return sock, "%s:%d" % sock.getsockname()[:2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--children", type=int, default=2)
    args = ap.parse_args()
    sock, name = listen(args.listen)
    parent = Parent(sock, max(1, args.children))

    def on_term(signum, frame):
        raise Stop()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    for _ in range(parent.nchildren):
        parent.spawn()
    print("READY " + name, flush=True)
    try:
        parent.serve()
    except Stop:
        pass
    finally:
        parent.stop()
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
