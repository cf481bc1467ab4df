"""Parses Set-Cookie header values the way Python code on the other side would.

Reads one Set-Cookie value per line on stdin and prints one JSON object per line:
what http.cookies.SimpleCookie (the standard library's parser) makes of it --
name, value and the attributes it recognised -- and what Quixote's
request parser (quixote.http_request.parse_cookies) reads from the Cookie
header a browser sends back for it (NAME=VALUE with the value as stored, quotes
included). An unparsable line prints {"error": ...}.
"""

import http.cookies
import json
import sys

from quixote.http_request import parse_cookies

ATTRS = ("path", "domain", "max-age", "secure", "httponly", "samesite", "expires")

for line in sys.stdin:
    line = line.rstrip("\r\n")
    if not line:
        continue
    jar = http.cookies.SimpleCookie()
    try:
        jar.load(line)
    except http.cookies.CookieError as exc:
        print(json.dumps({"error": str(exc)}))
        continue
    if len(jar) != 1:
        print(json.dumps({"error": "parsed %d cookies" % len(jar)}))
        continue
    (name, morsel), = jar.items()
    out = {"name": name, "value": morsel.value, "coded_value": morsel.coded_value}
    for attr in ATTRS:
        if morsel[attr] != "":
            out[attr] = morsel[attr]
    # A browser stores the value with its quotes and sends it back as NAME=VALUE.
    raw_value = line.split(";", 1)[0].split("=", 1)[1]
    out["request_value"] = parse_cookies("%s=%s" % (name, raw_value)).get(name)
    print(json.dumps(out))
