#!/usr/bin/env python3
"""Times Quixote 3's parse_cookies on Cookie headers, for the gateway's shield tests.

Each stdin line is a JSON string holding a header's bytes in base64. For each, one
JSON line is printed: {"cpu": SECONDS, "timeout": BOOL, "cookies": N} where SECONDS is
the CPU time quixote.http_request.parse_cookies took on the header decoded as Latin-1
(as python-scgi decodes it) plus, when the bytes are valid UTF-8, decoded as UTF-8,
and N the number of cookies it read from the Latin-1 text. Each call is stopped after
LIMIT seconds of CPU time (the first argument, default 1): its regular expression
engine checks for signals while it backtracks, so an interval timer on the process's
CPU time interrupts it, and "timeout" is then true.
"""

import base64
import json
import signal
import sys
import time

from quixote.http_request import parse_cookies


class Timeout(Exception):
    pass


def on_timer(signum, frame):
    raise Timeout()


def timed(text, limit):
    """Returns (CPU seconds, timed out, cookies read)."""
    start = time.process_time()
    signal.setitimer(signal.ITIMER_VIRTUAL, limit)
    try:
        n = len(parse_cookies(text))
        out = False
    except Timeout:
        n, out = 0, True
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
    return time.process_time() - start, out, n


def main():
    limit = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    signal.signal(signal.SIGVTALRM, on_timer)
    for line in sys.stdin:
        raw = base64.b64decode(json.loads(line))
        cpu, out, n = timed(raw.decode("latin-1"), limit)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and not out:
            more, out, _ = timed(text, limit)
            cpu += more
        print(json.dumps({"cpu": cpu, "timeout": out, "cookies": n}), flush=True)


if __name__ == "__main__":
    main()
