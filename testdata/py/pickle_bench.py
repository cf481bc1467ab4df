"""CPython's side of the pickle benchmarks.

    python3 pickle_bench.py make FILE
        Write the ~100 KB benchmark session (pickle_encode_check.big_session: a
        session3 Session with a 1000-item cart and a 500-entry history) the way
        session3 saves a session: pickle.dump(session, f, 4).
    python3 pickle_bench.py time FILE...
        Time CPython's C pickle on each file: pickle.loads(data) and
        pickle.dumps(obj, 4) of the loaded object, best of 5 timeit runs of at
        least 0.2 s each. Prints one JSON object: {FILE: {"size", "loads_ns",
        "dumps_ns", "same"}}, where "same" says whether dumps gives back the file's
        bytes.
"""

import json
import pickle
import sys
import timeit


def best_ns(fn):
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    number = max(number, 1)
    while timer.timeit(number) < 0.2:
        number *= 2
    return min(timer.repeat(repeat=5, number=number)) / number * 1e9


def main():
    if sys.argv[1] == "make":
        from pickle_encode_check import big_session

        with open(sys.argv[2], "wb") as f:
            pickle.dump(big_session(), f, 4)
        return
    out = {}
    for name in sys.argv[2:]:
        with open(name, "rb") as f:
            data = f.read()
        obj = pickle.loads(data)
        out[name] = {
            "size": len(data),
            "loads_ns": best_ns(lambda: pickle.loads(data)),
            "dumps_ns": best_ns(lambda: pickle.dumps(obj, 4)),
            "same": pickle.dumps(obj, 4) == data,
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
