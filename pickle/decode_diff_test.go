package pickle

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	gopickle "github.com/nlpodyssey/gopickle/pickle"
	gptypes "github.com/nlpodyssey/gopickle/types"
	"github.com/stretchr/testify/assert"
)

// Differential testing against two other decoders, on CPython's corpus, the fixtures
// and thousands of deterministic mutations of them:
//
//   - CPython itself (pickle_graph.py --safe, which only imports the corpus's modules):
//     the decoder must accept what CPython accepts and refuse what it refuses, and
//     build the same graph, except where the value model defers what CPython does
//     (importing globals, calling callables and __new__) or documents a limit.
//   - github.com/nlpodyssey/gopickle v0.3.0, as an independent oracle only. It cannot
//     be the production decoder: it hard-wires classes (list, dict, object,
//     OrderedDict, copy_reg._reconstructor) no hook can override, keeps sets as Go maps
//     (order lost, tuples keyed by pointer, a set of bytes panics), merges NEWOBJ_EX
//     keyword arguments into the positional ones, does not unescape protocol 0
//     strings, turns a missing memo entry into None, drops an item of an odd SETITEMS,
//     and allocates whatever length a pickle declares (a 31-byte pickle declaring a
//     2**40-byte FRAME kills the process with "out of memory"; no recover helps). So it
//     only gets inputs whose declared lengths fit in the input, runs under recover, and
//     where it and the decoder both accept an input and disagree, CPython decides.

// mutate returns a few deterministic random edits of data.
func mutate(r *rand.Rand, data []byte) []byte {
	out := append([]byte(nil), data...)
	for range 1 + r.IntN(3) {
		if len(out) == 0 {
			out = append(out, byte(r.IntN(256)))
			continue
		}
		i := r.IntN(len(out))
		switch r.IntN(8) {
		case 0, 1: // flip bits of a byte
			out[i] ^= byte(1 << r.IntN(8))
		case 2: // a random byte
			out[i] = byte(r.IntN(256))
		case 3: // an opcode in place of a byte
			ops := []byte("(.012FGIJKLMNPQRSTUVXabcdeghijlopqrstu}])BC")
			out[i] = append(ops, 0x80, 0x81, 0x85, 0x86, 0x87, 0x88, 0x8a, 0x8c, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95)[r.IntN(len(ops)+15)]
		case 4: // delete a byte
			out = append(out[:i], out[i+1:]...)
		case 5: // insert a byte
			out = append(out[:i], append([]byte{byte(r.IntN(256))}, out[i:]...)...)
		case 6: // duplicate a slice
			j := i + r.IntN(min(8, len(out)-i)+1)
			out = append(out[:j], append(append([]byte(nil), out[i:j]...), out[j:]...)...)
		case 7: // nudge a small value (often a length or memo index)
			out[i] += byte(r.IntN(3)) - 1
		}
	}
	return out
}

// plainClasses are the corpus classes CPython makes with object.__new__ and fills by
// updating __dict__ (or setattr for slots), as the value model represents them.
var plainClasses = map[Global]bool{
	{"myapp.models", "Account"}: true, {"myapp.models", "ShopSession"}: true,
	{"myapp.models", "Empty"}: true, {"myapp.models", "Node"}: true,
	{"myapp.models", "Point"}: true, {"myapp.models", "Tagged"}: true,
	{"myapp.models", "Items"}: true, {"myapp.models", "Table"}: true,
	{"myapp.models", "Outer.Inner"}: true,
	{"session3.Session", "Session"}: true, {"session3.DictSession", "DictSession"}: true,
	{"quixote.session", "Session"}: true,
}

// graphComparable reports whether the graph CPython loads from a pickle is fully
// determined by the decoded value, so that their descriptions must be equal: no
// globals or calls whose result depends on code (datetime normalizing its arguments,
// __new__ setting attributes), only plain instances and the built-in calls the
// description evaluates itself.
func graphComparable(v any) bool {
	ok := true
	walk(v, func(x any) {
		switch o := x.(type) {
		case Global:
			ok = false
		case *Object:
			ok = ok && objectComparable(o)
		}
	})
	return ok
}

func objectComparable(o *Object) bool {
	args := o.Args.Items
	g, isGlobal := o.Callable.(Global)
	if !isGlobal {
		return false
	}
	if st, ok := o.State.(*Dict); o.HasState && (!ok || st.Len() == 0) {
		return false // CPython describes an empty __dict__ as no state
	}
	switch o.Construct {
	case NewObj:
		return plainClasses[g] && len(args) == 0 && len(o.SetItems) == 0 &&
			(len(o.ListItems) == 0 || g.Name == "Items") && (len(o.DictItems) == 0 || g.Name == "Table")
	case Reduce:
		if o.HasState || len(o.ListItems)+len(o.DictItems)+len(o.SetItems) > 0 {
			return false
		}
		switch g {
		case Global{"builtins", "set"}, Global{"builtins", "frozenset"}:
			if len(args) == 0 {
				return true
			}
			l, ok := args[0].(*List)
			if !ok || len(args) != 1 {
				return false
			}
			for _, it := range l.Items {
				if _, err := hashKey(it); err != nil {
					return false
				}
			}
			return true
		case Global{"_codecs", "encode"}:
			s, ok := args[0].(string)
			if len(args) != 2 || !ok || args[1] != "latin1" {
				return false
			}
			_, ok = latin1(s)
			return ok && validUTF8(s)
		case Global{"builtins", "bytes"}:
			return len(args) == 0
		}
	}
	return false
}

func validUTF8(s string) bool { return invalidUTF8([]byte(s), false) < 0 }

// walk calls f for every value reachable from v, each container once.
func walk(v any, f func(any)) {
	seen := map[any]bool{}
	stack := []any{v}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		f(x)
		if !isNode(x) || seen[x] {
			continue
		}
		seen[x] = true
		for i := 0; ; i++ {
			c, ok := child(x, i)
			if !ok {
				break
			}
			stack = append(stack, c)
		}
	}
}

// evaluates reports whether CPython runs code or imports while loading a pickle the
// decoder accepted: whether it has an opcode that makes an object or names a global.
// Such code may fail in CPython even for an object the pickle drops again.
func evaluates(t *testing.T, data []byte) bool {
	for _, op := range opcodesOf(t, data) {
		switch op {
		case opReduce, opNewObj, opNewObjEx, opInst, opObj, opGlobal, opStackGlobal:
			return true
		}
	}
	return false
}

// saneLengths reports whether every length a pickle declares before STOP (or the
// first unknown opcode) fits in what follows it.
func saneLengths(data []byte) bool {
	for i := 0; i < len(data); {
		op := data[i]
		i++
		rest := uint64(len(data) - i)
		var n, size uint64
		switch op {
		case opStop:
			return true
		case opShortBinStr, opShortBinBytes, opShortBinUnicode, opLong1:
			size = 1
		case opBinString, opBinBytes, opBinUnicode, opLong4:
			size = 4
		case opBinUnicode8, opBinBytes8, opByteArray8, opFrame:
			size = 8
		case opFloat, opInt, opLong, opPersID, opString, opUnicode, opGet, opPut, opGlobal, opInst:
			lines := 1
			if op == opGlobal || op == opInst {
				lines = 2
			}
			for range lines {
				j := bytes.IndexByte(data[i:], '\n')
				if j < 0 {
					return true
				}
				i += j + 1
			}
			continue
		case opBinInt, opLongBinGet, opLongBinPut, opExt4:
			i += 4
			continue
		case opBinInt1, opBinGet, opBinPut, opProto, opExt1:
			i++
			continue
		case opBinInt2, opExt2:
			i += 2
			continue
		case opBinFloat:
			i += 8
			continue
		default:
			if opNames[op] == "" {
				return true
			}
			continue
		}
		if rest < size {
			return true
		}
		switch size {
		case 1:
			n = uint64(data[i])
		case 4:
			n = uint64(binary.LittleEndian.Uint32(data[i:]))
		case 8:
			n = binary.LittleEndian.Uint64(data[i:])
		}
		if n > rest-size {
			return false
		}
		if op != opFrame {
			i += int(n)
		}
		i += int(size)
	}
	return true
}

// The hook that lets gopickle build what the value model would: every class it does
// not hard-wire becomes an oracleClass, whose calls make oracleObjects that record
// what BUILD, APPEND(S), SETITEM(S) and ADDITEMS do to them.
type oracleClass struct{ g Global }

type oracleObject struct {
	class     any
	construct Construct
	args      []any
	state     any
	hasState  bool
	list      []any
	dict      []KV
	set       []any
}

func (c *oracleClass) Call(args ...any) (any, error) {
	return &oracleObject{class: c, construct: Reduce, args: args}, nil
}

func (c *oracleClass) PyNew(args ...any) (any, error) {
	return &oracleObject{class: c, construct: NewObj, args: args}, nil
}

func (o *oracleObject) Call(args ...any) (any, error) {
	return &oracleObject{class: o, construct: Reduce, args: args}, nil
}

func (o *oracleObject) PyNew(args ...any) (any, error) {
	return &oracleObject{class: o, construct: NewObj, args: args}, nil
}

func (o *oracleObject) PySetState(state any) error {
	if o.hasState {
		return errors.New("second BUILD")
	}
	o.state, o.hasState = state, true
	return nil
}

func (o *oracleObject) Append(v any) { o.list = append(o.list, v) }
func (o *oracleObject) Set(k, v any) { o.dict = append(o.dict, KV{k, v}) }
func (o *oracleObject) Add(v any)    { o.set = append(o.set, v) }

// gopickleLoad decodes with gopickle under recover.
func gopickleLoad(data []byte) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	u := gopickle.NewUnpickler(bytes.NewReader(data))
	u.FindClass = func(module, name string) (any, error) {
		return &oracleClass{Global{module, name}}, nil
	}
	return u.Load()
}

var errUnrepresentable = errors.New("not representable")

// fromGopickle converts gopickle's value into the value model, keeping identity.
type fromGopickle struct{ done map[any]any }

func (c *fromGopickle) conv(v any) (any, error) {
	if isPointerish(v) {
		if r, ok := c.done[v]; ok {
			return r, nil
		}
	}
	switch x := v.(type) {
	case nil, bool, float64, string:
		return x, nil
	case int:
		return int64(x), nil
	case *big.Int:
		return normInt(x), nil
	case []byte:
		return append([]byte{}, x...), nil
	case *gptypes.ByteArray:
		r := &ByteArray{Data: append([]byte{}, *x...)}
		c.done[v] = r
		return r, nil
	case *gptypes.Tuple:
		r := &Tuple{}
		c.done[v] = r
		items, err := c.all(*x)
		r.Items = items
		return r, err
	case *gptypes.List:
		r := &List{}
		c.done[v] = r
		items, err := c.all(*x)
		r.Items = items
		return r, err
	case *gptypes.Dict:
		r := NewDict()
		c.done[v] = r
		for _, e := range *x {
			k, err := c.conv(e.Key)
			if err != nil {
				return nil, err
			}
			val, err := c.conv(e.Value)
			if err != nil {
				return nil, err
			}
			if err := r.Set(k, val); err != nil {
				return nil, errUnrepresentable
			}
		}
		return r, nil
	case *gptypes.Set:
		r := &Set{}
		c.done[v] = r
		for it := range *x {
			k, err := c.conv(it)
			if err != nil {
				return nil, err
			}
			if err := r.Add(k); err != nil {
				return nil, errUnrepresentable
			}
		}
		return r, nil
	case *gptypes.FrozenSet:
		r := &FrozenSet{}
		c.done[v] = r
		for it := range *x {
			k, err := c.conv(it)
			if err != nil {
				return nil, err
			}
			if err := r.t.put(k, nil, false); err != nil {
				return nil, errUnrepresentable
			}
		}
		return r, nil
	case *gptypes.OrderedDict:
		r := &Object{Callable: Global{"collections", "OrderedDict"}, Construct: Reduce, Args: NewTuple()}
		c.done[v] = r
		if len(x.PyDict) > 0 {
			return nil, errUnrepresentable
		}
		for el := x.List.Front(); el != nil; el = el.Next() {
			e := el.Value.(*gptypes.OrderedDictEntry)
			k, err := c.conv(e.Key)
			if err != nil {
				return nil, err
			}
			val, err := c.conv(e.Value)
			if err != nil {
				return nil, err
			}
			r.DictItems = append(r.DictItems, KV{k, val})
		}
		return r, nil
	case *gptypes.OrderedDictClass:
		return Global{"collections", "OrderedDict"}, nil
	case *oracleClass:
		return x.g, nil
	case *oracleObject:
		r := &Object{Construct: x.construct, HasState: x.hasState}
		c.done[v] = r
		var err error
		if r.Callable, err = c.conv(x.class); err != nil {
			return nil, err
		}
		args, err := c.all(x.args)
		if err != nil {
			return nil, err
		}
		r.Args = &Tuple{Items: args}
		if r.State, err = c.conv(x.state); err != nil {
			return nil, err
		}
		if r.ListItems, err = c.all(x.list); err != nil {
			return nil, err
		}
		if r.SetItems, err = c.all(x.set); err != nil {
			return nil, err
		}
		for _, kv := range x.dict {
			k, err := c.conv(kv.Key)
			if err != nil {
				return nil, err
			}
			val, err := c.conv(kv.Value)
			if err != nil {
				return nil, err
			}
			r.DictItems = append(r.DictItems, KV{k, val})
		}
		return r, nil
	}
	return nil, fmt.Errorf("%w: %T", errUnrepresentable, v)
}

func isPointerish(v any) bool {
	switch v.(type) {
	case nil, bool, int, float64, string, []byte, *big.Int:
		return false
	}
	return true
}

func (c *fromGopickle) all(items []any) ([]any, error) {
	out := make([]any, 0, len(items))
	for _, it := range items {
		r, err := c.conv(it)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// asGopickleSees rewrites a decoded value the way gopickle's interface shows it:
// NEWOBJ_EX keyword arguments as a last positional argument, INST/OBJ as calls.
func asGopickleSees(v any) any {
	walk(v, func(x any) {
		o, ok := x.(*Object)
		if !ok {
			return
		}
		switch o.Construct {
		case NewObjEx:
			o.Construct = NewObj
			o.Args = &Tuple{Items: append(append([]any{}, o.Args.Items...), o.Kwargs)}
			o.Kwargs = nil
		case Inst:
			o.Construct = Reduce
		}
	})
	return v
}

func TestDecodeMutationsAgainstCPythonAndGopickle(t *testing.T) {
	var base [][]byte
	for _, b := range fixtureFiles(t) {
		base = append(base, b)
	}
	for _, c := range cpythonCorpus(t) {
		if len(c.data) <= 3000 {
			base = append(base, c.data)
		}
	}
	r := rand.New(rand.NewPCG(1, 1066))
	inputs := append([][]byte(nil), base...)
	for len(inputs) < 4000 {
		inputs = append(inputs, mutate(r, base[r.IntN(len(base))]))
	}
	answers := cpythonGraphs(t, inputs, true)

	stats := map[string]int{}
	gopickleFaults := map[string]int{}
	for i, data := range inputs {
		ours, err := Unmarshal(data)
		cpy := answers[i]
		_, cpyErr := cpy["error"]
		_, forbidden := cpy["forbidden"]
		_, undescribable := cpy["undescribable"]
		if msg, _ := cpy["error"].(string); strings.HasPrefix(msg, "MemoryError") || strings.HasPrefix(msg, "RecursionError") {
			// CPython sizes its memo array by the largest index (LONG_BINPUT 2**31
			// asks for 16 GiB); the decoder's memo is sparse.
			stats["CPython out of memory"]++
			continue
		}
		switch {
		case forbidden:
			stats["CPython: forbidden global"]++
		case cpyErr && err == nil:
			// CPython failed evaluating what the model keeps unevaluated.
			if !assert.True(t, evaluates(t, data), "CPython refuses %x (%v) but the decoder accepts it", data, cpy) {
				continue
			}
			stats["CPython fails calling or importing, decoder accepts"]++
		case !cpyErr && err != nil:
			if !assert.True(t, errors.Is(err, ErrUnsupported) || errors.Is(err, ErrLimit),
				"CPython loads %x (%v) but the decoder says %v", data, cpy, err) {
				continue
			}
			stats["decoder limit or unsupported, CPython loads"]++
		case cpyErr:
			stats["both refuse"]++
			msg := cpy["error"].(string)
			if strings.HasPrefix(msg, "EOFError") || strings.Contains(msg, "pickle data was truncated") {
				assert.ErrorIs(t, err, ErrTruncated, "CPython says %s for %x", msg, data)
			}
		case undescribable:
			stats["both accept, CPython's value not describable"]++
		case graphComparable(ours):
			stats["both accept, graphs compared"]++
			assert.JSONEq(t, canonicalJSON(cpy), describeJSON(ours), "input %x", data)
		default:
			stats["both accept, graph depends on evaluation"]++
		}

		if !saneLengths(data) {
			stats["gopickle not run: lengths beyond the input"]++
			continue
		}
		gp, gerr := gopickleLoad(data)
		switch {
		case gerr != nil && err == nil:
			gopickleFaults["gopickle refuses what the decoder accepts"]++
		case gerr == nil && err != nil:
			gopickleFaults["gopickle accepts what the decoder refuses"]++
			if !forbidden {
				assert.True(t, cpyErr || errors.Is(err, ErrUnsupported) || errors.Is(err, ErrLimit),
					"gopickle and CPython accept %x, the decoder says %v", data, err)
			}
		case gerr != nil:
			stats["gopickle and decoder refuse"]++
		default:
			conv, cerr := (&fromGopickle{done: map[any]any{}}).conv(gp)
			if cerr != nil {
				gopickleFaults["gopickle value not representable"]++
				continue
			}
			ours2, _ := Unmarshal(data)
			if describeJSON(conv) == describeJSON(asGopickleSees(ours2)) {
				stats["gopickle agrees"]++
				continue
			}
			// They disagree: CPython decides, where its graph is comparable.
			if !forbidden && !cpyErr && !undescribable && graphComparable(ours) {
				assert.JSONEq(t, canonicalJSON(cpy), describeJSON(ours), "gopickle disagrees on %x", data)
				gopickleFaults["gopickle disagrees, CPython agrees with the decoder"]++
			} else {
				gopickleFaults["gopickle disagrees, not decidable by CPython"]++
			}
		}
	}
	report := func(title string, m map[string]int) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			t.Logf("%s: %s: %d", title, k, m[k])
		}
	}
	report("outcome", stats)
	report("gopickle", gopickleFaults)
	assert.Greater(t, stats["both accept, graphs compared"], 600)
	assert.Greater(t, stats["both refuse"], 1500)
	assert.Greater(t, stats["gopickle agrees"], 700)
}
