"""CPython's side of the decoder's cost tests and benchmarks.

    python3 pickle_hostile.py make KIND N FILE
        Write, as session3 saves a session (pickle.dump(obj, f, 4)), a session dict
        holding N values of one kind: "dicts" (empty dicts, one memo entry each),
        "containers" (a small dict, list, tuple and set each), "tuple" (one tuple of N
        ints) or "nested" (lists nested N deep, each with 999 ints before the next
        list, so that the unpickling stack holds 1000 values per level). Prints the
        number of values the session holds, as "len" counts them.
    python3 pickle_hostile.py measure FILE...
        For each file, in a fresh process: the CPU time of pickle.loads (best of 3)
        and the peak resident memory of a process that reads and loads it, minus that
        of one that only reads it. Prints JSON {FILE: {"size", "loads_s", "peak_kb"}}.
    python3 pickle_hostile.py cputime FILE N
        The CPU time of N pickle.loads of FILE, in seconds.
"""

import json
import pickle
import resource
import subprocess
import sys
import time


def make(kind, n):
    if kind == "dicts":
        items = [{} for _ in range(n)]
    elif kind == "containers":
        items = [{"i": i, "l": [i], "t": (i, -i), "s": {i}} for i in range(n)]
    elif kind == "tuple":
        items = tuple(range(n))
    elif kind == "nested":
        items = []
        for _ in range(n):
            items = list(range(999)) + [items]
    else:
        raise SystemExit("unknown kind " + kind)
    return {"items": items}


def child(path, load):
    with open(path, "rb") as f:
        data = f.read()
    best = None
    if load:
        for _ in range(3):
            t = time.process_time()
            obj = pickle.loads(data)
            best = min(best or 1e9, time.process_time() - t)
            del obj
    print(json.dumps({"loads_s": best, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def main():
    if sys.argv[1] == "make":
        obj = make(sys.argv[2], int(sys.argv[3]))
        with open(sys.argv[4], "wb") as f:
            pickle.dump(obj, f, 4)
        print(len(obj["items"]))
    elif sys.argv[1] == "cputime":
        with open(sys.argv[2], "rb") as f:
            data = f.read()
        n = int(sys.argv[3])
        t = time.process_time()
        for _ in range(n):
            pickle.loads(data)
        print(time.process_time() - t)
    elif sys.argv[1] == "child":
        child(sys.argv[2], sys.argv[3] == "1")
    elif sys.argv[1] == "measure":
        out = {}
        for path in sys.argv[2:]:
            runs = []
            for load in ("0", "1"):
                p = subprocess.run([sys.executable, __file__, "child", path, load], capture_output=True, check=True, text=True)
                runs.append(json.loads(p.stdout))
            with open(path, "rb") as f:
                size = len(f.read())
            out[path] = {"size": size, "loads_s": runs[1]["loads_s"], "peak_kb": runs[1]["peak_kb"] - runs[0]["peak_kb"]}
        print(json.dumps(out))


if __name__ == "__main__":
    main()
