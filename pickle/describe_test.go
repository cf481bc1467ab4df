package pickle

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"unicode/utf8"
)

// describe builds, from a decoded value, the description testdata/py/pickle_graph.py
// prints for the graph CPython loads from the same pickle (see that file for the node
// forms). Where the value model keeps a call that CPython evaluates into a built-in
// value — set(list), frozenset(list), bytearray(...), _codecs.encode(str, "latin1"),
// bytes(), getattr(class, name), copyreg._reconstructor(cls, object, None) — it
// describes the value CPython makes. Nodes get ordinals in the same depth-first order
// as pickle_graph.py walks them.
func describe(v any) map[string]any {
	d := &describer{ids: make(map[any]int)}
	return d.node(v)
}

// describeJSON is describe as canonical JSON (sorted keys, no spaces), as pickle_graph.py
// prints it.
func describeJSON(v any) string { return canonicalJSON(describe(v)) }

func canonicalJSON(n any) string {
	b, err := json.Marshal(n)
	if err != nil {
		panic(err)
	}
	return string(b)
}

type describer struct{ ids map[any]int }

type node = map[string]any

func hexStr(s string) string { return hex.EncodeToString([]byte(s)) }

func (d *describer) track(p any) (node, bool) {
	if id, ok := d.ids[p]; ok {
		return node{"ref": id}, false
	}
	id := len(d.ids)
	d.ids[p] = id
	return node{"id": id}, true
}

func (d *describer) node(v any) node {
	switch x := v.(type) {
	case nil:
		return node{"t": "none"}
	case bool:
		return node{"t": "bool", "v": x}
	case int64:
		return node{"t": "int", "v": strconv.FormatInt(x, 16)}
	case *big.Int:
		return node{"t": "int", "v": x.Text(16)}
	case float64:
		return node{"t": "float", "v": fmt.Sprintf("%016x", math.Float64bits(x))}
	case string:
		return node{"t": "str", "v": hexStr(x)}
	case []byte:
		return node{"t": "bytes", "v": hex.EncodeToString(x)}
	case Global:
		return node{"t": "global", "module": x.Module, "name": x.Name}
	case *ByteArray:
		n, first := d.track(x)
		if first {
			n["t"], n["v"] = "bytearray", hex.EncodeToString(x.Data)
		}
		return n
	case *Tuple:
		if len(x.Items) == 0 {
			return node{"t": "tuple", "items": []any{}}
		}
		return d.seq(x, "tuple", x.Items, false)
	case *List:
		return d.seq(x, "list", x.Items, false)
	case *Set:
		return d.seq(x, "set", x.Items(), true)
	case *FrozenSet:
		if x.Len() == 0 {
			return node{"t": "frozenset", "items": []any{}}
		}
		return d.seq(x, "frozenset", x.Items(), true)
	case *Dict:
		n, first := d.track(x)
		if first {
			n["t"], n["items"] = "dict", d.pairs(x.All())
		}
		return n
	case *Object:
		return d.object(x)
	}
	panic(fmt.Sprintf("describe: %T is not in the value model", v))
}

func (d *describer) seq(p any, t string, items []any, sorted bool) node {
	n, first := d.track(p)
	if !first {
		return n
	}
	n["t"] = t
	if sorted {
		items = sortByShape(items)
	}
	out := make([]any, len(items))
	for i, it := range items {
		out[i] = d.node(it)
	}
	n["items"] = out
	return n
}

// sortByShape orders set items by their description on their own, as pickle_graph.py.
func sortByShape(items []any) []any {
	keys := make([]string, len(items))
	idx := make([]int, len(items))
	for i, it := range items {
		keys[i] = canonicalJSON(describe(it))
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
	out := make([]any, len(items))
	for i, j := range idx {
		out[i] = items[j]
	}
	return out
}

func (d *describer) pairs(all func(func(any, any) bool)) []any {
	out := []any{}
	for k, v := range all {
		out = append(out, []any{d.node(k), d.node(v)})
	}
	return out
}

func kvPairs(kvs []KV) func(func(any, any) bool) {
	return func(yield func(any, any) bool) {
		for _, kv := range kvs {
			if !yield(kv.Key, kv.Value) {
				return
			}
		}
	}
}

func isGlobal(v any, module, name string) bool {
	g, ok := v.(Global)
	return ok && g.Module == module && g.Name == name
}

// latin1 encodes a str of code points below 256 as bytes, as "latin1" does.
func latin1(s string) ([]byte, bool) {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 255 || r == utf8.RuneError {
			return nil, false
		}
		out = append(out, byte(r))
	}
	return out, true
}

func (d *describer) object(o *Object) node {
	if n, ok := d.builtinCall(o); ok {
		return n
	}
	args := o.Args.Items
	n, first := d.track(o)
	if !first {
		return n
	}
	n["t"] = "object"
	switch {
	case o.Construct == Reduce && isGlobal(o.Callable, "copyreg", "_reconstructor") &&
		len(args) == 3 && isGlobal(args[1], "builtins", "object") && args[2] == nil:
		n["new"], args = d.node(args[0]), nil
	case o.Construct == Reduce && isGlobal(o.Callable, "copyreg", "__newobj__") && len(args) > 0:
		n["new"], args = d.node(args[0]), args[1:]
	case o.Construct == Reduce:
		n["call"] = d.node(o.Callable)
	default:
		n["new"] = d.node(o.Callable)
	}
	out := []any{}
	for _, a := range args {
		out = append(out, d.node(a))
	}
	n["args"] = out
	if o.Construct == NewObjEx {
		n["kwargs"] = d.pairs(o.Kwargs.All())
	}
	if len(o.ListItems) > 0 {
		items := []any{}
		for _, it := range o.ListItems {
			items = append(items, d.node(it))
		}
		n["listitems"] = items
	}
	if len(o.DictItems) > 0 {
		n["dictitems"] = d.pairs(kvPairs(o.DictItems))
	}
	if o.HasState && o.State != nil {
		n["state"] = d.state(o.State)
	}
	return n
}

// builtinCall describes the value CPython makes for the calls of built-ins that
// pickles of protocols 0 to 3 hold; ok is false for other objects.
func (d *describer) builtinCall(o *Object) (node, bool) {
	g, _ := o.Callable.(Global)
	if o.Construct != Reduce || o.HasState || len(o.ListItems)+len(o.DictItems)+len(o.SetItems) > 0 {
		return nil, false
	}
	args := o.Args.Items
	switch g {
	case Global{"builtins", "set"}, Global{"builtins", "frozenset"}:
		var items []any
		if len(args) == 1 {
			l, ok := args[0].(*List)
			if !ok {
				return nil, false
			}
			items = l.Items
		} else if len(args) != 0 {
			return nil, false
		}
		unique, ok := uniqueItems(items)
		if !ok {
			return nil, false
		}
		if g.Name == "frozenset" && len(unique) == 0 {
			return node{"t": "frozenset", "items": []any{}}, true
		}
		return d.seq(o, g.Name, unique, true), true
	case Global{"builtins", "bytearray"}:
		var data []byte
		ok := true
		switch len(args) {
		case 1:
			data, ok = bytesValue(args[0])
		case 2:
			s, isStr := args[0].(string)
			ok = isStr && args[1] == "latin-1"
			if ok {
				data, ok = latin1(s)
			}
		default:
			ok = len(args) == 0
		}
		if !ok {
			return nil, false
		}
		n, first := d.track(o)
		if first {
			n["t"], n["v"] = "bytearray", hex.EncodeToString(data)
		}
		return n, true
	case Global{"_codecs", "encode"}, Global{"builtins", "bytes"}:
		if b, ok := bytesValue(o); ok {
			return node{"t": "bytes", "v": hex.EncodeToString(b)}, true
		}
	case Global{"builtins", "getattr"}:
		if len(args) == 2 {
			cls, ok1 := args[0].(Global)
			name, ok2 := args[1].(string)
			if ok1 && ok2 {
				return node{"t": "global", "module": cls.Module, "name": cls.Name + "." + name}, true
			}
		}
	}
	return nil, false
}

// bytesValue is the bytes CPython makes of v: bytes, or the _codecs.encode(str,
// "latin1") and bytes() calls protocols 0 to 2 write for bytes.
func bytesValue(v any) ([]byte, bool) {
	switch x := v.(type) {
	case []byte:
		return x, true
	case *Object:
		args := x.Args.Items
		if isGlobal(x.Callable, "_codecs", "encode") && len(args) == 2 && args[1] == "latin1" {
			if s, ok := args[0].(string); ok {
				return latin1(s)
			}
		}
		if isGlobal(x.Callable, "builtins", "bytes") && len(args) == 0 {
			return []byte{}, true
		}
	}
	return nil, false
}

// uniqueItems drops items equal to an earlier one, as set(list) does; ok is false for
// an unhashable item.
func uniqueItems(items []any) ([]any, bool) {
	s, err := NewSet(items...)
	if err != nil {
		return nil, false
	}
	return s.Items(), true
}

// state describes a BUILD state: a dict, or a (dict or None, dict) pair, without
// identity (CPython's __reduce_ex__ makes them anew each time).
func (d *describer) state(s any) node {
	switch x := s.(type) {
	case *Dict:
		return node{"t": "dict", "items": d.pairs(x.All())}
	case *Tuple:
		if len(x.Items) == 2 {
			_, firstDict := x.Items[0].(*Dict)
			if _, ok := x.Items[1].(*Dict); ok && (x.Items[0] == nil || firstDict) {
				first := node{"t": "none"}
				if firstDict {
					first = d.state(x.Items[0])
				}
				return node{"t": "tuple", "items": []any{first, d.state(x.Items[1])}}
			}
		}
	}
	return d.node(s)
}
