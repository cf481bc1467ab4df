package pickle

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDecodeSurvivesCollections decodes while the garbage collector runs without a
// pause, and checks every decoded value, kept across many collections and later
// decodings, still re-encodes to the bytes it came from. The decoder's stack, memo
// and str headers are memory the collector does not scan (see slot and
// slabs.space): a value kept alive only through them would be freed and reused, and
// its re-encoding would differ or crash.
func TestDecodeSurvivesCollections(t *testing.T) {
	files := benchFiles(t)
	var inputs [][]byte
	for _, f := range files {
		data, _ := readBench(t, f)
		inputs = append(inputs, data)
	}
	stop := collectWithoutPause()
	type decoded struct {
		in []byte
		v  any
	}
	var kept []decoded
	for round := range 20 {
		for _, in := range inputs {
			v, err := Unmarshal(in)
			require.NoError(t, err)
			if round%4 == 0 {
				kept = append(kept, decoded{in, v})
			}
		}
	}
	stop()
	runtime.GC()
	for _, k := range kept {
		out, err := Marshal(k.v)
		require.NoError(t, err)
		require.Equal(t, k.in, out)
	}
}

// TestDecodeKeepsValuesOnlyInTheMemo decodes, while the collector runs without a
// pause, a pickle whose values spend most of the decoding only in the memo: each is
// made, memoized and popped, and a final list fetches them all back. Values freed
// early would be reused by the ones made after them.
func TestDecodeKeepsValuesOnlyInTheMemo(t *testing.T) {
	const n = 3000
	in := []byte{opProto, 4}
	str := func(s string) { in = append(append(in, opShortBinUnicode, byte(len(s))), s...) }
	for i := range n {
		switch i % 4 {
		case 0: // a list holding a str
			in = append(in, opEmptyList, opMemoize)
			str(fmt.Sprintf("list %d", i))
			in = append(in, opAppend)
		case 1: // a dict
			in = append(in, opEmptyDict, opMemoize)
			str("k")
			str(fmt.Sprintf("dict %d", i))
			in = append(in, opSetItem)
		case 2: // a tuple of a str and a float
			str(fmt.Sprintf("tuple %d", i))
			in = append(in, opBinFloat)
			in = binary.BigEndian.AppendUint64(in, math.Float64bits(float64(i)+0.5))
			in = append(in, opTuple2, opMemoize)
		case 3: // a str
			str(fmt.Sprintf("str %d", i))
			in = append(in, opMemoize)
		}
		in = append(in, opPop)
	}
	in = append(in, opMark)
	for i := range n {
		in = binary.LittleEndian.AppendUint32(append(in, opLongBinGet), uint32(i))
	}
	in = append(in, opList, opStop)

	stop := collectWithoutPause()
	check := func(v any) {
		l, ok := v.(*List)
		require.True(t, ok)
		require.Len(t, l.Items, n)
		for i, it := range l.Items {
			var got any
			switch x := it.(type) {
			case *List:
				got = x.Items[0]
			case *Dict:
				got, _ = x.Get("k")
			case *Tuple:
				if x.Items[1] != float64(i)+0.5 {
					t.Fatalf("item %d: %v", i, x.Items[1])
				}
				got = x.Items[0]
			default:
				got = x
			}
			want := [...]string{"list", "dict", "tuple", "str"}[i%4] + " " + strconv.Itoa(i)
			if got != want {
				t.Fatalf("item %d: %#v, want %q", i, got, want)
			}
		}
	}
	// Each result is checked at once and dropped, so that the memory of values freed
	// too early is soon reused; a few are kept and checked again at the end.
	var kept []any
	for round := range 300 {
		v, err := Unmarshal(in)
		require.NoError(t, err)
		check(v)
		if round%50 == 0 {
			kept = append(kept, v)
		}
	}
	stop()
	runtime.GC()
	for _, v := range kept {
		check(v)
	}
}

// collectWithoutPause runs the garbage collector over and over until the returned
// function is called.
func collectWithoutPause() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
				runtime.GC()
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}
