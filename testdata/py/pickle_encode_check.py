"""CPython's side of the pickle encoder tests.

    python3 pickle_encode_check.py check < requests.jsonl
        Each request line is {"name", "protocol", "pickle": base64} holding a pickle the
        Go encoder wrote. For each, print one JSON line with:
          error        why CPython could not load it, or null
          same_redump  pickle.dumps(pickle.loads(data), protocol) == data
          same_dump    pickle.dumps(CASES[name](), protocol) == data   (null: no case)
          graph        whether the loaded object has the same object graph as
                       CASES[name]() -- values, types, and which objects are one
                       object (shared references, cycles) -- or null
          why          the first difference in the graph, if any
          dis          pickletools listings of the differing pickles
    python3 pickle_encode_check.py compare < pairs.jsonl
        Each line is {"name", "a": base64, "b": base64}; print {"name", "graph", "why"}
        comparing the object graphs the two pickles load to.
    python3 pickle_encode_check.py texts < lists.jsonl
        Each line is {"pickle": base64} of a list; print {"texts": [...]}, Python's repr of
        each float, isoformat() of each datetime/date/time, str() of anything else.
    python3 pickle_encode_check.py fromjson < docs.jsonl
        Each line is {"name", "json": text}; print {"name", "pickle": base64} of
        pickle.dumps(json.loads(text), 4), or {"name", "error"}.
    python3 pickle_encode_check.py corpus
        Print {"name", "protocol", "pickle": base64} for every case at protocols 2 to 5.
    python3 pickle_encode_check.py seeds DIR
        Write the small cases at protocols 2 to 5 as Go fuzz seeds (FuzzRoundTrip).
    python3 pickle_encode_check.py compat
        Print CPython's fix_imports tables and which builtins are functions.
    python3 pickle_encode_check.py dump NAME PROTOCOL
        Write pickle.dumps(CASES[NAME](), PROTOCOL) to stdout (used to make fixtures).

CASES builds, for each name, the object the Go test builds under the same name.
"""

import base64
import collections
import datetime
import decimal
import fractions
import io
import json
import math
import os
import pickle
import pickletools
import struct
import sys
import uuid

import pickle_corpus  # noqa: F401 - registers the corpus's classes, to load its pickles
import pickle_encode_classes as pc
from myapp.models import Account, ShopSession
from session3.Session import Session

# ---------------------------------------------------------------------------
# Object graph comparison


def _float_bits(f):
    return struct.pack("<d", f)


ATOMS = (type(None), bool, int, float, str, bytes, complex)


def same_graph(a, b):
    """Return None when a and b are the same object graph, else a description of the
    first difference. Objects other than atoms must correspond one to one: an object
    reached twice on one side must be reached at the same places on the other."""
    a2b, b2a, keep = {}, {}, []

    def walk(x, y, path):
        if type(x) is not type(y):
            return "%s: type %s != %s" % (path, type(x).__name__, type(y).__name__)
        if isinstance(x, float):
            if _float_bits(x) != _float_bits(y):
                return "%s: float %r != %r" % (path, x, y)
            return None
        if isinstance(x, ATOMS):
            return None if x == y else "%s: %r != %r" % (path, x, y)
        if isinstance(x, type) or type(x).__name__ in ("function", "builtin_function_or_method"):
            return None if x is y else "%s: %r is not %r" % (path, x, y)
        ix, iy = id(x), id(y)
        if ix in a2b or iy in b2a:
            if a2b.get(ix) == iy and b2a.get(iy) == ix:
                return None
            return "%s: shared-reference structure differs" % path
        a2b[ix], b2a[iy] = iy, ix
        keep.append((x, y))
        if type(x) in (tuple, list):
            if len(x) != len(y):
                return "%s: length %d != %d" % (path, len(x), len(y))
            for i, (p, q) in enumerate(zip(x, y)):
                d = walk(p, q, "%s[%d]" % (path, i))
                if d:
                    return d
            return None
        if type(x) is dict:
            if len(x) != len(y):
                return "%s: %d keys != %d keys" % (path, len(x), len(y))
            for i, ((k1, v1), (k2, v2)) in enumerate(zip(x.items(), y.items())):
                d = walk(k1, k2, "%s<key %d>" % (path, i)) or walk(v1, v2, "%s[%r]" % (path, k1))
                if d:
                    return d
            return None
        if type(x) in (set, frozenset):
            if len(x) != len(y):
                return "%s: %d items != %d items" % (path, len(x), len(y))
            xs, ys = sorted(x, key=_sort_key), sorted(y, key=_sort_key)
            for i, (p, q) in enumerate(zip(xs, ys)):
                d = walk(p, q, "%s<item %d>" % (path, i))
                if d:
                    return d
            return None
        if type(x) is bytearray:
            return None if x == y else "%s: %r != %r" % (path, x, y)
        # Any other object: compare what CPython would pickle for it.
        rx, ry = _reduce(x), _reduce(y)
        return walk(rx, ry, "%s.<%s>" % (path, type(x).__qualname__))

    return walk(a, b, "")


def _sort_key(v):
    if isinstance(v, ATOMS):
        return (type(v).__name__, repr(v))
    return (type(v).__name__, "")


def _reduce(obj):
    r = obj.__reduce_ex__(4)
    if isinstance(r, str):
        return r
    r = list(r)
    for i in (3, 4):
        if len(r) > i and r[i] is not None:
            r[i] = list(r[i])
    return tuple(r)


# ---------------------------------------------------------------------------
# The values the Go tests build, by name.


def session3_login():
    s = Session.__new__(Session)
    s.id = "4qihCikDywk"
    s.user = "alice"
    s._remote_address = "203.0.113.7"
    s._creation_time = 1795303038.0633044
    s._access_time = 1795303038.0633044
    s._form_tokens = []
    s.counter = 0
    return s


def shop_session():
    user = Account.__new__(Account)
    user.login = "carol"
    user.roles = {"admin"}
    user.last_login = datetime.datetime(2026, 11, 21, 9, 30)
    s = ShopSession.__new__(ShopSession)
    s.id = "Q4PJ1fkwwK8"
    s.user = user
    s._remote_address = "203.0.113.7"
    s._creation_time = 1795303038.065931
    s._access_time = 1795303038.065931
    s._form_tokens = ["epYIEYFdJ-ka1_L1fwoZRw"]
    s.cart = {"sku-1": 2, "sku-9": 1}
    s.total = decimal.Decimal("12.50")
    s.seen = ("sku-1", "sku-9")
    s.tz_login = datetime.datetime(2026, 11, 21, 9, 30, 15, 250000, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    s.utc_login = datetime.datetime(2026, 11, 21, 8, 30, tzinfo=datetime.timezone.utc)
    s.west_login = datetime.datetime(2026, 11, 21, 3, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=-5)))
    s.day = datetime.date(2026, 11, 21)
    s.at = datetime.time(9, 30, 15, 500)
    s.delta = datetime.timedelta(days=-1, seconds=5)
    return s


def scalars():
    return [
        None, True, False, 0, 1, 255, 256, 65535, 65536, -1, -256,
        2**31 - 1, -2**31, 2**31, -2**31 - 1, 2**63 - 1, -2**63, 2**63, -2**63 - 1,
        2**64, -2**39, -2**39 - 1, 2**2040, 2**2047, -2**2047, -2**2047 - 1,
        1.5, -0.0, 0.0, float("inf"), float("-inf"), float("nan"), 1e300, 5e-324,
        struct.unpack("<d", bytes.fromhex("0100000000f8ff7f"))[0],
        "", "a", "h\u00e9llo", "\U0001F600", "\ud800", "a\udc80b", "\ud83d\ude00",
        b"", b"\x00\xff", bytearray(b""), bytearray(b"\x00ab"),
    ]


def sizes():
    return ["x" * 255, "y" * 256, b"x" * 255, b"y" * 256, "\u00e9" * 128, "z" * 65535]


def shared():
    l, t, o = [1], (1, 2), pc.Plain()
    o.name = "o"
    return {"l1": l, "l2": l, "t1": t, "t2": t, "o1": o, "o2": o, "e1": (), "e2": ()}


def cycles():
    l = []
    l.append(l)
    d = {}
    d["self"] = d
    n = pc.Node()
    n.me = n
    n.peers = [n]
    a = []
    b = {"a": a}
    a.append(b)
    return [l, d, n, a]


def recursive_tuple():
    l = []
    t = (l,)
    l.append(t)
    return t


def recursive_tuple4():
    l = []
    t = (1, 2, 3, l)
    l.append(t)
    return t


def recursive_frozenset():
    n = pc.Node()
    fs = frozenset([n])
    n.fs = fs
    return fs


def recursive_set():
    n = pc.Node()
    s = {n}
    n.s = s
    return s


def args_cycle():
    lst = []
    o = pc.WithNewArgs(lst)
    lst.append(o)
    return o


def args_shared():
    """Argument tuples that are real shared objects: one that its own contents refer
    to (a recursive tuple), and one two objects share."""
    lst = []
    a = pc.ArgsShared()
    a.args = (lst,)
    lst.append(a.args)
    b, c = pc.ArgsShared(), pc.ArgsShared()
    b.args = c.args = ("x", 1)
    return [a, b, c, lst]


def distinct_strs():
    """Equal strs and bytes that are distinct objects, and ones that are the same."""
    a, b = "".join(["dup", "licate"]), "".join(["dup", "licate"])
    x, y = bytes([1, 2, 3]), bytes([1, 2, 3])
    return [a, b, a, x, y, x, "", "", b"", b""]


def batches():
    return {
        "d1000": {i: i for i in range(1000)},
        "d1001": {i: i for i in range(1001)},
        "d2000": {i: i for i in range(2000)},
        "l1000": list(range(1000)),
        "l1001": list(range(1001)),
        "s1000": set(range(1000)),
        "s1001": set(range(1001)),
        "fs3": frozenset({1, 2, 3}),
        "d1": {"k": 1},
        "l1": [1],
        "s1": {1},
        "e": set(),
        "fe": frozenset(),
    }


def globals_():
    import copyreg

    return [
        Session, set, datetime.datetime, datetime.date, collections.OrderedDict,
        pc.Outer.Inner, "datetime", "set", "Session", len, copyreg._reconstructor,
        ShopSession, Account,
    ]


def objects():
    sl = pc.Slotted()
    sl.a, sl.b = 1, 2
    sd = pc.SlottedWithDict()
    sd.a = 1
    sd.c = 3
    st = pc.SetState.__new__(pc.SetState)
    st.v, st.version = [1], "v1"
    ml = pc.MyList([1, 2])
    ml.tag = "x"
    md = pc.MyDict({"a": 1})
    md.tag = "y"
    inner = pc.Outer.Inner()
    inner.n = 1
    return [
        pc.WithNewArgs(5), pc.Reduced(1, "x"), sl, sd, st, ml, md, pc.Plain(), inner,
        collections.OrderedDict([("a", 1), ("b", 2)]),
        collections.defaultdict(list, {"a": [1]}),
        collections.deque([1, 2]), collections.deque([1], maxlen=3),
        uuid.UUID(int=5), fractions.Fraction(1, 3), complex(1, 2),
        decimal.Decimal("-1.5E+3"),
    ]


def newobj_ex():
    return [pc.WithNewArgsEx(1, k=2), pc.WithNewArgsEx("a", k=None)]


def plain_go():
    return {
        "a": ["x", 2.5, None],
        "b": 1,
        "bytes": b"\x00\x01",
        "c": {"k": "v"},
        "f32": 0.5,
        "i8": -8,
        "u64": 2**64 - 1,
        "when": datetime.datetime(2026, 11, 21, 9, 30, 15, 123456, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))),
    }


def bytes_proto2():
    x = b"ab"
    return [x, x, bytearray(b"ab"), bytearray(b"a"), b"", bytearray(), b"\xff\x80"]


def huge():
    return ["a" * 70000, b"b" * 70000, "x", "\u00e9" * 40000, [b"c" * 65535, b"d" * 3]]


def big_session():
    """A session of about 100 KB: a cart of 1000 line items (dicts with a str, ints, a
    float and a tuple), a history of 500 strings and some form tokens."""
    s = Session.__new__(Session)
    s.id = "bIgSeSsIoN1"
    s.user = "dora"
    s._remote_address = "198.51.100.23"
    s._creation_time = 1795303038.5
    s._access_time = 1795303099.25
    s._form_tokens = ["token-%02d-aaaaaaaaaaaaaa" % i for i in range(32)]
    tags = ["n%d" % k for k in range(13)]  # one str object per tag, as Go shares equal strs
    s.cart = [
        {"sku": "sku-%05d" % i, "qty": i % 7 + 1, "price": 9.99 + i, "tags": ("gift", tags[i % 13]), "note": "item %d: " % i + "x" * (i % 40)}
        for i in range(1000)
    ]
    s.history = ["/catalog/page/%d?ref=search&q=item%d" % (i, i) for i in range(500)]
    return s


CASES = {
    "session3_login": session3_login,
    "shop_session": shop_session,
    "scalars": scalars,
    "sizes": sizes,
    "shared": shared,
    "cycles": cycles,
    "recursive_tuple": recursive_tuple,
    "recursive_tuple4": recursive_tuple4,
    "recursive_frozenset": recursive_frozenset,
    "recursive_set": recursive_set,
    "args_cycle": args_cycle,
    "args_shared": args_shared,
    "distinct_strs": distinct_strs,
    "batches": batches,
    "globals": globals_,
    "objects": objects,
    "newobj_ex": newobj_ex,
    "plain_go": plain_go,
    "bytes_proto2": bytes_proto2,
    "huge": huge,
    "big_session": big_session,
}

# ---------------------------------------------------------------------------


def dis(data):
    out = io.StringIO()
    try:
        pickletools.dis(data, out)
    except Exception as e:  # noqa: BLE001 - a listing of a broken pickle is still useful
        out.write("pickletools: %s\n" % e)
    text = out.getvalue()
    return text if len(text) < 20000 else text[:20000] + "...\n"


def check(req):
    name, proto = req["name"], req["protocol"]
    data = base64.b64decode(req["pickle"])
    res = {"name": name, "protocol": proto, "error": None, "same_redump": None, "same_dump": None, "graph": None, "why": None, "dis": {}}
    try:
        obj = pickle.loads(data)
    except Exception as e:  # noqa: BLE001 - reported to the Go test
        res["error"] = "%s: %s" % (type(e).__name__, e)
        res["dis"]["go"] = dis(data)
        return res
    redump = pickle.dumps(obj, proto)
    res["same_redump"] = redump == data
    if not res["same_redump"]:
        res["dis"]["redump"] = dis(redump)
    if name in CASES:
        exp = CASES[name]()
        dump = pickle.dumps(exp, proto)
        res["same_dump"] = dump == data
        if not res["same_dump"]:
            res["dis"]["dump"] = dis(dump)
        why = same_graph(obj, exp)
        res["graph"] = why is None
        res["why"] = why
    if res["dis"]:
        res["dis"]["go"] = dis(data)
    return res


def compare(req):
    a = pickle.loads(base64.b64decode(req["a"]))
    b = pickle.loads(base64.b64decode(req["b"]))
    why = same_graph(a, b)
    return {"name": req["name"], "graph": why is None, "why": why}


def compat():
    """The tables behind CPython's fix_imports, and which builtins are classes."""
    import _compat_pickle
    import builtins

    return {
        "name": [list(k + v) for k, v in sorted(_compat_pickle.REVERSE_NAME_MAPPING.items())],
        "import": [list(kv) for kv in sorted(_compat_pickle.REVERSE_IMPORT_MAPPING.items())],
        "functions": {n: not isinstance(v, type) for n, v in vars(builtins).items() if getattr(v, "__qualname__", None) == n},
    }


def texts(req):
    """Python's own text for each item of a pickled list: repr of a float, isoformat of
    a datetime, date or time, str of a timedelta or Decimal."""
    out = []
    for v in pickle.loads(base64.b64decode(req["pickle"])):
        if isinstance(v, float):
            out.append(repr(v))
        elif isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
            out.append(v.isoformat())
        else:
            out.append(str(v))
    return {"texts": out}


def fromjson(req):
    """json.loads of the text, pickled at protocol 4, or the error json.loads raises."""
    try:
        obj = json.loads(req["json"])
    except (ValueError, RecursionError) as e:
        return {"name": req["name"], "error": "%s: %s" % (type(e).__name__, e)}
    return {"name": req["name"], "pickle": base64.b64encode(pickle.dumps(obj, 4)).decode()}


def corpus():
    """Every case pickled by CPython at protocols 2 to 5."""
    for name, build in CASES.items():
        for proto in range(2, 6):
            data = pickle.dumps(build(), proto)
            print(json.dumps({"name": name, "protocol": proto, "pickle": base64.b64encode(data).decode()}))


def seeds(directory):
    """Write the small cases at protocols 2 to 5 as Go fuzz seeds for FuzzRoundTrip."""
    os.makedirs(directory, exist_ok=True)
    for name, build in CASES.items():
        if name in ("huge", "big_session", "batches", "sizes"):
            continue  # large; the fuzzer mutates small inputs better
        for proto in range(2, 6):
            data = pickle.dumps(build(), proto)
            quoted = "".join(chr(b) if 0x20 <= b < 0x7F and b not in b'"\\' else "\\x%02x" % b for b in data)
            with open(os.path.join(directory, "%s-%d" % (name, proto)), "w") as f:
                f.write('go test fuzz v1\n[]byte("%s")\n' % quoted)


def main():
    mode = sys.argv[1]
    if mode == "seeds":
        seeds(sys.argv[2])
        return
    if mode == "corpus":
        corpus()
        return
    if mode == "compat":
        print(json.dumps(compat()))
        return
    if mode == "dump":
        sys.stdout.buffer.write(pickle.dumps(CASES[sys.argv[2]](), int(sys.argv[3])))
        return
    fn = {"check": check, "compare": compare, "texts": texts, "fromjson": fromjson}[mode]
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(fn(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
