"""Stand-in for the session3 package: same module and class names, stdlib only.

Written from the facts in the project's compatibility notes, so that pickles made by the
Go code load in CPython into objects of the classes a real session3 installation has.
"""
