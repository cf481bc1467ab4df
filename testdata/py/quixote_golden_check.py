"""Checks session files written by Go against what CPython expects.

usage: quixote_golden_check.py CASES.json

CASES.json is a list of cases; each is one of

  {"name": ..., "mode": "change", "original": PATH, "result": PATH, "change": CHANGE}
      RESULT must load to an object of the same class as ORIGINAL with every
      attribute equal -- same values, same types, recursively, same order --
      except for exactly the change described:
        {"attr": NAME, "expect": EXPR}        attribute NAME now equals EXPR
        {"attr": NAME, "added": true, "expect": EXPR}   NAME is new, at the end
        {"attr": NAME, "deleted": true}       NAME is gone
        {"item": KEY, "expect": EXPR}         DictSession key KEY now equals EXPR
        {"attr": NAME, "check": EXPR}         EXPR(value) is true (e.g. new tokens)
      EXPR is a Python expression (Decimal, datetime, time available); the value
      compared must also have EXPR's type.

  {"name": ..., "mode": "new", "result": PATH, "class": DOTTED, "remote_address": A}
      RESULT must look exactly like a session that CPython's DOTTED class made
      with Session.__init__ and then got its id and user: same class, same
      attribute names in the same order, same types; times are floats and equal.

Every case may add "protocol": N (default 4), the pickle protocol RESULT must have.
Protocol 5 files are read with session4's DirectorySessionStore.load_session. A
session4 case (session4.Session4Session.Session4) adds "last_values", what Go's save
must have left in _last_values, which is then left out of the comparison:
  "exact"   what session4's preserve_current_values would store: is_dirty() is False
  "kept"    the original's _last_values, unchanged
  "reset"   '' (Python will find the session dirty and save it)

Prints "ok NAME" or "FAIL NAME: reason" per case and exits 1 if any failed.
"""

import datetime
import decimal
import importlib
import json
import math
import os
import pickle
import sys
import time

from session4.DirectorySessionStore import DirectorySessionStore as Session4Store

import qxrequest

NAMESPACE = {"Decimal": decimal.Decimal, "datetime": datetime, "time": time}


class Mismatch(Exception):
    pass


def load(path, protocol=4):
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(b"\x80" + bytes([protocol])):
        raise Mismatch("%s is not a protocol %d pickle" % (path, protocol))
    if protocol == 5:
        return Session4Store(os.path.dirname(path)).load_session(os.path.basename(path))
    return pickle.loads(data)


def check_last_values(case, got, orig, want, have):
    """Checks and then drops _last_values (see the module doc)."""
    how = case.get("last_values")
    if how is None:
        return
    last = have.pop("_last_values", None)
    want.pop("_last_values", None)
    if how == "exact":
        if got.is_dirty():
            raise Mismatch("is_dirty() after Go's save: _last_values %r" % last)
    elif how == "kept":
        if last != orig._last_values:
            raise Mismatch("_last_values %r, want the original %r" % (last, orig._last_values))
    elif how == "reset":
        if last != "" or not got.is_dirty():
            raise Mismatch("_last_values %r, want ''" % last)
    else:
        raise Mismatch("bad case: last_values %r" % how)


def same(a, b, where):
    """Deep equality that also requires identical types and dict order."""
    if type(a) is not type(b):
        raise Mismatch("%s: type %s != %s" % (where, type(a).__name__, type(b).__name__))
    if isinstance(a, float):
        if not (a == b or (math.isnan(a) and math.isnan(b))):
            raise Mismatch("%s: %r != %r" % (where, a, b))
    elif isinstance(a, (list, tuple)):
        if len(a) != len(b):
            raise Mismatch("%s: length %d != %d" % (where, len(a), len(b)))
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, "%s[%d]" % (where, i))
    elif isinstance(a, dict):
        if list(a) != list(b):
            raise Mismatch("%s: keys %r != %r" % (where, list(a), list(b)))
        for k in a:
            same(a[k], b[k], "%s[%r]" % (where, k))
    elif isinstance(a, (set, frozenset)):
        if {(type(x), x) for x in a} != {(type(x), x) for x in b}:
            raise Mismatch("%s: %r != %r" % (where, a, b))
    elif hasattr(a, "__dict__") and not isinstance(a, type):
        same(vars(a), vars(b), where + ".__dict__")
    elif a != b:
        raise Mismatch("%s: %r != %r" % (where, a, b))


def check_change(case):
    protocol = case.get("protocol", 4)
    orig = load(case["original"], protocol)
    got = load(case["result"], protocol)
    if type(orig) is not type(got):
        raise Mismatch("class %s != %s" % (type(got), type(orig)))
    change = case["change"]
    want = dict(vars(orig))
    if "item" in change:
        data = dict(want["data"])
        data[change["item"]] = eval(change["expect"], NAMESPACE)
        want["data"] = data
    elif change.get("deleted"):
        if change["attr"] not in want:
            raise Mismatch("bad case: %s is not in the original" % change["attr"])
        del want[change["attr"]]
    elif "check" in change:
        name = change["attr"]
        value = vars(got).get(name)
        if not eval(change["check"], NAMESPACE)(value):
            raise Mismatch("%s = %r fails %s" % (name, value, change["check"]))
        want[name] = value
    else:
        name = change["attr"]
        if change.get("added") and name in want:
            raise Mismatch("bad case: %s is already in the original" % name)
        if not change.get("added") and name not in want:
            raise Mismatch("bad case: %s is not in the original" % name)
        want[name] = eval(change["expect"], NAMESPACE)
    have = dict(vars(got))
    check_last_values(case, got, orig, want, have)
    same(want, have, "session")


def check_new(case):
    got = load(case["result"], case.get("protocol", 4))
    module, _, name = case["class"].rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    if type(got) is not cls:
        raise Mismatch("class %s != %s" % (type(got), cls))
    ref = qxrequest.new_session(cls, None, case["remote_address"])
    # A stored session has its id, and usually a user: compare the rest to CPython's.
    ref.id, ref.user = got.id, got.user
    g, r = vars(got), vars(ref)
    if list(g) != list(r):
        raise Mismatch("attributes %r != %r" % (list(g), list(r)))
    for k in r:
        if type(g[k]) is not type(r[k]):
            raise Mismatch("%s: type %s != %s" % (k, type(g[k]).__name__, type(r[k]).__name__))
    if g["_creation_time"] != g["_access_time"]:
        raise Mismatch("creation time %r != access time %r" % (g["_creation_time"], g["_access_time"]))
    if abs(g["_creation_time"] - time.time()) > 600:
        raise Mismatch("creation time %r is not now" % g["_creation_time"])
    # The methods of the class work on it as on its own instances.
    if case.get("last_values") == "exact" and got.is_dirty():
        raise Mismatch("is_dirty() after Go's save: _last_values %r" % got._last_values)
    got.has_info()
    got._set_access_time(1)
    token = got.create_form_token()
    if not got.has_form_token(token):
        raise Mismatch("create_form_token did not work")


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    failed = 0
    for case in cases:
        try:
            if case["mode"] == "change":
                check_change(case)
            elif case["mode"] == "new":
                check_new(case)
            else:
                raise Mismatch("unknown mode %r" % case["mode"])
            print("ok", case["name"])
        except Exception as exc:  # a broken file must be reported, not crash the run
            failed += 1
            print("FAIL %s: %s: %s" % (case["name"], type(exc).__name__, exc))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
