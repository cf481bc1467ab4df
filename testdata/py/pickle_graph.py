"""Canonical description of the object graph CPython loads from a pickle.

    python3 pickle_graph.py [FILE ...]
    python3 pickle_graph.py --hex [--safe] < lines

loads each FILE (or, with no FILE, one pickle from stdin) with pickle.load, reading from
a file object as session3 does (unlike pickle.loads, that makes CPython check that no
opcode runs past the end of its frame), and prints
one JSON line per pickle: the description of the loaded object graph, or
{"error": "Type: message"} when CPython cannot load it (the exit status is then 1).
With --hex, stdin holds one hex-encoded pickle per line and every line gets an answer
(the exit status is 0). --safe loads only classes and functions of the modules the
test corpus uses (see SAFE_MODULES), for loading mutated pickles: any other global is
answered with {"forbidden": "module.name"}; it also caps the process's memory. Run it with testdata/py on PYTHONPATH so
that the application's module (myapp) imports; session3 and Quixote are the installed ones.

The description is the same for equal graphs and differs for different ones,
identity included. The Go tests of the pickle package build the same description from
a decoded Go value and compare. Node forms (JSON objects, keys sorted):

    {"t": "none"}                                   None
    {"t": "bool", "v": true}
    {"t": "int", "v": "-1f"}                        hex, so any size prints
    {"t": "float", "v": "3ff0000000000000"}         IEEE 754 bits, big-endian hex
    {"t": "str", "v": "<hex>"}                      UTF-8 with surrogatepass, in hex
    {"t": "bytes", "v": "<hex>"}
    {"t": "global", "module": m, "name": qualname}  classes and functions
    {"t": "bytearray", "id": n, "v": "<hex>"}
    {"t": "tuple" | "list" | "set" | "frozenset", "id": n, "items": [node, ...]}
    {"t": "dict", "id": n, "items": [[key, value], ...]}
    {"t": "object", "id": n, "new": class | "call": callable, "args": [node, ...],
     "kwargs": [[k, v], ...], "listitems": [...], "dictitems": [[k, v], ...], "state": node}
                                                    (empty listitems/dictitems and a None
                                                    state are left out, as pickling does)
    {"ref": n}                                      a node described earlier

Identity: every container and object gets an id, its ordinal in a depth-first walk, the
first time it is met; later meetings give {"ref": id}. Immutable scalars have no
identity (CPython shares them as it likes), nor do the empty tuple and the empty
frozenset (CPython has one of each). Set items are sorted by their own description.

Objects are described by what CPython's pickler would write for them, from
obj.__reduce_ex__(4): "new" for instances made by cls.__new__ (copyreg.__newobj__ /
__newobj_ex__, which pickling writes as NEWOBJ / NEWOBJ_EX), "call" for other
callables (datetime, Decimal, OrderedDict, ...). The state and its (dict, slots) pair
are described without identity: they are fresh on every __reduce_ex__ call.
"""

import copyreg
import io
import json
import pickle
import struct
import sys
import types

try:  # the extra classes of the test corpus, so that its pickles load here too
    import pickle_corpus  # noqa: F401
except ImportError:
    pass

GLOBAL_TYPES = (type, types.FunctionType, types.BuiltinFunctionType)


class Describer:
    def __init__(self):
        self.ids = {}
        self.alive = []  # keeps described objects alive so that their ids stay unique

    def describe(self, x):
        t = type(x)
        if x is None:
            return {"t": "none"}
        if t is bool:
            return {"t": "bool", "v": x}
        if t is int:
            return {"t": "int", "v": format(x, "x")}
        if t is float:
            return {"t": "float", "v": struct.pack(">d", x).hex()}
        if t is str:
            return {"t": "str", "v": x.encode("utf-8", "surrogatepass").hex()}
        if t is bytes:
            return {"t": "bytes", "v": x.hex()}
        if isinstance(x, GLOBAL_TYPES):
            return {"t": "global", "module": x.__module__, "name": x.__qualname__}
        if (t is tuple or t is frozenset) and len(x) == 0:
            return {"t": t.__name__, "items": []}
        if id(x) in self.ids:
            return {"ref": self.ids[id(x)]}
        node = {"id": len(self.ids)}
        self.ids[id(x)] = node["id"]
        self.alive.append(x)
        self.fill(node, x)
        return node

    def fill(self, node, x):
        t = type(x)
        if t is bytearray:
            node.update(t="bytearray", v=x.hex())
        elif t is tuple or t is list:
            node.update(t=t.__name__, items=[self.describe(i) for i in x])
        elif t is dict:
            node.update(t="dict", items=self.pairs(x.items()))
        elif t is set or t is frozenset:
            node.update(t=t.__name__, items=[self.describe(i) for i in sorted(x, key=shape)])
        else:
            self.fill_object(node, x)

    def pairs(self, items):
        out = []
        for k, v in items:
            out.append([self.describe(k), self.describe(v)])
        return out

    def fill_object(self, node, x):
        r = x.__reduce_ex__(4)
        if isinstance(r, str):
            raise TypeError("cannot describe %r: its reduce value is a name" % (x,))
        func, args = r[0], r[1]
        state = r[2] if len(r) > 2 else None
        listitems = r[3] if len(r) > 3 else None
        dictitems = r[4] if len(r) > 4 else None
        node["t"] = "object"
        if func is copyreg.__newobj__:
            node["new"] = self.describe(args[0])
            node["args"] = [self.describe(a) for a in args[1:]]
        elif func is copyreg.__newobj_ex__:
            cls, a, kw = args
            node["new"] = self.describe(cls)
            node["args"] = [self.describe(i) for i in a]
            node["kwargs"] = self.pairs(kw.items())
        else:
            node["call"] = self.describe(func)
            node["args"] = [self.describe(a) for a in args]
        listitems = list(listitems) if listitems is not None else []
        if listitems:
            node["listitems"] = [self.describe(i) for i in listitems]
        dictitems = list(dictitems) if dictitems is not None else []
        if dictitems:
            node["dictitems"] = self.pairs(dictitems)
        if state is not None:
            node["state"] = self.state(state)

    def state(self, s):
        if type(s) is dict:
            return {"t": "dict", "items": self.pairs(s.items())}
        if type(s) is tuple and len(s) == 2 and (s[0] is None or type(s[0]) is dict) and type(s[1]) is dict:
            return {"t": "tuple", "items": [self.state(s[0]) if s[0] is not None else {"t": "none"}, self.state(s[1])]}
        return self.describe(s)


def shape(x):
    """The description of x on its own, as a sort key for set items."""
    return dumps(Describer().describe(x))


def dumps(node):
    return json.dumps(node, sort_keys=True, separators=(",", ":"))


def describe(x):
    """The description (a JSON-ready dict) of the object graph rooted at x."""
    return Describer().describe(x)


SAFE_MODULES = {"copyreg", "_codecs", "collections", "datetime", "decimal", "myapp.models",
                "session3.Session", "session3.DictSession", "quixote.session"}
SAFE_BUILTINS = {"set", "frozenset", "bytearray", "bytes", "getattr", "list", "dict", "object",
                 "int", "str", "tuple", "len"}


class Forbidden(Exception):
    pass


class SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module in SAFE_MODULES or (module == "builtins" and name in SAFE_BUILTINS):
            return super().find_class(module, name)
        raise Forbidden("%s.%s" % (module, name))


def describe_pickle(data, safe=False):
    try:
        if safe:
            value = SafeUnpickler(io.BytesIO(data)).load()
        else:
            value = pickle.load(io.BytesIO(data))
    except Forbidden as e:
        return {"forbidden": str(e)}
    except Exception as e:  # reported, not raised: the caller compares errors too
        return {"error": "%s: %s" % (type(e).__name__, e)}
    try:
        return describe(value)
    except Exception as e:
        return {"undescribable": "%s: %s" % (type(e).__name__, e)}


def main(argv):
    sys.setrecursionlimit(20000)
    if len(argv) > 1 and argv[1] == "--hex":
        safe = "--safe" in argv[2:]
        if safe:
            # A mutated LONG_BINPUT index makes CPython grow its memo array to that
            # size: let the allocation fail with MemoryError instead of the machine.
            import resource
            resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
        for line in sys.stdin:
            line = line.strip()
            print(dumps(describe_pickle(bytes.fromhex(line), safe)), flush=False)
        return 0
    inputs = []
    if len(argv) > 1:
        for path in argv[1:]:
            with open(path, "rb") as f:
                inputs.append(f.read())
    else:
        inputs.append(sys.stdin.buffer.read())
    status = 0
    for data in inputs:
        d = describe_pickle(data)
        if "error" in d:
            status = 1
        print(dumps(d))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
