"""The pages of qxsite, a Quixote Directory tree."""

import hashlib
import html
import json
import os
import pickle
import time

import quixote
from quixote import get_field, get_request, get_response, get_session, get_session_manager
from quixote.directory import Directory
from quixote.errors import AccessError
from quixote.http_response import Stream

FORM_TOKEN = "_form_token"

# Attributes every session3 session has; the status page lists the others under "attrs".
SESSION_ATTRS = ("id", "user", "_remote_address", "_creation_time", "_access_time", "_form_tokens")


def class_name(obj):
    cls = type(obj)
    return cls.__module__ + "." + cls.__qualname__


def json_value(v):
    """A value as JSON: scalars and containers of them as they are, others by type."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [json_value(x) for x in v]
    if isinstance(v, dict) and all(isinstance(k, str) for k in v):
        return {k: json_value(x) for k, x in v.items()}
    return {"$type": class_name(v)}


def session_status(session):
    """The session as the status page shows it."""
    attrs = {}
    for name, value in session.__dict__.items():
        if name in SESSION_ATTRS or name in ("_csrf_token", "_last_values", "data"):
            continue
        attrs[name] = json_value(value)
    status = {
        "class": class_name(session),
        "id": session.id,
        "user": json_value(session.user),
        "remote_address": session._remote_address,
        "creation_time": session._creation_time,
        "access_time": session._access_time,
        "form_tokens": list(session._form_tokens),
        "has_info": bool(session.has_info()),
        "attrs": attrs,
    }
    if "data" in session.__dict__:
        status["data"] = json_value(session.data)
    return status


def text(body, status=200):
    response = get_response()
    response.set_content_type("text/plain", "utf-8")
    if status != 200:
        response.set_status(status)
    return body


def as_json(obj, status=200):
    response = get_response()
    response.set_content_type("application/json")
    if status != 200:
        response.set_status(status)
    return json.dumps(obj, sort_keys=True)


def body_stats():
    """Length and SHA-256 of the request body, which Quixote has read in full
    (HTTPRequest.process_inputs makes it seekable before any page runs)."""
    stdin = get_request().stdin
    stdin.seek(0)
    h = hashlib.sha256()
    n = 0
    while True:
        data = stdin.read(1 << 16)
        if not data:
            break
        h.update(data)
        n += len(data)
    return n, h.hexdigest()


def env_echo(status=200):
    request = get_request()
    n, digest = body_stats()
    return as_json({"env": dict(request.environ), "order": list(request.environ),
                    "body_len": n, "body_sha256": digest}, status)


def hold():
    """Pauses a page for a test: creates the file named by the field `started`, then
    waits until the file named by `gate` exists (at most 30 s), then creates the file
    named by `done`. Each field is optional."""
    started, gate, done = get_field("started"), get_field("gate"), get_field("done")
    if started:
        open(started, "w").close()
    deadline = time.time() + 30
    while gate and not os.path.exists(gate) and time.time() < deadline:
        time.sleep(0.01)
    if done:
        open(done, "w").close()


def unbuffered(stream):
    """Sends a Stream as it is produced: each piece is flushed to the SCGI socket."""
    get_response().buffered = False
    return stream


PAGE_SESSION = pickle.dumps({"user": "alice <a@example.org>", "hits": 0,
                             "cart": [("item & %d" % i, i * 1.25) for i in range(60)]}, 4)


class RootDirectory(Directory):
    _q_exports = ["", "hello", "env", "hash", "stream", "sleep", "respond", "redirect",
                  "cookie", "die", "page", "login", "logout", "expire", "counter", "token",
                  "submit", "item", "fail", "status", "check", "slowcounter"]

    def _q_traverse(self, path):
        if self._q_translate(path[0]) is None:
            return env_echo(404)  # unknown path: 404, with the environment to look at
        return Directory._q_traverse(self, path)

    def _q_index(self):
        return text("qxsite\n")

    # --- protocol pages -------------------------------------------------------------

    def hello(self):
        return text("hello from python\n")

    def env(self):
        return env_echo()

    def hash(self):
        n, digest = body_stats()
        return as_json({"body_len": n, "body_sha256": digest})

    def stream(self):
        """n chunks of unknown total length (chunked inside SCGI for HTTP/1.1); with
        gate=PATH the page waits after the first chunk until that file exists, so a
        client can prove it got the first chunk while the page was still running."""
        n = int(get_field("n", "3"))
        delay = float(get_field("delay", "0"))
        gate = get_field("gate")

        def pieces():
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

        get_response().set_content_type("text/plain", "utf-8")
        return unbuffered(Stream(pieces()))

    def sleep(self):
        """Sleeps s seconds, or pauses as hold() says when any of its fields is given."""
        if get_field("started") or get_field("gate") or get_field("done"):
            hold()
        else:
            time.sleep(float(get_field("s", "1")))
        return text("slept\n")

    def respond(self):
        code = int(get_field("code", "404"))
        get_response().set_status(code, get_field("reason"))
        return text("status\n", code)

    def redirect(self):
        return quixote.redirect(get_field("to", "/hello"))

    def cookie(self):
        response = get_response()
        response.set_cookie("QX_session", "abc123", path="/")
        response.set_cookie("other", "x y", path="/", httponly=1)
        return text("cookies set\n")

    def die(self):
        """The child dies: before answering (when=early), or after the headers and
        `after` bytes of a body framed by Content-Length (default) or by chunking
        (framing=chunked)."""
        if get_field("when") == "early":
            os._exit(3)
        sent = int(get_field("after", "1000"))

        def pieces():
            yield b"x" * sent
            os._exit(3)

        get_response().set_content_type("text/plain")
        length = None if get_field("framing") == "chunked" else sent * 10
        return unbuffered(Stream(pieces(), length))

    def page(self):
        """A typical page, for benchmarks: unpickle a session-sized object, render an
        escaped HTML table, pickle the object again."""
        sess = pickle.loads(PAGE_SESSION)
        sess["hits"] += 1
        rows = ["<tr><td>%d</td><td>%s</td><td>%s</td></tr>" % (
            i, html.escape(item[0]), html.escape("%.2f" % item[1]))
            for i, item in enumerate(sess["cart"])]
        pickle.dumps(sess, 4)
        return ("<html><head><title>%s</title></head><body><table>%s</table></body></html>"
                % (html.escape(sess["user"]), "".join(rows)))

    # --- session pages ----------------------------------------------------------------

    def login(self):
        """With a user field (query or form), logs in as that user: "ok", or a redirect
        to `next`. A form post must carry a valid form token. Without one, the form."""
        session = get_session()
        user = get_field("user")
        if user is None:
            token = session.create_form_token()
            return ('<html><body><form method="post" action="login">'
                    '<input type="hidden" name="%s" value="%s">'
                    '<input name="user"><input type="submit" value="Log in">'
                    '</form></body></html>' % (FORM_TOKEN, html.escape(token)))
        token = get_field(FORM_TOKEN)
        if get_request().get_method() == "POST" and token is not None:
            if not session.has_form_token(token):
                raise AccessError("rejected")
            session.remove_form_token(token)
        session.set_user(user or None)
        if get_field("next"):
            return quixote.redirect(get_field("next"))
        return text("ok")

    def logout(self):
        get_session().set_user(None)
        return text("ok")

    def expire(self):
        get_session_manager().expire_session()
        return text("ok")

    def counter(self):
        session = get_session()
        session.counter = getattr(session, "counter", 0) + 1
        return text(str(session.counter))

    def slowcounter(self):
        """counter, paused (see hold) between loading the session and saving it: a
        request of the same session served meanwhile would be overwritten."""
        session = get_session()
        n = getattr(session, "counter", 0)
        hold()
        session.counter = n + 1
        return text(str(session.counter))

    def token(self):
        return text(get_session().create_form_token())

    def submit(self):
        session = get_session()
        token = get_field(FORM_TOKEN) or ""
        if token and session.has_form_token(token):
            session.remove_form_token(token)
            return text("accepted")
        raise AccessError("rejected")

    def item(self):
        get_session()[get_field("key")] = get_field("value", "")
        return text("ok")

    def fail(self):
        session = get_session()
        session.counter = getattr(session, "counter", 0) + 1
        raise RuntimeError("failing on purpose")

    def status(self):
        session = get_session()
        return as_json(session_status(session)) if session is not None else as_json(None)

    def check(self):
        user = get_session().user
        return text("user %s\n" % user if user else "anonymous\n")
