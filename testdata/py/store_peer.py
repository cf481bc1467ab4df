"""CPython peer for the Go store's interop tests: session3's DirectorySessionStore at work.

Every command uses the real session3 (session3.store.DirectorySessionStore), or its
exact steps where a test needs to watch them. Run with testdata/py on PYTHONPATH and
PYTHONHASHSEED=0 (so that re-pickled sets come out byte for byte the same in every
process).

  read DIR ID SECONDS EXPECTDIR    load in a loop with session3's steps, counting what
                                   it sees; prints one JSON line (QXBRIDGE_STORE_TAILS=1:
                                   a file that starts with an expected session is whole)
  write DIR ID SECONDS PAUSE EXPECTDIR SRC...
                                   save the sessions in the SRC pickles (plus, unless
                                   QXBRIDGE_STORE_PAGE_WRITES is set, a 6 KB and a 150 KB
                                   one) in turn, PAUSE seconds apart (0: back to
                                   back); first writes the exact bytes of each save into
                                   EXPECTDIR and prints "ready", then waits for a line
                                   "start" on stdin: SECONDS count from there, so a
                                   slow start of other processes eats none of them
  contend DIR ID SECONDS           load_session + save_session in a loop (what Quixote
                                   does on each request) for SECONDS, or until SIGTERM
                                   if 0; prints "ready", then one JSON line
  hold DIR ID sh|ex                open and flock the file; prints "locked", then obeys
                                   stdin lines "write HEX" (truncate and write into
                                   the locked file) and "release"
  save DIR ID SRC                  prints "saving", saves SRC's session (its id set to
                                   ID), prints "saved SHA256-OF-THE-BYTES"
  slowsave DIR ID SRC SECONDS      session3's save with a pause between the truncating
                                   open and the lock: prints "truncated", "saved SHA256"
  load DIR ID                      load_session; prints "None" or "CLASS SHA256"
  sweep DIR MINUTES                delete_old_sessions; prints "DELETED REMAINING"
  sweeploop DIR SECONDS session3|liststat
                                   prints "ready", then for SECONDS runs, again and
                                   again, session3's delete_old_sessions(10**9) (its
                                   exact loop: listdir, then stat each name; nothing is
                                   old enough to delete) or only the listdir and stats;
                                   prints one JSON line: sweeps, raised (sweeps that
                                   raised FileNotFoundError), other (other exceptions),
                                   temps (liststat only: listings that held a name
                                   starting with ".qxbridge-tmp-", counted when the
                                   stats did not raise)
"""

import fcntl
import hashlib
import io
import json
import os
import pickle
import signal
import sys
import time

if os.environ.get("QXBRIDGE_STORE_LOCKS") == "posix":
    # The Go store's tests built with -tags nfslocks: locks as the Linux NFS client
    # takes them for flock(2), whole-file POSIX record locks.
    fcntl.flock = fcntl.lockf

from session3.Session import Session
from session3.store.DirectorySessionStore import DirectorySessionStore

import qxrequest


def sha(data):
    return hashlib.sha256(data).hexdigest()


def expected_set(expectdir):
    out = set()
    for name in os.listdir(expectdir):
        with open(os.path.join(expectdir, name), "rb") as f:
            out.add(f.read())
    return out


def read(directory, sid, seconds, expectdir):
    """session3's load_session, step by step, counting instead of sleeping."""
    expected = expected_set(expectdir)
    # Go's in-place saves (WithInPlace) leave the old bytes after a shorter
    # session's STOP: with QXBRIDGE_STORE_TAILS set, a file that starts with an
    # expected session is whole.
    tails = bool(os.environ.get("QXBRIDGE_STORE_TAILS"))
    store = DirectorySessionStore(directory)
    path = os.path.join(store.directory, sid)
    counts = dict(loads=0, empty=0, eof=0, torn=0, unpicklable=0, missing=0, store_loads=0)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            f = open(path, "rb")
        except OSError:
            counts["missing"] += 1
            continue
        with f:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)
            if os.stat(f.fileno()).st_size == 0:
                counts["empty"] += 1
            else:
                data = f.read()
                try:
                    pickle.loads(data)
                except EOFError:
                    # Cut short: session3's reader tries again.
                    counts["eof"] += 1
                    data = None
                except Exception:
                    counts["unpicklable"] += 1
                if data is not None and data not in expected and not (
                        tails and any(data.startswith(e) for e in expected)):
                    counts["torn"] += 1
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        counts["loads"] += 1
        if counts["loads"] % 16 == 0:
            # session3's own load_session too (it would loop on an empty file).
            if store.load_session(sid) is None:
                counts["missing"] += 1
            counts["store_loads"] += 1
    print(json.dumps(counts), flush=True)


def big_session(sid, n):
    s = qxrequest.new_session(Session, sid, "127.0.0.1")
    s.user = "big"
    s.blob = ["item %06d" % i for i in range(n)]
    return s


def write(directory, sid, seconds, pause, expectdir, sources):
    store = DirectorySessionStore(directory)
    sessions = []
    for src in sources:
        with open(src, "rb") as f:
            s = pickle.load(f)
        s.id = sid
        sessions.append(s)
    if not os.environ.get("QXBRIDGE_STORE_PAGE_WRITES"):
        # Larger than a page: the writer's last write(2) comes after its unlock and
        # the file grows a page at a time, so session3's own load_session can read
        # a frame cut short and raise UnpicklingError.
        sessions.append(big_session(sid, 400))     # one frame, larger than a page
        sessions.append(big_session(sid, 10000))   # several frames
    for i, s in enumerate(sessions):
        bio = io.BytesIO()
        pickle.dump(s, bio, 4)  # the same pickler path as dump() into the file
        with open(os.path.join(expectdir, "py%d" % i), "wb") as f:
            f.write(bio.getvalue())
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "start":
        sys.exit("write: expected a line \"start\" on stdin")
    saves = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        store.save_session(sessions[saves % len(sessions)])
        saves += 1
        if pause:
            time.sleep(pause)
    print(json.dumps(dict(saves=saves)), flush=True)


def contend(directory, sid, seconds):
    store = DirectorySessionStore(directory)
    counts = dict(loads=0, saves=0, errors=0, missing=0)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    print("ready", flush=True)
    deadline = time.monotonic() + (seconds or 1e9)
    start = time.monotonic()
    while not stop and time.monotonic() < deadline:
        try:
            s = store.load_session(sid)
            counts["loads"] += 1
            if s is None:
                counts["missing"] += 1
                continue
            if s.id != sid or not s.has_info():
                counts["errors"] += 1
                continue
            store.save_session(s)
            counts["saves"] += 1
        except Exception as e:  # noqa: BLE001 - every failure counts
            counts["errors"] += 1
            print("error: %r" % (e,), file=sys.stderr, flush=True)
    counts["seconds"] = time.monotonic() - start
    print(json.dumps(counts), flush=True)


def hold(directory, sid, mode):
    path = os.path.join(os.path.abspath(directory), sid)
    f = open(path, "r+b")
    fcntl.flock(f.fileno(), fcntl.LOCK_SH if mode == "sh" else fcntl.LOCK_EX)
    print("locked", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "write":
            f.seek(0)
            f.truncate()
            f.write(bytes.fromhex(cmd[1]))
            f.flush()
            print("written", flush=True)
        elif cmd[0] == "release":
            break
    fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    f.close()
    print("released", flush=True)


def load_source(sid, src):
    with open(src, "rb") as f:
        s = pickle.load(f)
    s.id = sid
    return s


def dumped_sha(s):
    bio = io.BytesIO()
    pickle.dump(s, bio, 4)
    return sha(bio.getvalue())


def save(directory, sid, src):
    store = DirectorySessionStore(directory)
    s = load_source(sid, src)
    print("saving", flush=True)
    store.save_session(s)
    print("saved", dumped_sha(s), flush=True)


def slowsave(directory, sid, src, seconds):
    store = DirectorySessionStore(directory)
    s = load_source(sid, src)
    f = open(store._make_filename(sid), "wb")
    print("truncated", flush=True)
    time.sleep(seconds)
    fcntl.flock(f.fileno(), fcntl.LOCK_EX)
    try:
        pickle.dump(s, f, 4)
    finally:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        f.close()
    print("saved", dumped_sha(s), flush=True)


def load(directory, sid):
    store = DirectorySessionStore(directory)
    s = store.load_session(sid)
    if s is None:
        print("None", flush=True)
        return
    print(type(s).__module__ + "." + type(s).__qualname__, sha(pickle.dumps(s, 4)), flush=True)


def sweep(directory, minutes):
    store = DirectorySessionStore(directory)
    print("%d %d" % store.delete_old_sessions(minutes), flush=True)


def sweeploop(directory, seconds, kind):
    store = DirectorySessionStore(directory)
    counts = dict(sweeps=0, raised=0, other=0, temps=0)

    def liststat():
        names = os.listdir(store.directory)
        for name in names:
            os.stat(os.path.join(store.directory, name))
        # looked at only after the stats, so as not to widen the race
        if any(n.startswith(".qxbridge-tmp-") for n in names):
            counts["temps"] += 1

    sweep_once = liststat if kind == "liststat" else lambda: store.delete_old_sessions(10**9)
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            sweep_once()
        except FileNotFoundError:
            counts["raised"] += 1
        except Exception as e:  # noqa: BLE001 - every failure counts
            counts["other"] += 1
            print("error: %r" % (e,), file=sys.stderr, flush=True)
        counts["sweeps"] += 1
    print(json.dumps(counts), flush=True)


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "read":
        read(args[0], args[1], float(args[2]), args[3])
    elif cmd == "write":
        write(args[0], args[1], float(args[2]), float(args[3]), args[4], args[5:])
    elif cmd == "contend":
        contend(args[0], args[1], float(args[2]))
    elif cmd == "hold":
        hold(args[0], args[1], args[2])
    elif cmd == "save":
        save(args[0], args[1], args[2])
    elif cmd == "slowsave":
        slowsave(args[0], args[1], args[2], float(args[3]))
    elif cmd == "load":
        load(args[0], args[1])
    elif cmd == "sweep":
        sweep(args[0], float(args[1]))
    elif cmd == "sweeploop":
        sweeploop(args[0], float(args[1]), args[2])
    else:
        sys.exit("unknown command %r" % cmd)


if __name__ == "__main__":
    main(sys.argv)
