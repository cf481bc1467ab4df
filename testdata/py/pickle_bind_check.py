"""CPython's side of the tests of pickle's Go struct mapping (UnmarshalValue,
UpdateValue, NewObjectFrom).

    python3 pickle_bind_check.py make CASE [PROTOCOL]
        Write pickle.dumps(BUILD[CASE](), PROTOCOL or 4) to stdout: the objects Go
        decodes.
    python3 pickle_bind_check.py check < requests.jsonl
        Each line is {"case", "change", "pickle": base64} holding what Go wrote after
        making CHANGE to the objects of CASE. CPython loads it and compares it with
        what it gets by making the change itself (CHANGES[change] applied to
        BUILD[case]()): prints {"graph": bool, "why", "same_dump": bool, "error"},
        where graph compares the object graphs (values, classes, shared references)
        and same_dump compares pickle.dumps(x, 4) of the two objects.

Run with testdata/py on PYTHONPATH (myapp, pickle_graph).
"""

import base64
import datetime
import decimal
import json
import pickle
import sys

import pickle_graph
from myapp.models import CartItem, Coupon, ShopSession, User

D = decimal.Decimal
UTC = datetime.timezone.utc


def build_user():
    u = User("dora", D("12345678901234567890.123456789"))
    u.nickname = None
    u.points = 2**100 + 7
    u.score = 4.5
    u.roles = {"guest", "reader"}
    u.tags = ("vip", "early")
    u.prefs = {"lang": "fr", "page_size": 20}
    u.avatar = b"\x89PNG\r\n"
    u.cart = [
        CartItem("sku-1", "Tea", D("4.50"), 2),
        CartItem("sku-2", "Cup", D("12.00"), 1),
        CartItem("sku-3", "Pot", D("1E+2"), 1),
    ]
    u.favorite = u.cart[1]
    u.coupon = Coupon("WELCOME", 10)
    u.coupon.note = "first order"
    u.last_login = datetime.datetime(2026, 12, 1, 9, 30, 15, 250000, tzinfo=UTC)
    u.created = datetime.datetime(2020, 2, 29, 23, 59, 59)
    u.birthday = datetime.date(1990, 7, 14)
    u._cache = {"cart_total": D("128.50")}  # an attribute the Go struct does not name
    u.cart[0]._seen = True
    return {"user": u, "also_favorite": u.cart[1], "other": [1, "two"]}


def build_items():
    return [CartItem("sku-7", "Kettle", D("39.90"), 1), CartItem("sku-8", "Spoon", D("0.50"), 12)]


def build_session():
    """A session3 session of the application's class, as the shop keeps it: the
    logged-in User, and a cart of its own whose first item is the user's favorite."""
    u = build_user()["user"]
    s = ShopSession.__new__(ShopSession)  # Session.__init__ needs a request
    s.id = "bIgSeSsIoN1"
    s.user = u
    s._remote_address = "198.51.100.23"
    s._creation_time = 1795303038.5
    s._access_time = 1795303099.25
    s._form_tokens = ["tok1"]
    s.cart = [u.favorite, CartItem("sku-5", "Honey", D("7.25"), 1)]
    s.visits = 3
    return s


BUILD = {"user": build_user, "items": build_items, "session": build_session}


def change_none(x):
    return x


def change_edit(x):
    u = x["user"]
    u.cart[0].qty = 5
    u.cart[2].price = D("0.99")
    del u.cart[1]
    u.cart.append(CartItem("sku-9", "Gift card", D("25.00"), 1))
    u.balance = D("12345678901234567890.123456790")
    u.points += 1
    u.roles.discard("guest")
    u.roles.add("buyer")
    u.prefs["theme"] = "dark"
    u.nickname = "Dee"
    u.coupon.percent = 15
    u.last_login = datetime.datetime(2026, 12, 2, 18, 0, 0, tzinfo=UTC)
    u.created = datetime.datetime(2021, 1, 1, 0, 0, 0)
    u.favorite.name = "Blue cup"
    return x


def change_logout(x):
    x["user"].favorite = None
    x["user"].cart.clear()
    return x


def change_new(x):
    return build_items()


def change_checkout(s):
    s.cart[1].qty += 1
    s.cart.append(CartItem("sku-9", "Gift card", D("25.00"), 1))
    s.user.balance = D("12345678901234567890.113456789")  # beyond the context's 28 digits
    s.user.last_login = datetime.datetime(2026, 12, 2, 18, 0, 0, tzinfo=UTC)
    s.visits = 4
    return s


CHANGES = {"checkout": change_checkout, "none": change_none, "edit": change_edit, "logout": change_logout, "new": change_new}


def check(req):
    want = CHANGES[req["change"]](BUILD[req["case"]]())
    try:
        got = pickle.loads(base64.b64decode(req["pickle"]))
    except Exception as e:  # noqa: BLE001 - any failure to load is the answer
        return {"error": f"{type(e).__name__}: {e}"}
    a, b = pickle_graph.shape(want), pickle_graph.shape(got)
    why = None
    if a != b:
        why = f"python: {a}\n    go: {b}"
    return {"graph": a == b, "why": why, "same_dump": pickle.dumps(want, 4) == pickle.dumps(got, 4), "error": None}


def main(argv):
    if argv[1] == "make":
        proto = int(argv[3]) if len(argv) > 3 else 4
        sys.stdout.buffer.write(pickle.dumps(BUILD[argv[2]](), proto))
        return 0
    if argv[1] == "check":
        for line in sys.stdin:
            print(json.dumps(check(json.loads(line))), flush=True)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
