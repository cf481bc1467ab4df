"""CPython side of the store benchmarks: session3's file work on a session file.

  store_bench.py OP SECONDS DIR SRC

copies the session pickle SRC into DIR under the session's own id, then runs OP for
at least SECONDS (after a warm-up) and prints the mean nanoseconds per run. The file-* operations are session3's
steps with the bytes only, the session3-* ones its real methods (with pickling):

  file-load       open(path, 'rb'), flock LOCK_SH, fstat size, read, LOCK_UN, close
  file-save       open(path, 'wb'), flock LOCK_EX, write, LOCK_UN, close
  file-loadsave   both
  session3-load / session3-save / session3-loadsave
                  DirectorySessionStore.load_session / save_session / both
"""

import fcntl
import os
import pickle
import sys
import time

if os.environ.get("QXBRIDGE_STORE_LOCKS") == "posix":
    # The Go store's tests built with -tags nfslocks: locks as the Linux NFS client
    # takes them for flock(2), whole-file POSIX record locks.
    fcntl.flock = fcntl.lockf

from session3.store.DirectorySessionStore import DirectorySessionStore


def main(op, seconds, directory, src):
    with open(src, "rb") as f:
        data = f.read()
    session = pickle.loads(data)
    store = DirectorySessionStore(directory)
    sid = session.id
    path = store._make_filename(sid)
    with open(path, "wb") as f:
        f.write(data)

    def file_load():
        f = open(path, "rb")
        fcntl.flock(f.fileno(), fcntl.LOCK_SH)
        if os.stat(f.fileno()).st_size == 0:
            raise SystemExit("empty session file")
        got = f.read()
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        f.close()
        return got

    def file_save():
        f = open(path, "wb")
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        f.write(data)
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        f.close()

    def file_loadsave():
        file_load()
        file_save()

    def s3_load():
        return store.load_session(sid)

    def s3_save():
        store.save_session(session)

    def s3_loadsave():
        store.save_session(store.load_session(sid))

    fn = {
        "file-load": file_load,
        "file-save": file_save,
        "file-loadsave": file_loadsave,
        "session3-load": s3_load,
        "session3-save": s3_save,
        "session3-loadsave": s3_loadsave,
    }[op]
    for _ in range(20):
        fn()
    runs = 0
    batch = 10
    start = time.perf_counter_ns()
    while True:
        for _ in range(batch):
            fn()
        runs += batch
        elapsed = time.perf_counter_ns() - start
        if elapsed >= seconds * 1e9:
            break
        batch = min(batch * 2, 1000)
    # The file must hold what the last run wrote: the bytes (file-*), or a session of
    # the same class and id (session3-*).
    with open(path, "rb") as f:
        got = f.read()
    if op.startswith("file-"):
        ok = got == data
    else:
        s = pickle.loads(got)
        ok = type(s) is type(session) and s.id == sid
    if not ok:
        raise SystemExit("session file changed")
    print(elapsed // runs)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4])
