"""The shop's session class."""

from decimal import Decimal

from session3.Session import Session


class ShopSession(Session):
    """A session3 Session with the shopper's cart (a list of shop.models.CartItem)
    and placed orders (a list of shop.models.Order). The Go gateway makes new
    sessions with the same attributes (Init of its class)."""

    def __init__(self, id):
        Session.__init__(self, id)
        self.cart = []
        self.orders = []

    def has_info(self):
        # Kept for a logged-in user, a cart with something in it, or a form
        # waiting for its token (a visitor's first add to cart, or the login
        # form). The Go gateway declares the same rule (HasInfo of its class).
        return bool(self.user) or bool(self.cart) or bool(self._form_tokens)

    def cart_total(self):
        return sum((item.total() for item in self.cart), Decimal("0.00"))
