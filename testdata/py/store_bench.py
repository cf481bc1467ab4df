"""CPython side of the store benchmarks: session3's file work on a session file.

  store_bench.py OP N DIR SRC

copies the session pickle SRC into DIR under the session's own id, then times N runs
of OP and prints the mean nanoseconds per run. The file-* operations are session3's
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

from session3.store.DirectorySessionStore import DirectorySessionStore


def main(op, n, directory, src):
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
    for _ in range(min(n, 100)):
        fn()
    start = time.perf_counter_ns()
    for _ in range(n):
        fn()
    elapsed = time.perf_counter_ns() - start
    with open(path, "rb") as f:
        if f.read() != data:
            raise SystemExit("session file changed")
    print(elapsed // n)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
