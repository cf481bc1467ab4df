"""Writes the session4 golden fixtures of testdata/session4/ with the real session4.

usage: session4_fixtures.py OUTDIR

Each session is a session4.Session4Session.Session4 made by its own __init__ under a
Quixote request (qxrequest), given fixed ids, times and tokens so that the files are
reproducible, and saved by session4's DirectorySessionStore.save_session: a protocol 5
pickle (pickle.HIGHEST_PROTOCOL) whose _last_values the store set with
preserve_current_values() just before pickling. The store's file (named by the
session id) is copied to OUTDIR/NAME.pkl. testdata/README.md describes each file.
"""

import datetime
import decimal
import os
import shutil
import sys
import tempfile

from session4.DirectorySessionStore import DirectorySessionStore
from session4.Session4Session import Session4

import qxrequest

CREATED = 1795303038.0725188


def make(sid, user, **attrs):
    s = qxrequest.new_session(Session4, sid, "203.0.113.7")
    s._creation_time = s._access_time = CREATED
    s.set_user(user)
    for name, value in attrs.items():
        setattr(s, name, value)
    return s


def sessions():
    login = make("Wl8cT3mBqjYh0n2kdE4sAw", "alice", counter=0)

    tokens = make("p7RkQ0yZ3uV1cX9aB2nM4w", "bob", counter=3,
                  cart={"sku-1": 2, "sku-2": 1}, note="caf\u00e9 \u2603 \"quoted\" 'single'",
                  ratio=0.1, big=10**20, flags=[True, None, 1e16, -0.0], pair=("a", b"\x00\xff"))
    tokens._form_tokens = ["epYIEYFdJ-ka1_L1fwoZRw", "vBRv0fYGV6q389utr30XIg"]
    tokens._csrf_token = "Qm9vdHN0cmFwQ1NSRnRva2Vu"

    # Values whose repr Go does not rebuild (a Decimal, a datetime).
    rich = make("Zx3vN8qL1wE5rT7yU9iO0p", "carol",
                total=decimal.Decimal("12.50"), last_seen=datetime.datetime(2026, 11, 21, 9, 30))

    return [("session4-login", login), ("session4-tokens", tokens), ("session4-rich", rich)]


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = DirectorySessionStore(tmp)
        for name, session in sessions():
            store.save_session(session)
            shutil.copyfile(os.path.join(tmp, session.id), os.path.join(outdir, name + ".pkl"))
            loaded = store.load_session(session.id)
            if loaded.is_dirty():
                sys.exit("%s: dirty right after its save" % name)
            print(name, session.id, loaded._last_values)


if __name__ == "__main__":
    main(sys.argv[1])
