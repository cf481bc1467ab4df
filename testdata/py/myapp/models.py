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


class CartItem:
    """A line of a shop cart: the price is a Decimal, as money should be."""

    def __init__(self, sku, name, price, qty=1):
        self.sku = sku
        self.name = name
        self.price = price
        self.qty = qty


class Coupon:
    """A class with __slots__ beside its __dict__: pickled with a (dict, slots) state."""

    __slots__ = ("code", "percent", "__dict__")

    def __init__(self, code, percent):
        self.code = code
        self.percent = percent


class User:
    """A logged-in user, with the value types an application keeps in a session."""

    def __init__(self, login, balance):
        self.login = login
        self.nickname = None
        self.balance = balance
        self.points = 0
        self.score = 0.0
        self.active = True
        self.roles = set()
        self.tags = ()
        self.prefs = {}
        self.avatar = b""
        self.cart = []
        self.favorite = None
        self.coupon = None
        self.last_login = None
        self.created = None
        self.birthday = None
