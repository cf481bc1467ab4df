package pickle

import (
	"fmt"
	"iter"
	"math/big"
)

// The value model. A decoded pickle is a graph of these Go values:
//
//	Python            Go
//	None              nil
//	bool              bool
//	int               int64, or *big.Int when it does not fit in an int64
//	float             float64
//	str               string (UTF-8; lone surrogates kept as their 3-byte "surrogatepass" form)
//	bytes             []byte
//	bytearray         *ByteArray
//	tuple             *Tuple
//	list              *List
//	dict              *Dict (insertion order, Python key equality)
//	set               *Set
//	frozenset         *FrozenSet
//	class / function  Global (a reference by module and qualified name)
//	other objects     *Object (class, constructor arguments and BUILD state)
//
// Containers and objects are pointers: a value the pickle references twice is one Go
// pointer referenced twice, so shared references and cycles survive a decode/encode round
// trip. str and bytes are memoized by the identity of their storage, the counterpart
// of CPython's object identity (see the package doc).

// Tuple is a Python tuple.
type Tuple struct{ Items []any }

// NewTuple returns a tuple of the given items.
func NewTuple(items ...any) *Tuple { return &Tuple{Items: items} }

// List is a Python list.
type List struct{ Items []any }

// NewList returns a list of the given items.
func NewList(items ...any) *List { return &List{Items: items} }

// ByteArray is a Python bytearray.
type ByteArray struct{ Data []byte }

// Global is a reference to a module-level object, usually a class, by module and
// qualified name: what GLOBAL and STACK_GLOBAL push.
type Global struct{ Module, Name string }

// String returns the dotted name, e.g. "session3.Session.Session".
func (g Global) String() string { return g.Module + "." + g.Name }

// Construct says which opcode made an Object.
type Construct uint8

const (
	// NewObj is cls.__new__(cls, *Args): NEWOBJ, the protocol 2+ form of plain instances.
	NewObj Construct = iota
	// NewObjEx is cls.__new__(cls, *Args, **Kwargs): NEWOBJ_EX (protocol 4+).
	NewObjEx
	// Reduce is Callable(*Args): REDUCE, used by datetime, Decimal, copyreg._reconstructor, ...
	Reduce
	// Inst is Callable(*Args) for a class: INST and OBJ, the protocol 0/1 instance forms.
	Inst
)

func (c Construct) String() string {
	switch c {
	case NewObj:
		return "NEWOBJ"
	case NewObjEx:
		return "NEWOBJ_EX"
	case Reduce:
		return "REDUCE"
	case Inst:
		return "INST"
	}
	return fmt.Sprintf("Construct(%d)", uint8(c))
}

// KV is one key/value pair set on an object by SETITEM(S).
type KV struct{ Key, Value any }

// Object is an instance CPython rebuilds by calling Callable with Args, then applying
// what the pickle applied to it afterwards, in this order: ListItems (APPEND/APPENDS),
// DictItems (SETITEM/SETITEMS), SetItems (ADDITEMS), and State (BUILD) when HasState.
type Object struct {
	Callable  any       // the class (NewObj, NewObjEx, Inst) or callable (Reduce); usually a Global
	Construct Construct // how it is made
	Args      *Tuple    // positional arguments (never nil)
	Kwargs    *Dict     // keyword arguments, NewObjEx only
	State     any       // the BUILD argument: usually a *Dict of attributes, or a (*Dict, *Dict slots) *Tuple
	HasState  bool      // whether BUILD is applied (State may legitimately be None)
	ListItems []any
	DictItems []KV
	SetItems  []any
}

// NewObject returns an instance of class made as protocol 2+ pickles make plain
// instances (NEWOBJ with no arguments), with an empty attribute dict as its state.
func NewObject(class Global) *Object {
	return &Object{Callable: class, Construct: NewObj, Args: NewTuple(), State: NewDict(), HasState: true}
}

// Class returns the class of the object when the pickle names one: the Callable for
// NEWOBJ, NEWOBJ_EX and INST, and the first argument of copyreg._reconstructor and
// copyreg.__newobj__ for REDUCE. For other REDUCE calls it returns the callable itself
// (e.g. datetime.datetime), which is the class for the common value types.
func (o *Object) Class() (Global, bool) {
	if o.Construct == Reduce {
		if g, ok := o.Callable.(Global); ok && (g.Module == "copyreg" || g.Module == "copy_reg") {
			if (g.Name == "_reconstructor" || g.Name == "__newobj__") && o.Args != nil && len(o.Args.Items) > 0 {
				c, ok := o.Args.Items[0].(Global)
				return c, ok
			}
		}
	}
	g, ok := o.Callable.(Global)
	return g, ok
}

// attrs returns the dict of instance attributes in the object's state: the state itself
// when it is a dict, or the first item of a (dict, slots) state. create makes an empty
// attribute dict when there is none and the state allows one.
func (o *Object) attrs(create bool) *Dict {
	switch s := o.State.(type) {
	case *Dict:
		return s
	case *Tuple:
		if len(s.Items) == 2 {
			if d, ok := s.Items[0].(*Dict); ok {
				return d
			}
			if s.Items[0] == nil && create {
				d := NewDict()
				s.Items[0] = d
				return d
			}
		}
	case nil:
		if create {
			d := NewDict()
			o.State, o.HasState = d, true
			return d
		}
	}
	return nil
}

// Attr returns the instance attribute name from the object's state.
func (o *Object) Attr(name string) (any, bool) {
	if d := o.attrs(false); d != nil {
		return d.Get(name)
	}
	return nil, false
}

// SetAttr sets an instance attribute in the object's state, keeping the order of the
// existing ones (a new attribute goes last, as in a Python __dict__).
func (o *Object) SetAttr(name string, v any) error {
	d := o.attrs(true)
	if d == nil {
		return fmt.Errorf("pickle: %v object has a state of type %T, not an attribute dict", o.Callable, o.State)
	}
	return d.Set(name, v)
}

// DelAttr removes an instance attribute and reports whether it was there.
func (o *Object) DelAttr(name string) bool {
	if d := o.attrs(false); d != nil {
		return d.Delete(name)
	}
	return false
}

// Attrs returns the attribute dict of the object's state, or nil when it has none.
func (o *Object) Attrs() *Dict { return o.attrs(false) }

// table is an insertion-ordered hash table keyed by Python equality, shared by Dict, Set
// and FrozenSet. Small tables (the attribute dicts of sessions) are scanned linearly;
// larger ones keep each key's hash and an index from hash to the chain of positions
// with that hash.
type table struct {
	keys []any
	vals []any       // unused for sets
	ix   *tableIndex // nil for a small table
}

type tableIndex struct {
	hashes []uint64         // the hash of each key
	index  map[uint64]int32 // hash -> 1 + position of the newest key with that hash
	chain  []int32          // chain[i] = 1 + position of the previous key with keys[i]'s hash, or 0
}

// smallTable is the size up to which a table has no index.
const smallTable = 8

func (t *table) find(k any, h uint64) int {
	i, _ := t.probe(k, h)
	return i
}

// probe returns the position of the key equal to k, whose hash is h, or -1, and the
// number of keys it compared k with: the work a lookup cost.
func (t *table) probe(k any, h uint64) (int, int) {
	if t.ix == nil {
		if ks, ok := k.(string); ok {
			// A str equals only a str: the common case of attribute names, quickly.
			for i, key := range t.keys {
				if s, ok := key.(string); ok && s == ks {
					return i, i + 1
				}
			}
			return -1, len(t.keys)
		}
		for i, key := range t.keys {
			if keyEqual(key, k) {
				return i, i + 1
			}
		}
		return -1, len(t.keys)
	}
	n := 0
	for j := t.ix.index[h]; j != 0; j = t.ix.chain[j-1] {
		n++
		if keyEqual(t.keys[j-1], k) {
			return int(j - 1), n
		}
	}
	return -1, n
}

// memory estimates the bytes the table holds: its key and value storage and its index.
func (t *table) memory() int64 {
	m := int64(cap(t.keys)+cap(t.vals)) * 16
	if t.ix != nil {
		// The hashes, the chain and the map grow together; the map takes about 40
		// bytes per key.
		m += int64(cap(t.ix.hashes)) * (8 + 4 + 40)
	}
	return m
}

// hashAt returns the hash of the i-th key.
func (t *table) hashAt(i int) uint64 {
	if t.ix != nil {
		return t.ix.hashes[i]
	}
	h, _ := hashKey(t.keys[i]) // every stored key was hashable when it was put
	return h
}

// put inserts or replaces; for a replaced key the original key object is kept, as
// Python's dict does.
func (t *table) put(k, v any, withValue bool) error {
	h, err := hashKey(k)
	if err != nil {
		return err
	}
	t.putHashed(k, v, h, withValue)
	return nil
}

// putHashed is put for a key whose hash the caller already has (or, while the table
// stays small, any value: small tables do not use hashes). It returns the number of
// keys it compared k with.
func (t *table) putHashed(k, v any, h uint64, withValue bool) int {
	i, n := t.probe(k, h)
	if i >= 0 {
		if withValue {
			t.vals[i] = v
		}
		return n
	}
	t.keys = append(t.keys, k)
	if withValue {
		t.vals = append(t.vals, v)
	}
	if t.ix != nil {
		t.ix.hashes = append(t.ix.hashes, h)
		t.ix.chain = append(t.ix.chain, t.ix.index[h])
		t.ix.index[h] = int32(len(t.keys))
	} else if len(t.keys) > smallTable {
		t.reindex()
	}
	return n
}

// grow makes room for n more keys. The keys and values of a dict share one
// allocation.
func (t *table) grow(n int, withValue bool) {
	if n <= 0 || cap(t.keys)-len(t.keys) >= n {
		return
	}
	size := max(len(t.keys)+n, 2*cap(t.keys)) // geometric: one item at a time stays linear
	if withValue {
		t.setStorage(make([]any, 2*size))
	} else {
		t.keys = append(make([]any, 0, size), t.keys...)
	}
	if t.ix != nil {
		t.ix.hashes = append(make([]uint64, 0, size), t.ix.hashes...)
	}
}

// setStorage moves the keys and values of a dict into kv, whose halves hold them.
func (t *table) setStorage(kv []any) {
	size := len(kv) / 2
	t.keys = append(kv[:0:size], t.keys...)
	t.vals = append(kv[size:size:2*size], t.vals...)
}

func (t *table) lookup(k any) int {
	if len(t.keys) == 0 {
		return -1
	}
	h, err := hashKey(k)
	if err != nil {
		return -1
	}
	return t.find(k, h)
}

func (t *table) remove(k any, withValue bool) bool {
	i := t.lookup(k)
	if i < 0 {
		return false
	}
	// A new slice for the keys: decoded dicts may share theirs (see sharedKeys).
	t.keys = append(t.keys[:i:i], t.keys[i+1:]...)
	if withValue {
		t.vals = append(t.vals[:i], t.vals[i+1:]...)
	}
	if t.ix != nil {
		t.ix.hashes = append(t.ix.hashes[:i], t.ix.hashes[i+1:]...)
	}
	t.reindex()
	return true
}

// reindex rebuilds the hashes and the index (none for a small table).
func (t *table) reindex() {
	if len(t.keys) <= smallTable {
		t.ix = nil
		return
	}
	ix := t.ix
	if ix == nil || len(ix.hashes) != len(t.keys) {
		ix = &tableIndex{hashes: make([]uint64, len(t.keys), cap(t.keys))}
		for i, k := range t.keys {
			ix.hashes[i], _ = hashKey(k) // every stored key was hashable when it was put
		}
	}
	ix.index = make(map[uint64]int32, len(t.keys))
	ix.chain = make([]int32, len(t.keys))
	for i, h := range ix.hashes {
		ix.chain[i] = ix.index[h]
		ix.index[h] = int32(i + 1)
	}
	t.ix = ix
}

// Dict is a Python dict: insertion-ordered, with keys compared by Python equality
// (1, 1.0 and True are one key). Keys must be hashable: None, bool, numbers, str, bytes,
// Global, *Tuple and *FrozenSet of hashable items, or *Object (by identity).
type Dict struct{ t table }

// NewDict returns an empty dict.
func NewDict() *Dict { return &Dict{} }

// Len returns the number of items.
func (d *Dict) Len() int { return len(d.t.keys) }

// Get returns the value for key.
func (d *Dict) Get(key any) (any, bool) {
	if i := d.t.lookup(key); i >= 0 {
		return d.t.vals[i], true
	}
	return nil, false
}

// Set sets key to value; a new key goes last. It fails only for an unhashable key.
func (d *Dict) Set(key, value any) error { return d.t.put(key, value, true) }

// Delete removes key and reports whether it was present.
func (d *Dict) Delete(key any) bool { return d.t.remove(key, true) }

// Keys returns the keys in order.
func (d *Dict) Keys() []any { return append([]any(nil), d.t.keys...) }

// All iterates over the items in order.
func (d *Dict) All() iter.Seq2[any, any] {
	return func(yield func(any, any) bool) {
		for i := range d.t.keys {
			if !yield(d.t.keys[i], d.t.vals[i]) {
				return
			}
		}
	}
}

// Set is a Python set. Items keep the order they were added in, so a decoded set is
// written back in the order CPython wrote it.
type Set struct{ t table }

// NewSet returns a set of the given items; it fails for an unhashable item.
func NewSet(items ...any) (*Set, error) {
	s := &Set{}
	for _, it := range items {
		if err := s.Add(it); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Len returns the number of items.
func (s *Set) Len() int { return len(s.t.keys) }

// Add adds an item; it fails only for an unhashable item.
func (s *Set) Add(item any) error { return s.t.put(item, nil, false) }

// Has reports whether the set contains item.
func (s *Set) Has(item any) bool { return s.t.lookup(item) >= 0 }

// Remove removes item and reports whether it was present.
func (s *Set) Remove(item any) bool { return s.t.remove(item, false) }

// Items returns the items in order.
func (s *Set) Items() []any { return append([]any(nil), s.t.keys...) }

// FrozenSet is a Python frozenset: like Set, but hashable and not changed after it is made.
type FrozenSet struct{ t table }

// NewFrozenSet returns a frozenset of the given items; it fails for an unhashable item.
func NewFrozenSet(items ...any) (*FrozenSet, error) {
	s := &FrozenSet{}
	for _, it := range items {
		if err := s.t.put(it, nil, false); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Len returns the number of items.
func (s *FrozenSet) Len() int { return len(s.t.keys) }

// Has reports whether the frozenset contains item.
func (s *FrozenSet) Has(item any) bool { return s.t.lookup(item) >= 0 }

// Items returns the items in order.
func (s *FrozenSet) Items() []any { return append([]any(nil), s.t.keys...) }

// UnhashableError reports a dict key or set item of a type Python cannot hash.
type UnhashableError struct{ Value any }

func (e *UnhashableError) Error() string {
	return fmt.Sprintf("pickle: unhashable type: %s", TypeName(e.Value))
}

// TypeName returns the Python type name of a value of the model ("str", "dict",
// "myapp.models.Account", ...).
func TypeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case int64, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case *ByteArray:
		return "bytearray"
	case *Tuple:
		return "tuple"
	case *List:
		return "list"
	case *Dict:
		return "dict"
	case *Set:
		return "set"
	case *FrozenSet:
		return "frozenset"
	case Global:
		return "global " + x.String()
	case *Object:
		if c, ok := x.Class(); ok {
			return c.String()
		}
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
