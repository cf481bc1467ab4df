package pickle

import (
	"math"
	"math/big"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDictKeysFollowPythonEquality(t *testing.T) {
	d := NewDict()
	require.NoError(t, d.Set(int64(1), "int"))
	require.NoError(t, d.Set(1.0, "float"))
	require.NoError(t, d.Set(true, "bool"))
	require.Equal(t, 1, d.Len(), "1, 1.0 and True are one key")
	v, ok := d.Get(int64(1))
	require.True(t, ok)
	assert.Equal(t, "bool", v)
	assert.Equal(t, []any{int64(1)}, d.Keys(), "the first key object is kept")

	huge, _ := new(big.Int).SetString("9223372036854775808", 10) // 2**63
	require.NoError(t, d.Set(huge, "2**63"))
	require.NoError(t, d.Set(float64(1<<63), "float 2**63"))
	require.NoError(t, d.Set(int64(math.MaxInt64), "2**63-1"))
	assert.Equal(t, 3, d.Len())

	require.NoError(t, d.Set(NewTuple("a", int64(2)), "t1"))
	require.NoError(t, d.Set(NewTuple("a", 2.0), "t2"))
	assert.Equal(t, 4, d.Len())

	require.NoError(t, d.Set(math.NaN(), "nan1"))
	require.NoError(t, d.Set(math.NaN(), "nan2"))
	assert.Equal(t, 6, d.Len(), "NaN never equals NaN")

	var uh *UnhashableError
	require.ErrorAs(t, d.Set(NewList(), 1), &uh)
	require.ErrorAs(t, d.Set(NewTuple(NewDict()), 1), &uh)
	assert.Equal(t, 6, d.Len())

	assert.True(t, d.Delete(1.0))
	_, ok = d.Get(true)
	assert.False(t, ok)
	v, ok = d.Get(NewTuple("a", int64(2)))
	require.True(t, ok)
	assert.Equal(t, "t2", v)
}

func TestSetsAndFrozenSets(t *testing.T) {
	fs1, err := NewFrozenSet("a", "b", int64(3))
	require.NoError(t, err)
	fs2, err := NewFrozenSet(3.0, "b", "a")
	require.NoError(t, err)
	s, err := NewSet(fs1, []byte("x"), "x")
	require.NoError(t, err)
	assert.True(t, s.Has(fs2), "frozensets compare by contents")
	assert.Equal(t, 3, s.Len(), "bytes and str are different keys")
	require.NoError(t, s.Add(fs2))
	assert.Equal(t, 3, s.Len())
	_, err = NewSet(NewList())
	require.Error(t, err)
}

func TestObjectAttributes(t *testing.T) {
	o := NewObject(Global{"session3.Session", "Session"})
	require.NoError(t, o.SetAttr("id", "abc"))
	require.NoError(t, o.SetAttr("user", nil))
	v, ok := o.Attr("id")
	require.True(t, ok)
	assert.Equal(t, "abc", v)
	assert.Equal(t, []any{"id", "user"}, o.Attrs().Keys())
	assert.True(t, o.DelAttr("id"))
	_, ok = o.Attr("id")
	assert.False(t, ok)
	c, ok := o.Class()
	require.True(t, ok)
	assert.Equal(t, "session3.Session.Session", c.String())

	old := &Object{Callable: Global{"copy_reg", "_reconstructor"}, Construct: Reduce,
		Args: NewTuple(Global{"myapp.models", "Account"}, Global{"__builtin__", "object"}, nil)}
	c, ok = old.Class()
	require.True(t, ok)
	assert.Equal(t, "myapp.models.Account", c.String())
	require.NoError(t, old.SetAttr("login", "x"), "an object without state gets an attribute dict")
	assert.True(t, old.HasState)
}
