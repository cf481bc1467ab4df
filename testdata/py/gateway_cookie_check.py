#!/usr/bin/env python3
"""Reads Cookie headers the way Quixote 3's parse_cookies does, for the gateway's tests.

Each stdin line is a JSON string holding a header's bytes in base64. For each, one
JSON line is printed: {"latin1": MATCHES, "utf8": MATCHES} where MATCHES lists every
match of Quixote's own cookie expression (quixote.http_request._COOKIE_RE, the one
parse_cookies runs) as [start, end, name, value] (start and end in characters), with
the value as quixote.http_request.parse_cookies reads it from that match, and where
"utf8" is null when the bytes are not valid UTF-8. The matches are checked against
parse_cookies on the whole header (last value of a name wins, "$" names dropped): a
header they do not explain exits with an error.
"""

import base64
import json
import sys

from quixote.http_request import _COOKIE_RE, parse_cookies


def matches(text):
    out = []
    seen = {}
    for m in _COOKIE_RE.finditer(text):
        name = m.group("name")
        chunk = text[m.start():m.end()]
        if name.startswith("$"):
            # parse_cookies drops "$" names (RFC 2109 attributes); read the value
            # as it reads any other by renaming the name's first character.
            at = m.start("name") - m.start()
            chunk = chunk[:at] + "_" + chunk[at + 1:]
            value = parse_cookies(chunk)["_" + name[1:]]
        else:
            value = parse_cookies(chunk)[name]
            seen[name] = value
        out.append([m.start(), m.end(), name, value])
    whole = parse_cookies(text)
    if whole != seen:
        sys.exit("matches of %r read %r, parse_cookies %r" % (text, seen, whole))
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
