package pickle

import (
	"math"
	"math/big"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEqualScalars(t *testing.T) {
	big1 := new(big.Int).Lsh(big.NewInt(1), 70)
	big2 := new(big.Int).Lsh(big.NewInt(1), 70)
	for _, c := range []struct {
		a, b any
		want bool
	}{
		{nil, nil, true},
		{nil, false, false},
		{true, true, true},
		{true, int64(1), false},
		{int64(5), big.NewInt(5), true},
		{big1, big2, true},
		{big1, int64(5), false},
		{(*big.Int)(nil), (*big.Int)(nil), true},
		{(*big.Int)(nil), int64(0), false},
		{1.5, 1.5, true},
		{0.0, math.Copysign(0, -1), false},
		{math.NaN(), math.Float64frombits(0x7ff8000000000001), true},
		{1.0, int64(1), false},
		{"a", "a", true},
		{"a", []byte("a"), false},
		{[]byte{}, []byte(nil), true},
		{Global{"m", "n"}, Global{"m", "n"}, true},
		{Global{"m", "n"}, Global{"m", "o"}, false},
		{[]any{1, "x"}, []any{1, "x"}, true}, // outside the model: reflect.DeepEqual
	} {
		assert.Equal(t, c.want, Equal(c.a, c.b), "%#v vs %#v", c.a, c.b)
		assert.Equal(t, c.want, Equal(c.b, c.a), "%#v vs %#v", c.b, c.a)
	}
}

func TestEqualIdentityStructure(t *testing.T) {
	x := NewList(int64(1))
	y := NewList(int64(1))
	shared := NewList(x, x)
	copied := NewList(x, y)
	assert.True(t, Equal(shared, NewList(y, y)))
	assert.False(t, Equal(shared, copied), "[x, x] is not [x, copy of x]")
	assert.False(t, Equal(copied, shared))

	// Cycles: l = [l] equals another l' = [l'], not [[l]] unrolled once... which is
	// the same graph only if the inner list is the outer one.
	l1 := NewList()
	l1.Items = append(l1.Items, l1)
	l2 := NewList()
	l2.Items = append(l2.Items, l2)
	assert.True(t, Equal(l1, l2))
	l3 := NewList()
	l4 := NewList(l3)
	l3.Items = append(l3.Items, l4) // l3 = [l4], l4 = [l3]: a two-list cycle
	assert.False(t, Equal(l1, l3))
	assert.True(t, Equal(l3, l4), "l3 -> l4 -> l3 maps onto l4 -> l3 -> l4")

	d1, d2 := NewDict(), NewDict()
	require.NoError(t, d1.Set("self", d1))
	require.NoError(t, d2.Set("self", d2))
	assert.True(t, Equal(d1, d2))
	require.NoError(t, d2.Set("x", int64(1)))
	assert.False(t, Equal(d1, d2))

	// Order matters for dicts and sets.
	o1, o2 := NewDict(), NewDict()
	require.NoError(t, o1.Set("a", int64(1)))
	require.NoError(t, o1.Set("b", int64(2)))
	require.NoError(t, o2.Set("b", int64(2)))
	require.NoError(t, o2.Set("a", int64(1)))
	assert.False(t, Equal(o1, o2))
	s1, _ := NewSet("a", "b")
	s2, _ := NewSet("b", "a")
	assert.False(t, Equal(s1, s2))
	s3, _ := NewSet("a", "b")
	assert.True(t, Equal(s1, s3))

	// Types.
	assert.False(t, Equal(NewList(), NewTuple()))
	fs, _ := NewFrozenSet()
	assert.False(t, Equal(&Set{}, fs))
	assert.True(t, Equal(&ByteArray{Data: []byte("ab")}, &ByteArray{Data: []byte("ab")}))
	assert.False(t, Equal(&ByteArray{Data: []byte("ab")}, &ByteArray{Data: []byte("ac")}))
	assert.True(t, Equal((*List)(nil), (*List)(nil)))
	assert.False(t, Equal((*List)(nil), NewList()))
}

func TestEqualObjects(t *testing.T) {
	mk := func() *Object {
		o := NewObject(Global{"myapp.models", "Account"})
		require.NoError(t, o.SetAttr("login", "bob"))
		return o
	}
	a, b := mk(), mk()
	assert.True(t, Equal(a, b))
	require.NoError(t, b.SetAttr("login", "eve"))
	assert.False(t, Equal(a, b))
	b = mk()
	b.Construct = Reduce
	assert.False(t, Equal(a, b))
	b = mk()
	b.HasState = false
	assert.False(t, Equal(a, b))
	b = mk()
	b.ListItems = []any{int64(1)}
	assert.False(t, Equal(a, b))
	b = mk()
	b.Args = NewTuple("x")
	assert.False(t, Equal(a, b))

	// An object reachable from its own state.
	c, d := mk(), mk()
	require.NoError(t, c.SetAttr("me", c))
	require.NoError(t, d.SetAttr("me", d))
	assert.True(t, Equal(c, d))
	e := mk()
	require.NoError(t, e.SetAttr("me", mk()))
	assert.False(t, Equal(c, e))
}

func TestEqualDeepGraphs(t *testing.T) {
	// Far deeper than the decoder accepts: Equal does not recurse.
	const depth = 200000
	chain := func() any {
		var v any = int64(0)
		for range depth {
			v = NewList(v)
		}
		return v
	}
	a, b := chain(), chain()
	assert.True(t, Equal(a, b))
	b.(*List).Items[0].(*List).Items[0] = "different"
	assert.False(t, Equal(a, b))
}

func TestEqualOnDecodedCorpus(t *testing.T) {
	// Two decodings of a pickle are equal; decodings of different pickles of the
	// corpus are not (the corpus holds no two equal values at one protocol).
	cases := cpythonCorpus(t)
	byProto := map[int][]any{}
	for _, c := range cases {
		v1, err := Unmarshal(c.data)
		require.NoError(t, err)
		v2, err := Unmarshal(c.data)
		require.NoError(t, err)
		require.True(t, Equal(v1, v2), "%s at protocol %d", c.Name, c.Protocol)
		if c.Protocol == 4 && len(c.data) < 2000 {
			byProto[4] = append(byProto[4], v1)
		}
	}
	vs := byProto[4]
	require.Greater(t, len(vs), 70)
	for i := range vs {
		for j := range vs {
			if i != j && Equal(vs[i], vs[j]) {
				assert.Equal(t, describeJSON(vs[i]), describeJSON(vs[j]), "only equal graphs are Equal")
			}
		}
	}
}
