"""A corpus of pickles made by CPython, with the graphs CPython loads from them.

    python3 pickle_corpus.py                 JSON list on stdout
    python3 pickle_corpus.py --seeds DIR     also write each pickle as a Go fuzz seed

Each entry is {"name", "protocol", "pickle" (hex), "graph"}: a value pickled by
pickle.dumps at that protocol, and pickle_graph's description of what pickle.loads
makes of those bytes. The values cover every type of qxbridge's value model, shared
references and cycles, and instances of application classes. Run with testdata/py on
PYTHONPATH (for myapp, the application's own module) and the real session3 and
Quixote installed.

Importing this module registers the corpus's extra classes in myapp.models (slots,
__getnewargs_ex__, list/dict subclasses, a nested class), so that any process that
imports it can load the corpus's pickles.
"""

import collections
import datetime
import decimal
import hashlib
import json
import os
import pickle
import sys

import myapp.models as models
from myapp.models import Account, ShopSession
from session3.DictSession import DictSession
from session3.Session import Session

import pickle_graph
import qxrequest


def _register(cls):
    cls.__module__ = models.__name__
    setattr(models, cls.__name__, cls)
    return cls


@_register
class Point:
    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x, self.y = x, y


@_register
class Tagged:
    """Slots and a __dict__: its state is a (dict, slots) pair."""

    __slots__ = ("tag", "__dict__")


@_register
class Money:
    """Made by NEWOBJ_EX: cls.__new__(cls, amount, currency=...)."""

    def __new__(cls, amount, currency="EUR"):
        self = object.__new__(cls)
        self.amount, self.currency = amount, currency
        return self

    def __getnewargs_ex__(self):
        return (self.amount,), {"currency": self.currency}


@_register
class Node:
    def __init__(self, name):
        self.name = name
        self.children = []
        self.parent = None


@_register
class Empty:
    pass


@_register
class Items(list):
    pass


@_register
class Table(dict):
    pass


@_register
class Outer:
    class Inner:
        def __init__(self, v):
            self.v = v


Outer.Inner.__module__ = models.__name__


def session(cls=Session, **attrs):
    s = qxrequest.new_session(cls, "s3" + "x" * 8, "203.0.113.7")
    s._creation_time = s._access_time = 1795303038.0633044
    for k, v in attrs.items():
        setattr(s, k, v)
    return s


def values():
    """(name, value, protocols) for every case; protocols None means 0 to 5."""
    all_protocols = None
    from2 = range(2, 6)  # classes that copyreg's protocol 0/1 reduction cannot handle
    from4 = range(4, 6)  # __getnewargs_ex__: below 4 CPython writes functools.partial

    cases = []

    def add(name, value, protocols=all_protocols):
        cases.append((name, value, protocols))

    # Scalars.
    for i, v in enumerate([None, True, False]):
        add("const-%d" % i, v)
    ints = [0, 1, -1, 127, 255, 256, 65535, 65536, -65536, 2**31 - 1, -(2**31), 2**31,
            2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 2**64, 10**100, -(10**100), 2**1000 + 1,
            -(2**2040)]
    for v in ints:
        add("int-%s" % hashlib.sha1(str(v).encode()).hexdigest()[:8], v)
    floats = [0.0, -0.0, 1.5, -2.25, float("nan"), float("inf"), float("-inf"), 1e300,
              5e-324, 1e16, 0.1, 123456789.123]
    for i, v in enumerate(floats):
        add("float-%d" % i, v)
    strs = ["", "ascii", "caf\u00e9", "\u2713 check", "\U0001F600", "\ud800", "\udfff x",
            "\ud83d\ude00", "a\x00b", "\n\\'\"\r\t", "\\u0041 \\U00000041", "x" * 300,
            "\u00ff" * 200, "\x80\x81"]
    for i, v in enumerate(strs):
        add("str-%d" % i, v)
    for i, v in enumerate([b"", b"\x00\xff", bytes(range(256)), b"y" * 300]):
        add("bytes-%d" % i, v)
    for i, v in enumerate([bytearray(), bytearray(b"xyz\x00\xff")]):
        add("bytearray-%d" % i, v)

    # Containers.
    add("tuples", [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), ((),)])
    add("list-empty", [])
    add("list-2500", list(range(2500)))
    add("dict-empty", {})
    add("dict-2500", {"k%d" % i: i for i in range(2500)})
    add("dict-keys", {1: "one", 2.5: "float", None: "none", b"k": "bytes", "k": "str",
                      (1, (2, "x")): "tuple", frozenset({1, 2}): "frozenset", -0.0: "zero",
                      True: "true"})
    add("sets", [set(), {1, 2, 3}, {b"a", b"b"}, {(1, 2), (3, "x")}, {"x", ("y",)},
                 frozenset(), frozenset({1, "a"}), frozenset({b"q", (1, frozenset({2}))})])
    add("set-2500", set(range(2500)))
    add("frozenset-1200", frozenset(str(i) for i in range(1200)))
    words = ["w%d" % i for i in range(300)]
    add("memo-over-256", [words, words[::-1]])  # references past index 255
    add("nested", {"a": {"b": {"c": [1, (2, [3, {"d": ()}])]}}})
    deep = []
    for _ in range(150):
        deep = [deep]
    add("deep-list", deep)
    deep_t = ()
    for i in range(150):
        deep_t = (i, deep_t)
    add("deep-tuple", deep_t)

    # Shared references and cycles.
    a = [1]
    add("shared-list", [a, a, (a, a), {"x": a, "y": a}])
    t = (1, [2])
    add("shared-tuple", [t, t, {"t": t}])
    d = {"k": "v"}
    add("shared-dict-in-tuple", (d, [d], d))
    selfref = []
    selfref.append(selfref)
    add("cycle-list", selfref)
    sd = {}
    sd["self"] = sd
    add("cycle-dict", sd)
    la, lb = [], []
    la.append(lb)
    lb.append(la)
    add("cycle-two-lists", [la, lb])
    tl = ([],)
    tl[0].append(tl)
    add("cycle-tuple-list", tl)
    tl2 = ([], [])
    tl2[0].append(tl2)
    tl2[1].append(tl2[0])
    add("cycle-tuple-list-2", {"t": tl2, "inner": tl2[1]})

    # Objects.
    add("session3", session(user="alice", counter=3, _form_tokens=["tok1", "tok2"]))
    ds = session(DictSession, user="dora")
    ds.data = {"cart": [("sku-1", 2), ("sku-9", 1)], "note": "gift wrap \u2713"}
    add("dictsession", ds)
    acct = Account("bob")
    acct.roles = {"admin", "staff"}
    acct.last_login = datetime.datetime(2025, 11, 21, 8, 30, 5, 123456)
    shop = session(ShopSession, user=acct, cart={"sku-1": 2},
                   total=decimal.Decimal("12.50"), seen=("home", "cart"))
    shop.owner = acct  # a second reference to the same Account
    add("shopsession", shop)
    add("empty-instance", Empty())
    add("account-as-key", {acct: 1, "set": {acct}})
    add("datetimes", [
        datetime.datetime(2025, 1, 2, 3, 4, 5),
        datetime.datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc),
        datetime.datetime(1999, 12, 31, 23, 59, 59,
                          tzinfo=datetime.timezone(datetime.timedelta(hours=-5), "EST")),
        datetime.date(2024, 2, 29), datetime.time(12, 30), datetime.timedelta(days=-1, seconds=5),
    ])
    add("decimals", [decimal.Decimal("12.50"), decimal.Decimal("-0"), decimal.Decimal("NaN"),
                     decimal.Decimal("1E+400")])
    od = collections.OrderedDict([("z", 1), ("a", [2])])
    add("ordereddict", od)
    dd = collections.defaultdict(list, {"x": [1], "y": []})
    add("defaultdict", dd)
    add("counter", collections.Counter("abracadabra"))
    p = Point(1, "two")
    add("slots", [p, p], from2)
    tg = Tagged()
    tg.tag = "t"
    tg.extra = [1]
    add("slots-and-dict", tg, from2)
    add("newobj-ex", [Money(5), Money(7, currency="USD")], from4)
    it = Items([1, 2, 3])
    it.note = "n"
    tb = Table(a=1)
    tb.note = "t"
    add("subclasses", [it, tb], from2)
    add("nested-class", Outer.Inner(3))
    add("globals", [Account, len, datetime.datetime, collections.OrderedDict, Outer.Inner])
    root = Node("root")
    kid = Node("kid")
    kid.parent = root
    root.children.append(kid)
    root.me = root
    add("object-cycle", root)
    add("everything", {"session": shop, "tree": root, "cycle": tl, "set": {1, b"x"},
                       "ba": bytearray(b"ba"), "when": acct.last_login})
    return cases


def go_seed(data):
    """data as a Go fuzz corpus file ("go test fuzz v1")."""
    out = []
    for c in data:
        if c in b'"\\':
            out.append("\\" + chr(c))
        elif 0x20 <= c < 0x7F:
            out.append(chr(c))
        else:
            out.append("\\x%02x" % c)
    return 'go test fuzz v1\n[]byte("%s")\n' % "".join(out)


def main(argv):
    sys.setrecursionlimit(20000)
    seeds = None
    if len(argv) == 3 and argv[1] == "--seeds":
        seeds = argv[2]
    elif len(argv) != 1:
        sys.stderr.write(__doc__)
        return 2
    out = []
    for name, value, protocols in values():
        for proto in protocols if protocols is not None else range(0, 6):
            data = pickle.dumps(value, protocol=proto)
            out.append({"name": name, "protocol": proto, "pickle": data.hex(),
                        "graph": pickle_graph.describe(pickle.loads(data))})
            if seeds is not None and len(data) <= 600:
                path = os.path.join(seeds, "corpus-%s-p%d" % (name, proto))
                with open(path, "w") as f:
                    f.write(go_seed(data))
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
