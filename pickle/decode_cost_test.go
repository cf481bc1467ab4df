package pickle

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/big"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Hostile inputs whose decoding cost is the point: keys chosen to share a hash, and
// many small containers. The tests bound the work counted while decoding (keys
// compared, values hashed) and the memory charged, never the time taken.

// unkeyedTupleHash is the hash this package once gave a 2-tuple of ints, with no
// secret in it. It is kept to build the keys that flooded it: anyone could compute,
// offline, as many tuples as they liked sharing one hash.
func unkeyedTupleHash(a, b int64) uint64 {
	h := uint64(0x345678)
	h = (h ^ mix(uint64(a))) * 1000003
	h = (h ^ mix(uint64(b))) * 1000003
	return h ^ 2
}

// unmix inverts mix.
func unmix(x uint64) uint64 {
	x ^= x >> 33
	x *= inverse(0xc4ceb9fe1a85ec53)
	x ^= x >> 33
	x *= inverse(0xff51afd7ed558ccd)
	x ^= x >> 33
	return x
}

// inverse returns the inverse of an odd c modulo 2^64 (Newton's iteration).
func inverse(c uint64) uint64 {
	inv := c
	for range 6 {
		inv *= 2 - c*inv
	}
	return inv
}

// collidingTuples returns n distinct (a, b) tuples of ints sharing one unkeyed hash.
func collidingTuples(n int) [][2]int64 {
	const target = 0x5eed
	z := (target ^ 2) * inverse(1000003)
	keys := make([][2]int64, n)
	for i := range keys {
		a := int64(i) + 1000
		keys[i] = [2]int64{a, int64(unmix(z ^ ((0x345678 ^ mix(uint64(a))) * 1000003)))}
	}
	return keys
}

// dictPickle returns a protocol 4 pickle of a dict with the given keys (each written
// by key) and None values, in SETITEMS batches of 1000 as CPython writes them.
func dictPickle(n int, key func(b *bytes.Buffer, i int)) []byte {
	var b bytes.Buffer
	b.WriteString("\x80\x04}")
	for i := 0; i < n; i++ {
		if i%1000 == 0 {
			b.WriteByte('(')
		}
		key(&b, i)
		b.WriteByte('N')
		if i%1000 == 999 || i == n-1 {
			b.WriteByte('u')
		}
	}
	b.WriteByte('.')
	return b.Bytes()
}

func writeLong1(b *bytes.Buffer, x int64) {
	b.WriteString("\x8a\x08")
	_ = binary.Write(b, binary.LittleEndian, x)
}

// collidingTuplePickle is the hash-flooding session of the review: a dict of n tuple
// keys that shared one hash before hashes were keyed.
func collidingTuplePickle(n int) []byte {
	keys := collidingTuples(n)
	return dictPickle(n, func(b *bytes.Buffer, i int) {
		writeLong1(b, keys[i][0])
		writeLong1(b, keys[i][1])
		b.WriteByte('\x86') // TUPLE2
	})
}

func TestCollidingTupleKeysDecodeInLinearWork(t *testing.T) {
	const n = 20000
	keys := collidingTuples(n)
	for _, k := range keys[1:] {
		require.Equal(t, unkeyedTupleHash(keys[0][0], keys[0][1]), unkeyedTupleHash(k[0], k[1]), "the keys collide under the unkeyed hash")
	}
	data := collidingTuplePickle(n)
	v, cost, err := (&Decoder{}).decode(data)
	require.NoError(t, err)
	require.Equal(t, n, v.(*Dict).Len())
	// Unkeyed, every insertion compared the key with all the keys before it: n²/2
	// comparisons (2·10^8 here; 50,000 keys in 1.2 MB took 10.6 s).
	assert.LessOrEqual(t, cost.probes, int64(2*n), "keys compared while decoding %d keys", n)
	assert.LessOrEqual(t, cost.hashed, int64(3*n), "values hashed")
}

// TestNaNKeysDecodeInLinearWork: NaN keys are each a key of their own (NaN != NaN), so
// they must not share a hash either.
func TestNaNKeysDecodeInLinearWork(t *testing.T) {
	const n = 20000
	data := dictPickle(n, func(b *bytes.Buffer, i int) {
		b.WriteByte('G')
		_ = binary.Write(b, binary.BigEndian, math.Float64bits(math.NaN())|uint64(i))
		if i%2 == 1 {
			b.WriteByte('\x85') // (nan,): a tuple holding a NaN equals only itself too
		}
	})
	v, cost, err := (&Decoder{}).decode(data)
	require.NoError(t, err)
	require.Equal(t, n, v.(*Dict).Len())
	assert.LessOrEqual(t, cost.probes, int64(2*n), "keys compared while decoding %d NaN keys", n)
}

// TestKeyedHashesKeepPythonEquality: keys equal in Python are one key, across types and
// whatever the secrets are.
func TestKeyedHashesKeepPythonEquality(t *testing.T) {
	big63 := new(big.Int).Lsh(big.NewInt(1), 63)
	groups := [][]any{
		{int64(1), 1.0, true},
		{int64(0), 0.0, math.Copysign(0, -1), false},
		{big63, math.Ldexp(1, 63)},
		{NewTuple(int64(1), "a"), NewTuple(1.0, "a"), NewTuple(true, "a")},
		{mustFrozen(t, int64(1), int64(2)), mustFrozen(t, 2.0, true)},
		{"a"}, {[]byte("a")}, {Global{"m", "n"}}, {nil}, {math.Inf(1)}, {1.5},
	}
	for _, g := range groups {
		h0, err := hashKey(g[0])
		require.NoError(t, err)
		for _, v := range g[1:] {
			h, err := hashKey(v)
			require.NoError(t, err)
			assert.Equal(t, h0, h, "%#v and %#v", g[0], v)
			assert.True(t, keyEqual(g[0], v))
		}
	}
	d := NewDict()
	for _, g := range groups {
		for _, v := range g {
			require.NoError(t, d.Set(v, nil))
		}
	}
	assert.Equal(t, len(groups), d.Len(), "one key per group")
	nan := NewTuple(math.NaN())
	require.NoError(t, d.Set(nan, nil))
	require.NoError(t, d.Set(nan, nil))
	require.NoError(t, d.Set(math.NaN(), nil))
	assert.Equal(t, len(groups)+2, d.Len(), "a tuple holding a NaN is one key with itself; a NaN is a key of its own")
}

func mustFrozen(t *testing.T, items ...any) *FrozenSet {
	fs, err := NewFrozenSet(items...)
	require.NoError(t, err)
	return fs
}
