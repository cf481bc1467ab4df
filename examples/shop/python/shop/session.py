"""The shop's session class."""

from decimal import Decimal

from session3.Session import Session


class ShopSession(Session):
    """A session3 Session with the shopper's cart (a list of shop.models.CartItem)
    and placed orders (a list of shop.models.Order)."""

    def __init__(self, id):
        Session.__init__(self, id)
        self.cart = []
        self.orders = []

    def has_info(self):
        # Kept for a logged-in user, a cart with something in it, or a form
        # waiting for its token (a visitor's first add to cart, or the login
        # form). The Go gateway declares the same rule (HasInfo of its class).
        return bool(self.user) or bool(self.get_cart()) or bool(self._form_tokens)

    def get_cart(self):
        if "cart" not in self.__dict__:
            self.cart = []
        return self.cart

    def get_orders(self):
        if "orders" not in self.__dict__:
            self.orders = []
        return self.orders

    def cart_total(self):
        return sum((item.total() for item in self.get_cart()), Decimal("0.00"))
