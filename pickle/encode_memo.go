package pickle

import "unsafe"

// The encoder looks up every str, bytes, container and object it writes in its memo,
// which makes the memo the hottest part of encoding. These tables are built for that:
// open addressing with linear probing, one probe sequence for a lookup and the
// insertion that follows a miss, and no Go pointers in them, so filling them costs no
// GC write barriers. Everything is keyed by address: the value is alive for the whole
// encoding and Go's heap does not move. Each slot carries the generation that filled
// it, so emptying a table between two pickles costs nothing, and the pooled tables
// keep their size.

// strTable maps strs (and bytes) to memo indexes by the identity of their storage:
// the address and length of their bytes. That is the counterpart of the object
// identity CPython's memo uses: the decoder gives each str it reads its own storage
// and each memo reference to it the same one, so an unchanged decoded value
// re-encodes exactly as CPython wrote it. The empty string, a singleton in CPython,
// has a slot of its own.
type strTable struct {
	slots []strSlot // len is a power of two
	n     int
	gen   uint32
	empty int // memo index of "" plus one, 0 when not memoized
}

type strSlot struct {
	addr uintptr
	len  int
	idx  uint32
	gen  uint32 // the slot is in use when gen is the table's
}

// keepSlots bounds the tables a pooled encoder keeps between pickles.
const keepSlots = 1 << 17

func strHash(addr uintptr, n int) int {
	return int(((uint64(addr) ^ uint64(n)<<48) * 0x9e3779b97f4a7c15) >> 32)
}

// lookup returns the memo index of s, or the slot where insert records it.
func (t *strTable) lookup(s string) (idx int, ok bool, slot int) {
	if len(s) == 0 {
		return t.empty - 1, t.empty > 0, -1
	}
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	addr := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	mask := len(t.slots) - 1
	for i := strHash(addr, len(s)) & mask; ; i = (i + 1) & mask {
		sl := &t.slots[i]
		if sl.gen != t.gen {
			return 0, false, i
		}
		if sl.addr == addr && sl.len == len(s) {
			return int(sl.idx), true, i
		}
	}
}

// insert records the memo index of s at the slot lookup returned.
func (t *strTable) insert(s string, slot int, idx int) {
	if slot < 0 {
		t.empty = idx + 1
		return
	}
	t.slots[slot] = strSlot{addr: uintptr(unsafe.Pointer(unsafe.StringData(s))), len: len(s), idx: uint32(idx), gen: t.gen}
	t.n++
}

func (t *strTable) grow() {
	old := t.slots
	t.slots = make([]strSlot, max(64, 2*len(old)))
	mask := len(t.slots) - 1
	if t.gen == 0 {
		t.gen = 1
	}
	for _, sl := range old {
		if sl.gen != t.gen {
			continue
		}
		i := strHash(sl.addr, sl.len) & mask
		for t.slots[i].gen == t.gen {
			i = (i + 1) & mask
		}
		t.slots[i] = sl
	}
}

// reset empties the table for the next pickle.
func (t *strTable) reset() {
	if len(t.slots) > keepSlots {
		*t = strTable{}
		return
	}
	t.n, t.empty = 0, 0
	t.gen++
	if t.gen == 0 {
		clear(t.slots)
		t.gen = 1
	}
}

// ptrTable maps the addresses of containers and objects to memo indexes.
type ptrTable struct {
	slots []ptrSlot
	n     int
	gen   uint32
}

type ptrSlot struct {
	key uintptr
	idx uint32
	gen uint32
}

func ptrHash(p uintptr) int { return int((uint64(p) * 0x9e3779b97f4a7c15) >> 32) }

func (t *ptrTable) get(p unsafe.Pointer) (int, bool) {
	if t.n == 0 {
		return 0, false
	}
	k := uintptr(p)
	mask := len(t.slots) - 1
	for i := ptrHash(k) & mask; ; i = (i + 1) & mask {
		sl := &t.slots[i]
		if sl.gen != t.gen {
			return 0, false
		}
		if sl.key == k {
			return int(sl.idx), true
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
	for t.slots[i].gen == t.gen {
		if t.slots[i].key == k {
			t.slots[i].idx = uint32(idx)
			return
		}
		i = (i + 1) & mask
	}
	t.slots[i] = ptrSlot{key: k, idx: uint32(idx), gen: t.gen}
	t.n++
}

func (t *ptrTable) grow() {
	old := t.slots
	t.slots = make([]ptrSlot, max(64, 2*len(old)))
	mask := len(t.slots) - 1
	if t.gen == 0 {
		t.gen = 1
	}
	for _, sl := range old {
		if sl.gen != t.gen {
			continue
		}
		i := ptrHash(sl.key) & mask
		for t.slots[i].gen == t.gen {
			i = (i + 1) & mask
		}
		t.slots[i] = sl
	}
}

func (t *ptrTable) reset() {
	if len(t.slots) > keepSlots {
		*t = ptrTable{}
		return
	}
	t.n = 0
	t.gen++
	if t.gen == 0 {
		clear(t.slots)
		t.gen = 1
	}
}
