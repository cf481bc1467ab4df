package pickle

import (
	"fmt"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Converting between the value model and Go types: UnmarshalValue fills Go values
// (structs, slices, maps, scalars) from a decoded value, UpdateValue writes them back
// into it, MarshalValue and NewObjectFrom make new Python values from them. The
// mapping is documented in the package doc ("Go types for Python values").

// ClassNamer is implemented by Go types that stand for one Python class. Decoding an
// object of another class into such a type is an error, and a value of the type
// that has no Python object yet (a new cart item appended to a slice) is written as
// a new instance of the class.
type ClassNamer interface {
	PythonClass() Global
}

// A MappingError reports a value that cannot be converted between Python and Go: a
// Python value of another type than the Go value expects, an int that overflows, an
// attribute no struct field names (with Converter.DisallowUnknownAttrs), a Go value
// with no Python form. Path says where, from the value converted: ".cart[2].price"
// is attribute (or str dict key) price of item 2 of attribute cart; other dict keys
// are written in brackets as Python literals.
type MappingError struct {
	Path string
	Msg  string
}

func (e *MappingError) Error() string {
	p := strings.TrimPrefix(e.Path, ".")
	if p == "" {
		return "pickle: " + e.Msg
	}
	return "pickle: " + p + ": " + e.Msg
}

// A Converter converts between Python values of the model and Go values. Its zero
// value is ready to use and is what UnmarshalValue, UpdateValue, MarshalValue and
// NewObjectFrom use.
type Converter struct {
	// DisallowUnknownAttrs makes decoding an object or dict into a struct fail when it
	// has an attribute (or key) that no field of the struct names.
	DisallowUnknownAttrs bool
	// MaxValues bounds how many Go values one conversion may make. A value the
	// pickle shares is converted once for each place it appears unless the Go type
	// there is a pointer, so without a bound a small pickle sharing values at every
	// level could expand exponentially. Zero means, for decoding, 65536 plus 16 for
	// each value in the Python value (counting what is shared once), which keeps
	// the time linear in its size; for writing Go values, DefaultMaxValues.
	MaxValues int
}

// DefaultMaxValues is the default Converter.MaxValues for writing Go values.
const DefaultMaxValues = 1 << 20

// minMaxValues is the part of the default decoding bound that does not depend on the
// size of the value.
const minMaxValues = 1 << 16

// maxConvertDepth bounds nesting in a conversion (a cycle through non-pointer Go types
// would otherwise never end).
const maxConvertDepth = 2 * DefaultMaxDepth

// UnmarshalValue stores the Python value v (a value of the model, as Unmarshal
// returns) in the Go value dst points to, as json.Unmarshal does for JSON: see the
// package doc for the mapping. It is Converter{}.Unmarshal.
func UnmarshalValue(v, dst any) error { return (&Converter{}).Unmarshal(v, dst) }

// Unmarshal stores the Python value v in the Go value dst points to.
func (c *Converter) Unmarshal(v, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return &MappingError{Msg: fmt.Sprintf("UnmarshalValue needs a non-nil pointer, not %T", dst)}
	}
	d := &binder{conv: c, ptrs: map[ptrKey]reflect.Value{}, limit: c.MaxValues}
	if d.limit <= 0 {
		d.limit, d.root = minMaxValues, v
	}
	return d.decode(v, rv.Elem(), fieldOpts{})
}

// --- struct fields ---

// fieldOpts are the options of a field's tag.
type fieldOpts struct {
	naive     bool // time.Time written as a naive datetime
	date      bool // time.Time written as a datetime.date
	omitempty bool // a zero value adds no attribute to a new object
}

type field struct {
	name  string // the Python attribute name
	index []int
	opts  fieldOpts
}

type structInfo struct {
	fields []field
	byName map[string]int
	object []int // index of the `pickle:",object"` field, or nil
}

var structCache sync.Map // reflect.Type -> *structInfo

var (
	objectPtrType = reflect.TypeFor[*Object]()
	timeType      = reflect.TypeFor[time.Time]()
	bigIntType    = reflect.TypeFor[big.Int]()
	decimalType   = reflect.TypeFor[Decimal]()
	globalType    = reflect.TypeFor[Global]()
	classNamerT   = reflect.TypeFor[ClassNamer]()
)

// structFields returns the fields of a struct type that map to Python attributes.
func structFields(t reflect.Type) (*structInfo, error) {
	if si, ok := structCache.Load(t); ok {
		return si.(*structInfo), nil
	}
	si := &structInfo{byName: map[string]int{}}
	if err := si.add(t, nil); err != nil {
		return nil, err
	}
	structCache.Store(t, si)
	return si, nil
}

func (si *structInfo) add(t reflect.Type, index []int) error {
	for i := range t.NumField() {
		f := t.Field(i)
		idx := append(append([]int(nil), index...), i)
		tag, hasTag := f.Tag.Lookup("pickle")
		if tag == "-" {
			continue
		}
		name, optText, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft != timeType && ft != bigIntType {
				if f.Type.Kind() == reflect.Pointer {
					return fmt.Errorf("embedded struct pointer %s in %s is not supported; embed the struct", f.Type, t)
				}
				if err := si.add(ft, idx); err != nil {
					return err
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		var o fieldOpts
		isObject := false
		for opt := range strings.SplitSeq(optText, ",") {
			switch opt {
			case "":
			case "naive":
				o.naive = true
			case "date":
				o.date = true
			case "omitempty":
				o.omitempty = true
			case "object":
				isObject = true
			default:
				return fmt.Errorf("field %s of %s: unknown pickle tag option %q", f.Name, t, opt)
			}
		}
		if isObject {
			if f.Type != objectPtrType {
				return fmt.Errorf("field %s of %s: the object option needs a *pickle.Object field", f.Name, t)
			}
			si.object = idx
			continue
		}
		if !hasTag || name == "" {
			name = snakeCase(f.Name)
		}
		name = internName(name)
		if j, dup := si.byName[name]; dup {
			return fmt.Errorf("fields %s and %s of %s both name the attribute %q", si.fieldName(t, j), f.Name, t, name)
		}
		si.byName[name] = len(si.fields)
		si.fields = append(si.fields, field{name: name, index: idx, opts: o})
	}
	return nil
}

func (si *structInfo) fieldName(t reflect.Type, j int) string {
	return t.FieldByIndex(si.fields[j].index).Name
}

var names sync.Map // string -> string

// internName returns one copy of each attribute name, as CPython interns
// identifiers: objects of any Go type write their attribute names from one storage,
// so the encoder refers back to a name it wrote before, as CPython's pickler does.
func internName(s string) string {
	v, _ := names.LoadOrStore(s, s)
	return v.(string)
}

// snakeCase is the default attribute name of a field: LastLogin is last_login,
// UserID is user_id, HTTPServer is http_server.
func snakeCase(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) {
			if i > 0 && (unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1]) ||
				(unicode.IsUpper(r[i-1]) && i+1 < len(r) && unicode.IsLower(r[i+1]))) {
				b.WriteByte('_')
			}
			c = unicode.ToLower(c)
		}
		b.WriteRune(c)
	}
	return b.String()
}

// fieldByIndex returns the field of v at index, allocating nothing: embedded structs
// are values.
func fieldByIndex(v reflect.Value, index []int) reflect.Value {
	for _, i := range index {
		v = v.Field(i)
	}
	return v
}

// --- paths ---

// Paths are built only for errors: each level a failure passes through puts its
// step in front of the path (attrPath, indexPath, keyPath).

// atPath puts a step in front of the path of a *MappingError.
func atPath(err error, step string) error {
	if me, ok := err.(*MappingError); ok {
		me.Path = step + me.Path
	}
	return err
}

func attrPath(name string) string {
	if isIdentifier(name) {
		return "." + name
	}
	return "[" + strconv.Quote(name) + "]"
}

func indexPath(i int) string { return "[" + strconv.Itoa(i) + "]" }

func keyPath(k any) string {
	if s, ok := k.(string); ok {
		return attrPath(s)
	}
	switch x := k.(type) {
	case int64, *big.Int, bool, float64:
		return fmt.Sprintf("[%v]", x)
	}
	return "[" + TypeName(k) + " key]"
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c != '_' && !unicode.IsLetter(c) && (i == 0 || !unicode.IsDigit(c)) {
			return false
		}
	}
	return true
}

// --- decoding ---

type ptrKey struct {
	p any // the model's container or object
	t reflect.Type
}

type binder struct {
	conv  *Converter
	ptrs  map[ptrKey]reflect.Value // model pointer -> the Go pointer made for it, so sharing survives
	steps int
	limit int // on steps
	root  any // the value decoded, while limit is still minMaxValues by default
	depth int
}

func (d *binder) mismatch(v any, t reflect.Type) error {
	return &MappingError{Msg: fmt.Sprintf("Python %s into Go %s", TypeName(v), t)}
}

func (d *binder) errorf(format string, args ...any) error {
	return &MappingError{Msg: fmt.Sprintf(format, args...)}
}

func (d *binder) enter() error {
	d.steps++
	d.depth++
	if d.steps > d.limit && d.root != nil {
		// A value this large: the default bound grows with its size.
		d.limit += 16 * countValues(d.root)
		d.root = nil
	}
	if d.steps > d.limit {
		return d.errorf("the value converts to more than %d Go values", d.limit)
	}
	if d.depth > maxConvertDepth {
		return d.errorf("the value nests more than %d deep", maxConvertDepth)
	}
	return nil
}

// countValues returns the number of values in a value of the model, counting each
// container and object once however often it is referenced.
func countValues(v any) int {
	seen := map[any]bool{}
	stack := []any{v}
	n := 0
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n++
		if !isContainer(x) || seen[x] {
			continue
		}
		seen[x] = true
		switch c := x.(type) {
		case *List:
			stack = append(stack, c.Items...)
		case *Tuple:
			stack = append(stack, c.Items...)
		case *Dict:
			for k, val := range c.All() {
				stack = append(stack, k, val)
			}
		case *Set:
			stack = append(stack, c.Items()...)
		case *FrozenSet:
			stack = append(stack, c.Items()...)
		case *Object:
			stack = append(stack, c.Callable, c.Args, c.State)
			if c.Kwargs != nil {
				stack = append(stack, c.Kwargs)
			}
			stack = append(stack, c.ListItems...)
			stack = append(stack, c.SetItems...)
			for _, kv := range c.DictItems {
				stack = append(stack, kv.Key, kv.Value)
			}
		}
	}
	return n
}

// decode stores v in rv.
func (d *binder) decode(v any, rv reflect.Value, o fieldOpts) error {
	if err := d.enter(); err != nil {
		return err
	}
	defer func() { d.depth-- }()
	t := rv.Type()
	if t.Kind() == reflect.Interface {
		if t.NumMethod() != 0 {
			return d.errorf("cannot decode into Go %s, an interface with methods", t)
		}
		if v == nil {
			rv.SetZero()
		} else {
			rv.Set(reflect.ValueOf(v))
		}
		return nil
	}
	if v == nil {
		rv.SetZero()
		return nil
	}
	if t.Kind() == reflect.Pointer {
		return d.decodePtr(v, rv)
	}
	switch t {
	case timeType:
		tm, err := timeOf(v)
		if err != nil {
			if err == errNotTime {
				return d.mismatch(v, t)
			}
			return d.errorf("%v", err)
		}
		rv.Set(reflect.ValueOf(tm))
		return nil
	case decimalType:
		s, ok := decimalOf(v)
		if !ok {
			return d.mismatch(v, t)
		}
		rv.SetString(s)
		return nil
	case bigIntType:
		switch x := v.(type) {
		case int64:
			rv.Set(reflect.ValueOf(big.NewInt(x)).Elem())
		case *big.Int:
			rv.Set(reflect.ValueOf(new(big.Int).Set(x)).Elem())
		default:
			return d.mismatch(v, t)
		}
		return nil
	case globalType:
		g, ok := v.(Global)
		if !ok {
			return d.mismatch(v, t)
		}
		rv.Set(reflect.ValueOf(g))
		return nil
	}
	switch t.Kind() {
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			return d.mismatch(v, t)
		}
		rv.SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			return d.mismatch(v, t)
		}
		rv.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var n int64
		switch x := v.(type) {
		case int64:
			n = x
		case *big.Int:
			if !x.IsInt64() {
				return d.errorf("Python int %s overflows Go %s", x, t)
			}
			n = x.Int64()
		default:
			return d.mismatch(v, t)
		}
		if rv.OverflowInt(n) {
			return d.errorf("Python int %d overflows Go %s", n, t)
		}
		rv.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		var n uint64
		switch x := v.(type) {
		case int64:
			if x < 0 {
				return d.errorf("Python int %d overflows Go %s", x, t)
			}
			n = uint64(x)
		case *big.Int:
			if !x.IsUint64() {
				return d.errorf("Python int %s overflows Go %s", x, t)
			}
			n = x.Uint64()
		default:
			return d.mismatch(v, t)
		}
		if rv.OverflowUint(n) {
			return d.errorf("Python int %d overflows Go %s", n, t)
		}
		rv.SetUint(n)
	case reflect.Float32, reflect.Float64:
		var f float64
		switch x := v.(type) {
		case float64:
			f = x
		case int64:
			// An int is accepted where it converts exactly, as Python code mixes
			// 5 and 5.0 freely.
			if x < -1<<53 || x > 1<<53 {
				return d.errorf("Python int %d does not convert exactly to Go %s", x, t)
			}
			f = float64(x)
		default:
			return d.mismatch(v, t)
		}
		if rv.OverflowFloat(f) {
			return d.errorf("Python float %v overflows Go %s", f, t)
		}
		rv.SetFloat(f)
	case reflect.Slice:
		return d.decodeSlice(v, rv)
	case reflect.Array:
		items, ok := sequenceItems(v)
		if !ok {
			return d.mismatch(v, t)
		}
		if len(items) != t.Len() {
			return d.errorf("Python %s of %d items into Go %s", TypeName(v), len(items), t)
		}
		for i, it := range items {
			if err := d.decode(it, rv.Index(i), fieldOpts{}); err != nil {
				return atPath(err, indexPath(i))
			}
		}
	case reflect.Map:
		return d.decodeMap(v, rv)
	case reflect.Struct:
		return d.decodeStruct(v, rv)
	default:
		return d.errorf("cannot decode into Go %s", t)
	}
	return nil
}

// modelPointer reports whether t is one of the model's own pointer types, which a
// field may use to take the Python value as it is.
func modelPointer(t reflect.Type) bool {
	switch t {
	case objectPtrType, reflect.TypeFor[*List](), reflect.TypeFor[*Dict](), reflect.TypeFor[*Tuple](),
		reflect.TypeFor[*Set](), reflect.TypeFor[*FrozenSet](), reflect.TypeFor[*ByteArray]():
		return true
	}
	return false
}

func (d *binder) decodePtr(v any, rv reflect.Value) error {
	t := rv.Type()
	if modelPointer(t) {
		x := reflect.ValueOf(v)
		if x.Type() != t {
			return d.mismatch(v, t)
		}
		rv.Set(x)
		return nil
	}
	if t == reflect.TypeFor[*big.Int]() {
		switch x := v.(type) {
		case int64:
			rv.Set(reflect.ValueOf(big.NewInt(x)))
		case *big.Int:
			rv.Set(reflect.ValueOf(new(big.Int).Set(x)))
		default:
			return d.mismatch(v, t)
		}
		return nil
	}
	shared := isContainer(v)
	if shared {
		if p, ok := d.ptrs[ptrKey{v, t}]; ok {
			rv.Set(p)
			return nil
		}
	}
	p := reflect.New(t.Elem())
	if shared {
		d.ptrs[ptrKey{v, t}] = p
	}
	if err := d.decode(v, p.Elem(), fieldOpts{}); err != nil {
		return err
	}
	rv.Set(p)
	return nil
}

// sequenceItems returns the items of a list, tuple, set or frozenset.
func sequenceItems(v any) ([]any, bool) {
	switch x := v.(type) {
	case *List:
		return x.Items, true
	case *Tuple:
		return x.Items, true
	case *Set:
		return x.Items(), true
	case *FrozenSet:
		return x.Items(), true
	case *Object:
		if l, _, ok := setCall(x); ok {
			return l.Items, true
		}
	}
	return nil, false
}

// isSetValue reports whether v is a set or frozenset, in any protocol's form.
func isSetValue(v any) bool {
	switch x := v.(type) {
	case *Set, *FrozenSet:
		return true
	case *Object:
		_, _, ok := setCall(x)
		return ok
	}
	return false
}

func isDictOrObject(v any) bool {
	switch v.(type) {
	case *Dict, *Object:
		return true
	}
	return false
}

// setCall returns the list of a set or frozenset as protocols 0 to 3 pickle it, a
// call builtins.set(list) or builtins.frozenset(list).
func setCall(o *Object) (items *List, frozen, ok bool) {
	g, isGlobal := o.Callable.(Global)
	if !isGlobal || g.Module != "builtins" || (g.Name != "set" && g.Name != "frozenset") || o.Construct != Reduce ||
		o.Args == nil || len(o.Args.Items) != 1 || o.HasState || len(o.ListItems)+len(o.DictItems)+len(o.SetItems) > 0 {
		return nil, false, false
	}
	l, ok := o.Args.Items[0].(*List)
	return l, g.Name == "frozenset", ok
}

// isContainer reports whether v is a container or object of the model: a value with
// identity, which the pickle may share.
func isContainer(v any) bool {
	switch v.(type) {
	case *List, *Tuple, *Dict, *Set, *FrozenSet, *Object, *ByteArray:
		return true
	}
	return false
}

func (d *binder) decodeSlice(v any, rv reflect.Value) error {
	t := rv.Type()
	if t.Elem().Kind() == reflect.Uint8 {
		var b []byte
		switch x := v.(type) {
		case []byte:
			b = x
		case *ByteArray:
			b = x.Data
		default:
			bb, ok := bytesArg(v)
			if !ok {
				return d.mismatch(v, t)
			}
			b = bb
		}
		out := reflect.MakeSlice(t, len(b), len(b))
		reflect.Copy(out, reflect.ValueOf(b))
		rv.Set(out)
		return nil
	}
	items, ok := sequenceItems(v)
	if !ok {
		return d.mismatch(v, t)
	}
	out := reflect.MakeSlice(t, len(items), len(items))
	for i, it := range items {
		if err := d.decode(it, out.Index(i), fieldOpts{}); err != nil {
			return atPath(err, indexPath(i))
		}
	}
	rv.Set(out)
	return nil
}

var emptyStruct = reflect.TypeFor[struct{}]()

func (d *binder) decodeMap(v any, rv reflect.Value) error {
	t := rv.Type()
	out := reflect.MakeMap(t)
	decodeKey := func(k any) (reflect.Value, error) {
		kv := reflect.New(t.Key()).Elem()
		if err := d.decode(k, kv, fieldOpts{}); err != nil {
			return kv, atPath(err, keyPath(k))
		}
		return kv, nil
	}
	switch {
	case isSetValue(v):
		if t.Elem() != emptyStruct && t.Elem().Kind() != reflect.Bool {
			return d.mismatch(v, t)
		}
		items, _ := sequenceItems(v)
		for _, it := range items {
			kv, err := decodeKey(it)
			if err != nil {
				return err
			}
			ev := reflect.New(t.Elem()).Elem()
			if ev.Kind() == reflect.Bool {
				ev.SetBool(true)
			}
			out.SetMapIndex(kv, ev)
		}
	case isDictOrObject(v):
		dicts, err := d.attrDicts(v, t)
		if err != nil {
			return err
		}
		for _, dict := range dicts {
			for k, val := range dict.All() {
				kv, err := decodeKey(k)
				if err != nil {
					return err
				}
				ev := reflect.New(t.Elem()).Elem()
				if err := d.decode(val, ev, fieldOpts{}); err != nil {
					return atPath(err, keyPath(k))
				}
				out.SetMapIndex(kv, ev)
			}
		}
	default:
		return d.mismatch(v, t)
	}
	rv.Set(out)
	return nil
}

// attrDicts returns the dicts whose items a struct or map is decoded from: a dict
// itself, or an object's attribute dict and, for a class with __slots__, its slots
// dict (an object's state (dict, slots)).
func (d *binder) attrDicts(v any, t reflect.Type) ([]*Dict, error) {
	switch x := v.(type) {
	case *Dict:
		return []*Dict{x}, nil
	case *Object:
		if want, ok := classOf(t); ok {
			if got, _ := x.Class(); got != want {
				return nil, d.errorf("Python %s into Go %s, which is %s", TypeName(v), t, want)
			}
		}
		if !plainInstance(x) {
			return nil, d.mismatch(v, t)
		}
		attrs, slots, ok := objectDicts(x)
		if !ok {
			return nil, d.errorf("Python %s has a state of type %s, not attributes; decode it into a *pickle.Object", TypeName(v), TypeName(x.State))
		}
		var out []*Dict
		for _, a := range []*Dict{attrs, slots} {
			if a != nil {
				out = append(out, a)
			}
		}
		return out, nil
	}
	return nil, d.mismatch(v, t)
}

// objectDicts returns the attribute dict and the slots dict of an object's state,
// either of which may be nil; ok is false for a state that holds no attributes in
// those forms (what a class's own __setstate__ reads).
func objectDicts(o *Object) (attrs, slots *Dict, ok bool) {
	switch s := o.State.(type) {
	case nil:
		return nil, nil, true
	case *Dict:
		return s, nil, true
	case *Tuple:
		if len(s.Items) != 2 {
			return nil, nil, false
		}
		attrs, ok1 := s.Items[0].(*Dict)
		slots, ok2 := s.Items[1].(*Dict)
		return attrs, slots, (ok1 || s.Items[0] == nil) && (ok2 || s.Items[1] == nil)
	}
	return nil, nil, false
}

// plainInstance reports whether an object is an instance of a class made by the
// class's own construction (NEWOBJ, NEWOBJ_EX, INST, copyreg._reconstructor), whose
// state is its attributes: not a value such as a datetime or a Decimal, made by a
// call whose arguments are the value.
func plainInstance(o *Object) bool {
	if o.Construct != Reduce {
		return true
	}
	g, ok := o.Callable.(Global)
	return ok && (g.Module == "copyreg" || g.Module == "copy_reg") && (g.Name == "_reconstructor" || g.Name == "__newobj__")
}

func (d *binder) decodeStruct(v any, rv reflect.Value) error {
	t := rv.Type()
	si, err := structFields(t)
	if err != nil {
		return d.errorf("%v", err)
	}
	dicts, err := d.attrDicts(v, t)
	if err != nil {
		return err
	}
	if si.object != nil {
		o, _ := v.(*Object)
		fieldByIndex(rv, si.object).Set(reflect.ValueOf(o))
	}
	for _, dict := range dicts {
		for k, val := range dict.All() {
			name, ok := k.(string)
			j, named := si.byName[name]
			if !ok || !named {
				if d.conv.DisallowUnknownAttrs {
					return atPath(d.errorf("Python attribute has no field in Go %s", t), keyPath(k))
				}
				continue
			}
			f := si.fields[j]
			if err := d.decode(val, fieldByIndex(rv, f.index), f.opts); err != nil {
				return atPath(err, attrPath(name))
			}
		}
	}
	// Fields whose attribute the object lacks keep their value, as encoding/json
	// leaves fields absent from the input.
	return nil
}

// latin1Bytes encodes text whose characters are all below U+0100 as Latin-1.
func latin1Bytes(s string) ([]byte, bool) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return nil, false
		}
		b = append(b, byte(r))
	}
	return b, true
}
