package pickle

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unsafe"
)

// FuzzRoundTrip checks that whatever the decoder accepts, the encoder writes back
// faithfully: at protocol 5, which has an opcode for every type of the value model,
// decode -> encode -> decode gives a graph Equal to the first one (shared references
// and cycles included), and encoding that again gives the same bytes. Below it, where
// missing opcodes and Python 2 names make the first round trip change some values
// (a bytearray becomes a bytearray() call, NEWOBJ_EX a functools.partial call, a
// class a Python 2 name), the encoding reaches a fixed point after one round. The encoder may
// refuse a value (an EncodeError, e.g. a class name no protocol 2 GLOBAL can hold)
// but never panics. Seeds: testdata/fuzz/FuzzRoundTrip and the session3 fixtures.
func FuzzRoundTrip(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "session3", "*.pkl"))
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Unmarshal(data)
		if err != nil {
			return
		}
		b1, ok := fuzzEncode(t, v, 5)
		if !ok {
			return
		}
		v2, err := Unmarshal(b1)
		if err != nil {
			t.Fatalf("cannot decode the encoder's output: %v\ninput %.3000q\noutput %.3000q", err, data, b1)
		}
		separateEmptyTuples(v)
		if !Equal(v, v2) {
			t.Fatalf("round trip changed the value\ninput %.3000q\noutput %.3000q", data, b1)
		}
		if b2, _ := fuzzEncode(t, v2, 5); !bytes.Equal(b1, b2) {
			t.Fatalf("encoding is not stable\ninput %.3000q\nfirst %.3000q\nsecond %.3000q", data, b1, b2)
		}
		for _, proto := range []int{2, 3, 4} {
			b, ok := fuzzEncode(t, v, proto)
			if !ok {
				continue
			}
			w, err := Unmarshal(b)
			if err != nil {
				t.Fatalf("protocol %d: cannot decode the encoder's output: %v\ninput %.3000q\noutput %.3000q", proto, err, data, b)
			}
			b2, _ := fuzzEncode(t, w, proto)
			w2, err := Unmarshal(b2)
			if err != nil {
				t.Fatalf("protocol %d: cannot decode the encoder's output: %v\noutput %.3000q", proto, err, b2)
			}
			if !Equal(w, w2) {
				t.Fatalf("protocol %d: second round trip changed the value\ninput %.3000q\noutput %.3000q", proto, data, b2)
			}
			if b3, _ := fuzzEncode(t, w2, proto); !bytes.Equal(b2, b3) {
				t.Fatalf("protocol %d: encoding is not stable\ninput %.3000q\nsecond %.3000q\nthird %.3000q", proto, data, b2, b3)
			}
		}
	})
}

// fuzzEncode encodes v, allowing only an EncodeError as a failure.
func fuzzEncode(t *testing.T, v any, proto int) ([]byte, bool) {
	t.Helper()
	var buf bytes.Buffer
	e := NewEncoder(&buf)
	e.Protocol = proto
	if err := e.Encode(v); err != nil {
		var ee *EncodeError
		if !errors.As(err, &ee) {
			t.Fatalf("protocol %d: encoder failed with %T: %v", proto, err, err)
		}
		return nil, false
	}
	return buf.Bytes(), true
}

// separateEmptyTuples replaces each reference to an empty tuple in v by a new one. The
// empty tuple is a singleton in CPython, so neither CPython's pickler nor the encoder
// memoizes it, and a pickle that refers twice to one memoized empty tuple decodes to
// one *Tuple that re-encodes as two, with no difference CPython could see.
func separateEmptyTuples(v any) {
	fix := func(x *any) {
		if t, ok := (*x).(*Tuple); ok && t != nil && len(t.Items) == 0 {
			*x = &Tuple{}
		}
	}
	seen := map[unsafe.Pointer]bool{}
	stack := []any{v}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		p := identity(x)
		if p == nil || seen[p] {
			continue
		}
		var items []any
		switch c := x.(type) {
		case *List:
			items = c.Items
		case *Tuple:
			items = c.Items
		case *Dict:
			items = append(c.t.keys, c.t.vals...)
			for i := range c.t.keys {
				fix(&c.t.keys[i])
				fix(&c.t.vals[i])
			}
		case *Set:
			items = c.t.keys
		case *FrozenSet:
			items = c.t.keys
		case *Object:
			fix(&c.Callable)
			fix(&c.State)
			if c.Args != nil && len(c.Args.Items) == 0 {
				c.Args = &Tuple{}
			}
			items = append([]any{c.Callable, c.Args, c.State}, c.ListItems...)
			if c.Kwargs != nil {
				items = append(items, c.Kwargs)
			}
			for i := range c.DictItems {
				fix(&c.DictItems[i].Key)
				fix(&c.DictItems[i].Value)
				items = append(items, c.DictItems[i].Key, c.DictItems[i].Value)
			}
			items = append(items, c.SetItems...)
			for i := range c.ListItems {
				fix(&c.ListItems[i])
			}
			for i := range c.SetItems {
				fix(&c.SetItems[i])
			}
		default:
			continue
		}
		seen[p] = true
		switch c := x.(type) {
		case *List:
			for i := range c.Items {
				fix(&c.Items[i])
			}
		case *Tuple:
			for i := range c.Items {
				fix(&c.Items[i])
			}
		case *Set:
			for i := range c.t.keys {
				fix(&c.t.keys[i])
			}
		case *FrozenSet:
			for i := range c.t.keys {
				fix(&c.t.keys[i])
			}
		}
		stack = append(stack, items...)
	}
}
