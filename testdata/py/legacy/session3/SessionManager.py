"""Stand-in for session3.SessionManager (session3 3.4), standard library only.

session3's manager reads the current request, response and config through Quixote's
globals (get_request(), get_response(), get_publisher().config). This stand-in has no
Quixote, so each hook takes the request explicitly; the steps are session3's, one by
one, as recorded in the project's compatibility notes:

- the cookie (config.session_cookie_name, default QX_session) names the session;
  "" and "*del*" mean none; the store's load_session result is used as is;
- a request without a session gets a new session object with id None;
- every request calls session._set_access_time(1);
- finish_successful_request: `if session and maintain_session(session)` saves it
  (every time, changed or not); otherwise an expired session is deleted;
- maintain_session: no info -> expire if it was stored; first info -> new id
  (randbytes(8), regenerated while the store has it) and the cookie is set;
- expire_session revokes the cookie ("" with max_age=0) and lists the session for
  deletion; finish_failed_request saves nothing.

Request, Response and parse_cookies model the parts of Quixote's HTTPRequest and
HTTPResponse the manager uses, including how Quixote writes Set-Cookie headers.
"""

import re

from session3.Session import Session, randbytes


class Config:
    """The session settings of Quixote's config (SESSION_COOKIE_*)."""

    session_cookie_name = "QX_session"
    session_cookie_path = None
    session_cookie_domain = None
    session_cookie_secure = False
    session_cookie_httponly = False

    def __init__(self, **settings):
        for name, value in settings.items():
            if not hasattr(Config, name):
                raise TypeError("unknown setting %r" % name)
            setattr(self, name, value)


# A cookie header as Quixote's parser reads it: name, then optionally = and a value
# that is either double-quoted (backslash escapes) or a run without ";,\s" or quotes.
_COOKIE = re.compile(
    r"""\s*(?P<name>[^=;,\s]+)\s*
        (?:=\s*(?:(?P<quoted>"(?:\\[\x00-\x7f]|[^"])*")|(?P<plain>[^";,\s]*)))?
        \s*[;,]?""",
    re.VERBOSE,
)


def parse_cookies(text):
    """Parse a Cookie request header into a dict; a repeated name keeps its last value."""
    cookies = {}
    for m in _COOKIE.finditer(text or ""):
        name = m.group("name")
        if name.startswith("$"):
            continue  # RFC 2109 attributes such as $Path
        quoted = m.group("quoted")
        if quoted:
            value = re.sub(r"\\(.)", r"\1", quoted[1:-1])
        else:
            value = m.group("plain") or ""
        cookies[name] = value
    return cookies


class Response:
    """The cookie part of Quixote's HTTPResponse."""

    def __init__(self, status=200):
        self.status = status
        self.cookies = {}

    def set_cookie(self, name, value, **attrs):
        # Like Quixote: attributes set earlier for the name are kept, the value last.
        cookie = self.cookies.setdefault(name, {})
        cookie.update(attrs)
        cookie["value"] = value

    def cookie_headers(self):
        """The Set-Cookie headers, written as Quixote writes them."""
        headers = []
        for name, attrs in self.cookies.items():
            value = str(attrs["value"]).replace('"', '\\"')
            chunks = ['%s="%s"' % (name, value)]
            for attr, val in attrs.items():
                attr = attr.lower()
                if val is None or attr == "value":
                    continue
                if attr in ("secure", "httponly"):
                    if val:
                        chunks.append(attr)
                else:
                    chunks.append("%s=%s" % (attr.replace("_", "-"), val))
            headers.append(("Set-Cookie", "; ".join(chunks)))
        return headers


class Request:
    """The parts of Quixote's HTTPRequest the session manager uses."""

    def __init__(self, environ):
        self.environ = environ
        self.cookies = parse_cookies(environ.get("HTTP_COOKIE", ""))
        self.session = None
        self.response = Response()

    def get_environ(self, name, default=None):
        return self.environ.get(name, default)

    def get_cookie(self, name, default=None):
        return self.cookies.get(name, default)


class SessionManager:
    """A persistent session manager: session3's, with the request passed in."""

    ACCESS_TIME_RESOLUTION = 1  # in seconds

    def __init__(self, store_obj, session_class=Session, config=None):
        self.store = store_obj
        self.session_class = session_class
        self.config = config if config is not None else Config()
        self.expired_sessions = {}

    def __repr__(self):
        return "<%s at %x>" % (self.__class__.__name__, id(self))

    def get_session(self, request):
        id = self._get_session_id(request)
        session = None
        if id:
            session = self.store.load_session(id)
        if session is None:
            session = self._create_session(request)
        session._set_access_time(self.ACCESS_TIME_RESOLUTION)
        return session

    def maintain_session(self, request, session):
        if not session.has_info():
            # No useful info: if it had some before, forget it explicitly.
            if session.id and self.has_session(session.id):
                self.expire_session(request)
            return False
        if session.id is None:
            # First time with useful info: give it an id and set the cookie.
            session.id = self._make_session_id()
            self.set_session_cookie(request, session.id)
        return True

    def expire_session(self, request):
        self.revoke_session_cookie(request)
        if request.session:
            self.expired_sessions[request] = request.session
            request.session = None

    def has_session(self, session_id):
        return self.store.load_session(session_id)

    def clear_session(self, request):
        if request in self.expired_sessions:
            del self.expired_sessions[request]

    # Hooks into the publisher's main loop.

    def start_request(self, request):
        session = self.get_session(request)
        request.session = session
        session.start_request()

    def finish_successful_request(self, request):
        session = request.session
        # Python truth first: an empty DictSession is false, so it is neither
        # saved nor expired.
        if session and self.maintain_session(request, session):
            self.store.save_session(session)
        elif request in self.expired_sessions:
            session = self.expired_sessions[request]
            if session.id:
                self.store.delete_session(session)
        self.clear_session(request)

    def finish_failed_request(self, request):
        self.clear_session(request)

    # Session management.

    def new_session(self, request, id):
        # session3's Session.__init__ reads REMOTE_ADDR from the current request;
        # the stand-in classes take it as an argument.
        return self.session_class(id, request.get_environ("REMOTE_ADDR"))

    def _get_session_id(self, request):
        id = request.get_cookie(self.config.session_cookie_name)
        if id == "" or id == "*del*":
            return None
        return id

    def _make_session_id(self):
        id = None
        while id is None or self.has_session(id):
            id = randbytes(8)  # 64-bit random number
        return id

    def _create_session(self, request):
        return self.new_session(request, None)

    def _set_cookie(self, request, value, **attrs):
        config = self.config
        name = config.session_cookie_name
        if config.session_cookie_path:
            path = config.session_cookie_path
        else:
            path = request.get_environ("SCRIPT_NAME", "")
            if not path.endswith("/"):
                path += "/"
        domain = config.session_cookie_domain
        attrs = attrs.copy()
        if config.session_cookie_secure:
            attrs["secure"] = 1
        if config.session_cookie_httponly:
            attrs["httponly"] = 1
        request.response.set_cookie(name, value, domain=domain, path=path, **attrs)
        return name

    def set_session_cookie(self, request, session_id):
        self._set_cookie(request, session_id)

    def revoke_session_cookie(self, request):
        cookie_name = self._set_cookie(request, "", max_age=0)
        if request.get_cookie(cookie_name) is not None:
            del request.cookies[cookie_name]

    def has_session_cookie(self, request, must_exist=False):
        id = request.get_cookie(self.config.session_cookie_name)
        if id is None:
            return False
        if must_exist:
            return self.has_session(id)
        return True
