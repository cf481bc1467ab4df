package pickle

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEncodeRejectsWhatPythonCannotHold(t *testing.T) {
	var ee *EncodeError
	var ut *UnsupportedTypeError

	_, err := Marshal(NewList(int64(1), encDict("k", "bad \xff utf-8")))
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, `[1]["k"]`, ee.Path)
	assert.Contains(t, err.Error(), "not UTF-8")

	_, err = Marshal(encInst("m", "C", "attr", NewTuple("\xed\xa0")))
	require.ErrorAs(t, err, &ee, "a truncated surrogate is not the surrogatepass form")
	assert.Equal(t, `.__dict__["attr"][0]`, ee.Path)

	_, err = Marshal("\xed\xa0\x80 and \xed\xbf\xbf are lone surrogates, allowed")
	assert.NoError(t, err)
	_, err = Marshal("\xc0\x80 is an overlong NUL, not allowed")
	assert.Error(t, err)

	for _, v := range []any{struct{}{}, make(chan int), map[int]int{1: 1}, []int{1}, complex(1, 2), new(int)} {
		_, err = Marshal(map[string]any{"x": v})
		require.ErrorAs(t, err, &ut, "%T", v)
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, `["x"]`, ee.Path)
	}

	for _, v := range []any{(*List)(nil), (*Dict)(nil), (*Tuple)(nil), (*Object)(nil), (*Set)(nil), (*FrozenSet)(nil), (*ByteArray)(nil)} {
		_, err = Marshal(NewList(v))
		require.ErrorAs(t, err, &ee, "%T", v)
		assert.Contains(t, err.Error(), "nil")
	}

	_, err = Marshal(Global{"m", ""})
	assert.Error(t, err)
	_, err = Marshal(&Object{Callable: Global{"m", "C"}, Construct: Construct(9), Args: NewTuple()})
	assert.ErrorContains(t, err, "unknown construction")

	_, err = Marshal(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
	assert.ErrorContains(t, err, "9999")
	_, err = Marshal(time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC))
	assert.Error(t, err)
}

func TestEncodeGlobalNamesBelowProtocol4(t *testing.T) {
	enc := func(g Global, proto int) error {
		var buf bytes.Buffer
		e := NewEncoder(&buf)
		e.Protocol = proto
		return e.Encode(g)
	}
	assert.ErrorContains(t, enc(Global{"m\u00e9", "C"}, 2), "ASCII")
	assert.NoError(t, enc(Global{"m\u00e9", "C"}, 3), "protocol 3 writes GLOBAL names in UTF-8")
	assert.ErrorContains(t, enc(Global{"m\nx", "C"}, 3), "newline")
	assert.NoError(t, enc(Global{"m\nx", "C"}, 4), "STACK_GLOBAL takes any str")
	assert.ErrorContains(t, enc(Global{"m", "\xff"}, 3), "UTF-8")
}

func TestEncoderProtocolAndErrors(t *testing.T) {
	for _, p := range []int{-1, 1, 6} {
		e := NewEncoder(&bytes.Buffer{})
		e.Protocol = p
		assert.Error(t, e.Encode(nil), "protocol %d", p)
	}
	for p := 2; p <= 5; p++ {
		var buf bytes.Buffer
		e := NewEncoder(&buf)
		e.Protocol = p
		require.NoError(t, e.Encode(nil))
		assert.Equal(t, []byte{opProto, byte(p), opNone, opStop}, buf.Bytes())
	}

	// A writer error is returned, for small pickles and for streamed large ones.
	boom := errors.New("disk full")
	for _, v := range []any{"small", strings.Repeat("x", 200000), encBigSession()} {
		assert.ErrorIs(t, NewEncoder(failingWriter{boom}).Encode(v), boom)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

// TestEncodeDepth checks that the deepest values are written and that a value nested
// beyond the limit, or a cycle the memo cannot break (Go maps and slices, tuples that
// contain themselves), is an error rather than a stack overflow.
func TestEncodeDepth(t *testing.T) {
	deep := func(n int) any {
		var v any = "leaf"
		for range n {
			v = NewList(v)
		}
		return v
	}
	// An Encoder writes down to its MaxDepth; Marshal writes only what Unmarshal reads.
	require.NoError(t, NewEncoder(&bytes.Buffer{}).Encode(deep(defaultEncodeDepth)))
	assert.ErrorContains(t, NewEncoder(&bytes.Buffer{}).Encode(deep(defaultEncodeDepth+1)), "too deeply")
	_, err := Marshal(deep(DefaultMaxDepth))
	require.NoError(t, err)
	_, err = Marshal(deep(DefaultMaxDepth + 1))
	assert.ErrorIs(t, err, ErrLimit)
	_, err = Marshal(deep(defaultEncodeDepth + 1))
	var ee *EncodeError
	require.ErrorAs(t, err, &ee)
	assert.ErrorContains(t, err, "too deeply")

	var e Encoder
	e.w = &bytes.Buffer{}
	e.MaxDepth = 3
	assert.NoError(t, e.Encode(deep(3)))
	assert.Error(t, e.Encode(deep(4)))

	m := map[string]any{}
	m["self"] = m
	_, err = Marshal(m)
	assert.ErrorContains(t, err, "too deeply")

	s := []any{nil}
	s[0] = s
	_, err = Marshal(s)
	assert.ErrorContains(t, err, "too deeply")

	tup := NewTuple(nil)
	tup.Items[0] = tup
	_, err = Marshal(tup)
	assert.ErrorContains(t, err, "too deeply")

	// A cycle through a list is what the memo is for.
	l := NewList()
	l.Items = append(l.Items, NewTuple(l))
	_, err = Marshal(l)
	assert.NoError(t, err)
}

func TestEncodeIntsAtEveryWidth(t *testing.T) {
	// The boundaries of every int opcode, each compared with its big.Int twin (which
	// must be written the same way) and decoded by the LONG1 rules.
	for _, x := range []int64{0, 255, 256, 65535, 65536, -1, math.MaxInt32, math.MinInt32,
		math.MaxInt32 + 1, math.MinInt32 - 1, 1 << 39, -1 << 39, -1<<39 - 1, 1<<63 - 1, -1 << 63} {
		a, err := Marshal(x)
		require.NoError(t, err)
		b, err := Marshal(encBigFromInt(x))
		require.NoError(t, err)
		assert.Equal(t, a, b, "%d", x)
	}
}

// TestEncodeCompatTablesMatchCPython checks the fix_imports tables and the split of
// builtins into classes and functions against the running CPython.
func TestEncodeCompatTablesMatchCPython(t *testing.T) {
	cmd := testpeer.PythonCmd(t, "pickle_encode_check.py", "compat")
	out, err := cmd.Output()
	require.NoError(t, err)
	var got struct {
		Name      [][4]string     `json:"name"`
		Import    [][2]string     `json:"import"`
		Functions map[string]bool `json:"functions"`
	}
	require.NoError(t, json.Unmarshal(out, &got))
	require.Len(t, reverseNameMapping, len(got.Name))
	for _, m := range got.Name {
		assert.Equal(t, [2]string{m[2], m[3]}, reverseNameMapping[[2]string{m[0], m[1]}], "%v", m)
	}
	require.Len(t, reverseImportMapping, len(got.Import))
	for _, m := range got.Import {
		assert.Equal(t, m[1], reverseImportMapping[m[0]], "%v", m)
	}
	require.NotEmpty(t, got.Functions)
	for name, isFunc := range got.Functions {
		assert.Equal(t, isFunc, isBuiltinFunction(name), "builtins.%s", name)
	}
}

func encBigFromInt(x int64) any { return new(big.Int).SetInt64(x) }
