#!/usr/bin/env python3
"""Reads Cookie headers the way Quixote 3's parse_cookies does, for the gateway's tests.

Each stdin line is a JSON string holding a header's bytes in base64. For each, one
JSON line is printed: {"latin1": MATCHES, "utf8": MATCHES} where MATCHES lists every
match of Quixote's cookie expression as [start, end, name, value] (start and end in
characters), with the value unquoted as parse_cookies unquotes it, and where "utf8"
is null when the bytes are not valid UTF-8. The expression below is Quixote's
_COOKIE_RE (quixote/http_request.py), a fact the gateway must match: it splits on
";" and ",", allows white space around "=", and reads a double-quoted value with
backslash escapes.
"""

import base64
import json
import re
import sys

COOKIE_RE = re.compile(r"""
    \s*
    (?P<name>[^=;,\s]+)
    \s*
    (
        =
        \s*
        (
            (?P<qvalue> "(\\[\x00-\x7f] | [^"])*")
            |
            (?P<value> [^";,\s]*)
        )
    )?
    \s*
    [;,]?
    """, re.VERBOSE)


def matches(text):
    out = []
    for m in COOKIE_RE.finditer(text):
        q = m.group("qvalue")
        if q:
            value = re.sub(r"\\(.)", r"\1", q)[1:-1]
        else:
            value = m.group("value") or ""
        out.append([m.start(), m.end(), m.group("name"), value])
    return out


def main():
    for line in sys.stdin:
        raw = base64.b64decode(json.loads(line))
        try:
            utf8 = matches(raw.decode("utf-8"))
        except UnicodeDecodeError:
            utf8 = None
        print(json.dumps({"latin1": matches(raw.decode("latin-1")), "utf8": utf8}), flush=True)


if __name__ == "__main__":
    main()
