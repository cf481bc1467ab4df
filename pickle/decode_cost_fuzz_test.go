package pickle

import (
	"runtime"
	"testing"
)

// FuzzDecodeCost checks that decoding any input costs time and memory in proportion
// to its size: the keys compared while filling dicts and sets (at most the 8 of a
// small table's scan, or about one along a hash chain, per key put, and every key
// takes a byte of input), the values visited while hashing keys, the memory counted
// against the budget (which never passes it by more than one step), and the memory
// the runtime saw allocated, which the count must follow. Seeds:
// testdata/fuzz/FuzzDecodeCost (keys that collided under the old unkeyed hash, NaN
// keys, many small containers) and the session3 fixtures.
func FuzzDecodeCost(f *testing.F) {
	for _, b := range fixtureFiles(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n := int64(len(data))
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, cost, _ := (&Decoder{}).decode(data)
		runtime.ReadMemStats(&after)
		if cost.probes > 9*n+64 {
			t.Fatalf("decoding %d bytes compared keys %d times", n, cost.probes)
		}
		if cost.hashed > (maxKeySize+1)*n {
			t.Fatalf("decoding %d bytes visited %d values hashing keys", n, cost.hashed)
		}
		if cost.mem > cost.budget+64*n+memoryBase {
			t.Fatalf("decoding %d bytes counted %d bytes of memory, over the budget of %d", n, cost.mem, cost.budget)
		}
		if alloc := int64(after.TotalAlloc - before.TotalAlloc); !raceEnabled && alloc > 2*cost.mem+memoryBase {
			t.Fatalf("decoding %d bytes allocated %d bytes but counted %d", n, alloc, cost.mem)
		}
	})
}
