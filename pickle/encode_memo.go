package pickle

import (
	"hash/maphash"
	"unsafe"
)

// The encoder looks up every str, bytes, container and object it writes in its memo,
// which makes the memo the hottest part of encoding. These two tables hold no Go
// pointers, so filling them costs no GC write barriers and resetting them is a
// memclr: strings are copied into a byte arena, and containers are keyed by address
// (the values are alive for the whole encoding, and Go's heap does not move them).

// strTable maps strings, by value, to memo indexes.
type strTable struct {
	slots []strSlot // open addressing, linear probing; len is a power of two
	arena []byte    // the bytes of the strings, one after another
	n     int       // used slots
	long  map[string]int
}

type strSlot struct {
	hash uint64
	off  int
	len  int
	idx  int // memo index + 1; 0 marks an empty slot
}

// longStr is the length from which strings are kept in an ordinary map rather than
// copied into the arena.
const longStr = 512

var strSeed = maphash.MakeSeed()

// get returns the memo index of s, or the hash of s to pass to set.
func (t *strTable) get(s string) (idx int, ok bool, h uint64) {
	if len(s) >= longStr {
		idx, ok := t.long[s]
		return idx, ok, 0
	}
	h = maphash.String(strSeed, s)
	if t.n == 0 {
		return 0, false, h
	}
	mask := len(t.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		sl := &t.slots[i]
		if sl.idx == 0 {
			return 0, false, h
		}
		if sl.hash == h && sl.len == len(s) && string(t.arena[sl.off:sl.off+sl.len]) == s {
			return sl.idx - 1, true, h
		}
	}
}

// set records the memo index of s, which get did not find and hashed to h.
func (t *strTable) set(s string, h uint64, idx int) {
	if len(s) >= longStr {
		if t.long == nil {
			t.long = make(map[string]int)
		}
		t.long[s] = idx
		return
	}
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	mask := len(t.slots) - 1
	i := int(h) & mask
	for t.slots[i].idx != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = strSlot{hash: h, off: len(t.arena), len: len(s), idx: idx + 1}
	t.arena = append(t.arena, s...)
	t.n++
}

func (t *strTable) grow() {
	old := t.slots
	size := max(64, 2*len(old))
	t.slots = make([]strSlot, size)
	mask := size - 1
	for _, sl := range old {
		if sl.idx == 0 {
			continue
		}
		i := int(sl.hash) & mask
		for t.slots[i].idx != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = sl
	}
}

// reset empties the table, keeping its memory unless it grew large.
func (t *strTable) reset() {
	const keepSlots, keepArena = 1 << 14, 1 << 20
	if len(t.slots) > keepSlots || cap(t.arena) > keepArena {
		*t = strTable{}
		return
	}
	if t.n > 0 {
		clear(t.slots)
	}
	t.n, t.arena = 0, t.arena[:0]
	if len(t.long) > 0 {
		t.long = nil
	}
}

// ptrTable maps the addresses of containers and objects to memo indexes.
type ptrTable struct {
	slots []ptrSlot
	n     int
}

type ptrSlot struct {
	key uintptr
	idx int // memo index + 1; 0 marks an empty slot
}

func ptrHash(p uintptr) int {
	h := uint64(p) * 0x9e3779b97f4a7c15
	return int(h >> 32)
}

func (t *ptrTable) get(p unsafe.Pointer) (int, bool) {
	if t.n == 0 {
		return 0, false
	}
	k := uintptr(p)
	mask := len(t.slots) - 1
	for i := ptrHash(k) & mask; ; i = (i + 1) & mask {
		sl := &t.slots[i]
		if sl.idx == 0 {
			return 0, false
		}
		if sl.key == k {
			return sl.idx - 1, true
		}
	}
}

// set records or replaces the memo index of p.
func (t *ptrTable) set(p unsafe.Pointer, idx int) {
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	k := uintptr(p)
	mask := len(t.slots) - 1
	i := ptrHash(k) & mask
	for t.slots[i].idx != 0 {
		if t.slots[i].key == k {
			t.slots[i].idx = idx + 1
			return
		}
		i = (i + 1) & mask
	}
	t.slots[i] = ptrSlot{key: k, idx: idx + 1}
	t.n++
}

func (t *ptrTable) grow() {
	old := t.slots
	size := max(64, 2*len(old))
	t.slots = make([]ptrSlot, size)
	mask := size - 1
	for _, sl := range old {
		if sl.idx == 0 {
			continue
		}
		i := ptrHash(sl.key) & mask
		for t.slots[i].idx != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = sl
	}
}

func (t *ptrTable) reset() {
	if len(t.slots) > 1<<14 {
		*t = ptrTable{}
		return
	}
	if t.n > 0 {
		clear(t.slots)
	}
	t.n = 0
}
