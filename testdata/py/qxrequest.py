"""A current Quixote request outside a server, for programs that build sessions.

Quixote's and session3's Session.__init__ read REMOTE_ADDR from quixote.get_request(),
so a session can only be made while Quixote's publisher has a request. Programs that
are not web servers (fixture writers, checkers, benchmarks) make theirs here: the real
quixote.publish.Publisher (created once per process, as Quixote allows) with a real
quixote.http_request.HTTPRequest as its current request.
"""

import contextlib
import io
import sys

from quixote.directory import Directory
from quixote.http_request import HTTPRequest
from quixote.publish import Publisher, get_publisher


def publisher():
    """The process's Quixote publisher, created on first use with an empty root."""
    pub = get_publisher()
    if pub is None:
        stdout = sys.stdout
        pub = Publisher(Directory())
        # Quixote's DefaultLogger points sys.stdout at its error log (stderr); these
        # programs answer on stdout.
        sys.stdout = stdout
    return pub


@contextlib.contextmanager
def request(remote_address="127.0.0.1", **environ):
    """Make a GET request from remote_address the publisher's current request."""
    env = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": "/", "REMOTE_ADDR": remote_address}
    env.update(environ)
    pub = publisher()
    req = HTTPRequest(io.BytesIO(b""), env)
    pub._set_request(req)
    try:
        yield req
    finally:
        pub._clear_request()


def new_session(cls, id, remote_address="127.0.0.1"):
    """A session of cls made by its own __init__, as a session manager makes it."""
    with request(remote_address):
        return cls(id)
