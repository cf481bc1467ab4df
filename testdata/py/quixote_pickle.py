"""Writes pickle.dumps(EXPR, 4) to stdout: foreign session files for tests.

usage: quixote_pickle.py EXPR   (datetime, decimal and myapp.models are imported)
"""

import datetime  # noqa: F401 (for EXPR)
import decimal  # noqa: F401
import pickle
import sys

import myapp.models  # noqa: F401

sys.stdout.buffer.write(pickle.dumps(eval(sys.argv[1]), 4))
