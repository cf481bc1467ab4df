"""A small WSGI application with session3's session handling, for interop tests.

It runs each request the way Quixote's publisher drives session3's SessionManager
(start_request; the page; finish_successful_request, also for a PublishError such
as 403/404; finish_failed_request and a fresh 500 response for any other exception)
over the DirectorySessionStore stand-in, so Go code can take turns with it on one
session directory.

`application` is a plain WSGI callable. It reads SCRIPT_NAME, PATH_INFO,
QUERY_STRING, REMOTE_ADDR, HTTP_COOKIE and a form body from the environ, and is
configured from the process environment on first use:

  QXAPP_SESSION_DIR    the session directory (required; created if missing)
  QXAPP_SESSION_CLASS  dotted class name of new sessions (default
                       session3.Session.Session)
  QXAPP_COOKIE_PATH, QXAPP_COOKIE_DOMAIN, QXAPP_COOKIE_SECURE=1,
  QXAPP_COOKIE_HTTPONLY=1   Quixote's SESSION_COOKIE_* settings

Pages (PATH_INFO):
  /login?user=NAME   set_user(NAME)
  /logout            set_user(None): the session loses its info and expires
  /expire            expire_session()
  /counter           counter += 1 (starting from 0); the page is the new value
  /token             create_form_token(); the page is the token
  /submit            consumes the _form_token field (query or POST body):
                     200 "accepted", or 403 "rejected" (a PublishError)
  /item?key=K&value=V  session[K] = V (DictSession)
  /fail              counter += 1, then an exception: 500, nothing saved
  /status            the session as JSON (see session_status)
"""

import importlib
import json
import os
import sys
import threading
import urllib.parse

from session3.SessionManager import Config, Request, Response, SessionManager
from session3.store.DirectorySessionStore import DirectorySessionStore

FORM_TOKEN = "_form_token"

# Attributes every session has; status pages list the others under "attrs".
SESSION_ATTRS = (
    "id",
    "user",
    "_remote_address",
    "_creation_time",
    "_access_time",
    "_form_tokens",
)


class PublishError(Exception):
    """Quixote's PublishError: an error page, after which the session is still kept."""

    def __init__(self, status, message):
        Exception.__init__(self, message)
        self.status = status
        self.message = message


def load_class(dotted):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


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
    """The session as the status page shows it; the Go side shows the same."""
    attrs = {}
    for name, value in session.__dict__.items():
        if name in SESSION_ATTRS or name in ("_csrf_token", "data"):
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


def read_form(environ):
    """Query string plus an urlencoded POST body, last value of a name winning."""
    form = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    if environ.get("REQUEST_METHOD") == "POST":
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        form.update(urllib.parse.parse_qsl(body.decode("latin-1"), keep_blank_values=True))
    return form


class App:
    def __init__(self, directory, session_class=None, config=None):
        if session_class is None:
            session_class = load_class("session3.Session.Session")
        self.store = DirectorySessionStore(directory, create=True)
        self.manager = SessionManager(self.store, session_class, config or Config())

    def page(self, request, form):
        session = request.session
        path = request.get_environ("PATH_INFO", "") or "/"
        if path == "/login":
            session.set_user(form.get("user") or None)
            return "ok"
        if path == "/logout":
            session.set_user(None)
            return "ok"
        if path == "/expire":
            self.manager.expire_session(request)
            return "ok"
        if path == "/counter":
            session.counter = getattr(session, "counter", 0) + 1
            return str(session.counter)
        if path == "/token":
            return session.create_form_token()
        if path == "/submit":
            token = form.get(FORM_TOKEN, "")
            if token and session.has_form_token(token):
                session.remove_form_token(token)
                return "accepted"
            raise PublishError(403, "rejected")
        if path == "/item":
            session[form["key"]] = form.get("value", "")
            return "ok"
        if path == "/fail":
            session.counter = getattr(session, "counter", 0) + 1
            raise RuntimeError("failing on purpose")
        if path == "/status":
            return json.dumps(session_status(session)) if session is not None else "null"
        raise PublishError(404, "not found")

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            form = read_form(environ)
            self.manager.start_request(request)
            body = self.page(request, form)
            self.manager.finish_successful_request(request)
        except PublishError as exc:
            request.response = Response(exc.status)
            body = exc.message
            self.manager.finish_successful_request(request)
        except Exception as exc:
            request.response = Response(500)
            body = "internal error: %s" % exc
            self.manager.finish_failed_request(request)
        status = request.response.status
        data = body.encode("utf-8")
        reason = {200: "OK", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error"}
        headers = [
            ("Content-Type", "application/json" if body.startswith("{") else "text/plain; charset=utf-8"),
            ("Content-Length", str(len(data))),
        ]
        headers += request.response.cookie_headers()
        start_response("%d %s" % (status, reason.get(status, "Status")), headers)
        return [data]


def config_from_env(env):
    settings = {}
    if env.get("QXAPP_COOKIE_PATH"):
        settings["session_cookie_path"] = env["QXAPP_COOKIE_PATH"]
    if env.get("QXAPP_COOKIE_DOMAIN"):
        settings["session_cookie_domain"] = env["QXAPP_COOKIE_DOMAIN"]
    if env.get("QXAPP_COOKIE_SECURE") == "1":
        settings["session_cookie_secure"] = True
    if env.get("QXAPP_COOKIE_HTTPONLY") == "1":
        settings["session_cookie_httponly"] = True
    return Config(**settings)


def app_from_env(env=os.environ):
    directory = env.get("QXAPP_SESSION_DIR")
    if not directory:
        raise RuntimeError("QXAPP_SESSION_DIR is not set")
    cls = load_class(env.get("QXAPP_SESSION_CLASS") or "session3.Session.Session")
    return App(directory, cls, config_from_env(env))


_app = None
_app_lock = threading.Lock()


def application(environ, start_response):
    """The WSGI entry point, configured from the process environment on first use."""
    global _app
    if _app is None:
        with _app_lock:
            if _app is None:
                _app = app_from_env()
    return _app(environ, start_response)


if __name__ == "__main__":
    sys.exit("serve qxapp with qxapp_http.py (or any WSGI server)")
