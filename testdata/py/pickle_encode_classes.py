"""Classes whose instances the pickle encoder tests build in Go and load in CPython.

Each one makes CPython's pickler take a different path: plain instances (NEWOBJ +
BUILD), __getnewargs__ (NEWOBJ with arguments), __getnewargs_ex__ (NEWOBJ_EX), a
custom __reduce__ (REDUCE), __slots__ (a (dict, slots) state), a non-dict state
(__setstate__), list and dict subclasses (APPENDS / SETITEMS on an object), and a
nested class (a dotted qualified name).
"""


class Plain:
    def __eq__(self, other):
        return type(other) is type(self) and other.__dict__ == self.__dict__

    __hash__ = object.__hash__


class Node:
    """Linked structures with cycles."""


class WithNewArgs:
    def __new__(cls, a=None):
        self = object.__new__(cls)
        self.a = a
        return self

    def __getnewargs__(self):
        return (self.a,)


class WithNewArgsEx:
    def __new__(cls, a=None, *, k=None):
        self = object.__new__(cls)
        self.a, self.k = a, k
        return self

    def __getnewargs_ex__(self):
        return (self.a,), {"k": self.k}


class Reduced:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __reduce__(self):
        return (Reduced, (self.x, self.y))

    def __eq__(self, other):
        return type(other) is type(self) and (other.x, other.y) == (self.x, self.y)

    __hash__ = object.__hash__


class Slotted:
    __slots__ = ("a", "b")


class SlottedWithDict:
    __slots__ = ("a", "__dict__")


class SetState:
    def __getstate__(self):
        return (self.v, "v1")

    def __setstate__(self, state):
        self.v, self.version = state


class MyList(list):
    pass


class MyDict(dict):
    pass


class Outer:
    class Inner:
        pass


class ArgsShared:
    """__reduce__ returns a tuple the object keeps (self.args) as the arguments, so the
    argument tuple can be shared with the rest of the graph, or with another object."""

    def __init__(self, *args):
        self.items = args

    def __reduce__(self):
        return (ArgsShared, self.args)
