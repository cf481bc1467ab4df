"""The catalog and the objects a shopper's session holds."""

import json
import os
from decimal import Decimal


def load_catalog():
    """The products by SKU, from catalog.json (the Go gateway reads the same file)."""
    with open(os.path.join(os.path.dirname(__file__), "catalog.json"), encoding="utf-8") as f:
        return {p["sku"]: Product(p["sku"], p["name"], Decimal(p["price"])) for p in json.load(f)}


class Product:
    def __init__(self, sku, name, price):
        self.sku = sku
        self.name = name
        self.price = price


class CartItem:
    """One line of the cart: session.cart is a list of these."""

    def __init__(self, sku, name, price, qty=1):
        self.sku = sku
        self.name = name
        self.price = price  # a Decimal
        self.qty = qty

    def total(self):
        return self.price * self.qty


class Order:
    """A placed order: session.orders is a list of these."""

    def __init__(self, number, items, total, placed):
        self.number = number
        self.items = items  # the CartItems, as they were in the cart
        self.total = total  # a Decimal
        self.placed = placed  # an aware datetime


CATALOG = load_catalog()
