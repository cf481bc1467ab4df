package pickle

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math"
	"math/big"
	"math/rand/v2"
	"sync/atomic"
	"unsafe"
)

// Hashes of dict keys and set items are keyed by secrets drawn when the process
// starts. A pickle can hold any keys its author chose, and a table whose keys share one
// hash costs time in the square of their number to fill; with secret keys, which keys
// share a hash cannot be worked out in advance. Every kind of value is hashed with a
// key of its own, and no two different values of the model hash alike whatever the
// keys are (short of a collision of the keyed functions themselves), so tuples built
// from parts that collide cannot be made either. Hashes live only in memory (they order
// nothing that is written), so keys drawn per process are enough.
var hashKeys = struct {
	str, bytes, global, name, big maphash.Seed
	none, num, float, tuple, fset uint64
	identity, nan                 uint64
}{
	str: maphash.MakeSeed(), bytes: maphash.MakeSeed(), global: maphash.MakeSeed(),
	name: maphash.MakeSeed(), big: maphash.MakeSeed(),
	none: rand.Uint64(), num: rand.Uint64(), float: rand.Uint64(), tuple: rand.Uint64(),
	fset: rand.Uint64(), identity: rand.Uint64(), nan: rand.Uint64(),
}

// nans numbers the NaN keys hashed, giving each its own hash (see hashValue).
var nans atomic.Uint64

// hashKey hashes a dict key or set item consistently with keyEqual, which follows
// Python's equality: numbers that compare equal (1, 1.0, True) hash alike.
// Unhashable values (list, dict, set, bytearray, or a tuple holding one) give an
// *UnhashableError, as in CPython.
func hashKey(v any) (uint64, error) {
	h, _, err := hashValue(v)
	return h, err
}

// hashValue is hashKey; identity reports a value equal to nothing but itself, which
// is hashed by identity: a NaN, or a tuple or frozenset holding one. A NaN, which has
// no identity in the model, gets a new hash each time, so that NaN keys (each a key
// of its own, since NaN != NaN) do not pile up on one hash.
func hashValue(v any) (h uint64, identity bool, err error) {
	switch x := v.(type) {
	case nil:
		return mix(hashKeys.none), false, nil
	case string:
		return maphash.String(hashKeys.str, x), false, nil
	case int64:
		return hashInt(x), false, nil
	case bool:
		if x {
			return hashInt(1), false, nil
		}
		return hashInt(0), false, nil
	case float64:
		return hashFloat(x)
	case *big.Int:
		return hashBig(x), false, nil
	case []byte:
		return maphash.Bytes(hashKeys.bytes, x), false, nil
	case Global:
		return maphash.String(hashKeys.global, x.Module) ^ mix(maphash.String(hashKeys.name, x.Name)), false, nil
	case *Tuple:
		h := hashKeys.tuple
		for _, it := range x.Items {
			ih, id, err := hashValue(it)
			if err != nil {
				return 0, false, err
			}
			identity = identity || id
			h = mix((h ^ ih) + hashKeys.tuple)
		}
		if identity {
			return hashIdentity(unsafe.Pointer(x)), true, nil
		}
		return mix(h ^ uint64(len(x.Items))), false, nil
	case *FrozenSet:
		// Order-independent: equal frozensets may hold their items in different orders.
		h := hashKeys.fset
		for _, it := range x.t.keys {
			ih, id, _ := hashValue(it) // every stored item was hashable when it was put
			identity = identity || id
			h += mix(ih ^ hashKeys.fset)
		}
		if identity {
			return hashIdentity(unsafe.Pointer(x)), true, nil
		}
		return mix(h), false, nil
	case *Object:
		// Instances hash by identity, as object.__hash__ does.
		return hashIdentity(unsafe.Pointer(x)), false, nil
	}
	return 0, false, &UnhashableError{Value: v}
}

// hashIdentity hashes a value by its address. The Go heap does not move values, so the
// address is stable for the value's life.
func hashIdentity(p unsafe.Pointer) uint64 { return mix(uint64(uintptr(p)) ^ hashKeys.identity) }

// hashInt hashes an integer; every number equal to it hashes alike. It is a bijection,
// so distinct ints never collide.
func hashInt(x int64) uint64 { return mix(uint64(x) ^ hashKeys.num) }

func hashFloat(x float64) (uint64, bool, error) {
	switch {
	case math.IsNaN(x):
		return mix(nans.Add(1) ^ hashKeys.nan), true, nil
	case math.IsInf(x, 0) || x != math.Trunc(x):
		return mix(math.Float64bits(x) ^ hashKeys.float), false, nil
	case x >= -(1<<63) && x < (1<<63):
		return hashInt(int64(x)), false, nil
	}
	bi, _ := big.NewFloat(x).Int(nil)
	return hashBig(bi), false, nil
}

// hashBig hashes an int of any size: as hashInt when it fits in an int64, else its sign
// and magnitude.
func hashBig(x *big.Int) uint64 {
	if x.IsInt64() {
		return hashInt(x.Int64())
	}
	var mh maphash.Hash
	mh.SetSeed(hashKeys.big)
	mh.WriteByte(byte(x.Sign() + 1))
	var w [8]byte
	for _, word := range x.Bits() {
		binary.LittleEndian.PutUint64(w[:], uint64(word))
		mh.Write(w[:])
	}
	return mh.Sum64()
}

func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// keyEqual is Python's == for hashable values of the model.
func keyEqual(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool, int64, *big.Int, float64:
		return numEqual(x, b)
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case Global:
		y, ok := b.(Global)
		return ok && x == y
	case *Tuple:
		y, ok := b.(*Tuple)
		if !ok || len(x.Items) != len(y.Items) {
			return false
		}
		if x == y {
			return true
		}
		for i := range x.Items {
			if !keyEqual(x.Items[i], y.Items[i]) {
				return false
			}
		}
		return true
	case *FrozenSet:
		y, ok := b.(*FrozenSet)
		if !ok || x.Len() != y.Len() {
			return false
		}
		if x == y {
			return true
		}
		for i, it := range x.t.keys {
			if y.t.find(it, x.t.hashAt(i)) < 0 {
				return false
			}
		}
		return true
	case *Object:
		y, ok := b.(*Object)
		return ok && x == y
	}
	return false
}

// numEqual compares two numbers of the model exactly, as Python does across bool, int
// and float (no rounding: 2**63 != 2**63 - 1 even though both round to the same float).
func numEqual(a, b any) bool {
	if x, ok := a.(int64); ok {
		if y, ok := b.(int64); ok {
			return x == y
		}
	}
	if x, ok := a.(float64); ok {
		if y, ok := b.(float64); ok {
			return x == y
		}
	}
	ra, oka := toRat(a)
	rb, okb := toRat(b)
	if !oka || !okb {
		return false
	}
	if ra == nil || rb == nil { // NaN or infinity on one side
		fa, fb := toFloat(a), toFloat(b)
		return !math.IsNaN(fa) && fa == fb
	}
	return ra.Cmp(rb) == 0
}

// toRat converts a number to an exact rational; it returns (nil, true) for NaN and
// infinities and (nil, false) for non-numbers.
func toRat(v any) (*big.Rat, bool) {
	switch x := v.(type) {
	case bool:
		if x {
			return big.NewRat(1, 1), true
		}
		return new(big.Rat), true
	case int64:
		return new(big.Rat).SetInt64(x), true
	case *big.Int:
		return new(big.Rat).SetInt(x), true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, true
		}
		return new(big.Rat).SetFloat64(x), true
	}
	return nil, false
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case bool:
		if x {
			return 1
		}
		return 0
	case int64:
		return float64(x)
	case *big.Int:
		f, _ := new(big.Float).SetInt(x).Float64()
		return f
	case float64:
		return x
	}
	return math.NaN()
}
