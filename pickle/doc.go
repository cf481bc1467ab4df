// Package pickle reads and writes Python pickles the way CPython does, so that a Go
// program and a Python program can share pickled data — here, the session files
// session3's DirectorySessionStore writes with pickle.dump(session, f, 4) — and Go can
// change a value and write it back without losing or altering anything Python stored.
//
//	v, err := pickle.Unmarshal(data)  // any protocol, 0 to 5
//	...
//	data, err = pickle.Marshal(v)      // protocol 4, byte for byte what CPython writes
//
// Decoder and Encoder carry options (limits, the protocol to write); ToJSON and
// FromJSON give a JSON view of any value for people and command lines; Equal compares
// two values as object graphs.
//
// # Value model
//
// A pickle decodes into a graph of these Go values, and the encoder accepts them:
//
//	Python                     Go
//	None                       nil
//	bool                       bool
//	int                        int64, or *big.Int when it does not fit
//	float                      float64 (NaN payloads, ±inf and -0.0 kept bit for bit)
//	str                        string: UTF-8, lone surrogates in their 3-byte
//	                           "surrogatepass" form, as pickle carries them
//	bytes                      []byte
//	bytearray                  *ByteArray
//	tuple                      *Tuple
//	list                       *List
//	dict                       *Dict: insertion order, any hashable keys, Python
//	                           equality (1, 1.0 and True are one key)
//	set, frozenset             *Set, *FrozenSet: ordered as in the pickle
//	class, function            Global{Module, Name}: a reference by module and
//	                           qualified name, never imported or run
//	any other object           *Object: Callable (usually a Global), how it is made
//	                           (Construct: NEWOBJ, NEWOBJ_EX, REDUCE, or INST/OBJ),
//	                           Args, Kwargs, ListItems, DictItems, SetItems, State
//
// Containers and objects are pointers, so a value the pickle references twice is one
// Go pointer referenced twice, and cycles survive. Nothing is interpreted: a
// datetime, a Decimal, an OrderedDict or an application's class is an *Object holding
// exactly the call and state CPython would use to rebuild it, so any value survives a
// Go load and save whether or not Go knows its type. Object.Attr and Object.SetAttr
// read and set attributes in an instance's state.
//
// Marshal and Encoder also accept plain Go values: string, bool, every int and uint
// type, float32, float64, []byte, []any, []string, map[string]any and
// map[string]string (written in sorted key order), and time.Time, written as an aware
// datetime.datetime with a fixed-offset datetime.timezone (truncated to the
// microsecond; Python's years are 1 to 9999). Go slices and maps have no identity
// here: each occurrence becomes a new Python list or dict.
//
// # Decoding
//
// Unmarshal reads protocols 0 to 5 as CPython 3.11's pickle.loads does, and is as
// strict as CPython where CPython is strict: an unknown opcode, a protocol above 5, a
// memo reference to nothing, a MARK or stack item missing, an odd number of
// SETITEMS items, an unhashable dict key or set item, a value an opcode cannot apply
// to (REDUCE of something not callable, APPEND to an int) are errors, and frames are
// checked as pickle.load checks them when it reads a file, as session3 does (an
// opcode may not run past the end of its frame, except a bytes or bytearray payload).
// It is as lenient where CPython is lenient: bytes after STOP are ignored. Python 2 names in GLOBAL
// below protocol 3 are renamed as CPython's fix_imports does (__builtin__.set is
// builtins.set); Python 2 str (STRING, BINSTRING, SHORT_BINSTRING) is decoded as
// Decoder.Encoding says, ASCII by default as in CPython. What pickle.loads cannot read
// without help — persistent ids, the extension registry (EXT1/2/4), out-of-band
// buffers — and what the model cannot hold (a second BUILD on one object, items added
// to an object after its BUILD, BUILD on a class) are ErrUnsupported.
//
// Every error is a *DecodeError with the byte offset and name of the failing opcode,
// wrapping one cause (ErrTruncated, ErrUnknownOpcode, ErrProtocol, ErrStack, ErrMemo,
// ErrSyntax, ErrOperation, ErrUnsupported, ErrLimit) for errors.Is.
//
// # Encoding
//
// Marshal writes protocol 4; an Encoder writes protocols 2 to 5. For the object a
// value describes, the bytes are those of CPython's C pickler (pickle.dumps(obj,
// protocol)): the same opcode for each value (BININT1/BININT2/BININT/LONG1/LONG4,
// SHORT_BINUNICODE/BINUNICODE/BINUNICODE8, SHORT_BINBYTES/BINBYTES/BINBYTES8 or
// protocol 2's _codecs.encode call, BYTEARRAY8 or a bytearray call, EMPTY_TUPLE,
// TUPLE1-3 or MARK/TUPLE, EMPTY_SET/ADDITEMS or a set call below protocol 4, FROZENSET,
// STACK_GLOBAL or GLOBAL with fix_imports' Python 2 names, getattr calls for nested
// names below protocol 4, NEWOBJ, NEWOBJ_EX or its functools.partial form below
// protocol 4, REDUCE), batches of 1000 with CPython's quirks (a lone list or dict item
// with APPEND/SETITEM, an empty batch after a dict or set of exactly 1000n items), the
// same memoization (MEMOIZE, or BINPUT/LONG_BINPUT, at the same points; never None,
// bools, ints, floats or the empty tuple), recursive tuples and frozensets unwound
// with POP/POP_MARK, objects reached again through their own arguments, and protocol
// 4 framing: a frame is committed at the first opcode boundary past 64 KiB, frames
// under 4 bytes are dropped, and str and bytes of 64 KiB or more are written outside
// any frame. Every session file the real session3 wrote, and every protocol 2 to 5
// pickle of the CPython corpora in the tests, decodes and re-encodes to its own bytes.
//
// The bytes differ from CPython's only in these cases, and then CPython loads them to
// an equal object graph, shared references and cycles included (only `is` between
// two equal strs can tell the difference in the first case):
//
//   - str and bytes are memoized by the identity of their storage — the address and
//     length of their bytes — the counterpart of CPython's object identity: the
//     decoder gives each str and bytes it reads storage of its own and every memo
//     reference to it the same one, so a decoded value keeps CPython's sharing
//     exactly. In a value built in Go, sharing follows Go's storage: one Go string
//     (a variable, or a literal, which the Go toolchain stores once) used twice is
//     written once and referred to, equal strings built separately are written
//     separately. CPython shares where its program used one object, and also
//     shares interned strs (attribute names, identifiers, module names) wherever
//     they were made; so a Go-built value whose attribute names are built strings
//     rather than literals writes them again where CPython would refer back. (CPython
//     itself changes which strs are one object when it loads: BUILD interns
//     attribute names, and names read by GLOBAL become plain strs; so
//     pickle.dumps(pickle.loads(b)) is often not b.) The empty str and bytes are
//     singletons, as in CPython. Where CPython makes new strings while pickling,
//     the encoder writes new ones too: the qualified names of classes and functions
//     written in C (everything in builtins and _codecs, the classes of datetime and
//     decimal, collections.OrderedDict, deque and defaultdict, functools.partial),
//     whose names CPython builds on each access; the module name of built-in
//     functions; and the strs and bytes CPython builds while pickling (protocol 2's
//     Latin-1 text of bytes, shared only among one-character texts as CPython's
//     one-character singletons are; the bytes of a bytearray call; the last part of
//     a nested name).
//   - Sets and frozensets are written in the model's order: for a decoded one, the
//     order of the pickle; for one built in Go, insertion order, where CPython writes
//     its hash-table order (which for strs depends on PYTHONHASHSEED).
//   - An *Object is written as it says. One built in Go may say something CPython
//     would not: NewObject's empty attribute dict is written with BUILD, while
//     CPython writes no BUILD for an instance without attributes; a Construct or
//     arguments other than those of the class's __reduce_ex__ are written as given.
//   - INST and OBJ objects (protocols 0 and 1) are written with OBJ, which every
//     protocol loads with the same meaning; CPython would write whatever the class's
//     __reduce_ex__ gives.
//   - NEWOBJ_EX below protocol 4 is written as CPython writes it, a
//     functools.partial(cls.__new__, cls, *args, **kwargs) call, except that
//     cls.__new__ is written getattr(cls, "__new__") where CPython names the class
//     that defines __new__ (e.g. object), which Go does not know.
//   - A value decoded from one protocol and written at another keeps the calls the
//     first protocol needed: protocol 2's set([...]), _codecs.encode(...) and
//     bytearray(...) stay REDUCE calls at protocol 4, where CPython, having rebuilt
//     the set, bytes or bytearray, would write its opcode.
//   - The argument tuple of an object (and a set call's list, NEWOBJ_EX's keyword
//     dict) is built anew by CPython each time it saves the object. The encoder
//     follows that when the object is reached again through its own arguments, and
//     otherwise writes a tuple the graph shares once and refers to it, as CPython
//     does for a shared tuple.
//   - A pickle that refers twice to one memoized empty tuple (CPython never writes
//     that: () is a singleton) is written with two EMPTY_TUPLEs.
//
// # Limits and safety
//
// The decoder is safe on any input: a truncated or hostile pickle gives a
// *DecodeError, never a panic and never an allocation sized by a declared length
// before that length is checked against the input (a 2^40-byte FRAME, BINBYTES8 or
// BINUNICODE8 in a 31-byte file is ErrTruncated). It does not recurse, and bounds what
// it builds: Decoder.MaxDepth (DefaultMaxDepth, 10000) bounds nesting — the number
// of containers and objects on the longest chain a depth-first walk descends through
// when it visits each container once and the children of a value in the order
// pickling writes them (an object's callable, arguments, keyword arguments, list
// items, dict items, set items, state), the walk the encoder and ToJSON make — and
// also the number of open MARKs and the nesting of tuple and frozenset keys.
// MaxStack (DefaultMaxStack) and MaxMemo (DefaultMaxMemo) bound the stack and the
// memo, at 2^26 each: every stack value and memo entry takes a byte of input, so no
// pickle the session store accepts (64 MiB) reaches them, and anything CPython writes
// within that size decodes (a tuple of millions of items, millions of small dicts).
// The memo is stored sparsely, so a LONG_BINPUT index of 2^31 costs one entry, not a
// 2^31-slot table. Dict keys and set items are bounded in size (4096 values visited
// when hashing one), and decimal integer text to CPython's 4300 digits. Exceeding one
// is ErrLimit. The memory one decoding allocates is bounded too: MemoryPerByte
// (DefaultMemoryPerByte, 256) bytes per byte of input, at most MaxMemory
// (DefaultMaxMemory, 2 GiB); going over is ErrMemory (which wraps ErrLimit). The
// decoder allocates about 75 bytes per byte of input for the worst CPython writes (a
// session of a million empty dicts), where CPython itself takes up to about 220.
//
// Decoding takes time in proportion to the input. Dict keys and set items are hashed
// with secret keys drawn when the process starts, so keys sharing a hash, which would
// make filling a dict quadratic, cannot be computed in advance; each NaN key (a key of
// its own, NaN being unequal to itself) gets a hash of its own.
//
// The encoder writes nothing the default Decoder refuses: a key the decoder would not
// hash, a memo beyond DefaultMaxMemo, and, from Marshal, a value nested deeper than
// DefaultMaxDepth or a pickle that would take more than DefaultMaxMemory to decode
// (Marshal decodes what it wrote to check, when that can happen) are an *EncodeError.
//
// Decoding allocates little: the bytes of strs and bytes values are copied into shared
// chunks of up to 16 KiB, and containers, the interface boxes of strs, ints and
// floats, and the keys of small dicts with the same str keys as the one before are
// allocated in shared chunks or shared outright. Keeping any one decoded value alive
// therefore keeps its chunks alive too — at most a few times the size of the input,
// which suits session-sized pickles; copy a value out (strings.Clone, a fresh
// container) to keep it longer than the rest.
//
// Everything that walks a value survives the deepest value the decoder accepts. The
// encoder and ToJSON recurse, bounded at twice DefaultMaxDepth (Encoder.MaxDepth):
// a value nested deeper, or a cycle no memo can break (a Go map or slice holding
// itself, a tuple containing itself, which CPython cannot build), is an
// *EncodeError. Equal does not recurse. A value the encoder cannot write — a Go type
// outside the model (*UnsupportedTypeError), a str that is not UTF-8 or
// surrogatepass, a nil pointer, a class name GLOBAL cannot hold — is an *EncodeError
// whose Path says where it is in the value; nothing is written to an Encoder's stream
// past the point of failure, but what came before may have been.
//
// # Go types for Python values
//
// UnmarshalValue stores a decoded value in Go variables as json.Unmarshal does for
// JSON, so that Go code works with an application's objects as structs:
//
//	type CartItem struct {
//		SKU   string `pickle:"sku"`
//		Price pickle.Decimal
//		Qty   int
//	}
//	type User struct {
//		Login     string
//		Balance   pickle.Decimal
//		Cart      []CartItem
//		LastLogin time.Time
//	}
//	var u User
//	err := pickle.UnmarshalValue(v, &u) // v is a myapp.User object
//
// A struct field names the Python attribute (or str dict key) in its tag; without
// one, the field's name in snake case (LastLogin is last_login, UserID is user_id).
// The tag `pickle:"-"` skips a field; the options ",omitempty" (a zero value adds no
// attribute to a new object), ",naive" and ",date" (how a new time is written)
// follow the name. Embedded structs' fields are the struct's own. An
// attribute no field names is ignored, or an error with
// Converter.DisallowUnknownAttrs; a field whose attribute is missing is left as it
// is. The mapping:
//
//	Python                     Go
//	str                        string
//	int                        int, int8 to int64, uint to uint64 (a value that does
//	                           not fit is an error), *big.Int or big.Int (any size);
//	                           float32 and float64 take an int that converts exactly
//	float                      float64, float32
//	bool                       bool (not an int: True into an int is an error)
//	None                       nil pointer, slice, map or interface; zero value of
//	                           other types
//	bytes, bytearray           []byte
//	list, tuple, set,          slice; a tuple or list of the right length also into
//	frozenset                  an array
//	dict                       map (keys converted by these rules) or struct (str keys)
//	set, frozenset             map[T]struct{} or map[T]bool
//	datetime.datetime          time.Time: an aware datetime at its instant, in a
//	                           time.FixedZone of a datetime.timezone (time.UTC for
//	                           timezone.utc) or the time.LoadLocation of a
//	                           zoneinfo.ZoneInfo key (fold honoured); a naive datetime
//	                           at its wall clock in time.UTC. Other tzinfo classes
//	                           are errors.
//	datetime.date              time.Time at midnight UTC
//	decimal.Decimal            Decimal, its text: every digit and the exponent kept
//	an object of a class       struct or pointer to struct (its attributes, __slots__
//	                           included), or map[string]T; a struct whose type has a
//	                           PythonClass method (ClassNamer) takes only that class
//	a global (class, function) Global
//	anything                   any (the value of the model as it is), or the model's
//	                           own *Object, *List, *Dict, *Tuple, *Set, *FrozenSet,
//	                           *ByteArray
//
// An object or container the pickle shares decodes to one Go pointer wherever the
// Go type is a pointer, so shared objects and cycles survive; into non-pointer
// types each occurrence is a copy. Errors are *MappingError naming the path of the
// value, e.g. "pickle: cart[2].price: Python decimal.Decimal into Go int"; nothing
// panics, and Converter.MaxValues bounds the work a hostile pickle can cause.
//
// UpdateValue writes Go values back into the value they came from, changing only
// what changed, as Python code assigning those attributes would: an attribute whose
// Go value converts to what the object holds keeps the Python value it had (the same
// str, the int 5 a float field read, the None a zero value read, the datetime with
// its tzinfo object), and what the struct does not name — other attributes, the
// class and how it is made, a (dict, slots) state, memo links to shared values —
// stays. Objects, lists, dicts, sets and bytearrays are changed in place, so that
// other references to them see the change (a slice is list[:] = ..., a map deletes
// the keys it lacks and adds new keys last, in sorted order); an immutable value
// that changed (str, tuple, frozenset, datetime, Decimal) is replaced. Slice items
// match the list's items by position, unless the struct has a *Object field tagged
// `pickle:",object"`: decoding sets it to the struct's object and writing goes to
// that object, wherever the item has moved; nil there means a new object. A new
// struct value is written as a new instance of its ClassNamer class (as
// NewObjectFrom does) or, without one, as a dict; a changed time keeps the kind of
// datetime it replaces (naive, written at its UTC wall clock; aware, keeping the
// tzinfo object when the time is in its zone, else a datetime.timezone of its
// offset; a date); a new one is aware unless tagged ",naive" or ",date". The zero
// time.Time and the zero Decimal ("") are written as None, and so is any zero value
// where Python had None (which it was read from); a zero value adds no attribute to
// an existing object that lacks it (a new one gets every field not tagged
// ",omitempty"). A Decimal
// is written in the form str() gives in Python (ParseDecimal), so CPython pickles
// the same bytes. When two Go values hold one Python object, the one that changed an
// attribute wins. An update that fails changes nothing. MarshalValue makes new values, NewObjectFrom a new instance of a
// named class, as CPython makes one for a plain class: NEWOBJ and BUILD with the
// attribute dict.
//
// # Why not gopickle
//
// github.com/nlpodyssey/gopickle was measured against CPython-made session files and
// is used here only as an independent oracle in differential tests (where both
// decoders accept an input they must agree), never in production paths. It cannot
// read a session3 session without a class hook ("BUILD requires a PyDictSettable
// instance"; datetime, Decimal and bytearray fail with "REDUCE requires a Callable
// object"); its hook cannot override the classes it hard-wires (list, dict, object,
// copy_reg._reconstructor, OrderedDict); its sets are Go maps (a set holding bytes
// panics, tuples are keyed by pointer, order is lost); NEWOBJ_EX keyword arguments
// are merged into the positional ones; protocol 0 strings are not unescaped; a missing
// memo entry silently becomes nil and an odd SETITEMS count silently drops an item;
// and a 31-byte input declaring a 2^40-byte FRAME, BINBYTES8 or BINUNICODE8 kills
// the process with "fatal error: out of memory", which no recover catches (100,000
// random mutations of a 204-byte session gave about 2,000 process kills and 2,000
// panics). It has no encoder. github.com/kisielk/og-rek has no BUILD or NEWOBJ and
// corrupts shared references.
package pickle
