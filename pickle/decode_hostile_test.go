package pickle

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// allocated returns the bytes f allocates on the heap.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// decodeErr decodes data and checks that it fails with a *DecodeError wrapping cause
// at the given opcode offset (offset < 0: any).
func decodeErr(t *testing.T, data []byte, cause error, offset int, msg string) *DecodeError {
	t.Helper()
	v, err := Unmarshal(data)
	require.Error(t, err, msg)
	assert.Nil(t, v, msg)
	var de *DecodeError
	require.ErrorAs(t, err, &de, msg)
	assert.ErrorIs(t, err, cause, "%s: %v", msg, err)
	if offset >= 0 {
		assert.Equal(t, offset, de.Offset, "%s: %v", msg, err)
	}
	return de
}

func fixtureFiles(t testing.TB) map[string][]byte {
	files, err := filepath.Glob(filepath.Join("testdata", "session3", "*.pkl"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		out[filepath.Base(f)] = b
	}
	return out
}

func TestDecodeTruncatedAtEveryOffset(t *testing.T) {
	inputs := fixtureFiles(t)
	for _, c := range cpythonCorpus(t) {
		if len(c.data) < 2000 && (c.Protocol == 0 || c.Protocol == 2 || c.Protocol == 5) {
			inputs[c.Name+"-"+string(rune('0'+c.Protocol))] = c.data
		}
	}
	for name, data := range inputs {
		for n := 0; n < len(data); n++ {
			de := decodeErr(t, data[:n], ErrTruncated, -1, name)
			assert.LessOrEqual(t, de.Offset, n, name)
			if de.Op == "" {
				assert.Equal(t, n, de.Offset, "%s: ran out where an opcode starts", name)
			}
		}
		_, err := Unmarshal(data)
		require.NoError(t, err, name)
	}
}

func TestDecodeHugeDeclaredLengths(t *testing.T) {
	const huge = 1 << 40
	le8 := func(n uint64) string {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], n)
		return string(b[:])
	}
	le4 := func(n uint32) string {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], n)
		return string(b[:])
	}
	cases := map[string]string{
		"FRAME":        "\x80\x04\x95" + le8(huge) + "\x8c\x01a\x94.",
		"BINBYTES8":    "\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8e" + le8(huge) + "abc.",
		"BINUNICODE8":  "\x80\x04\x8d" + le8(huge) + "abcdefghijklmnopq.",
		"BYTEARRAY8":   "\x80\x05\x96" + le8(huge) + "abcdefghijklmnopq.",
		"max uint64":   "\x80\x04\x8e" + le8(1<<64-1) + "abcdefghijklmnopq.",
		"BINUNICODE":   "X" + le4(1<<32-1) + "abc.",
		"BINBYTES":     "B" + le4(1<<32-1) + "abc.",
		"BINSTRING":    "T" + le4(1<<31-1) + "abc.",
		"LONG4":        "\x8b" + le4(1<<31-1) + "abc.",
		"SHORT_BINSTR": "U\xffabc.",
	}
	for name, data := range cases {
		if strings.HasSuffix(name, "8") || name == "FRAME" {
			assert.LessOrEqual(t, len(data), 31, name)
		}
		var err error
		n := allocated(func() { _, err = Unmarshal([]byte(data)) })
		var de *DecodeError
		require.ErrorAs(t, err, &de, name)
		if name == "max uint64" {
			assert.ErrorIs(t, err, ErrSyntax, name) // beyond CPython's Py_ssize_t
		} else {
			assert.ErrorIs(t, err, ErrTruncated, "%s: %v", name, err)
		}
		assert.Less(t, n, uint64(64<<10), "%s allocated %d bytes", name, n)
	}
}

func TestDecodeFarMemoIndexesUseLittleMemory(t *testing.T) {
	for name, data := range map[string]string{
		"LONG_BINPUT":   "Nr\xff\xff\xff\xffj\xff\xff\xff\xff.",
		"PUT":           "Np999999999999\ng999999999999\n.",
		"spread BINPUT": "Nq\x00q\x10q\x20q\x40q\x80q\xffh\xff.",
	} {
		var v any
		var err error
		n := allocated(func() { v, err = Unmarshal([]byte(data)) })
		require.NoError(t, err, name)
		assert.Nil(t, v, name)
		assert.Less(t, n, uint64(64<<10), "%s allocated %d bytes", name, n)
	}
}

func TestDecodeDeepNesting(t *testing.T) {
	const million = 1000000
	marks := strings.Repeat("(", million) + "."
	var de *DecodeError
	n := allocated(func() { de = decodeErr(t, []byte(marks), ErrLimit, DefaultMaxDepth, "1e6 MARKs") })
	assert.Contains(t, de.Error(), "MaxDepth")
	assert.Less(t, n, uint64(4<<20), "1e6 MARKs allocated %d bytes", n)

	// A million values left on the stack: CPython returns the last one, and so does the
	// decoder, within its memory budget; a smaller MaxStack refuses them.
	lists := strings.Repeat("]", million) + "."
	v, cost, err := (&Decoder{}).decode([]byte(lists))
	require.NoError(t, err, "1e6 EMPTY_LISTs")
	assert.True(t, Equal(NewList(), v))
	assert.Less(t, cost.mem, int64(128*million), "1e6 EMPTY_LISTs")
	_, err = (&Decoder{MaxStack: 1 << 19}).Decode([]byte(lists))
	var de2 *DecodeError
	require.ErrorAs(t, err, &de2)
	assert.ErrorIs(t, err, ErrLimit)
	assert.Equal(t, 1<<19, de2.Offset)
	assert.Contains(t, de2.Error(), "MaxStack")

	dups := "N" + strings.Repeat("2", million) + "."
	_, err = (&Decoder{MaxStack: 1000}).Decode([]byte(dups))
	assert.ErrorIs(t, err, ErrLimit, "1e6 DUPs")

	// A million TUPLE1 nest a tuple without growing the stack.
	tuples := "N" + strings.Repeat("\x85", million) + "."
	decodeErr(t, []byte(tuples), ErrLimit, DefaultMaxDepth+1, "1e6 TUPLE1s")

	// Lists nested by APPEND, one level per opcode pair.
	appends := strings.Repeat("]", million/4) + strings.Repeat("a", million/4-1) + "."
	decodeErr(t, []byte(appends), ErrLimit, len(appends)-1, "lists nested by APPEND")

	// A chain built through the memo: each list is appended to the previous one after
	// that one was put into its own parent, so only measuring the result finds the depth.
	decodeErr(t, memoChain(50000), ErrLimit, -1, "chain through the memo")
	v, err = Unmarshal(memoChain(DefaultMaxDepth))
	require.NoError(t, err)
	assert.Equal(t, DefaultMaxDepth, listDepth(v))

	// And a custom limit.
	d := Decoder{MaxDepth: 10}
	_, err = d.Decode(memoChain(10))
	require.NoError(t, err)
	_, err = d.Decode(memoChain(11))
	assert.ErrorIs(t, err, ErrLimit)
	_, err = d.Decode([]byte(strings.Repeat("]", 11) + strings.Repeat("a", 10) + "."))
	assert.ErrorIs(t, err, ErrLimit)
	_, err = d.Decode([]byte(strings.Repeat("]", 10) + strings.Repeat("a", 9) + "."))
	assert.NoError(t, err)
}

// memoChain is a pickle of n lists, each appended to the one before after that one was
// itself appended: L0 = [L1], L1 = [L2], ...
func memoChain(n int) []byte {
	var b bytes.Buffer
	b.WriteString("\x80\x04]\x94")
	for i := 1; i < n; i++ {
		b.WriteString("]\x940")                               // L_i, memo i, popped
		b.WriteString("j" + le32(i-1) + "j" + le32(i) + "a0") // L_{i-1}.append(L_i)
	}
	b.WriteString("j" + le32(0) + ".")
	return b.Bytes()
}

func le32(i int) string {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(i))
	return string(b[:])
}

func listDepth(v any) int {
	n := 0
	for {
		l, ok := v.(*List)
		if !ok {
			return n
		}
		n++
		if len(l.Items) == 0 {
			return n
		}
		v = l.Items[0]
	}
}

func TestDeepestAcceptedValueIsSafeToWalk(t *testing.T) {
	// The deepest values the default decoder accepts: lists, tuples (hashed as dict
	// keys), dicts and objects nested DefaultMaxDepth deep. Walking them — Equal, the
	// depth check, hashing, encoding — must work.
	deepLists := strings.Repeat("]", DefaultMaxDepth) + strings.Repeat("a", DefaultMaxDepth-1) + "."
	// (Hashing also bounds a key's size: maxKeySize values.)
	tupleKey := "}N" + strings.Repeat("\x85", maxKeySize-1) + "Ns."
	deepTuple := "N" + strings.Repeat("\x85", DefaultMaxDepth) + "."
	// Objects whose state dict holds the next object: two levels each.
	node := "\x8c\x0cmyapp.models\x8c\x04Node\x93)\x81"
	var objects bytes.Buffer
	objects.WriteString("\x80\x04" + node + "\x940")
	for i := 1; i < DefaultMaxDepth/2; i++ {
		objects.WriteString(node + "}\x8c\x01cj" + le32(i-1) + "sb\x94")
		if i < DefaultMaxDepth/2-1 {
			objects.WriteString("0")
		}
	}
	objects.WriteString(".")
	for name, data := range map[string][]byte{"lists": []byte(deepLists), "tuple": []byte(deepTuple), "objects": objects.Bytes()} {
		v1, err := Unmarshal(data)
		require.NoError(t, err, name)
		v2, err := Unmarshal(data)
		require.NoError(t, err, name)
		assert.True(t, Equal(v1, v2), name)
		assert.False(t, depthExceeds(v1, DefaultMaxDepth), name)
		assert.True(t, depthExceeds(v1, DefaultMaxDepth-1), name)
		if tp, ok := v1.(*Tuple); ok {
			_, err := hashKey(tp)
			assert.NoError(t, err)
			assert.True(t, keyEqual(tp, v2))
		}
		out, err := Marshal(v1)
		require.NoError(t, err, name)
		v3, err := Unmarshal(out)
		require.NoError(t, err, name)
		assert.True(t, Equal(v1, v3), name)
		_, err = ToJSON(v1)
		assert.NoError(t, err, name)
	}
	v, err := Unmarshal([]byte(tupleKey))
	require.NoError(t, err)
	k := v.(*Dict).Keys()[0]
	_, found := v.(*Dict).Get(k)
	assert.True(t, found)
	decodeErr(t, []byte("}N"+strings.Repeat("\x85", maxKeySize)+"Ns."), ErrLimit, -1, "larger tuple key")
	// One more level is refused.
	decodeErr(t, []byte("N"+strings.Repeat("\x85", DefaultMaxDepth+1)+"."), ErrLimit, -1, "tuple")
	decodeErr(t, []byte(strings.Repeat("]", DefaultMaxDepth+1)+strings.Repeat("a", DefaultMaxDepth)+"."), ErrLimit, -1, "lists")
}

func TestDecodeHostileBattery(t *testing.T) {
	// Each a typed error at the offset of the guilty opcode.
	decodeErr(t, []byte("\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00\xff."), ErrTruncated, 2, "frame beyond input")
	decodeErr(t, []byte("\x80\x04N\xfe."), ErrUnknownOpcode, 3, "unknown opcode")
	decodeErr(t, []byte("\x80\x04h\x07."), ErrMemo, 2, "BINGET of nothing")
	decodeErr(t, []byte("\x80\x04j\x00\x00\x01\x00."), ErrMemo, 2, "LONG_BINGET of nothing")
	decodeErr(t, []byte("g5\n."), ErrMemo, 0, "GET of nothing")
	decodeErr(t, []byte("\x80\x04}(K\x01K\x02K\x03u."), ErrStack, 10, "odd SETITEMS")
	decodeErr(t, []byte("\x80\x04}(]K\x01u."), ErrOperation, 7, "unhashable key")
	var uh *UnhashableError
	_, err := Unmarshal([]byte("\x80\x04}(]K\x01u."))
	assert.ErrorAs(t, err, &uh)
	decodeErr(t, []byte("\x80\x06N."), ErrProtocol, 0, "protocol 6")
	decodeErr(t, []byte("\x80\x04N\x80\xffN."), ErrProtocol, 3, "protocol 255 later")
	decodeErr(t, []byte("\x80\x04N"), ErrTruncated, 3, "no STOP")
	decodeErr(t, []byte("\x80\x04."), ErrStack, 2, "STOP on an empty stack")
	decodeErr(t, []byte("\x80\x04\x8c\x03ab"), ErrTruncated, 2, "string cut short")

	// Every byte that is no opcode is refused as one.
	known := 0
	for b := 0; b < 256; b++ {
		if opNames[b] != "" {
			known++
			continue
		}
		decodeErr(t, []byte{byte(b), '.'}, ErrUnknownOpcode, 0, "byte "+opName(byte(b)))
	}
	assert.Equal(t, 68, known, "opcodes of protocols 0 to 5")

	// A dict key built to be expensive to hash: tuples sharing their halves.
	var key bytes.Buffer
	key.WriteString("\x80\x04}NN\x86")
	for i := 0; i < 40; i++ {
		key.WriteString("2\x86") // t = (t, t)
	}
	key.WriteString("Ns.")
	decodeErr(t, key.Bytes(), ErrLimit, -1, "exponential key")

	// The same key object used many times is hashed once.
	var reuse bytes.Buffer
	reuse.WriteString("\x80\x04}N")
	for i := 0; i < 11; i++ {
		reuse.WriteString("2\x86")
	}
	reuse.WriteString("\x940(")
	for i := 0; i < 20000; i++ {
		reuse.WriteString("h\x00N")
	}
	reuse.WriteString("u.")
	v, err := Unmarshal(reuse.Bytes())
	require.NoError(t, err)
	assert.Equal(t, 1, v.(*Dict).Len())

	// Limits that are options.
	_, err = (&Decoder{MaxStack: 3}).Decode([]byte("NNNN."))
	assert.ErrorIs(t, err, ErrLimit)
	_, err = (&Decoder{MaxMemo: 2}).Decode([]byte("Nq\x00q\x01q\x02."))
	assert.ErrorIs(t, err, ErrLimit)
	_, err = (&Decoder{MaxMemo: 2}).Decode([]byte("Nq\x00q\x01q\x01q\x00."))
	assert.NoError(t, err, "replacing entries is not adding them")
}

func TestDecodeErrorMessages(t *testing.T) {
	_, err := Unmarshal([]byte("\x80\x04}(K\x01u."))
	assert.EqualError(t, err, "pickle: SETITEMS at offset 6: bad stack: odd number of items for SETITEMS")
	_, err = Unmarshal(nil)
	assert.EqualError(t, err, "pickle: at offset 0: data truncated: ran out of input")
	_, err = Unmarshal([]byte("\xfe"))
	assert.EqualError(t, err, "pickle: 0xfe at offset 0: unknown opcode: invalid load key '\\xfe'")
	assert.True(t, errors.Is(err, ErrUnknownOpcode))
}

func TestDecodeAllocations(t *testing.T) {
	// Decoder state is pooled, and containers, the interface boxes of strs, ints and
	// floats, and the bytes of strs come from chunks: what is left is about one
	// allocation per chunk.
	data := fixtureFiles(t)["session3-counter-tokens.pkl"]
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := Unmarshal(data); err != nil {
			t.Fatal(err)
		}
	})
	budget := 12.0
	if raceEnabled {
		budget += 10 // the pooled state (unpickler, vals, stack, memo, marks, meta) made anew
	}
	bigBudget := 90.0
	if raceEnabled {
		bigBudget += 20 // the same, grown to the size of the 100 KB session
	}
	assert.LessOrEqual(t, allocs, budget, "a 248-byte session")

	big, err := os.ReadFile(filepath.Join("testdata", "pickle", "session-100k.pkl"))
	require.NoError(t, err)
	allocs = testing.AllocsPerRun(5, func() {
		if _, err := Unmarshal(big); err != nil {
			t.Fatal(err)
		}
	})
	// 2573 strs and 1000 floats among 1000 dicts, 1000 tuples and 3 lists: chunks of
	// up to 1024 boxes, 1024 items and 128 containers.
	assert.Less(t, allocs, bigBudget, "the 100 KB session")
}
