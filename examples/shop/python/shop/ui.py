"""The shop's pages, a Quixote Directory tree.

    /                 welcome
    /login, /logout   log in (User into session.user), log out
    /products         the catalog, each product with an "Add to cart" form
    /cart/            the cart; /cart/add and /cart/remove (POST) change it
    /checkout         the cart with its total; POST places the order
    /account/         the user's details and orders

The Go gateway serves /cart/ and /account/ (and their forms) in front of these; the
pages here stay for the paths it forwards, and are what those pages were.
"""

import html
from datetime import datetime, timezone
from decimal import Decimal

import quixote
from quixote import get_field, get_request, get_response, get_session, get_session_manager
from quixote.directory import Directory
from quixote.errors import AccessError

from shop.auth import authenticate
from shop.models import CATALOG, CartItem, Order

FORM_TOKEN = "_form_token"
CENT = Decimal("0.01")


def money(d):
    return str(d.quantize(CENT))


def page(title, body):
    get_response().set_content_type("text/html", "utf-8")
    user = get_session().user
    who = ('%s · <a href="/account/">account</a> · <a href="/logout">log out</a>'
           % html.escape(user.name) if user else '<a href="/login">log in</a>')
    return ('<!DOCTYPE html>\n<html><head><title>%s · Shop</title></head><body>\n'
            '<nav><a href="/">Shop</a> · <a href="/products">products</a> · '
            '<a href="/cart/">cart</a> · %s</nav>\n<h1>%s</h1>\n%s</body></html>\n'
            % (html.escape(title), who, html.escape(title), body))


def token_field():
    return '<input type="hidden" name="%s" value="%s">' % (
        FORM_TOKEN, html.escape(get_session().create_form_token()))


def check_form_token():
    """A POST must carry a form token the session handed out; each is good once."""
    session = get_session()
    token = get_field(FORM_TOKEN)
    if get_request().get_method() != "POST" or not token or not session.has_form_token(token):
        raise AccessError("the form has expired; reload the page")
    session.remove_form_token(token)


def cart_table(cart, total):
    """The cart as a table, the same lines as the Go /cart/ page renders."""
    rows = "".join(
        '<tr class="item" data-sku="%s"><td>%s</td><td>%d</td><td>%s</td><td>%s</td></tr>\n'
        % (html.escape(i.sku), html.escape(i.name), i.qty, money(i.price), money(i.total()))
        for i in cart)
    return ('<table>\n<tr><th>Item</th><th>Qty</th><th>Price</th><th>Total</th></tr>\n%s'
            '<tr><th colspan="3">Total</th><td id="total">%s</td></tr>\n</table>\n'
            % (rows, money(total)))


class CartDirectory(Directory):
    _q_exports = ["", "add", "remove"]

    def _q_index(self):
        session = get_session()
        cart = session.cart
        if not cart:
            return page("Your cart", "<p>Your cart is empty.</p>\n")
        return page("Your cart", cart_table(cart, session.cart_total())
                    + '<p><a href="/checkout">Check out</a></p>\n')

    def add(self):
        check_form_token()
        product = CATALOG.get(get_field("sku") or "")
        if product is None:
            raise AccessError("no such product")
        cart = get_session().cart
        for item in cart:
            if item.sku == product.sku:
                item.qty += 1
                break
        else:
            cart.append(CartItem(product.sku, product.name, product.price))
        return quixote.redirect("/cart/")

    def remove(self):
        check_form_token()
        session = get_session()
        session.cart = [i for i in session.cart if i.sku != get_field("sku")]
        return quixote.redirect("/cart/")


class AccountDirectory(Directory):
    _q_exports = [""]

    def _q_index(self):
        user = get_session().user
        if not user:
            return quixote.redirect("/login?next=/account/")
        orders = "".join('<li>Order %d, %s: %s</li>\n' % (o.number, o.placed.strftime("%Y-%m-%d"), money(o.total))
                         for o in get_session().orders)
        return page("Your account", '<p id="name">%s</p>\n<p id="email">%s</p>\n'
                    '<p id="since">Customer since %s</p>\n<ul>\n%s</ul>\n'
                    % (html.escape(user.name), html.escape(user.email),
                       user.since.strftime("%B %Y"), orders))


class RootDirectory(Directory):
    _q_exports = ["", "login", "logout", "products", "checkout", "cart", "account"]

    cart = CartDirectory()
    account = AccountDirectory()

    def _q_index(self):
        user = get_session().user
        greeting = "Welcome back, %s." % html.escape(user.name) if user else "Welcome."
        return page("Shop", "<p>%s</p>\n" % greeting)

    def login(self):
        session = get_session()
        nxt = get_field("next") or "/"
        if not nxt.startswith("/") or nxt.startswith("//"):
            nxt = "/"
        error = ""
        if get_request().get_method() == "POST":
            check_form_token()
            user = authenticate(get_field("login"), get_field("password"))
            if user is not None:
                session.set_user(user)
                return quixote.redirect(nxt)
            error = '<p class="error">Wrong login or password.</p>\n'
        return page("Log in", error + '<form method="post" action="/login">%s'
                    '<input type="hidden" name="next" value="%s">'
                    '<input name="login"><input name="password" type="password">'
                    '<input type="submit" value="Log in"></form>\n'
                    % (token_field(), html.escape(nxt)))

    def logout(self):
        get_session_manager().expire_session()
        return quixote.redirect("/")

    def products(self):
        rows = "".join(
            '<li>%s, %s <form method="post" action="/cart/add">%s'
            '<input type="hidden" name="sku" value="%s"><input type="submit" value="Add to cart">'
            '</form></li>\n'
            % (html.escape(p.name), money(p.price), token_field(), html.escape(p.sku))
            for p in CATALOG.values())
        return page("Products", "<ul>\n%s</ul>\n" % rows)

    def checkout(self):
        session = get_session()
        if not session.user:
            return quixote.redirect("/login?next=/checkout")
        cart = session.cart
        if get_request().get_method() == "POST":
            check_form_token()
            if not cart:
                return quixote.redirect("/cart/")
            orders = session.orders
            order = Order(len(orders) + 1, list(cart), session.cart_total(), datetime.now(timezone.utc))
            orders.append(order)
            session.cart = []
            return page("Thank you", '<p id="order">Order %d placed: %s</p>\n' % (order.number, money(order.total)))
        if not cart:
            return page("Check out", "<p>Your cart is empty.</p>\n")
        return page("Check out", cart_table(cart, session.cart_total())
                    + '<form method="post" action="/checkout">%s<input type="submit" value="Place order"></form>\n'
                    % token_field())
