#!/usr/bin/env python3
"""Checks a session file changed by `scgi-gateway sessions set` against the original.

usage: gateway_admin_check.py ORIGINAL CHANGED NAME JSON

Both files are loaded with CPython's pickle (the installed session3 and Quixote, myapp on the
path). The changed session must be of the same class, have attribute NAME equal to
the JSON value (as json.loads reads it), and every other attribute must be equal to
the original's, pickle for pickle (pickle.dumps of each attribute, protocol 4), in the
same order, with NAME last if it is new. Prints "ok", or the differences and exits 1.
"""

import json
import pickle
import sys


def main():
    original_path, changed_path, name, value = sys.argv[1:5]
    with open(original_path, "rb") as f:
        old = pickle.load(f)
    with open(changed_path, "rb") as f:
        new = pickle.load(f)
    problems = []
    if type(old) is not type(new):
        problems.append("class %r became %r" % (type(old), type(new)))
    want = json.loads(value)
    if getattr(new, name, object()) != want or type(getattr(new, name, None)) is not type(want):
        problems.append("%s is %r, want %r" % (name, getattr(new, name, "<missing>"), want))
    old_names = [k for k in old.__dict__ if k != name]
    new_names = [k for k in new.__dict__ if k != name]
    if old_names != new_names:
        problems.append("attributes %r became %r" % (old_names, new_names))
    if name not in old.__dict__ and list(new.__dict__)[-1] != name:
        problems.append("new attribute %s is not last" % name)
    for k in old_names:
        a, b = old.__dict__[k], new.__dict__.get(k)
        if pickle.dumps(a, 4) != pickle.dumps(b, 4):
            problems.append("%s changed: %r -> %r" % (k, a, b))
    if problems:
        print("\n".join(problems))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
