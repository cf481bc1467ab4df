package pickle

import (
	"errors"
	"runtime"
	"testing"
)

// FuzzUnmarshal checks that the decoder survives any input: no panic, a *DecodeError
// naming a cause and an offset inside the input for what it refuses, memory in
// proportion to the input, and for what it accepts a deterministic value within the
// depth limit. Seeds: testdata/fuzz/FuzzUnmarshal (CPython's corpus, written by
// testdata/py/pickle_corpus.py --seeds), the session3 fixtures and the edge cases.
func FuzzUnmarshal(f *testing.F) {
	for _, c := range edgeCases {
		f.Add([]byte(c.data))
	}
	for _, b := range fixtureFiles(f) {
		f.Add(b)
	}
	causes := []error{ErrTruncated, ErrUnknownOpcode, ErrProtocol, ErrStack, ErrMemo, ErrSyntax, ErrOperation, ErrUnsupported, ErrLimit}
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		v, err := Unmarshal(data)
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20+uint64(512*len(data)) {
			t.Fatalf("decoding %d bytes allocated %d bytes", len(data), n)
		}
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error is not a *DecodeError: %v", err)
			}
			if de.Offset < 0 || de.Offset > len(data) {
				t.Fatalf("offset %d outside the input of %d bytes: %v", de.Offset, len(data), err)
			}
			n := 0
			for _, c := range causes {
				if errors.Is(err, c) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error wraps %d causes: %v", n, err)
			}
			if v != nil {
				t.Fatalf("value %v with error %v", v, err)
			}
			return
		}
		if depthExceeds(v, DefaultMaxDepth) {
			t.Fatal("accepted a value nested deeper than DefaultMaxDepth")
		}
		again, err := Unmarshal(data)
		if err != nil {
			t.Fatalf("second decoding failed: %v", err)
		}
		if !Equal(v, again) {
			t.Fatal("two decodings differ")
		}
	})
}
