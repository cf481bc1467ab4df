"""Times session3's per-request session steps in CPython.

usage: quixote_bench.py DIR ID N

Runs N rounds of what session3's SessionManager does with a session file on each
request -- store.load_session(id), session._set_access_time(1), then
store.save_session(session) -- with session3's DirectorySessionStore on DIR,
after 10% warm-up rounds, and prints one JSON line: {"n": N, "ns_per_op": ...}.
"""

import json
import sys
import time

from session3.store.DirectorySessionStore import DirectorySessionStore


def main():
    directory, session_id, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = DirectorySessionStore(directory)

    def round_trip():
        session = store.load_session(session_id)
        if session is None:
            sys.exit("no session %s in %s" % (session_id, directory))
        session._set_access_time(1)
        store.save_session(session)

    for _ in range(max(1, n // 10)):
        round_trip()
    start = time.perf_counter_ns()
    for _ in range(n):
        round_trip()
    elapsed = time.perf_counter_ns() - start
    print(json.dumps({"n": n, "ns_per_op": elapsed / n}))


if __name__ == "__main__":
    main()
