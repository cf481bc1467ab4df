package pickle

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// ToJSON returns a JSON view of v, a value of the model (or a plain Go value Marshal
// accepts), for people to read: admin tools, logs, debugging. Python's types stay
// visible where JSON alone would lose them:
//
//	None, bool, str, list      null, true/false, "...", [...]
//	int                        a number, however large: 12, 340282366920938463463374607431768211456
//	float                      a number as Python's repr writes it, so always with "." or
//	                           an exponent (1.0, 1e+16); {"__float__": "nan"}, "inf" or "-inf"
//	dict with str keys         {"key": value, ...}
//	other dict                 {"__dict__": [[key, value], ...]} (also for str keys when the
//	                           first looks like a tag, see below)
//	tuple, set, frozenset      {"__tuple__": [...]}, {"__set__": [...]}, {"__frozenset__": [...]}
//	bytes, bytearray           {"__bytes__": "base64"}, {"__bytearray__": "base64"}
//	class or function          {"__global__": "module.QualName"}
//	datetime.datetime          {"__datetime__": "2026-11-21T09:30:00.250000+01:00"} (isoformat;
//	                           "__tzinfo__" holds a tzinfo other than a fixed offset)
//	datetime.date, .time       {"__date__": "2026-11-21"}, {"__time__": "09:30:15.000500"}
//	datetime.timedelta         {"__timedelta__": "-1 day, 0:00:05"} (as Python's str)
//	decimal.Decimal            {"__decimal__": "12.50"}
//	other objects              {"__class__": "myapp.models.Account", "__state__": {...}}, plus
//	                           "__construct__" (when not NEWOBJ), "__callable__", "__args__",
//	                           "__kwargs__", "__listitems__", "__dictitems__", "__setitems__"
//	                           when the object has them
//
// A JSON object whose first key has the form __name__ is always such a tagged value; a
// dict whose first key looks like one is written in the "__dict__" form. A list, dict,
// set, tuple, bytearray or object that the value references more than once gets an
// "__id__" number where it first appears (a list or dict then takes the
// {"__list__": [...]} or {"__dict__": ...} form to carry it) and is written as
// {"__ref__": n} everywhere else, so shared references and cycles stay visible and the
// output is finite. Strings whose lone surrogates are in their surrogatepass form are
// written with \ud800-style escapes.
func ToJSON(v any) ([]byte, error) {
	w := &jsonWriter{refs: make(map[unsafe.Pointer]int), ids: make(map[unsafe.Pointer]int)}
	if err := w.count(v, 0); err != nil {
		return nil, err
	}
	if err := w.write(v, 0); err != nil {
		return nil, err
	}
	return w.buf.Bytes(), nil
}

type jsonWriter struct {
	buf  bytes.Buffer
	refs map[unsafe.Pointer]int // how often each container or object is referenced
	ids  map[unsafe.Pointer]int // the __id__ of a shared one already written
}

// identity returns the pointer of a value with identity (containers and objects), or
// nil for values without one. An empty tuple has none, as in CPython.
func identity(v any) unsafe.Pointer {
	switch x := v.(type) {
	case *List:
		return unsafe.Pointer(x)
	case *Dict:
		return unsafe.Pointer(x)
	case *Tuple:
		if x != nil && len(x.Items) == 0 {
			return nil
		}
		return unsafe.Pointer(x)
	case *Set:
		return unsafe.Pointer(x)
	case *FrozenSet:
		return unsafe.Pointer(x)
	case *ByteArray:
		return unsafe.Pointer(x)
	case *Object:
		return unsafe.Pointer(x)
	}
	return nil
}

var errJSONDepth = errors.New("pickle: value nests too deeply for ToJSON")

// count records how often each container or object is reached, descending into each
// only the first time.
func (w *jsonWriter) count(v any, depth int) error {
	p := identity(v)
	if p == nil {
		switch x := v.(type) {
		case []any:
			return w.countAll(x, depth)
		case map[string]any:
			if depth >= defaultEncodeDepth {
				return errJSONDepth
			}
			for _, e := range x {
				if err := w.count(e, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	w.refs[p]++
	if w.refs[p] > 1 {
		return nil
	}
	if depth >= defaultEncodeDepth {
		return errJSONDepth
	}
	var err error
	forChildren(v, func(c any) bool {
		err = w.count(c, depth+1)
		return err == nil
	})
	return err
}

func (w *jsonWriter) countAll(items []any, depth int) error {
	if depth >= defaultEncodeDepth {
		return errJSONDepth
	}
	for _, e := range items {
		if err := w.count(e, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// forChildren calls f with each value v refers to, in the order ToJSON writes them.
func forChildren(v any, f func(any) bool) {
	each := func(items []any) bool {
		for _, it := range items {
			if !f(it) {
				return false
			}
		}
		return true
	}
	switch x := v.(type) {
	case *List:
		each(x.Items)
	case *Tuple:
		each(x.Items)
	case *Dict:
		for i := range x.t.keys {
			if !f(x.t.keys[i]) || !f(x.t.vals[i]) {
				return
			}
		}
	case *Set:
		each(x.t.keys)
	case *FrozenSet:
		each(x.t.keys)
	case *Object:
		if !f(x.Callable) || (x.Args != nil && !f(x.Args)) || (x.Kwargs != nil && !f(x.Kwargs)) || !each(x.ListItems) {
			return
		}
		for _, kv := range x.DictItems {
			if !f(kv.Key) || !f(kv.Value) {
				return
			}
		}
		if !each(x.SetItems) {
			return
		}
		if x.HasState {
			f(x.State)
		}
	}
}

// open writes the start of a tagged object: {"tag": — with the __id__ of a shared
// value first registered, so that references inside it can point back to it.
func (w *jsonWriter) open(tag string, p unsafe.Pointer) (id int) {
	if p != nil && w.refs[p] > 1 {
		id = len(w.ids) + 1
		w.ids[p] = id
	}
	w.buf.WriteString(`{"`)
	w.buf.WriteString(tag)
	w.buf.WriteString(`":`)
	return id
}

// close ends a tagged object, adding its __id__ when it is shared.
func (w *jsonWriter) close(id int) {
	if id > 0 {
		w.buf.WriteString(`,"__id__":`)
		w.buf.WriteString(strconv.Itoa(id))
	}
	w.buf.WriteByte('}')
}

func (w *jsonWriter) write(v any, depth int) error {
	if depth > defaultEncodeDepth {
		return errJSONDepth
	}
	if p := identity(v); p != nil {
		if id, ok := w.ids[p]; ok {
			fmt.Fprintf(&w.buf, `{"__ref__":%d}`, id)
			return nil
		}
	}
	switch x := v.(type) {
	case nil:
		w.buf.WriteString("null")
	case bool:
		w.buf.WriteString(strconv.FormatBool(x))
	case int64:
		w.buf.WriteString(strconv.FormatInt(x, 10))
	case *big.Int:
		if x == nil {
			return errors.New("pickle: nil *big.Int")
		}
		w.buf.WriteString(x.String())
	case float64:
		w.writeFloat(x)
	case string:
		return w.writeString(x)
	case []byte:
		w.buf.WriteString(`{"__bytes__":"`)
		w.buf.WriteString(base64.StdEncoding.EncodeToString(x))
		w.buf.WriteString(`"}`)
	case Global:
		w.buf.WriteString(`{"__global__":`)
		if err := w.writeString(x.String()); err != nil {
			return err
		}
		w.buf.WriteByte('}')
	case *ByteArray:
		if x == nil {
			return errors.New("pickle: nil *ByteArray")
		}
		id := w.open("__bytearray__", unsafe.Pointer(x))
		w.buf.WriteByte('"')
		w.buf.WriteString(base64.StdEncoding.EncodeToString(x.Data))
		w.buf.WriteByte('"')
		w.close(id)
	case *List:
		if x == nil {
			return errors.New("pickle: nil *List")
		}
		if w.refs[unsafe.Pointer(x)] > 1 {
			id := w.open("__list__", unsafe.Pointer(x))
			if err := w.writeArray(x.Items, depth); err != nil {
				return err
			}
			w.close(id)
			return nil
		}
		return w.writeArray(x.Items, depth)
	case *Tuple:
		if x == nil {
			return errors.New("pickle: nil *Tuple")
		}
		return w.writeTagged("__tuple__", identity(x), x.Items, depth)
	case *Set:
		if x == nil {
			return errors.New("pickle: nil *Set")
		}
		return w.writeTagged("__set__", unsafe.Pointer(x), x.t.keys, depth)
	case *FrozenSet:
		if x == nil {
			return errors.New("pickle: nil *FrozenSet")
		}
		return w.writeTagged("__frozenset__", unsafe.Pointer(x), x.t.keys, depth)
	case *Dict:
		if x == nil {
			return errors.New("pickle: nil *Dict")
		}
		return w.writeDict(x, depth)
	case *Object:
		if x == nil {
			return errors.New("pickle: nil *Object")
		}
		return w.writeObject(x, depth)
	default:
		return w.writeGo(v, depth)
	}
	return nil
}

func (w *jsonWriter) writeTagged(tag string, p unsafe.Pointer, items []any, depth int) error {
	id := w.open(tag, p)
	if err := w.writeArray(items, depth); err != nil {
		return err
	}
	w.close(id)
	return nil
}

func (w *jsonWriter) writeArray(items []any, depth int) error {
	w.buf.WriteByte('[')
	for i, it := range items {
		if i > 0 {
			w.buf.WriteByte(',')
		}
		if err := w.write(it, depth+1); err != nil {
			return err
		}
	}
	w.buf.WriteByte(']')
	return nil
}

// isTag reports whether a JSON object key has the __name__ form of the tags.
func isTag(k string) bool {
	return len(k) > 4 && strings.HasPrefix(k, "__") && strings.HasSuffix(k, "__")
}

func (w *jsonWriter) writeDict(d *Dict, depth int) error {
	strKeys := true
	for _, k := range d.t.keys {
		if _, ok := k.(string); !ok {
			strKeys = false
			break
		}
	}
	p := unsafe.Pointer(d)
	asObject := strKeys && (len(d.t.keys) == 0 || !isTag(d.t.keys[0].(string)))
	if asObject && w.refs[p] <= 1 {
		return w.writeStrMap(d, depth)
	}
	id := w.open("__dict__", p)
	if asObject {
		if err := w.writeStrMap(d, depth); err != nil {
			return err
		}
	} else if err := w.writePairs(len(d.t.keys), func(i int) (any, any) { return d.t.keys[i], d.t.vals[i] }, depth); err != nil {
		return err
	}
	w.close(id)
	return nil
}

func (w *jsonWriter) writeStrMap(d *Dict, depth int) error {
	w.buf.WriteByte('{')
	for i, k := range d.t.keys {
		if i > 0 {
			w.buf.WriteByte(',')
		}
		if err := w.writeString(k.(string)); err != nil {
			return err
		}
		w.buf.WriteByte(':')
		if err := w.write(d.t.vals[i], depth+1); err != nil {
			return err
		}
	}
	w.buf.WriteByte('}')
	return nil
}

func (w *jsonWriter) writePairs(n int, item func(int) (any, any), depth int) error {
	w.buf.WriteByte('[')
	for i := range n {
		if i > 0 {
			w.buf.WriteByte(',')
		}
		k, v := item(i)
		w.buf.WriteByte('[')
		if err := w.write(k, depth+1); err != nil {
			return err
		}
		w.buf.WriteByte(',')
		if err := w.write(v, depth+1); err != nil {
			return err
		}
		w.buf.WriteByte(']')
	}
	w.buf.WriteByte(']')
	return nil
}

func (w *jsonWriter) writeObject(o *Object, depth int) error {
	p := unsafe.Pointer(o)
	if w.refs[p] <= 1 {
		if tag, text, tz, ok := pyValueText(o); ok {
			w.buf.WriteString(`{"`)
			w.buf.WriteString(tag)
			w.buf.WriteString(`":`)
			if err := w.writeString(text); err != nil {
				return err
			}
			if tz != nil {
				w.buf.WriteString(`,"__tzinfo__":`)
				if err := w.write(tz, depth+1); err != nil {
					return err
				}
			}
			w.buf.WriteByte('}')
			return nil
		}
	}
	class, hasClass := o.Class()
	tag := "__class__"
	if !hasClass {
		tag = "__callable__"
	}
	id := w.open(tag, p)
	var err error
	field := func(name string, write func() error) {
		if err != nil {
			return
		}
		w.buf.WriteString(`,"`)
		w.buf.WriteString(name)
		w.buf.WriteString(`":`)
		err = write()
	}
	if hasClass {
		if err := w.writeString(class.String()); err != nil {
			return err
		}
		if c, ok := o.Callable.(Global); !ok || c != class {
			field("__callable__", func() error { return w.write(o.Callable, depth+1) })
		}
	} else if err := w.write(o.Callable, depth+1); err != nil {
		return err
	}
	if o.Construct != NewObj {
		field("__construct__", func() error { return w.writeString(o.Construct.String()) })
	}
	if o.Args != nil && (len(o.Args.Items) > 0 || w.refs[unsafe.Pointer(o.Args)] > 1) {
		field("__args__", func() error { return w.write(o.Args, depth+1) })
	}
	if o.Kwargs != nil {
		field("__kwargs__", func() error { return w.write(o.Kwargs, depth+1) })
	}
	if len(o.ListItems) > 0 {
		field("__listitems__", func() error { return w.writeArray(o.ListItems, depth+1) })
	}
	if len(o.DictItems) > 0 {
		field("__dictitems__", func() error {
			return w.writePairs(len(o.DictItems), func(i int) (any, any) { return o.DictItems[i].Key, o.DictItems[i].Value }, depth+1)
		})
	}
	if len(o.SetItems) > 0 {
		field("__setitems__", func() error { return w.writeArray(o.SetItems, depth+1) })
	}
	if o.HasState {
		field("__state__", func() error { return w.write(o.State, depth+1) })
	}
	if err != nil {
		return err
	}
	w.close(id)
	return nil
}

// writeGo writes the plain Go values Marshal accepts.
func (w *jsonWriter) writeGo(v any, depth int) error {
	switch x := v.(type) {
	case int:
		w.buf.WriteString(strconv.Itoa(x))
	case int8, int16, int32, uint, uint8, uint16, uint32, uint64:
		fmt.Fprint(&w.buf, x)
	case float32:
		w.writeFloat(float64(x))
	case []any:
		return w.writeArray(x, depth)
	case []string:
		items := make([]any, len(x))
		for i, s := range x {
			items[i] = s
		}
		return w.writeArray(items, depth)
	case map[string]any:
		return w.writeGoMap(sortedKeys(x), func(k string) any { return x[k] }, depth)
	case map[string]string:
		return w.writeGoMap(sortedKeys(x), func(k string) any { return x[k] }, depth)
	case time.Time:
		o, err := dateTimeObject(x)
		if err != nil {
			return fmt.Errorf("pickle: %w", err)
		}
		return w.writeObject(o, depth)
	default:
		return &UnsupportedTypeError{Type: reflect.TypeOf(v)}
	}
	return nil
}

func (w *jsonWriter) writeGoMap(keys []string, val func(string) any, depth int) error {
	if depth > defaultEncodeDepth {
		return errJSONDepth
	}
	if len(keys) > 0 && isTag(keys[0]) {
		w.buf.WriteString(`{"__dict__":`)
		if err := w.writePairs(len(keys), func(i int) (any, any) { return keys[i], val(keys[i]) }, depth); err != nil {
			return err
		}
		w.buf.WriteByte('}')
		return nil
	}
	w.buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			w.buf.WriteByte(',')
		}
		if err := w.writeString(k); err != nil {
			return err
		}
		w.buf.WriteByte(':')
		if err := w.write(val(k), depth+1); err != nil {
			return err
		}
	}
	w.buf.WriteByte('}')
	return nil
}

// writeFloat writes a float as Python's repr does (shortest round-trip digits,
// exponent form below 1e-4 and from 1e16), which is also valid JSON.
func (w *jsonWriter) writeFloat(f float64) {
	switch {
	case math.IsNaN(f):
		w.buf.WriteString(`{"__float__":"nan"}`)
		return
	case math.IsInf(f, 1):
		w.buf.WriteString(`{"__float__":"inf"}`)
		return
	case math.IsInf(f, -1):
		w.buf.WriteString(`{"__float__":"-inf"}`)
		return
	}
	w.buf.WriteString(pyFloatRepr(f))
}

func pyFloatRepr(f float64) string {
	e := strconv.FormatFloat(f, 'e', -1, 64) // [-]d[.ddd]e±XX
	sign := ""
	if e[0] == '-' {
		sign, e = "-", e[1:]
	}
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	digits := strings.Replace(mant, ".", "", 1)
	if exp < -4 || exp >= 16 {
		out := digits[:1]
		if len(digits) > 1 {
			out += "." + digits[1:]
		}
		es := "+"
		if exp < 0 {
			es, exp = "-", -exp
		}
		return fmt.Sprintf("%s%se%s%02d", sign, out, es, exp)
	}
	if exp < 0 {
		return sign + "0." + strings.Repeat("0", -exp-1) + digits
	}
	if len(digits) <= exp+1 {
		return sign + digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
	}
	return sign + digits[:exp+1] + "." + digits[exp+1:]
}

// writeString writes a JSON string. Lone surrogates, held in their 3-byte
// surrogatepass form, become \udXXX escapes.
func (w *jsonWriter) writeString(s string) error {
	if !validPyString(s) {
		return fmt.Errorf("pickle: str is not UTF-8: %q", truncate(s, 40))
	}
	const hex = "0123456789abcdef"
	w.buf.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				w.buf.WriteByte('\\')
				w.buf.WriteByte(c)
			case c == '\n':
				w.buf.WriteString(`\n`)
			case c == '\r':
				w.buf.WriteString(`\r`)
			case c == '\t':
				w.buf.WriteString(`\t`)
			case c < 0x20 || c == 0x7f:
				w.buf.WriteString(`\u00`)
				w.buf.WriteByte(hex[c>>4])
				w.buf.WriteByte(hex[c&0xf])
			default:
				w.buf.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 { // a surrogate: ED A0..BF 80..BF
			r = rune(c&0x0f)<<12 | rune(s[i+1]&0x3f)<<6 | rune(s[i+2]&0x3f)
			fmt.Fprintf(&w.buf, `\u%04x`, r)
			i += 3
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			fmt.Fprintf(&w.buf, `\u%04x`, r)
		} else {
			w.buf.WriteString(s[i : i+size])
		}
		i += size
	}
	w.buf.WriteByte('"')
	return nil
}

// --- the standard value types of datetime and decimal ---

// pyValueText recognizes the objects CPython pickles for datetime.datetime, date,
// time, timedelta and decimal.Decimal, and returns their tag and readable text. tz is
// a tzinfo the text cannot hold (anything but a fixed offset).
func pyValueText(o *Object) (tag, text string, tz any, ok bool) {
	g, isGlobal := o.Callable.(Global)
	if !isGlobal || o.Construct != Reduce || o.Args == nil || o.HasState ||
		len(o.ListItems)+len(o.DictItems)+len(o.SetItems) > 0 || o.Kwargs != nil {
		return "", "", nil, false
	}
	args := o.Args.Items
	switch g {
	case Global{"decimal", "Decimal"}:
		if len(args) == 1 {
			if s, ok := args[0].(string); ok {
				return "__decimal__", s, nil, true
			}
		}
	case Global{"datetime", "timedelta"}:
		if len(args) == 3 {
			d, ok1 := args[0].(int64)
			s, ok2 := args[1].(int64)
			us, ok3 := args[2].(int64)
			if ok1 && ok2 && ok3 && s >= 0 && s < 86400 && us >= 0 && us < 1000000 && d > -1000000000 && d < 1000000000 {
				return "__timedelta__", timedeltaText(d, s, us), nil, true
			}
		}
	case Global{"datetime", "date"}:
		if len(args) == 1 {
			if b, ok := bytesArg(args[0]); ok && len(b) == 4 {
				y, m, d := int(b[0])<<8|int(b[1]), int(b[2]), int(b[3])
				if validDate(y, m, d) {
					return "__date__", fmt.Sprintf("%04d-%02d-%02d", y, m, d), nil, true
				}
			}
		}
	case Global{"datetime", "time"}:
		if len(args) == 1 || len(args) == 2 {
			if b, ok := bytesArg(args[0]); ok && len(b) == 6 && b[0]&0x7f < 24 && b[1] < 60 && b[2] < 60 {
				us := int(b[3])<<16 | int(b[4])<<8 | int(b[5])
				if us < 1000000 {
					text = clockText(int(b[0]&0x7f), int(b[1]), int(b[2]), us)
					return timeWithZone("__time__", text, args)
				}
			}
		}
	case Global{"datetime", "datetime"}:
		if len(args) == 1 || len(args) == 2 {
			if b, ok := bytesArg(args[0]); ok && len(b) == 10 {
				y, m, d := int(b[0])<<8|int(b[1]), int(b[2]&0x7f), int(b[3])
				us := int(b[7])<<16 | int(b[8])<<8 | int(b[9])
				if validDate(y, m, d) && b[4] < 24 && b[5] < 60 && b[6] < 60 && us < 1000000 {
					text = fmt.Sprintf("%04d-%02d-%02dT%s", y, m, d, clockText(int(b[4]), int(b[5]), int(b[6]), us))
					return timeWithZone("__datetime__", text, args)
				}
			}
		}
	}
	return "", "", nil, false
}

// timeWithZone adds a fixed UTC offset to an isoformat text, or returns the tzinfo to
// show beside it.
func timeWithZone(tag, text string, args []any) (string, string, any, bool) {
	if len(args) == 1 || args[1] == nil {
		return tag, text, nil, true
	}
	if off, ok := fixedOffset(args[1]); ok {
		return tag, text + offsetText(off), nil, true
	}
	return tag, text, args[1], true
}

// fixedOffset recognizes datetime.timezone(timedelta) as CPython pickles it and
// returns its offset in microseconds.
func fixedOffset(v any) (int64, bool) {
	tz, ok := v.(*Object)
	if !ok || tz.Construct != Reduce || tz.Callable != (Global{"datetime", "timezone"}) || tz.Args == nil ||
		len(tz.Args.Items) != 1 || tz.HasState {
		return 0, false
	}
	td, ok := tz.Args.Items[0].(*Object)
	if !ok {
		return 0, false
	}
	if tag, _, _, ok := pyValueText(td); !ok || tag != "__timedelta__" {
		return 0, false
	}
	a := td.Args.Items
	off := (a[0].(int64)*86400+a[1].(int64))*1000000 + a[2].(int64)
	if off <= -86400*1000000 || off >= 86400*1000000 {
		return 0, false
	}
	return off, true
}

func offsetText(us int64) string {
	sign := "+"
	if us < 0 {
		sign, us = "-", -us
	}
	s := us / 1000000
	t := fmt.Sprintf("%s%02d:%02d", sign, s/3600, s/60%60)
	if s%60 != 0 || us%1000000 != 0 {
		t += fmt.Sprintf(":%02d", s%60)
	}
	if us%1000000 != 0 {
		t += fmt.Sprintf(".%06d", us%1000000)
	}
	return t
}

func clockText(h, m, s, us int) string {
	if us != 0 {
		return fmt.Sprintf("%02d:%02d:%02d.%06d", h, m, s, us)
	}
	return fmt.Sprintf("%02d:%02d:%02d", h, m, s)
}

// timedeltaText writes a timedelta as Python's str does: "[D day[s], ]H:MM:SS[.ffffff]".
func timedeltaText(days, secs, us int64) string {
	t := fmt.Sprintf("%d:%02d:%02d", secs/3600, secs/60%60, secs%60)
	if us != 0 {
		t += fmt.Sprintf(".%06d", us)
	}
	if days != 0 {
		plural := "s"
		if days == 1 || days == -1 {
			plural = ""
		}
		t = fmt.Sprintf("%d day%s, %s", days, plural, t)
	}
	return t
}

func validDate(y, m, d int) bool {
	if y < 1 || y > 9999 || m < 1 || m > 12 || d < 1 {
		return false
	}
	return d <= time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// bytesArg returns the bytes of a constructor argument: bytes, or the
// _codecs.encode(str, "latin1") call protocol 2 writes for bytes.
func bytesArg(v any) ([]byte, bool) {
	switch x := v.(type) {
	case []byte:
		return x, true
	case *Object:
		if x.Construct != Reduce || x.Callable != (Global{"_codecs", "encode"}) || x.Args == nil || len(x.Args.Items) != 2 || x.HasState {
			return nil, false
		}
		s, ok1 := x.Args.Items[0].(string)
		codec, ok2 := x.Args.Items[1].(string)
		if !ok1 || !ok2 || (codec != "latin1" && codec != "latin-1") {
			return nil, false
		}
		return latin1Bytes(s)
	}
	return nil, false
}

// --- FromJSON ---

// maxJSONIntDigits bounds the integers FromJSON parses, as CPython bounds the digits
// int() converts (sys.int_info.default_max_str_digits).
const maxJSONIntDigits = 4300

// FromJSON makes a value of the model from JSON, for setting simple values from the
// command line: null, true/false, strings, numbers (an integer becomes an int64, or a
// *big.Int beyond 64 bits; a number with a fraction or exponent a float64), arrays
// (*List) and objects with string keys (*Dict). It also reads the tagged forms ToJSON
// writes for simple values: __tuple__, __set__, __frozenset__, __bytes__,
// __bytearray__, __float__, __dict__ (whose pairs form allows any hashable keys),
// __decimal__, __date__ and __datetime__ (naive, or with a UTC offset). Tags for
// objects, classes and shared references (__class__, __global__, __ref__, __id__,
// ...) are rejected: FromJSON makes no object graph. \ud800-style escapes of lone
// surrogates are kept (in their surrogatepass form), as Python's json module does.
func FromJSON(data []byte) (any, error) {
	p := &jsonParser{data: data}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, p.errorf("unexpected %q after the value", p.data[p.pos])
	}
	return v, nil
}

type jsonParser struct {
	data []byte
	pos  int
	keys map[string]string // one str per distinct object key, as Python's json module makes
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("pickle: JSON at offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (any, error) {
	if depth > defaultEncodeDepth {
		return nil, p.errorf("nested too deeply")
	}
	if p.pos >= len(p.data) {
		return nil, p.errorf("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		items, err := p.array(depth)
		if err != nil {
			return nil, err
		}
		return &List{Items: items}, nil
	case c == '"':
		return p.str()
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case p.literal("null"):
		return nil, nil
	case p.literal("true"):
		return true, nil
	case p.literal("false"):
		return false, nil
	default:
		return nil, p.errorf("unexpected %q", c)
	}
}

func (p *jsonParser) literal(word string) bool {
	if bytes.HasPrefix(p.data[p.pos:], []byte(word)) {
		p.pos += len(word)
		return true
	}
	return false
}

func (p *jsonParser) array(depth int) ([]any, error) {
	p.pos++ // [
	items := []any{}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return items, nil
	}
	for {
		p.skipSpace()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		items = append(items, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unexpected end of input in an array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return items, nil
		default:
			return nil, p.errorf("expected , or ] in an array, found %q", p.data[p.pos])
		}
	}
}

type jsonMember struct {
	key string
	val any
}

func (p *jsonParser) object(depth int) (any, error) {
	start := p.pos
	p.pos++ // {
	var members []jsonMember
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return NewDict(), nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.errorf("expected a string key in an object")
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		if seen, ok := p.keys[k]; ok {
			k = seen
		} else {
			if p.keys == nil {
				p.keys = make(map[string]string)
			}
			p.keys[k] = k
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.errorf("expected : after an object key")
		}
		p.pos++
		p.skipSpace()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		members = append(members, jsonMember{k, v})
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unexpected end of input in an object")
		}
		if p.data[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.data[p.pos] != '}' {
			return nil, p.errorf("expected , or } in an object, found %q", p.data[p.pos])
		}
		p.pos++
		break
	}
	if isTag(members[0].key) {
		v, err := fromTagged(members)
		if err != nil {
			return nil, fmt.Errorf("pickle: JSON at offset %d: %w", start, err)
		}
		return v, nil
	}
	d := NewDict()
	for _, m := range members {
		_ = d.Set(m.key, m.val) // a str key is always hashable; a repeated key: the last wins
	}
	return d, nil
}

var decimalText = regexp.MustCompile(`^[+-]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?|(?i:inf|infinity|s?nan[0-9]*))$`)

// fromTagged makes the value of a tagged JSON object.
func fromTagged(m []jsonMember) (any, error) {
	tag, v := m[0].key, m[0].val
	if len(m) != 1 {
		return nil, fmt.Errorf("a %s object has other keys (%q): FromJSON reads simple values only", tag, m[1].key)
	}
	items := func() ([]any, error) {
		l, ok := v.(*List)
		if !ok {
			return nil, fmt.Errorf("%s needs an array", tag)
		}
		return l.Items, nil
	}
	text := func() (string, error) {
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("%s needs a string", tag)
		}
		return s, nil
	}
	switch tag {
	case "__tuple__":
		it, err := items()
		if err != nil {
			return nil, err
		}
		return &Tuple{Items: it}, nil
	case "__set__", "__frozenset__":
		it, err := items()
		if err != nil {
			return nil, err
		}
		if tag == "__set__" {
			return NewSet(it...)
		}
		return NewFrozenSet(it...)
	case "__bytes__", "__bytearray__":
		s, err := text()
		if err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", tag, err)
		}
		if tag == "__bytes__" {
			return b, nil
		}
		return &ByteArray{Data: b}, nil
	case "__float__":
		s, _ := v.(string)
		switch s {
		case "nan":
			return math.NaN(), nil
		case "inf":
			return math.Inf(1), nil
		case "-inf":
			return math.Inf(-1), nil
		}
		return nil, errors.New(`__float__ must be "nan", "inf" or "-inf"`)
	case "__dict__":
		switch x := v.(type) {
		case *Dict:
			return x, nil
		case *List:
			d := NewDict()
			for _, pair := range x.Items {
				kv, ok := pair.(*List)
				if !ok || len(kv.Items) != 2 {
					return nil, errors.New("__dict__ needs an object or an array of [key, value] pairs")
				}
				if err := d.Set(kv.Items[0], kv.Items[1]); err != nil {
					return nil, err
				}
			}
			return d, nil
		}
		return nil, errors.New("__dict__ needs an object or an array of [key, value] pairs")
	case "__decimal__":
		s, err := text()
		if err != nil {
			return nil, err
		}
		if !decimalText.MatchString(s) {
			return nil, fmt.Errorf("%q is not a decimal number", s)
		}
		return &Object{Callable: Global{"decimal", "Decimal"}, Construct: Reduce, Args: NewTuple(s)}, nil
	case "__date__":
		s, err := text()
		if err != nil {
			return nil, err
		}
		t, err := time.Parse("2006-01-02", s)
		if err != nil || t.Year() < 1 {
			return nil, fmt.Errorf("%q is not a date (YYYY-MM-DD)", s)
		}
		state := []byte{byte(t.Year() >> 8), byte(t.Year()), byte(t.Month()), byte(t.Day())}
		return &Object{Callable: Global{"datetime", "date"}, Construct: Reduce, Args: NewTuple(state)}, nil
	case "__datetime__":
		s, err := text()
		if err != nil {
			return nil, err
		}
		return parseDateTime(s)
	}
	return nil, fmt.Errorf("FromJSON makes simple values only; %s is not one of them", tag)
}

// parseDateTime reads a datetime in the isoformat ToJSON writes: naive, or with a UTC
// offset.
func parseDateTime(s string) (any, error) {
	t, err := time.Parse("2006-01-02T15:04:05.999999999Z07:00", s)
	aware := err == nil
	if err != nil {
		t, err = time.Parse("2006-01-02T15:04:05.999999999", s)
	}
	if err != nil || t.Year() < 1 {
		return nil, fmt.Errorf("%q is not a datetime (YYYY-MM-DDTHH:MM:SS[.ffffff][+HH:MM])", s)
	}
	if t.Nanosecond()%1000 != 0 {
		return nil, fmt.Errorf("%q has more precision than Python's microseconds", s)
	}
	if aware {
		return dateTimeObject(t)
	}
	return naiveDateTimeObject(t), nil
}

// str reads a JSON string. Escaped lone surrogates are kept in their surrogatepass
// form, and escaped pairs are combined, as Python's json module does.
func (p *jsonParser) str() (string, error) {
	p.pos++ // "
	var b []byte
	for {
		start := p.pos
		for p.pos < len(p.data) && p.data[p.pos] != '"' && p.data[p.pos] != '\\' && p.data[p.pos] >= 0x20 {
			p.pos++
		}
		b = append(b, p.data[start:p.pos]...)
		if p.pos >= len(p.data) {
			return "", p.errorf("unterminated string")
		}
		c := p.data[p.pos]
		if c == '"' {
			p.pos++
			break
		}
		if c < 0x20 {
			return "", p.errorf("control character %q in a string", c)
		}
		p.pos++ // backslash
		if p.pos >= len(p.data) {
			return "", p.errorf("unterminated string")
		}
		e := p.data[p.pos]
		p.pos++
		switch e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, err := p.hex4()
			if err != nil {
				return "", err
			}
			if utf16.IsSurrogate(r) && r < 0xdc00 && bytes.HasPrefix(p.data[p.pos:], []byte(`\u`)) {
				save := p.pos
				p.pos += 2
				r2, err := p.hex4()
				if err == nil && r2 >= 0xdc00 && r2 <= 0xdfff {
					b = utf8.AppendRune(b, utf16.DecodeRune(r, r2))
					continue
				}
				p.pos = save
			}
			if utf16.IsSurrogate(r) {
				b = append(b, 0xed, 0xa0|byte(r>>6)&0x1f, 0x80|byte(r)&0x3f)
			} else {
				b = utf8.AppendRune(b, r)
			}
		default:
			return "", p.errorf("bad escape \\%c", e)
		}
	}
	s := string(b)
	if !validPyString(s) {
		return "", p.errorf("string is not UTF-8")
	}
	return s, nil
}

func (p *jsonParser) hex4() (rune, error) {
	if p.pos+4 > len(p.data) {
		return 0, p.errorf("short \\u escape")
	}
	n, err := strconv.ParseUint(string(p.data[p.pos:p.pos+4]), 16, 16)
	if err != nil {
		return 0, p.errorf("bad \\u escape")
	}
	p.pos += 4
	return rune(n), nil
}

func (p *jsonParser) number() (any, error) {
	start := p.pos
	if p.data[p.pos] == '-' {
		p.pos++
	}
	digits := func() int {
		s := p.pos
		for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
			p.pos++
		}
		return p.pos - s
	}
	intStart := p.pos
	n := digits()
	if n == 0 || (n > 1 && p.data[intStart] == '0') {
		return nil, p.errorf("malformed number")
	}
	isFloat := false
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		isFloat = true
		if digits() == 0 {
			return nil, p.errorf("malformed number")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		isFloat = true
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return nil, p.errorf("malformed number")
		}
	}
	text := string(p.data[start:p.pos])
	if isFloat {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, p.errorf("number %s does not fit a float", truncate(text, 40))
		}
		return f, nil
	}
	if i, err := strconv.ParseInt(text, 10, 64); err == nil {
		return i, nil
	}
	if n > maxJSONIntDigits {
		return nil, p.errorf("integer has more than %d digits", maxJSONIntDigits)
	}
	b, _ := new(big.Int).SetString(text, 10)
	return b, nil
}
