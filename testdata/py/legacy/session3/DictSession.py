"""Stand-in for session3.DictSession: a Session that is also a UserDict."""

from collections import UserDict

from session3.Session import Session


class DictSession(UserDict, Session):
    """Keys (session[key]) live in the UserDict's data dict, apart from attributes."""

    def __init__(self, id, remote_address=None):
        # session3 runs Session.__init__ first, so "data" is the last attribute.
        Session.__init__(self, id, remote_address)
        UserDict.__init__(self)
