"""Runs the demo's Python side under Quixote's SCGI server (python-scgi):

    PYTHONPATH=demo/python python3 -m qxdemo [--host 127.0.0.1] [--port 4000]
        [--sessions sessions] [--children 2]
"""

import argparse
import functools
import os

from quixote.server import scgi_server

from qxdemo import create_publisher


def main():
    parser = argparse.ArgumentParser(prog="python3 -m qxdemo", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4000, help="SCGI port the gateway forwards /py/ to (default 4000)")
    parser.add_argument("--sessions", default="sessions",
                        help="the session directory, the gateway's -sessions (default ./sessions)")
    parser.add_argument("--children", type=int, default=2, help="worker processes (default 2)")
    args = parser.parse_args()
    sessions = os.path.abspath(args.sessions)
    print("qxdemo: Python side of the demo on scgi://%s:%d, sessions in %s" % (args.host, args.port, sessions), flush=True)
    # Quixote's run() with max_children as an int: its own command line passes a
    # string, which fails on the first request.
    scgi_server.run(functools.partial(create_publisher, sessions), host=args.host, port=args.port,
                    max_children=args.children)


if __name__ == "__main__":
    main()
