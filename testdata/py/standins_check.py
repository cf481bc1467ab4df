"""Loads every session3 fixture with the stand-in classes and prints each class."""

import os
import pickle
import sys

here = os.path.dirname(os.path.abspath(__file__))
fixtures = os.path.join(os.path.dirname(here), "session3")
for name in sorted(os.listdir(fixtures)):
    with open(os.path.join(fixtures, name), "rb") as f:
        obj = pickle.load(f)
    cls = type(obj)
    print(name, cls.__module__ + "." + cls.__qualname__)
    if not hasattr(obj, "id") or not hasattr(obj, "_creation_time"):
        sys.exit("%s: not a session" % name)
