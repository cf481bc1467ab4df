"""An application's own module: a session3 Session subclass and a user object."""

from session3.Session import Session


class Account:
    def __init__(self, login=None):
        self.login = login
        self.roles = set()
        self.last_login = None

    def __eq__(self, other):
        return type(other) is type(self) and other.__dict__ == self.__dict__

    __hash__ = object.__hash__


class ShopSession(Session):
    def has_info(self):
        return self.user is not None or bool(getattr(self, "cart", None))
