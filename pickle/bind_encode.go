package pickle

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"time"
	"unsafe"
)

// UpdateValue writes the Go value src into the Python value old it was decoded from
// (with UnmarshalValue) and returns the value to store where old was: old itself
// when it is an object or a mutable container, changed in place; a new value for an
// immutable one that changed (a str, a tuple) or when old is not of a kind src can
// be written into. What src does not name — other attributes, the class, how the
// object is made, values src holds unchanged, shared references — stays as it was,
// so a Python program loads what it would have had it made the same change itself.
// On error nothing is changed. It is Converter{}.Update; see the package doc for the
// rules.
func UpdateValue(old, src any) (any, error) { return (&Converter{}).Update(old, src) }

// MarshalValue returns a new Python value for the Go value src, with new objects for
// structs that name their class (see ClassNamer), new dicts for other structs.
func MarshalValue(src any) (any, error) { return (&Converter{}).marshal(src) }

// NewObjectFrom returns a new instance of class with the attributes of the struct
// src (or pointer to one), made as CPython pickles an instance of a plain class at
// protocol 2 and up: cls.__new__(cls) (NEWOBJ) followed by BUILD with the attribute
// dict, in the order of the struct's fields, and no BUILD when there is no
// attribute. Nested values follow the rules of MarshalValue.
func NewObjectFrom(class Global, src any) (*Object, error) {
	return (&Converter{}).NewObject(class, src)
}

// Update writes the Go value src into the Python value old; see UpdateValue.
func (c *Converter) Update(old, src any) (any, error) {
	// A first pass changes nothing and finds any error, so that a failed update
	// leaves old as it was.
	dry := newUpdater(c)
	dry.dry = true
	if _, err := dry.update(old, reflect.ValueOf(src), fieldOpts{}); err != nil {
		return nil, err
	}
	u := newUpdater(c)
	return u.update(old, reflect.ValueOf(src), fieldOpts{})
}

func (c *Converter) marshal(src any) (any, error) {
	u := newUpdater(c)
	return u.update(absent, reflect.ValueOf(src), fieldOpts{})
}

// NewObject returns a new instance of class with the attributes of src; see
// NewObjectFrom.
func (c *Converter) NewObject(class Global, src any) (*Object, error) {
	rv := reflect.ValueOf(src)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return nil, &MappingError{Msg: fmt.Sprintf("NewObjectFrom needs a struct, not %T", src)}
	}
	u := newUpdater(c)
	obj := newInstance(class)
	if err := u.fillObject(obj, rv, true); err != nil {
		return nil, err
	}
	return obj, nil
}

type updater struct {
	binder
	done map[ptrKey]any    // Go pointer -> the Python value written for it
	snap map[*Object]*Dict // an object's attributes before this conversion changed them
	dry  bool              // change no existing value (the checking pass of Update)
}

// absent stands for "no Python value" where update takes the old value: a new list
// item, attribute or dict value. (nil is Python's None.)
type absentValue struct{}

var absent any = absentValue{}

func newUpdater(c *Converter) *updater {
	limit := c.MaxValues
	if limit <= 0 {
		limit = DefaultMaxValues
	}
	return &updater{
		binder: binder{conv: c, ptrs: map[ptrKey]reflect.Value{}, limit: limit},
		done:   map[ptrKey]any{},
		snap:   map[*Object]*Dict{},
	}
}

func (u *updater) unsupported(t reflect.Type) error {
	return u.errorf("Go %s has no Python form", t)
}

// update returns the Python value for rv where old was.
func (u *updater) update(old any, rv reflect.Value, o fieldOpts) (any, error) {
	if !rv.IsValid() {
		return nil, nil
	}
	if err := u.enter(); err != nil {
		return nil, err
	}
	defer func() { u.depth-- }()
	t := rv.Type()
	if old == nil && rv.IsZero() {
		// None read into a Go value gives its zero value: unchanged, it stays None.
		return nil, nil
	}
	switch t.Kind() {
	case reflect.Interface:
		if rv.IsNil() {
			return nil, nil
		}
		return u.update(old, rv.Elem(), o)
	case reflect.Pointer:
		if rv.IsNil() {
			return nil, nil
		}
		if modelPointer(t) {
			return rv.Interface(), nil
		}
		if t == reflect.TypeFor[*big.Int]() {
			return intValue(old, rv.Interface().(*big.Int)), nil
		}
		key := ptrKey{rv.Interface(), t}
		if v, ok := u.done[key]; ok {
			return v, nil
		}
		if t.Elem().Kind() == reflect.Struct && !leafStruct(t.Elem()) {
			return u.updateStruct(old, rv.Elem(), key)
		}
		v, err := u.update(old, rv.Elem(), o)
		if err == nil {
			u.done[key] = v
		}
		return v, err
	}
	switch t {
	case timeType:
		if rv.IsZero() {
			return nil, nil // the zero time is no time: None
		}
		v, err := timeObject(rv.Interface().(time.Time), old, o)
		if err != nil {
			return nil, u.errorf("%v", err)
		}
		return v, nil
	case decimalType:
		if rv.String() == "" {
			return nil, nil // the zero Decimal is no number: None
		}
		text, err := ParseDecimal(rv.String())
		if err != nil {
			return nil, u.errorf("%v", strings.TrimPrefix(err.Error(), "pickle: "))
		}
		if s, ok := decimalOf(old); ok && s == string(text) {
			return old, nil
		}
		return decimalObject(string(text)), nil
	case bigIntType:
		b := rv.Interface().(big.Int)
		return intValue(old, &b), nil
	case globalType:
		if rv.IsZero() {
			return nil, nil
		}
		return rv.Interface(), nil
	}
	switch t.Kind() {
	case reflect.String:
		if s, ok := old.(string); ok && s == rv.String() {
			return old, nil
		}
		return rv.String(), nil
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return intValue(old, big.NewInt(rv.Int())), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return intValue(old, new(big.Int).SetUint64(rv.Uint())), nil
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		switch x := old.(type) {
		case float64:
			if x == f && math.Signbit(x) == math.Signbit(f) || math.IsNaN(x) && math.IsNaN(f) {
				return old, nil
			}
			if t.Kind() == reflect.Float32 && float32(x) == float32(f) && math.Signbit(x) == math.Signbit(f) {
				return old, nil // the float read into a float32, unchanged
			}
		case int64:
			if float64(x) == f && x >= -1<<53 && x <= 1<<53 {
				return old, nil // an int Python stored, read as a float and unchanged
			}
		}
		return f, nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return u.updateBytes(old, rv), nil
		}
		return u.updateSeq(old, rv, false)
	case reflect.Array:
		return u.updateSeq(old, rv, true)
	case reflect.Map:
		return u.updateMap(old, rv)
	case reflect.Struct:
		return u.updateStruct(old, rv, ptrKey{})
	}
	return nil, u.unsupported(t)
}

// leafStruct reports whether a struct type is converted as one value, not attribute by
// attribute.
func leafStruct(t reflect.Type) bool {
	return t == timeType || t == bigIntType || t == globalType
}

// intValue returns the int n: old when it is the same int, else int64 when it fits,
// as the decoder gives.
func intValue(old any, n *big.Int) any {
	switch x := old.(type) {
	case int64:
		if n.IsInt64() && n.Int64() == x {
			return old
		}
	case *big.Int:
		if x.Cmp(n) == 0 {
			return old
		}
	}
	if n.IsInt64() {
		return n.Int64()
	}
	return new(big.Int).Set(n)
}

func (u *updater) updateBytes(old any, rv reflect.Value) any {
	b := rv.Bytes()
	switch x := old.(type) {
	case []byte:
		if bytes.Equal(x, b) {
			return old
		}
	case *ByteArray:
		// A bytearray is mutable: changed in place, as Python code does with ba[:] = data.
		if !u.dry && !bytes.Equal(x.Data, b) {
			x.Data = bytes.Clone(b)
		}
		return old
	default:
		if bb, ok := bytesArg(old); ok && bytes.Equal(bb, b) {
			return old
		}
	}
	if b == nil {
		b = []byte{}
	}
	return bytes.Clone(b)
}

// same reports whether two values of the model are one value: the same container or
// object, or equal scalars.
func same(a, b any) bool {
	switch x := a.(type) {
	case []byte:
		y, ok := b.([]byte)
		return ok && len(x) == len(y) && unsafe.SliceData(x) == unsafe.SliceData(y)
	case nil:
		return b == nil
	}
	if b == nil || reflect.TypeOf(a) != reflect.TypeOf(b) || !reflect.TypeOf(a).Comparable() {
		return false
	}
	if f, ok := a.(float64); ok {
		return math.Float64bits(f) == math.Float64bits(b.(float64))
	}
	return a == b
}

func (u *updater) updateSeq(old any, rv reflect.Value, array bool) (any, error) {
	if rv.Type().Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8 {
		return u.updateBytes(old, rv), nil
	}
	if isSetValue(old) {
		return u.updateSet(old, rv, func(i int) reflect.Value { return rv.Index(i) }, rv.Len())
	}
	prev, _ := sequenceItems(old)
	items := make([]any, rv.Len())
	for i := range items {
		o := absent
		if i < len(prev) {
			o = prev[i]
		}
		v, err := u.update(o, rv.Index(i), fieldOpts{})
		if err != nil {
			return nil, atPath(err, indexPath(i))
		}
		items[i] = v
	}
	switch x := old.(type) {
	case *List:
		// A list is changed in place, as Python code changes it, so that other
		// references to it see the change.
		if !u.dry {
			x.Items = items
		}
		return old, nil
	case *Tuple:
		if len(items) == len(x.Items) && slices.EqualFunc(items, x.Items, same) {
			return old, nil
		}
		return NewTuple(items...), nil
	}
	if array {
		return NewTuple(items...), nil
	}
	return NewList(items...), nil
}

// updateSet writes Go items into a set (in place) or frozenset (new unless its items
// are unchanged): items already there stay where they are, new ones go last.
func (u *updater) updateSet(old any, rv reflect.Value, item func(int) reflect.Value, n int) (any, error) {
	want, err := NewSet()
	if err != nil {
		return nil, err
	}
	var wantItems []any
	for i := range n {
		v, err := u.update(absent, item(i), fieldOpts{})
		if err != nil {
			return nil, atPath(err, indexPath(i))
		}
		if want.Has(v) {
			continue
		}
		if err := want.Add(v); err != nil {
			return nil, atPath(u.errorf("%v", strings.TrimPrefix(err.Error(), "pickle: ")), indexPath(i))
		}
		wantItems = append(wantItems, v)
	}
	switch s := old.(type) {
	case *Set:
		if u.dry {
			return old, nil
		}
		for _, it := range s.Items() {
			if !want.Has(it) {
				s.Remove(it)
			}
		}
		for _, it := range wantItems {
			if !s.Has(it) {
				_ = s.Add(it) // hashable: want holds it
			}
		}
		return old, nil
	case *FrozenSet:
		if s.Len() == len(wantItems) && !slices.ContainsFunc(wantItems, func(it any) bool { return !s.Has(it) }) {
			return old, nil
		}
		fs, _ := NewFrozenSet(wantItems...)
		return fs, nil
	case *Object:
		// Protocols 0 to 3: set(list) or frozenset(list).
		l, frozen, _ := setCall(s)
		have, err := NewSet(l.Items...)
		if err != nil {
			return want, nil // not a set CPython could load: replaced
		}
		var items []any
		for _, it := range l.Items {
			if want.Has(it) {
				items = append(items, it)
			}
		}
		for _, it := range wantItems {
			if !have.Has(it) {
				items = append(items, it)
			}
		}
		switch {
		case len(items) == len(l.Items) && slices.EqualFunc(items, l.Items, same):
			return old, nil
		case frozen:
			fs, _ := NewFrozenSet(items...)
			return fs, nil
		}
		if !u.dry {
			l.Items = items
		}
		return old, nil
	}
	return want, nil
}

// sortedMapKeys returns the keys of a Go map in a stable order: new dict keys and set
// items are added in this order.
func sortedMapKeys(rv reflect.Value) []reflect.Value {
	keys := rv.MapKeys()
	slices.SortFunc(keys, func(a, b reflect.Value) int {
		switch a.Kind() {
		case reflect.String:
			return strings.Compare(a.String(), b.String())
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return compareOrdered(a.Int(), b.Int())
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			return compareOrdered(a.Uint(), b.Uint())
		case reflect.Float32, reflect.Float64:
			return compareOrdered(a.Float(), b.Float())
		}
		return strings.Compare(fmt.Sprint(a.Interface()), fmt.Sprint(b.Interface()))
	})
	return keys
}

func compareOrdered[T int64 | uint64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (u *updater) updateMap(old any, rv reflect.Value) (any, error) {
	t := rv.Type()
	keys := sortedMapKeys(rv)
	isSet := t.Elem() == emptyStruct || t.Elem().Kind() == reflect.Bool
	if isSet && (isSetValue(old) || !isDictOrObject(old)) {
		var members []reflect.Value
		for _, k := range keys {
			if t.Elem().Kind() != reflect.Bool || rv.MapIndex(k).Bool() {
				members = append(members, k)
			}
		}
		return u.updateSet(old, rv, func(i int) reflect.Value { return members[i] }, len(members))
	}
	var dict *Dict
	switch x := old.(type) {
	case *Dict:
		dict = x
	case *Object:
		if !plainInstance(x) {
			break
		}
		dict = x.Attrs()
		if dict == nil && x.State == nil {
			dict = NewDict()
			if !u.dry {
				x.State, x.HasState = dict, true
			}
		}
	}
	result := old
	switch {
	case dict == nil:
		dict, result = NewDict(), nil
	case u.dry:
		dict = copyDict(dict)
	}
	present := make(map[any]bool, len(keys))
	for _, k := range keys {
		pk, err := u.update(absent, k, fieldOpts{})
		if err != nil {
			return nil, err
		}
		prev, had := dict.Get(pk)
		if !had {
			prev = absent
		}
		v, err := u.update(prev, rv.MapIndex(k), fieldOpts{})
		if err != nil {
			return nil, atPath(err, keyPath(pk))
		}
		if err := dict.Set(pk, v); err != nil {
			return nil, atPath(u.errorf("%v", strings.TrimPrefix(err.Error(), "pickle: ")), keyPath(pk))
		}
		if h, err := keyIdentity(pk); err == nil {
			present[h] = true
		}
	}
	// Keys the Go map no longer has are deleted, as Python code does with del d[k].
	for _, k := range dict.Keys() {
		if h, err := keyIdentity(k); err != nil || !present[h] {
			if !u.goHasKey(rv, k) {
				dict.Delete(k)
			}
		}
	}
	if result == nil {
		return dict, nil
	}
	return result, nil
}

// keyIdentity returns a comparable Go value for a str or int key, to check presence
// quickly; other keys are checked through the Go map.
func keyIdentity(k any) (any, error) {
	switch x := k.(type) {
	case string, int64, bool:
		return x, nil
	}
	return nil, fmt.Errorf("no identity")
}

// goHasKey reports whether the Go map has a key that the Python key k converts to.
func (u *updater) goHasKey(rv reflect.Value, k any) bool {
	kv := reflect.New(rv.Type().Key()).Elem()
	d := &binder{conv: u.conv, ptrs: map[ptrKey]reflect.Value{}, limit: DefaultMaxValues}
	if d.decode(k, kv, fieldOpts{}) != nil {
		return false
	}
	return rv.MapIndex(kv).IsValid()
}

// classOf returns the Python class a Go struct type stands for, if it says.
func classOf(t reflect.Type) (Global, bool) {
	if t.Implements(classNamerT) {
		return reflect.New(t).Elem().Interface().(ClassNamer).PythonClass(), true
	}
	if reflect.PointerTo(t).Implements(classNamerT) {
		return reflect.New(t).Interface().(ClassNamer).PythonClass(), true
	}
	return Global{}, false
}

// newInstance is a new instance of class without attributes.
func newInstance(class Global) *Object {
	return &Object{Callable: class, Construct: NewObj, Args: NewTuple()}
}

// updateStruct writes a struct into the object (or dict) it came from: the object of
// its `pickle:",object"` field, else old; or into a new one.
func (u *updater) updateStruct(old any, rv reflect.Value, key ptrKey) (any, error) {
	t := rv.Type()
	si, err := structFields(t)
	if err != nil {
		return nil, u.errorf("%v", err)
	}
	if si.object != nil {
		// The object field alone says which object the struct came from: nil is a
		// new one, wherever the struct now is.
		if o := fieldByIndex(rv, si.object).Interface().(*Object); o != nil {
			old = o
		} else {
			old = absent
		}
	}
	class, hasClass := classOf(t)
	var target any
	switch x := old.(type) {
	case *Object:
		if hasClass {
			if got, _ := x.Class(); got != class {
				return nil, u.errorf("Go %s is %s, where Python has %s", t, class, TypeName(old))
			}
		}
		if !plainInstance(x) {
			return nil, u.errorf("Go %s into Python %s", t, TypeName(old))
		}
		target = x
	case *Dict:
		if !hasClass {
			target = x
		}
	}
	isNew := target == nil
	if isNew {
		if hasClass {
			target = newInstance(class)
		} else {
			target = NewDict()
		}
	}
	if key.t != nil {
		u.done[key] = target // before the fields, so that cycles end here
	}
	switch x := target.(type) {
	case *Object:
		if err := u.fillObject(x, rv, isNew); err != nil {
			return nil, err
		}
		if si.object != nil && rv.CanSet() && !u.dry {
			fieldByIndex(rv, si.object).Set(reflect.ValueOf(x))
		}
	case *Dict:
		if err := u.fillDict(x, rv, si, isNew); err != nil {
			return nil, err
		}
	}
	return target, nil
}

// fillObject sets an object's attributes from a struct. An attribute whose Go value
// is unchanged from what the object held when this conversion first reached it is
// left alone, so that when two Go values hold one Python object, the one that
// changed wins.
func (u *updater) fillObject(obj *Object, rv reflect.Value, isNew bool) error {
	si, err := structFields(rv.Type())
	if err != nil {
		return u.errorf("%v", err)
	}
	attrs, slots, ok := objectDicts(obj)
	if !ok {
		return u.errorf("Python %s has a state of type %s, not attributes", TypeName(obj), TypeName(obj.State))
	}
	snap, seen := u.snap[obj]
	if !seen {
		snap = NewDict()
		for _, d := range []*Dict{attrs, slots} {
			if d != nil {
				for k, v := range d.All() {
					_ = snap.Set(k, v) // keys of a dict are hashable
				}
			}
		}
		u.snap[obj] = snap
	}
	return u.fillFields(si, rv, isNew, snap.Get, func(name string, v any) error {
		if u.dry {
			return nil
		}
		if slots != nil {
			if _, inSlots := slots.Get(name); inSlots {
				return slots.Set(name, v)
			}
		}
		return obj.SetAttr(name, v)
	})
}

// fillDict sets the str keys of a dict from a struct.
func (u *updater) fillDict(d *Dict, rv reflect.Value, si *structInfo, isNew bool) error {
	return u.fillFields(si, rv, isNew, d.Get, func(name string, v any) error {
		if u.dry {
			return nil
		}
		return d.Set(name, v)
	})
}

// copyDict returns a new dict with the items of d.
func copyDict(d *Dict) *Dict {
	c := NewDict()
	for k, v := range d.All() {
		_ = c.Set(k, v) // keys of a dict are hashable
	}
	return c
}

// fillFields sets the attributes of a struct's fields that changed from what get
// returns for them. An existing object (or dict) that lacks a field's attribute gets
// it only when the Go value is not zero: a zero value is what decoding left there.
func (u *updater) fillFields(si *structInfo, rv reflect.Value, isNew bool, get func(any) (any, bool), set func(string, any) error) error {
	for _, f := range si.fields {
		fv := fieldByIndex(rv, f.index)
		prev, had := get(f.name)
		if !had {
			prev = absent
		}
		if !had && (f.opts.omitempty || !isNew) && fv.IsZero() {
			continue
		}
		v, err := u.update(prev, fv, f.opts)
		if err != nil {
			return atPath(err, attrPath(f.name))
		}
		if had && same(v, prev) {
			continue
		}
		if err := set(f.name, v); err != nil {
			return atPath(u.errorf("%v", strings.TrimPrefix(err.Error(), "pickle: ")), attrPath(f.name))
		}
	}
	return nil
}
