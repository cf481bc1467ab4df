"""A Quixote 3.8 application with session3's sessions, served over HTTP with wsgiref.

usage: qxapp_http.py SESSION_DIR [--class DOTTED] [--port N]

The application is the real quixote.publish.Publisher (through quixote.wsgi.QWIP) with
the real session3.SessionManager over session3's DirectorySessionStore on SESSION_DIR
(created if missing); new sessions are of class DOTTED (default
session3.Session.Session). For a subclass of session4's Session4 the manager and store
are session4's instead (Session4SessionManager, Quixote's BaseSessionManager, over
session4.DirectorySessionStore), as a Quixote 4 site runs them. Quixote's SESSION_COOKIE_* settings come from the
environment: QXAPP_COOKIE_PATH, QXAPP_COOKIE_DOMAIN, QXAPP_COOKIE_SECURE=1,
QXAPP_COOKIE_HTTPONLY=1.

Once listening it prints one line "listening http://127.0.0.1:PORT" on stdout (port 0,
the default, picks a free port) and serves until killed or its stdin closes, so a test
that started it can stop it by closing the pipe. Requests are served one at a time:
Quixote's publisher holds one current request.

Pages (PATH_INFO):
  /login?user=NAME   set_user(NAME)
  /logout            set_user(None): the session loses its info and expires
  /expire            the session manager's expire_session()
  /counter           counter += 1 (starting from 0); the page is the new value
  /token             create_form_token(); the page is the token
  /submit            consumes the _form_token field (query or POST body):
                     200 "accepted", or 403 (Quixote's AccessError, a PublishError)
  /item?key=K&value=V  session[K] = V (DictSession)
  /fail              counter += 1, then an exception: 500, nothing saved
  /status            the session as JSON (see session_status)
"""

import argparse
import importlib
import json
import os
import sys
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from quixote import get_field, get_request, get_response, get_session, get_session_manager
from quixote.directory import Directory
from quixote.errors import AccessError
from quixote.publish import Publisher
from quixote.wsgi import QWIP
from session3.SessionManager import SessionManager
from session3.store.DirectorySessionStore import DirectorySessionStore
from session4.DirectorySessionStore import DirectorySessionStore as Session4Store
from session4.Session4Session import Session4, Session4SessionManager

FORM_TOKEN = "_form_token"

# Attributes every session has; status pages list the others under "attrs".
SESSION_ATTRS = ("id", "user", "_remote_address", "_creation_time", "_access_time", "_form_tokens")


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


class Root(Directory):
    _q_exports = ["login", "logout", "expire", "counter", "token", "submit", "item", "fail", "status"]

    def login(self):
        get_session().set_user(get_field("user") or None)
        return "ok"

    def logout(self):
        get_session().set_user(None)
        return "ok"

    def expire(self):
        get_session_manager().expire_session()
        return "ok"

    def counter(self):
        session = get_session()
        session.counter = getattr(session, "counter", 0) + 1
        return str(session.counter)

    def token(self):
        return get_session().create_form_token()

    def submit(self):
        session = get_session()
        token = get_field(FORM_TOKEN) or ""
        if token and session.has_form_token(token):
            session.remove_form_token(token)
            return "accepted"
        raise AccessError("rejected")

    def item(self):
        get_session()[get_field("key")] = get_field("value") or ""
        return "ok"

    def fail(self):
        session = get_session()
        session.counter = getattr(session, "counter", 0) + 1
        raise RuntimeError("failing on purpose")

    def status(self):
        session = get_request().session
        get_response().set_content_type("application/json")
        return json.dumps(session_status(session)) if session is not None else "null"


class Quixote4SessionManager(Session4SessionManager):
    # Quixote 4's BaseSessionManager has ACCESS_TIME_RESOLUTION = 1; Quixote 3.8's
    # lacks it, and its get_session reads it, so session4's manager fails on 3.8
    # without it.
    ACCESS_TIME_RESOLUTION = 1


def create_publisher(directory, session_class, env=os.environ):
    if issubclass(session_class, Session4):
        manager = Quixote4SessionManager(session_class, Session4Store(directory, create_directory=True))
    else:
        manager = SessionManager(DirectorySessionStore(directory, create=True), session_class)
    settings = {}
    if env.get("QXAPP_COOKIE_PATH"):
        settings["session_cookie_path"] = env["QXAPP_COOKIE_PATH"]
    if env.get("QXAPP_COOKIE_DOMAIN"):
        settings["session_cookie_domain"] = env["QXAPP_COOKIE_DOMAIN"]
    if env.get("QXAPP_COOKIE_SECURE") == "1":
        settings["session_cookie_secure"] = True
    if env.get("QXAPP_COOKIE_HTTPONLY") == "1":
        settings["session_cookie_httponly"] = True
    return Publisher(Root(), session_manager=manager, **settings)


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--class", dest="session_class", default="session3.Session.Session")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    stdout = sys.stdout  # Quixote's logger points sys.stdout at its error log
    publisher = create_publisher(args.directory, load_class(args.session_class))
    server = make_server("127.0.0.1", args.port, QWIP(publisher), server_class=WSGIServer, handler_class=QuietHandler)
    print("listening http://127.0.0.1:%d" % server.server_port, file=stdout, flush=True)

    def watch_stdin():
        sys.stdin.read()
        server.shutdown()

    threading.Thread(target=watch_stdin, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
