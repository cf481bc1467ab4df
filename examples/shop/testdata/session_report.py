"""Loads a session file as the shop's Python workers do (pickle, with the shop's
classes importable: PYTHONPATH=python) and prints what the end-to-end test checks,
as JSON:

    python testdata/session_report.py SESSION_FILE

"pickled" has each attribute of the session pickled on its own (protocol 4), so the
test can tell that an attribute Go did not touch is the same to the byte; each cart
item's "as_python_makes_it" says whether it pickles as the CartItem Python's own code
would have made from the same values.
"""

import json
import pickle
import sys
from decimal import Decimal

from shop.auth import User
from shop.models import CartItem, Order
from shop.session import ShopSession


def class_name(obj):
    return type(obj).__module__ + "." + type(obj).__qualname__


def item(i):
    made = CartItem(i.sku, i.name, Decimal(str(i.price)), i.qty)
    return {"class": class_name(i), "sku": i.sku, "name": i.name, "price": str(i.price),
            "price_class": class_name(i.price), "qty": i.qty, "total": str(i.total()),
            "as_python_makes_it": isinstance(i, CartItem) and pickle.dumps(i, 4) == pickle.dumps(made, 4)}


def main(path):
    with open(path, "rb") as f:
        session = pickle.load(f)
    assert isinstance(session, ShopSession), type(session)
    user = session.user
    report = {
        "class": class_name(session),
        "id": session.id,
        "has_info": bool(session.has_info()),
        "user": None if user is None else {
            "class": class_name(user), "is_user": isinstance(user, User), "login": user.login,
            "name": user.name, "email": user.email, "since": user.since.isoformat()},
        "cart": [item(i) for i in session.cart],
        "cart_total": str(session.cart_total()),
        "orders": [{"class": class_name(o), "is_order": isinstance(o, Order), "number": o.number,
                    "total": str(o.total), "total_class": class_name(o.total),
                    "placed": o.placed.isoformat(), "items": [item(i) for i in o.items]}
                   for o in session.orders],
        "form_tokens": len(session._form_tokens),
        "attrs": list(session.__dict__),
        "pickled": {name: pickle.dumps(value, 4).hex() for name, value in session.__dict__.items()},
    }
    json.dump(report, sys.stdout, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
