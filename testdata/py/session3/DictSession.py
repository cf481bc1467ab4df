"""Stand-in for session3.DictSession: a Session that is also a UserDict."""

from collections import UserDict

from session3.Session import Session


class DictSession(UserDict, Session):
    def __init__(self, id, remote_address=None):
        UserDict.__init__(self)
        Session.__init__(self, id, remote_address)
