package pickle

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cpythonMakes has CPython write a session of one kind (see
// testdata/py/pickle_hostile.py) and returns its bytes and its number of items.
func cpythonMakes(t *testing.T, kind string, n int) ([]byte, int) {
	t.Helper()
	file := filepath.Join(t.TempDir(), kind+".pkl")
	out, err := testpeer.PythonCmd(t, "pickle_hostile.py", "make", kind, strconv.Itoa(n), file).Output()
	require.NoError(t, err)
	items, err := strconv.Atoi(strings.TrimSpace(string(out)))
	require.NoError(t, err)
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	return data, items
}

// TestDecodeWhatCPythonWrites: sessions CPython writes and loads that passed the old
// default limits (2^20 memo entries, 2^19 values on the stack) decode, within the
// memory budget, and Go writes them back in pickles it reads again.
func TestDecodeWhatCPythonWrites(t *testing.T) {
	for _, c := range []struct {
		kind string
		n    int
	}{
		{"dicts", 1_200_000}, // 1.2M memo entries
		{"tuple", 600_000},   // 600,000 values on the stack at once
		{"containers", 100_000},
	} {
		t.Run(c.kind, func(t *testing.T) {
			data, n := cpythonMakes(t, c.kind, c.n)
			v, cost, err := (&Decoder{}).decode(data)
			require.NoError(t, err)
			items, _ := v.(*Dict).Get("items")
			switch x := items.(type) {
			case *List:
				assert.Len(t, x.Items, n)
			case *Tuple:
				assert.Len(t, x.Items, n)
			}
			perByte := float64(cost.mem) / float64(len(data))
			t.Logf("%d bytes: %.0f bytes of memory per byte", len(data), perByte)
			assert.Less(t, perByte, 0.6*DefaultMemoryPerByte, "memory per byte of input")

			out, err := Marshal(v)
			require.NoError(t, err)
			assert.Equal(t, data, out, "Go writes back CPython's bytes")
		})
	}
}

// TestMemoryBudget: many small containers, as in the memory amplification review (a 9
// MB session took 2.3 GB), are refused over the budget with an error wrapping
// ErrMemory and ErrLimit, and the budget follows the input size.
func TestMemoryBudget(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("\x80\x04]\x94(")
	for range 200_000 {
		b.WriteString("\x8f\x94") // EMPTY_SET, MEMOIZE: an empty set in 2 bytes
	}
	b.WriteString("e.")
	data := b.Bytes()
	v, cost, err := (&Decoder{}).decode(data)
	require.NoError(t, err)
	assert.Len(t, v.(*List).Items, 200_000)
	assert.Equal(t, int64(memoryBase+DefaultMemoryPerByte*len(data)), cost.budget)

	for _, d := range []*Decoder{{MaxMemory: cost.mem / 2}, {MemoryPerByte: int(cost.mem) / len(data) / 2}} {
		_, err := d.Decode(data)
		assert.ErrorIs(t, err, ErrMemory)
		assert.ErrorIs(t, err, ErrLimit)
		var de *DecodeError
		require.ErrorAs(t, err, &de)
		assert.Contains(t, err.Error(), "MaxMemory")
	}
	_, cost, err = (&Decoder{MaxMemory: 1000}).decode(data)
	assert.ErrorIs(t, err, ErrMemory)
	assert.Less(t, cost.mem, int64(memoryBase+100_000), "the decoding stops soon after the budget is spent")
}

// TestMemoryCountFollowsAllocations: the memory the decoder counts is what it
// allocates, within a small factor either way.
func TestMemoryCountFollowsAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	inputs := fixtureFiles(t)
	big, err := os.ReadFile(filepath.Join("testdata", "pickle", "session-100k.pkl"))
	require.NoError(t, err)
	inputs["session-100k"] = big
	var sets bytes.Buffer
	sets.WriteString("\x80\x04](")
	for range 100_000 {
		sets.WriteString("\x8f\x94}\x94]\x94)")
	}
	sets.WriteString("e.")
	inputs["small containers"] = sets.Bytes()
	for name, data := range inputs {
		var cost decodeCost
		n := allocated(func() { _, cost, err = (&Decoder{}).decode(data) })
		require.NoError(t, err, name)
		assert.InDelta(t, 1, float64(n)/float64(cost.mem), 0.5, "%s: allocated %d, counted %d", name, n, cost.mem)
	}
}

// TestEncoderWritesOnlyWhatDecodes: what the decoder would refuse, the encoder does
// not write.
func TestEncoderWritesOnlyWhatDecodes(t *testing.T) {
	// A tuple key larger than the decoder hashes.
	items := make([]any, maxKeySize+1)
	for i := range items {
		items[i] = int64(i)
	}
	d := NewDict()
	require.NoError(t, d.Set(NewTuple(items...), nil))
	_, err := Marshal(d)
	var ee *EncodeError
	require.ErrorAs(t, err, &ee)
	assert.Contains(t, err.Error(), "decoder refuses")
	s, err := NewSet(NewTuple(NewTuple(items[:maxKeySize/2]...), NewTuple(items[:maxKeySize/2]...)))
	require.NoError(t, err)
	_, err = Marshal(s)
	require.ErrorAs(t, err, &ee)

	// A list nested deeper than the decoder accepts (the encoder's own limit is higher).
	var deep any = NewList()
	for range DefaultMaxDepth + 10 {
		deep = NewList(deep)
	}
	_, err = Marshal(deep)
	require.ErrorAs(t, err, &ee)
	assert.ErrorIs(t, err, ErrLimit)

	// A pickle over the size where memory can pass DefaultMaxMemory is decoded to check.
	defer func(v int) { verifyAbove = v }(verifyAbove)
	verifyAbove = 1000
	big := NewList()
	for range 1000 {
		big.Items = append(big.Items, NewDict())
	}
	out, err := Marshal(big)
	require.NoError(t, err)
	_, err = Unmarshal(out)
	require.NoError(t, err)
}
