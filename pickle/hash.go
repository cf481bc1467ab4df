package pickle

import (
	"bytes"
	"hash/maphash"
	"math"
	"math/big"
	"unsafe"
)

// seed keys the string and bytes hashes. Hashes live only in memory (they order nothing
// that is written), so a per-process seed is fine.
var seed = maphash.MakeSeed()

// hashKey hashes a dict key or set item consistently with keyEqual, which follows
// Python's equality: numbers that compare equal (1, 1.0, True) hash alike.
// Unhashable values (list, dict, set, bytearray, or a tuple holding one) give an
// *UnhashableError, as in CPython.
func hashKey(v any) (uint64, error) {
	switch x := v.(type) {
	case nil:
		return 0x9e3779b97f4a7c15, nil
	case bool, int64, *big.Int, float64:
		return hashNumber(x), nil
	case string:
		return maphash.String(seed, x), nil
	case []byte:
		return maphash.Bytes(seed, x) ^ 0x62, nil
	case Global:
		return maphash.String(seed, x.Module) ^ mix(maphash.String(seed, x.Name)+0x67), nil
	case *Tuple:
		h := uint64(0x345678)
		for _, it := range x.Items {
			ih, err := hashKey(it)
			if err != nil {
				return 0, err
			}
			h = (h ^ ih) * 1000003
		}
		return h ^ uint64(len(x.Items)), nil
	case *FrozenSet:
		// Order-independent: equal frozensets may hold their items in different orders.
		var h uint64 = 0x1f2e3d4c
		for i := range x.t.keys {
			h += mix(x.t.hashAt(i))
		}
		return h, nil
	case *Object:
		// Instances hash by identity, as object.__hash__ does. The Go heap does not move
		// objects, so the address is stable for the object's life.
		return mix(uint64(uintptr(unsafe.Pointer(x)))), nil
	}
	return 0, &UnhashableError{Value: v}
}

func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

func hashNumber(v any) uint64 {
	switch x := v.(type) {
	case bool:
		if x {
			return mix(1)
		}
		return mix(0)
	case int64:
		return mix(uint64(x))
	case *big.Int:
		if x.IsInt64() {
			return mix(uint64(x.Int64()))
		}
		return maphash.Bytes(seed, x.Bytes()) ^ uint64(x.Sign()+0x69)
	case float64:
		if math.IsNaN(x) {
			return 0x7ff8
		}
		if math.IsInf(x, 0) || x != math.Trunc(x) {
			return mix(math.Float64bits(x) ^ 0x66)
		}
		if x >= -(1<<63) && x < (1<<63) {
			return mix(uint64(int64(x)))
		}
		bi, _ := big.NewFloat(x).Int(nil)
		return hashNumber(bi)
	}
	return 0
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
