"""CPython side of the PostgreSQL store benchmark (store/pgstore BenchmarkVsPython).

  pgstore_bench.py OP SECONDS DSN TABLE SRC

stores the session pickle SRC in TABLE under the session's own id, then runs OP for at
least SECONDS (after a warm-up) and prints the mean nanoseconds per run:

  bytes-loadsave     the store's load and save of the bytes (the Go store's work)
  session3-loadsave  session3 API load_session and save_session, with (un)pickling
"""

import pickle
import sys
import time

from qxbridge_pgstore.session3_store import PostgresSessionStore


def main(op, seconds, dsn, table, src):
    with open(src, "rb") as f:
        data = f.read()
    store = PostgresSessionStore(dsn, table=table)
    sid = pickle.loads(data).id
    store.db.save(sid, data)

    def bytes_loadsave():
        store.db.save(sid, store.db.load(sid))

    def session3_loadsave():
        store.save_session(store.load_session(sid))

    fn = {"bytes-loadsave": bytes_loadsave, "session3-loadsave": session3_loadsave}[op]
    for _ in range(20):
        fn()
    n, start = 0, time.perf_counter_ns()
    deadline = start + seconds * 1e9
    while True:
        fn()
        n += 1
        now = time.perf_counter_ns()
        if now >= deadline:
            break
    print((now - start) / n)
    store.close()


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), *sys.argv[3:])
