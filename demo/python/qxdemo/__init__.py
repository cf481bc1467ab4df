"""The Python side of the qxbridge demo: a Quixote 3.8 application on session3.

Its pages live under /py/, which the gateway forwards to it; the gateway's Go demo
serves everything else, and both sides share the session directory, the cookie and so
the login. Run it from the repository's root, beside the gateway:

    pip install quixote==3.8 session3==3.4.1 scgi==2.2
    PYTHONPATH=demo/python python3 -m qxdemo
    go run ./cmd/scgi-gateway -route /=demo -route /py/=scgi://127.0.0.1:4000

Pages:
    /py/          the session as Python sees it
    /py/login     a form; with a non-empty name, logs in as that user (counter 0)
    /py/counter   counter += 1
    /py/logout    expires the session
"""

import html

from quixote import get_field, get_session, get_session_manager
from quixote.config import Config
from quixote.directory import Directory
from quixote.publish import Publisher
from session3.SessionManager import SessionManager
from session3.store.DirectorySessionStore import DirectorySessionStore

# Links to the Go side's pages, from a page under /py/.
GO_PAGES = [("../", "Home"), ("../login", "Log in"), ("../counter", "Count"),
            ("../create_token", "Make a form token"), ("../check", "The session as text"),
            ("../check_token", "Its form tokens as text"),
            ("../delete_old?minutes=60", "Sweep sessions idle for an hour"), ("../logout", "Log out")]
PY_PAGES = [("./", "Home"), ("login", "Log in"), ("counter", "Count"), ("logout", "Log out")]


def esc(value):
    return html.escape(str(value), quote=True)


def session_panel(session):
    """What the shared session holds: the table the Go side's pages show too. After
    a logout the request has no session left: the panel is that of an empty one."""
    user = str(session.user) if session and session.user else "nobody (not logged in)"
    counter = str(session.counter) if hasattr(session, "counter") else "not set"
    if session and session.id:
        sid = session.id
    elif session and session.user:
        sid = "new (given as this page saves it)"
    else:
        sid = "none (nothing to save yet)"
    cls = type(session).__module__ + "." + type(session).__qualname__ if session else ""
    tokens = len(session._form_tokens) if session else 0
    rows = [("user", "session-user", user), ("counter", "session-counter", counter),
            ("session id", "session-id", sid), ("form tokens", "session-tokens", tokens),
            ("class", "session-class", cls)]
    return ('<aside class="session"><h2>The shared session</h2>\n<table>\n%s</table></aside>\n'
            % "".join('<tr><th>%s</th><td id="%s">%s</td></tr>\n' % (k, i, esc(v)) for k, i, v in rows))


def navigation():
    def items(pages):
        return "".join('<li><a href="%s">%s</a></li>\n' % (href, esc(text)) for href, text in pages)
    return ('<nav><section class="go-side"><h2>Go pages</h2><ul>\n%s</ul></section>\n'
            '<section class="python-side"><h2>Python pages</h2><ul>\n%s</ul></section></nav>\n'
            % (items(GO_PAGES), items(PY_PAGES)))


def page(title, content):
    """A whole page of the Python side, in the layout of the Go side's pages."""
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>%s · qxbridge demo</title>\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<link rel="stylesheet" href="../style.css"></head>\n<body class="python">\n'
            '<header><a class="home" href="../.">qxbridge demo</a><span class="served-by">'
            'Served by <strong id="served-by">Python</strong> (Quixote 3.8 with session3)</span></header>\n'
            '<div class="layout">\n<main>\n%s\n</main>\n%s%s</div>\n</body></html>\n'
            % (esc(title), content, session_panel(get_session()), navigation()))


class PythonPages(Directory):
    _q_exports = ["", "login", "counter", "logout"]

    def _q_index(self):
        session = get_session()
        if session.user:
            greeting = "<p>Hello from Python, %s!</p>" % esc(session.user)
        else:
            greeting = '<p>Not logged in.</p><p><a href="login">login</a></p>'
        return page("Python", "<h1>The Python side</h1>\n%s\n"
                    "<p>This page comes from a Quixote application. The session on the right is "
                    "the one the Go pages show: the same file, the same cookie.</p>" % greeting)

    def login(self):
        name = get_field("name")
        if not name:
            return page("Log in", '<h1>Log in with Python</h1>\n'
                        '<p>Any name will do. The Go pages will know it too.</p>\n'
                        '<form method="POST" action="login"><input name="name" aria-label="name" />'
                        '<input type="submit" value="Log in" /></form>')
        session = get_session()
        session.set_user(name)
        session.counter = 0
        return page("Logged in", '<h1>Logged in by Python</h1>\n<p>Welcome! %s</p>'
                    '<p><a href="./">back</a></p>' % esc(name))

    def counter(self):
        session = get_session()
        session.counter = getattr(session, "counter", 0) + 1
        return page("Counter", '<h1>Counted in Python</h1>\n<p>Counter: %s</p>'
                    '<p><a href="./">back</a></p>' % esc(session.counter))

    def logout(self):
        get_session_manager().expire_session()
        return page("Logged out", '<h1>Logged out by Python</h1>\n<p>Goodbye!</p>'
                    '<p><a href="./">start over</a></p>')


class Root(Directory):
    _q_exports = ["py"]
    py = PythonPages()


def create_publisher(sessions="sessions"):
    """The demo's Publisher: session3's SessionManager over the session directory the
    gateway uses, with Quixote's default cookie (QX_session, path / under the
    gateway's routes), as the Go side has it."""
    store = DirectorySessionStore(sessions, create=True)
    config = Config(display_exceptions=False)
    return Publisher(Root(), session_manager=SessionManager(store), config=config)
