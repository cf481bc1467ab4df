package pickle

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"strings"
	"sync"
	"unsafe"
)

// Default limits of a Decoder.
const (
	// DefaultMaxDepth bounds the nesting depth of decoded values. CPython's own pickler
	// cannot write values nested much deeper than its recursion limit (1000 by default);
	// ten times that leaves room for applications that raise it, and keeps the recursion
	// of any Go code walking a value to a few megabytes of stack.
	DefaultMaxDepth = 10000
	// DefaultMaxStack bounds the number of values on the unpickling stack at once, and
	// DefaultMaxMemo the number of memo entries. Every value on the stack and every memo
	// entry takes at least one byte of input, so no pickle of up to 64 MiB (the size of
	// session store.DefaultMaxSize allows) reaches them: what they cost is bounded by
	// the memory budget (MemoryPerByte, MaxMemory) instead, and anything CPython's
	// pickler writes within that size decodes (a tuple of millions of items, a memo
	// entry for each of millions of small dicts).
	DefaultMaxStack = 1 << 26
	DefaultMaxMemo  = 1 << 26
	// DefaultMemoryPerByte and DefaultMaxMemory make the default memory budget of one
	// decoding: 256 bytes per byte of input, at most 2 GiB. CPython itself takes up to
	// about 220 bytes per byte of input for what its pickler writes (an empty set is one
	// byte of pickle and 216 bytes of memory); the decoder takes about 75 for the
	// worst the encoder or CPython writes (a million empty dicts).
	DefaultMemoryPerByte = 256
	DefaultMaxMemory     = 2 << 30
)

// memoryBase is the part of the memory budget that does not depend on the input size.
const memoryBase = 1 << 20

// maxKeySize bounds the size of a dict key or set item the decoder hashes, counted as
// the number of values hashing visits (tuples and frozensets expanded, shared parts
// counted each time). Hashing and comparing such a key costs time in proportion, and
// tuples that share their parts can make that count exponential in the input size.
const maxKeySize = 4096

// Decoder decodes pickles of protocols 0 to 5 into the value model. Its fields are
// options; the zero Decoder uses the defaults. A Decoder may be used by several
// goroutines at once.
type Decoder struct {
	// MaxDepth bounds the nesting depth of the decoded value: the number of containers
	// and objects on the longest chain a depth-first walk descends through, when the
	// walk visits each container once and the children of a value in the order
	// pickling writes them (see the package documentation). It also bounds the number
	// of open MARKs and the nesting of tuples and frozensets. 0 means DefaultMaxDepth.
	MaxDepth int
	// MaxStack bounds the number of values on the stack. 0 means DefaultMaxStack.
	MaxStack int
	// MaxMemo bounds the number of memo entries. 0 means DefaultMaxMemo.
	MaxMemo int
	// MemoryPerByte and MaxMemory bound the memory one decoding may allocate: at most
	// MemoryPerByte bytes per byte of input (plus 1 MiB) and never more than MaxMemory
	// bytes. Going over either is an error wrapping ErrMemory. The count is of what the
	// decoder allocates for the values, the stack and the memo, as the Go runtime
	// would count it within a small factor. 0 means DefaultMemoryPerByte and
	// DefaultMaxMemory.
	MemoryPerByte int
	MaxMemory     int64
	// Encoding is how the Python 2 str of STRING, BINSTRING and SHORT_BINSTRING is
	// decoded, as Python's Unpickler(encoding=...): "ASCII" (the default, as in CPython),
	// "latin1", "utf-8", or "bytes" to keep them as []byte.
	Encoding string
}

// Unmarshal decodes a pickle of any protocol from 0 to 5 with the default Decoder
// options. Bytes after the STOP opcode are ignored, as CPython's pickle.loads does.
func Unmarshal(data []byte) (any, error) {
	var d Decoder
	return d.Decode(data)
}

// recoverPanics turns a panic inside the decoder into an error. It is a last line of
// defence: the decoder checks its input and does not panic by design. Tests and the
// fuzz target turn it off so that a panic shows up as the bug it is.
var recoverPanics = true

// Decode decodes one pickle from data. Bytes after its STOP opcode are ignored.
func (d *Decoder) Decode(data []byte) (v any, err error) {
	v, _, err = d.decode(data)
	return v, err
}

// decodeCost is what one decoding cost, for the tests that bound it.
type decodeCost struct {
	probes, hashed int64 // see unpickler
	mem, budget    int64
}

func (d *Decoder) decode(data []byte) (v any, cost decodeCost, err error) {
	enc, err := parseEncoding(d.Encoding)
	if err != nil {
		return nil, cost, err
	}
	u := unpicklers.Get().(*unpickler)
	u.reset(data, d, enc)
	if recoverPanics {
		defer func() {
			if r := recover(); r != nil {
				v, err = nil, &DecodeError{Offset: u.start, Op: opName(u.op), Err: fmt.Errorf("%w: internal error: %v", ErrSyntax, r)}
			}
		}()
	}
	v, err = u.run()
	cost = decodeCost{probes: u.probes, hashed: u.hashed, mem: u.sl.mem, budget: u.budget}
	u.release()
	return v, cost, err
}

type encoding uint8

const (
	encASCII encoding = iota
	encLatin1
	encUTF8
	encBytes
)

func parseEncoding(s string) (encoding, error) {
	switch strings.ToLower(strings.ReplaceAll(s, "_", "-")) {
	case "", "ascii", "us-ascii":
		return encASCII, nil
	case "latin1", "latin-1", "iso-8859-1", "iso8859-1":
		return encLatin1, nil
	case "utf-8", "utf8":
		return encUTF8, nil
	case "bytes":
		return encBytes, nil
	}
	return 0, fmt.Errorf("pickle: unsupported Decoder.Encoding %q (use ASCII, latin1, utf-8 or bytes)", s)
}

// slot is a value the decoding made. m indexes the meta of a container or object;
// scalars and globals have none.
type slot struct {
	v any
	m int32
}

// ref is a value on the stack or in the memo: the index of its slot in
// unpickler.vals. The stack and the memo, which most opcodes write, hold no pointers:
// the collector has nothing to scan there and no write barrier to run while it marks
// (a BINGET copies four bytes), and every value stays reachable through vals, an
// ordinary slice of interfaces, for as long as the decoding runs.
type ref int32

const (
	noMeta   = -1
	memoHole = ref(-1) // an unset memo entry
)

// meta is what the decoder tracks about each container and object it makes, to bound
// the depth of the result without walking it.
type meta struct {
	// height bounds the nesting depth of the value: 1 + the largest height among what it
	// holds. It is exact for values made from values that were not changed afterwards;
	// see unpickler.stale.
	height int32
	// keyDepth is the nesting of tuples and frozensets (what hashing recurses through);
	// keySize is the number of values hashing visits, saturated above maxKeySize.
	keyDepth, keySize int32
	// inside reports that the value was put into another container or object.
	inside bool
}

// unpickler is the state of one decoding: CPython's stack machine with its separate
// mark stack, memo and the input position.
type unpickler struct {
	data  []byte
	pos   int
	start int  // offset of the current opcode
	op    byte // the current opcode
	proto int  // the last PROTO seen (0 before any), which decides find_class's renaming
	limit int  // the end of the current frame, or of the input outside frames

	vals  []slot // every value made, in order; the stack and the memo index it
	stack []ref
	marks []int // stack lengths at each MARK
	fence int   // stack length at the topmost mark: items below it are out of reach

	memo    chunked[ref]   // dense part of the memo, holes marked memoHole
	sparse  map[int64]ref  // entries whose index is far beyond the dense part
	memoLen int            // number of entries set (where MEMOIZE puts the next one)
	meta    chunked[meta]  // per container or object, indexed by slot.m
	hashes  map[any]uint64 // hashes of large tuple and frozenset keys, computed once
	stale   bool           // a container already inside another one was changed
	// probes counts the keys dict and set insertions compared a key with, and hashed
	// the values hashing visited: the work that seeded hashing keeps in proportion to
	// the input (tests and the cost fuzz target read them).
	probes, hashed int64
	// budget bounds sl.mem, the bytes allocated so far (see Decoder.MaxMemory); push
	// and the opcodes that fill containers check it.
	budget int64
	// stackRoom is min(cap(stack), maxStack): the fast paths push while the stack is
	// shorter, and push grows it (and counts the growth) otherwise.
	stackRoom int
	// bytes is the chunk str and bytes values are copied into (see keep).
	bytes chunk[byte]
	sl    slabs
	// keySets holds, per number of keys, the keys of the last small dict SETITEMS
	// filled from empty with distinct str keys (see sharedKeys).
	keySets [smallTable + 1][]any

	maxDepth, maxStack, maxMemo int
	enc                         encoding
}

var unpicklers = sync.Pool{New: func() any { return new(unpickler) }}

func (u *unpickler) reset(data []byte, d *Decoder, enc encoding) {
	u.data, u.pos, u.start, u.op, u.proto, u.limit = data, 0, 0, 0, 0, len(data)
	u.vals, u.stack, u.marks, u.fence = u.vals[:0], u.stack[:0], u.marks[:0], 0
	u.memo.reset()
	u.memoLen = 0
	u.meta.reset()
	u.stale = false
	u.probes, u.hashed = 0, 0
	u.sl.mem = 0
	perByte, maxMem := int64(orDefault(d.MemoryPerByte, DefaultMemoryPerByte)), d.MaxMemory
	if maxMem <= 0 {
		maxMem = DefaultMaxMemory
	}
	u.budget = maxMem
	if n := int64(len(data)); n < (maxMem-memoryBase)/perByte {
		u.budget = memoryBase + perByte*n
	}
	u.maxDepth, u.maxStack, u.maxMemo = orDefault(d.MaxDepth, DefaultMaxDepth), orDefault(d.MaxStack, DefaultMaxStack), orDefault(d.MaxMemo, DefaultMaxMemo)
	u.maxDepth = min(u.maxDepth, math.MaxInt32-1) // heights are int32
	u.stackRoom = min(cap(u.stack), u.maxStack)
	u.enc = enc
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// release drops every reference to decoded values and returns the state to the pool,
// unless one of its buffers grew large.
func (u *unpickler) release() {
	const keep = 1 << 16
	if cap(u.vals) > keep || cap(u.stack) > keep || u.memo.n > keep || u.meta.n > keep || cap(u.marks) > keep {
		return
	}
	clear(u.vals)
	u.data, u.bytes, u.sparse, u.hashes, u.sl = nil, chunk[byte]{}, nil, nil, slabs{}
	u.keySets = [smallTable + 1][]any{}
	unpicklers.Put(u)
}

// Slabs.
//
// The containers and objects of one decoding are allocated in chunks, as are their
// first item slices: a 100 KB session of a thousand dicts and tuples then takes a few
// dozen allocations for them instead of thousands. Any value keeps its whole chunk
// alive; chunks grow with the number of values made, from 1 to 128.
type slabs struct {
	items   chunk[any]
	dicts   chunk[Dict]
	tuples  chunk[Tuple]
	lists   chunk[List]
	objects chunk[Object]
	// mem counts the bytes the decoding allocated: chunks here, and what the
	// unpickler allocates elsewhere.
	mem int64
	// Boxes: the storage interfaces holding str, int and float values point to.
	strs  chunk[string]
	words chunk[uint64]
}

// chunk is the chunk values of one type are taken from. Taking moves a count, not
// the slice, so no pointer is written (and no write barrier runs while the collector
// marks) but when a new chunk is made.
type chunk[T any] struct {
	s    []T
	used int // values taken from s
	made int // values taken from all chunks, which sizes the next one
}

// take returns n values (length and capacity n) from the chunk, making a new chunk
// of max(n, size) values when there is not enough room, and counting its memory.
func (c *chunk[T]) take(n, size int, mem *int64) []T {
	if len(c.s)-c.used < n {
		c.s = make([]T, max(n, size))
		c.used = 0
		var t T
		*mem += int64(len(c.s)) * int64(unsafe.Sizeof(t))
	}
	s := c.s[c.used : c.used+n : c.used+n]
	c.used += n
	c.made += n
	return s
}

// one returns one value from the chunk; chunks grow with the number of values taken.
func (c *chunk[T]) one(maxChunk int, mem *int64) *T {
	return &c.take(1, min(max(c.made, 1), maxChunk), mem)[0]
}

// Boxes.
//
// Storing a str, or an int or float outside 0..255, in an interface allocates a box
// for it: on a session, one allocation per such value, most of the decoder's
// allocations and a good part of its time. The decoder allocates the boxes in chunks
// instead and makes each interface point to its box. The interface is what Go makes
// for the same value (its type word and a pointer to an unchanging copy of the value),
// so nothing that reads it can tell; a box is never written after its interface is
// made. As with the other chunks, a value kept alive keeps its chunk alive.

// eface is the layout of an empty interface.
type eface struct {
	typ, data unsafe.Pointer
}

var (
	stringType  = typeWord("")
	int64Type   = typeWord(int64(0))
	float64Type = typeWord(float64(0))
)

func typeWord(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

func boxed(typ, data unsafe.Pointer) any {
	var v any
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = typ, data
	return v
}

func chunkSize(made int) int { return min(max(made, 16), 1024) }

// str returns s in an interface.
func (sl *slabs) str(s string) any {
	if len(s) == 0 {
		return ""
	}
	p := &sl.strs.take(1, chunkSize(sl.strs.made), &sl.mem)[0]
	*p = s
	return boxed(stringType, unsafe.Pointer(p))
}

// word returns x, the bits of an int64 or float64 of type typ, in an interface.
func (sl *slabs) word(typ unsafe.Pointer, x uint64) any {
	p := &sl.words.take(1, chunkSize(sl.words.made), &sl.mem)[0]
	*p = x
	return boxed(typ, unsafe.Pointer(p))
}

// int returns x in an interface.
func (sl *slabs) int(x int64) any {
	if uint64(x) < 256 {
		return x // Go boxes these without allocating
	}
	return sl.word(int64Type, uint64(x))
}

// items returns a slice of n items (length n, capacity n).
func (sl *slabs) itemSlice(n int) []any {
	if n == 0 {
		return []any{}
	}
	if n > 64 {
		sl.mem += int64(n) * itemSize
		return make([]any, n)
	}
	return sl.items.take(n, chunkSize(sl.items.made), &sl.mem)
}

// Containers come in chunks of 1 to 128.
func (sl *slabs) dict() *Dict     { return sl.dicts.one(128, &sl.mem) }
func (sl *slabs) list() *List     { return sl.lists.one(128, &sl.mem) }
func (sl *slabs) object() *Object { return sl.objects.one(128, &sl.mem) }

// tuple returns a tuple of the values of items, refs to vals.
func (sl *slabs) tuple(vals []slot, items []ref) *Tuple {
	t := sl.tuples.one(128, &sl.mem)
	t.Items = sl.itemSlice(len(items))
	for i, r := range items {
		t.Items[i] = vals[r].v
	}
	return t
}

// appendItems appends the values of items, refs to vals, to vs, taking a first slice
// from the slab.
func (sl *slabs) appendItems(vs []any, vals []slot, items []ref) []any {
	if cap(vs) == 0 {
		vs = sl.itemSlice(len(items))[:0]
	} else if cap(vs)-len(vs) < len(items) {
		vs = grow2(vs, len(items))
		sl.mem += int64(cap(vs)) * itemSize
	}
	for _, r := range items {
		vs = append(vs, vals[r].v)
	}
	return vs
}

// Values cut from the input.
//
// Decoded str and bytes values are copied into chunks of up to byteChunk bytes shared
// by many values, instead of being allocated one by one: decoding a session makes a few
// allocations for them where it would make thousands. A str is an unsafe.String over
// bytes of a chunk that no []byte value exposes, and a []byte value has its capacity
// cut to its length, so appending to it reallocates rather than overwriting what
// follows. The price is that a value kept alive keeps its chunk alive; values larger
// than an eighth of a chunk have an allocation of their own.
const byteChunk = 16 << 10

// keep returns a copy of b, a slice of the input, with no spare capacity.
func (u *unpickler) keep(b []byte) []byte {
	n := len(b)
	var c []byte
	if n > len(u.bytes.s)-u.bytes.used && n > byteChunk/8 {
		u.sl.mem += int64(n)
		c = make([]byte, n)
	} else {
		// What is still to be copied lies in what is left of the input.
		c = u.bytes.take(n, min(byteChunk, n+len(u.data)-u.pos), &u.sl.mem)
	}
	copy(c, b)
	return c
}

// inputString returns b, a slice of the input, as a string.
func (u *unpickler) inputString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	c := u.keep(b)
	return unsafe.String(&c[0], len(c))
}

// str returns b, a slice of the input, as a str value.
func (u *unpickler) str(b []byte) any { return u.sl.str(u.inputString(b)) }

// inputBytes returns a copy of b, a slice of the input.
func (u *unpickler) inputBytes(b []byte) []byte {
	if len(b) == 0 {
		return []byte{}
	}
	return u.keep(b)
}

// copyASCII copies src to dst, of the same length, and reports whether src is all
// ASCII: the common str, checked as it is copied.
func copyASCII(dst, src []byte) bool {
	n := len(src)
	dst = dst[:n]
	var bits uint64
	if n >= 8 {
		for i := 0; i < n-8; i += 8 {
			w := binary.LittleEndian.Uint64(src[i:])
			binary.LittleEndian.PutUint64(dst[i:], w)
			bits |= w
		}
		// The last 8 bytes, overlapping what the loop copied.
		w := binary.LittleEndian.Uint64(src[n-8:])
		binary.LittleEndian.PutUint64(dst[n-8:], w)
		return (bits|w)&0x8080808080808080 == 0
	}
	for i := range src {
		dst[i] = src[i]
		bits |= uint64(src[i])
	}
	return bits&0x80 == 0
}

// grow2 is slices.Grow with a growth factor of 2 at any size, where append's factor
// falls to 1.25 for large slices: growing a slice to n items then allocates 2n in all
// rather than 5n, and the decoder's slices (stack, memo, items) grow by many millions
// on large inputs.
func grow2[S ~[]E, E any](s S, n int) S {
	if cap(s)-len(s) >= n {
		return s
	}
	ns := make(S, len(s), max(2*cap(s), len(s)+n, 8))
	copy(ns, s)
	return ns
}

// Errors.

func (u *unpickler) fail(cause error, format string, args ...any) error {
	return &DecodeError{Offset: u.start, Op: opName(u.op), Err: fmt.Errorf("%w: "+format, append([]any{cause}, args...)...)}
}

func (u *unpickler) truncated() error {
	return &DecodeError{Offset: u.start, Op: opName(u.op), Err: fmt.Errorf("%w: pickle data was truncated", ErrTruncated)}
}

// underflow is CPython's Pdata_stack_underflow.
func (u *unpickler) underflow() error {
	if len(u.marks) > 0 {
		return u.fail(ErrStack, "unexpected MARK found")
	}
	return u.fail(ErrStack, "unpickling stack underflow")
}

// Input.

// Reads stay below limit: the end of the current frame while inside one, else the end
// of the input. Once a frame is used up exactly, reading goes on past it (see
// readSlow). Other than a bytes or bytearray payload (see readCounted), an argument
// may not run past the end of its frame. CPython's pickler never writes such a pickle,
// and CPython disagrees with itself on reading one: pickle.loads reads on as if there
// were no frame, while pickle.load from a file, as session3 reads sessions, drops the
// rest of the frame and reads the argument from the bytes after it (so it finds the
// data truncated, or decodes garbage). The decoder refuses it.

// read returns the next n bytes.
func (u *unpickler) read(n uint64) ([]byte, error) {
	if n <= uint64(u.limit-u.pos) {
		p := u.pos
		u.pos += int(n)
		return u.data[p:u.pos], nil
	}
	return u.readSlow(n)
}

func (u *unpickler) readSlow(n uint64) ([]byte, error) {
	if u.leaveFrame() {
		return u.read(n)
	}
	if u.limit < len(u.data) {
		return nil, u.fail(ErrTruncated, "pickle exhausted before end of frame")
	}
	return nil, u.truncated()
}

// leaveFrame ends the current frame if it is used up, and reports whether it did.
func (u *unpickler) leaveFrame() bool {
	if u.pos == u.limit && u.limit < len(u.data) {
		u.limit = len(u.data)
		return true
	}
	return false
}

// inFrame reports whether the decoder reads inside a frame.
func (u *unpickler) inFrame() bool { return u.limit < len(u.data) }

func (u *unpickler) readByte() (byte, error) {
	if u.pos < u.limit {
		u.pos++
		return u.data[u.pos-1], nil
	}
	b, err := u.readSlow(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (u *unpickler) readUint(n int) (uint64, error) {
	b, err := u.read(uint64(n))
	if err != nil {
		return 0, err
	}
	switch n {
	case 2:
		return uint64(binary.LittleEndian.Uint16(b)), nil
	case 4:
		return uint64(binary.LittleEndian.Uint32(b)), nil
	case 8:
		return binary.LittleEndian.Uint64(b), nil
	}
	return uint64(b[0]), nil
}

// readLine returns the next line with its newline, as CPython's _Unpickler_Readline.
func (u *unpickler) readLine() ([]byte, error) {
	u.leaveFrame()
	rest := u.data[u.pos:u.limit]
	if i := bytes.IndexByte(rest, '\n'); i >= 0 {
		u.pos += i + 1
		return rest[:i+1], nil
	}
	if u.inFrame() {
		return nil, u.fail(ErrTruncated, "pickle exhausted before end of frame")
	}
	return nil, u.truncated()
}

// readArgLine is readLine for the opcodes that reject an empty line as truncated data.
func (u *unpickler) readArgLine() ([]byte, error) {
	line, err := u.readLine()
	if err == nil && len(line) < 2 {
		return nil, u.truncated()
	}
	return line, err
}

// The stack.

// push pushes a new value.
func (u *unpickler) push(v any, m int32) error {
	r, err := u.newVal(v, m)
	if err != nil {
		return err
	}
	return u.pushRef(r)
}

// newVal records a new value in vals and returns its ref.
func (u *unpickler) newVal(v any, m int32) (ref, error) {
	if len(u.vals) == cap(u.vals) {
		if len(u.vals) >= math.MaxInt32 {
			// Refs are int32; only a memory budget raised far above the default
			// (Decoder.MaxMemory) lets a decoding make this many values.
			return 0, u.fail(ErrLimit, "more than %d values", math.MaxInt32)
		}
		vals := make([]slot, len(u.vals), min(max(2*cap(u.vals), 8), math.MaxInt32))
		copy(vals, u.vals)
		u.vals = vals
		u.sl.mem += int64(cap(u.vals)) * slotSize
	}
	u.vals = append(u.vals, slot{v, m})
	return ref(len(u.vals) - 1), nil
}

// pushRef pushes a value already made.
func (u *unpickler) pushRef(r ref) error {
	if len(u.stack) >= u.stackRoom {
		if err := u.growStack(); err != nil {
			return err
		}
	}
	u.stack = append(u.stack, r)
	if u.sl.mem > u.budget {
		return u.overBudget()
	}
	return nil
}

// growStack makes room for one more value on the stack.
func (u *unpickler) growStack() error {
	if len(u.stack) >= u.maxStack {
		return u.stackFull()
	}
	u.stack = grow2(u.stack, 1)
	u.sl.mem += int64(cap(u.stack)) * refSize
	u.stackRoom = min(cap(u.stack), u.maxStack)
	return nil
}

// checkMemory fails when the decoding has allocated more than its budget.
func (u *unpickler) checkMemory() error {
	if u.sl.mem > u.budget {
		return u.overBudget()
	}
	return nil
}

func (u *unpickler) overBudget() error {
	return u.fail(ErrMemory, "decoding %d bytes of pickle takes more than %d bytes of memory (Decoder.MemoryPerByte, Decoder.MaxMemory)", len(u.data), u.budget)
}

// Sizes the memory count uses.
const (
	slotSize  = int64(unsafe.Sizeof(slot{}))
	refSize   = int64(unsafe.Sizeof(ref(0)))
	itemSize  = int64(unsafe.Sizeof(any(nil)))
	boxedSize = 8 // an int64 or float64 in an interface (ints 0 to 255 excepted)
)

func (u *unpickler) stackFull() error {
	return u.fail(ErrLimit, "more than %d values on the stack (Decoder.MaxStack)", u.maxStack)
}

// pushScalar pushes a scalar, counting what it allocated: its storage (counted even
// when cut from the shared input copy) and its box in the interface.
func (u *unpickler) pushScalar(v any) error {
	switch x := v.(type) {
	case string:
		u.sl.mem += 16 + int64(len(x))
	case []byte:
		u.sl.mem += 24 + int64(len(x))
	case int64, float64:
		u.sl.mem += boxedSize
	case *big.Int:
		u.sl.mem += 48 + 8*int64(len(x.Bits()))
	case Global:
		u.sl.mem += 32
	}
	return u.push(v, noMeta)
}

func (u *unpickler) pop() (slot, error) {
	r, err := u.popRef()
	if err != nil {
		return slot{}, err
	}
	return u.vals[r], nil
}

func (u *unpickler) popRef() (ref, error) {
	n := len(u.stack)
	if n <= u.fence {
		return 0, u.underflow()
	}
	r := u.stack[n-1]
	u.stack = u.stack[:n-1]
	return r, nil
}

func (u *unpickler) topRef() (ref, error) {
	n := len(u.stack)
	if n <= u.fence {
		return 0, u.underflow()
	}
	return u.stack[n-1], nil
}

// marker pops the topmost mark and returns the stack length it recorded.
func (u *unpickler) marker() (int, error) {
	n := len(u.marks)
	if n == 0 {
		return 0, u.fail(ErrStack, "could not find MARK")
	}
	m := u.marks[n-1]
	u.marks = u.marks[:n-1]
	u.fence = 0
	if n > 1 {
		u.fence = u.marks[n-2]
	}
	return m, nil
}

// truncate drops the stack down to length n. The values stay in vals until the
// decoding ends (release clears them).
func (u *unpickler) truncate(n int) { u.stack = u.stack[:n] }

// Depth tracking.

func (u *unpickler) newMeta(height, keyDepth, keySize int32) (int32, error) {
	if keyDepth > int32(u.maxDepth) {
		return 0, u.fail(ErrLimit, "tuples or frozensets nested more than %d deep (Decoder.MaxDepth)", u.maxDepth)
	}
	u.sl.mem += u.meta.add(meta{height: height, keyDepth: keyDepth, keySize: keySize})
	return int32(u.meta.n - 1), nil
}

// chunked is a growing table kept in chunks of 4096 (the first one grows), so that
// millions of entries are never copied to grow and a small pickle takes a small
// table: the dense part of the memo, and the meta of the containers.
type chunked[T any] struct {
	chunks [][]T
	n      int
}

const (
	chunkBits = 12
	chunkLen  = 1 << chunkBits
)

func (t *chunked[T]) at(i int) *T { return &t.chunks[i>>chunkBits][i&(chunkLen-1)] }

// add appends x and returns the bytes it allocated.
func (t *chunked[T]) add(x T) int64 {
	var allocated int64
	c := t.n >> chunkBits
	if c == len(t.chunks) {
		t.chunks = append(t.chunks, make([]T, 0, min(chunkLen, max(t.n, 64))))
		allocated = int64(cap(t.chunks[c])) * int64(unsafe.Sizeof(x))
	} else if ch := t.chunks[c]; len(ch) == cap(ch) {
		t.chunks[c] = grow2(ch, 1)[:len(ch):min(chunkLen, 2*cap(ch))]
		allocated = int64(cap(t.chunks[c])) * int64(unsafe.Sizeof(x))
	}
	t.chunks[c] = append(t.chunks[c], x)
	t.n++
	return allocated
}

// reset empties the table, keeping its chunks for the next decoding.
func (t *chunked[T]) reset() {
	for i := range t.chunks {
		t.chunks[i] = t.chunks[i][:0]
	}
	t.n = 0
}

// holder returns the meta of a new container or object holding items, and marks the
// items as held.
func (u *unpickler) holder(items []ref, key bool) (int32, error) {
	var h, kd int32
	ks := int32(1)
	for _, r := range items {
		if m := u.vals[r].m; m >= 0 {
			mt := u.meta.at(int(m))
			mt.inside = true
			h = max(h, mt.height)
			if key {
				kd = max(kd, mt.keyDepth)
				ks = min(ks+mt.keySize, maxKeySize+1)
			}
		} else if key {
			ks = min(ks+1, maxKeySize+1)
		}
	}
	if !key {
		return u.newMeta(h+1, 0, 1)
	}
	return u.newMeta(h+1, kd+1, ks)
}

// changed records that items were put into the existing container or object target.
func (u *unpickler) changed(target slot, items []ref) {
	if target.m < 0 {
		return
	}
	t := u.meta.at(int(target.m))
	h := t.height
	for _, r := range items {
		if m := u.vals[r].m; m >= 0 && m != target.m {
			mt := u.meta.at(int(m))
			mt.inside = true
			h = max(h, mt.height+1)
		}
	}
	if h > t.height && t.inside {
		// Whatever holds target may now be deeper than its recorded height.
		u.stale = true
	}
	t.height = h
}

// hash returns the hash of a dict key or set item, failing as CPython does for an
// unhashable one.
func (u *unpickler) hash(s slot) (uint64, error) {
	cache := false
	if s.m >= 0 {
		ks := u.meta.at(int(s.m)).keySize
		if ks > maxKeySize {
			return 0, u.fail(ErrLimit, "dict key or set item of more than %d nested values", maxKeySize)
		}
		if ks > 16 {
			if h, ok := u.hashes[s.v]; ok {
				return h, nil
			}
			cache = true
		}
	}
	if s.m >= 0 {
		u.hashed += int64(u.meta.at(int(s.m)).keySize)
	} else {
		u.hashed++
	}
	h, err := hashKey(s.v)
	if err != nil {
		return 0, u.fail(ErrOperation, "%w", err)
	}
	if cache {
		if u.hashes == nil {
			u.hashes = make(map[any]uint64)
		}
		u.hashes[s.v] = h
		u.sl.mem += 48
	}
	return h, nil
}

// grow is table.grow, counting the memory.
func (u *unpickler) grow(t *table, n int, withValue bool) {
	before := t.memory()
	t.grow(n, withValue)
	u.sl.mem += grown(before, t.memory())
}

// grown is what a table allocated when its memory went from before to after: all of
// after when it grew (growing allocates anew), nothing otherwise.
func grown(before, after int64) int64 {
	if after > before {
		return after
	}
	return 0
}

// putPairs puts the key/value pairs of items into a dict's table. Keys of the scalar
// types are hashable, and a table that stays small does not use hashes: those are not
// computed.
func (u *unpickler) putPairs(t *table, items []ref) error {
	before := t.memory()
	defer func() { u.sl.mem += grown(before, t.memory()) }()
	small := t.ix == nil && len(t.keys)+len(items)/2 <= smallTable
	for i := 0; i < len(items); i += 2 {
		k := u.vals[items[i]]
		var h uint64
		if !small || !scalar(k.v) {
			var err error
			if h, err = u.hash(k); err != nil {
				return err
			}
		}
		u.probes += int64(t.putHashed(k.v, u.vals[items[i+1]].v, h, true))
	}
	return nil
}

// Shared keys.
//
// A session's many records are often dicts with the same keys, each key a memo
// reference to one str: the thousand items of a cart, say. When SETITEMS fills an
// empty dict with exactly the keys (the same values, by identity) of the last small dict
// filled from empty with as many distinct str keys, the new dict shares that key slice
// instead of copying and comparing the keys again: the keys are known distinct, and
// an identical key is an equal one. The shared slice has no spare capacity, and the
// table never writes a key in place (see table.remove), so a dict that changes later
// copies its keys first and the others do not see it.

// sharedKeys fills the empty table t with the pairs of items when their keys are those
// of the last key set of their number, and reports whether it did.
func (u *unpickler) sharedKeys(t *table, items []ref) bool {
	n := len(items) / 2
	if n > smallTable {
		return false
	}
	keys := u.keySets[n]
	if len(keys) != n || n == 0 {
		return false
	}
	for i, k := range keys {
		if !identical(k, u.vals[items[2*i]].v) {
			return false
		}
	}
	vals := u.sl.itemSlice(n)
	for i := range vals {
		vals[i] = u.vals[items[2*i+1]].v
	}
	t.keys, t.vals = keys, vals
	u.probes += int64(n)
	return true
}

// noteKeys records the keys of t, just filled from empty with the pairs of items, as
// the key set of their number when they are all str and all distinct.
func (u *unpickler) noteKeys(t *table, items []ref) {
	n := len(t.keys)
	if n == 0 || n > smallTable || 2*n != len(items) {
		return
	}
	for _, k := range t.keys {
		if typeWord(k) != stringType {
			return
		}
	}
	u.keySets[n] = t.keys[:n:n]
}

// identical reports whether a and b are the same value: the same type and the same
// pointer or word, as an interface holds them.
func identical(a, b any) bool {
	return *(*eface)(unsafe.Pointer(&a)) == *(*eface)(unsafe.Pointer(&b))
}

// putItems is putPairs for the items of a set.
func (u *unpickler) putItems(t *table, items []ref) error {
	before := t.memory()
	defer func() { u.sl.mem += grown(before, t.memory()) }()
	small := t.ix == nil && len(t.keys)+len(items) <= smallTable
	for _, r := range items {
		it := u.vals[r]
		var h uint64
		if !small || !scalar(it.v) {
			var err error
			if h, err = u.hash(it); err != nil {
				return err
			}
		}
		u.probes += int64(t.putHashed(it.v, nil, h, false))
	}
	return nil
}

// scalar reports whether v is of a type that is always hashable.
func scalar(v any) bool {
	switch v.(type) {
	case string, int64, nil, bool, float64, []byte, *big.Int, Global:
		return true
	}
	return false
}

// The memo.

func (u *unpickler) memoPut(idx int64, s ref) error {
	if idx < 0 {
		return u.fail(ErrMemo, "negative PUT argument")
	}
	n := int64(u.memo.n)
	switch {
	case idx < n:
		e := u.memo.at(int(idx))
		if *e == memoHole {
			if err := u.memoCount(); err != nil {
				return err
			}
		}
		*e = s
		return nil
	case idx <= 2*n+16:
		if err := u.memoCount(); err != nil {
			return err
		}
		for int64(u.memo.n) < idx {
			u.sl.mem += u.memo.add(memoHole)
		}
		if u.sparse != nil {
			// Entries the dense part now covers move into it.
			for i := n; i < idx; i++ {
				if e, ok := u.sparse[i]; ok {
					*u.memo.at(int(i)) = e
					delete(u.sparse, i)
				}
			}
			delete(u.sparse, idx)
		}
		u.sl.mem += u.memo.add(s)
		return u.checkMemory()
	}
	if _, ok := u.sparse[idx]; !ok {
		if err := u.memoCount(); err != nil {
			return err
		}
	}
	if u.sparse == nil {
		u.sparse = make(map[int64]ref)
	}
	u.sparse[idx] = s
	u.sl.mem += 64 // a map entry with its share of the map's growth
	return u.checkMemory()
}

func (u *unpickler) memoCount() error {
	if u.memoLen >= u.maxMemo {
		return u.fail(ErrLimit, "more than %d memo entries (Decoder.MaxMemo)", u.maxMemo)
	}
	u.memoLen++
	return nil
}

func (u *unpickler) memoGet(idx int64) error {
	var r ref
	ok := false
	if idx >= 0 && idx < int64(u.memo.n) {
		r = *u.memo.at(int(idx))
		ok = r != memoHole
	} else if u.sparse != nil {
		r, ok = u.sparse[idx]
	}
	if !ok {
		return u.fail(ErrMemo, "memo value not found at index %d", idx)
	}
	return u.pushRef(r)
}

// put stores the top of the stack in the memo at idx.
func (u *unpickler) put(idx int64) error {
	r, err := u.topRef()
	if err != nil {
		return err
	}
	return u.memoPut(idx, r)
}

// run is the main loop, one opcode per iteration.
func (u *unpickler) run() (any, error) {
	for {
		if u.pos >= u.limit && !u.leaveFrame() {
			return nil, &DecodeError{Offset: u.pos, Err: fmt.Errorf("%w: ran out of input", ErrTruncated)}
		}
		u.start = u.pos
		u.op = u.data[u.pos]
		u.pos++
		var err error
		switch u.op {
		case opStop:
			return u.stop()
		case opMark:
			if len(u.marks) >= u.maxDepth {
				return nil, u.fail(ErrLimit, "more than %d open MARKs (Decoder.MaxDepth)", u.maxDepth)
			}
			u.marks = append(u.marks, len(u.stack))
			u.fence = len(u.stack)
		case opPop:
			n := len(u.stack)
			switch {
			case len(u.marks) > 0 && u.marks[len(u.marks)-1] == n:
				_, err = u.marker()
			case n <= u.fence:
				err = u.underflow()
			default:
				u.truncate(n - 1)
			}
		case opPopMark:
			var m int
			if m, err = u.marker(); err == nil {
				u.truncate(m)
			}
		case opDup:
			var r ref
			if r, err = u.topRef(); err == nil {
				err = u.pushRef(r)
			}

		// Scalars.
		case opNone:
			err = u.pushScalar(nil)
		case opNewTrue:
			err = u.pushScalar(true)
		case opNewFalse:
			err = u.pushScalar(false)
		case opBinInt:
			var x uint64
			if x, err = u.readUint(4); err == nil {
				err = u.push(u.sl.int(int64(int32(uint32(x)))), noMeta)
			}
		case opBinInt1:
			var x uint64
			if x, err = u.readUint(1); err == nil {
				err = u.pushScalar(int64(x))
			}
		case opBinInt2:
			var x uint64
			if x, err = u.readUint(2); err == nil {
				err = u.push(u.sl.int(int64(x)), noMeta)
			}
		case opLong1, opLong4:
			err = u.loadLongBinary()
		case opInt:
			err = u.loadIntText()
		case opLong:
			err = u.loadLongText()
		case opBinFloat:
			var b []byte
			if b, err = u.read(8); err == nil {
				err = u.push(u.sl.word(float64Type, binary.BigEndian.Uint64(b)), noMeta)
			}
		case opFloat:
			err = u.loadFloatText()

		// Strings and bytes.
		case opShortBinUnicode:
			if u.pos < u.limit {
				n := int(u.data[u.pos])
				if p := u.pos + 1; n <= u.limit-p && n <= len(u.bytes.s)-u.bytes.used && n > 0 && len(u.stack) < u.stackRoom && len(u.vals) < cap(u.vals) {
					// Copied into the chunk and checked as one: a str that is not
					// ASCII is copied again below, once validated.
					if at := u.bytes.used; copyASCII(u.bytes.s[at:at+n], u.data[p:p+n]) {
						c := u.bytes.take(n, 0, &u.sl.mem)
						u.pos = p + n
						u.vals = append(u.vals, slot{u.sl.str(unsafe.String(&c[0], n)), noMeta})
						u.stack = append(u.stack, ref(len(u.vals)-1))
						continue
					}
				}
			}
			var b []byte
			if b, err = u.readCounted(); err == nil {
				if i := invalidUTF8(b, true); i >= 0 {
					err = u.fail(ErrSyntax, "'utf-8' codec can't decode byte 0x%02x in position %d", b[i], i)
				} else {
					err = u.push(u.str(b), noMeta)
				}
			}
		case opBinUnicode, opBinUnicode8:
			var b []byte
			if b, err = u.readCounted(); err == nil {
				if i := invalidUTF8(b, true); i >= 0 {
					err = u.fail(ErrSyntax, "'utf-8' codec can't decode byte 0x%02x in position %d", b[i], i)
				} else {
					err = u.push(u.str(b), noMeta)
				}
			}
		case opUnicode:
			err = u.loadUnicodeText()
		case opShortBinBytes, opBinBytes, opBinBytes8:
			var b []byte
			if b, err = u.readCounted(); err == nil {
				err = u.pushScalar(u.inputBytes(b))
			}
		case opShortBinStr, opBinString:
			var b []byte
			if b, err = u.readCounted(); err == nil {
				err = u.pushPy2Str(b)
			}
		case opString:
			err = u.loadStringText()
		case opByteArray8:
			var b []byte
			if b, err = u.readCounted(); err == nil {
				var m int32
				if m, err = u.newMeta(1, 0, 1); err == nil {
					u.sl.mem += 24 + 24 + int64(len(b))
					err = u.push(&ByteArray{Data: u.inputBytes(b)}, m)
				}
			}

		// Containers.
		case opEmptyTuple:
			t := u.sl.tuple(nil, nil)
			err = u.pushContainer(t, 1)
		case opEmptyList:
			l := u.sl.list()
			l.Items = []any{}
			err = u.pushContainer(l, 0)
		case opEmptyDict:
			err = u.pushContainer(u.sl.dict(), 0)
		case opEmptySet:
			u.sl.mem += int64(unsafe.Sizeof(Set{}))
			err = u.pushContainer(&Set{}, 0)
		case opTuple1, opTuple2, opTuple3:
			n := len(u.stack) - int(u.op-opTuple1+1)
			if n < u.fence {
				err = u.underflow()
			} else {
				err = u.buildTuple(n)
			}
		case opTuple:
			var m int
			if m, err = u.marker(); err == nil {
				err = u.buildTuple(m)
			}
		case opList:
			var m int
			if m, err = u.marker(); err == nil {
				err = u.buildList(m)
			}
		case opDict:
			var m int
			if m, err = u.marker(); err == nil {
				err = u.buildDict(m)
			}
		case opFrozenSet:
			var m int
			if m, err = u.marker(); err == nil {
				err = u.buildFrozenSet(m)
			}
		case opAppend:
			err = u.appendItems(len(u.stack) - 1)
		case opAppends:
			var m int
			if m, err = u.marker(); err == nil {
				err = u.appendItems(m)
			}
		case opSetItem:
			err = u.setItems(len(u.stack) - 2)
		case opSetItems:
			var m int
			if m, err = u.marker(); err == nil {
				err = u.setItems(m)
			}
		case opAddItems:
			var m int
			if m, err = u.marker(); err == nil {
				err = u.addItems(m)
			}

		// The memo.
		case opMemoize:
			// The common case first: no holes, the stack above its mark.
			if n := len(u.stack); u.memoLen == u.memo.n && n > u.fence && u.memoLen < u.maxMemo {
				if c := u.memo.n >> chunkBits; c < len(u.memo.chunks) && len(u.memo.chunks[c]) < cap(u.memo.chunks[c]) {
					u.memo.chunks[c] = append(u.memo.chunks[c], u.stack[n-1]) // room in the chunk: no call
					u.memo.n++
				} else {
					u.sl.mem += u.memo.add(u.stack[n-1])
				}
				u.memoLen++
				continue
			}
			err = u.put(int64(u.memoLen))
		case opBinPut, opLongBinPut:
			var idx uint64
			if idx, err = u.readUint(memoIndexSize(u.op)); err == nil {
				err = u.put(int64(idx))
			}
		case opBinGet:
			if u.pos < u.limit {
				i := int(u.data[u.pos])
				// i < 256: the first chunk.
				if i < u.memo.n && u.memo.chunks[0][i] != memoHole && len(u.stack) < u.stackRoom {
					u.pos++
					u.stack = append(u.stack, u.memo.chunks[0][i])
					continue
				}
			}
			var idx uint64
			if idx, err = u.readUint(1); err == nil {
				err = u.memoGet(int64(idx))
			}
		case opLongBinGet:
			var idx uint64
			if idx, err = u.readUint(memoIndexSize(u.op)); err == nil {
				err = u.memoGet(int64(idx))
			}
		case opPut:
			err = u.loadPutText()
		case opGet:
			err = u.loadGetText()

		// Classes and objects.
		case opGlobal:
			err = u.loadGlobal()
		case opStackGlobal:
			err = u.loadStackGlobal()
		case opReduce:
			err = u.loadReduce()
		case opNewObj, opNewObjEx:
			err = u.loadNewObj(u.op == opNewObjEx)
		case opInst:
			err = u.loadInst()
		case opObj:
			err = u.loadObj()
		case opBuild:
			err = u.loadBuild()

		// Framing and protocol.
		case opProto:
			var p byte
			if p, err = u.readByte(); err == nil {
				if p > highestProtocol {
					err = u.fail(ErrProtocol, "unsupported pickle protocol: %d", p)
				} else {
					u.proto = int(p)
				}
			}
		case opFrame:
			var n uint64
			if n, err = u.readUint(8); err == nil {
				switch {
				case u.inFrame() && u.pos < u.limit:
					// A frame inside a frame: CPython reads it from the current one.
					if n > uint64(u.limit-u.pos) {
						err = u.fail(ErrTruncated, "pickle exhausted before end of frame")
					}
				case n > math.MaxInt64:
					err = u.fail(ErrSyntax, "FRAME length exceeds the maximum size")
				case n > uint64(len(u.data)-u.pos):
					err = u.truncated()
				default:
					u.limit = u.pos + int(n)
				}
			}

		// What pickle.loads cannot load without more than its defaults.
		case opPersID, opBinPersID:
			// Without persistent_load, CPython stops here, before reading the id.
			err = u.fail(ErrUnsupported, "a persistent id was found, but no persistent_load function is available")
		case opExt1, opExt2, opExt4:
			err = u.loadExt()
		case opNextBuffer:
			err = u.fail(ErrUnsupported, "pickle stream refers to out-of-band data but no buffers are available")
		case opReadonlyBuffer:
			err = u.loadReadonlyBuffer()

		default:
			err = u.fail(ErrUnknownOpcode, "invalid load key %s", quoteKey(u.op))
		}
		if err != nil {
			return nil, err
		}
	}
}

func quoteKey(c byte) string {
	if 0x20 <= c && c <= 0x7e && c != '\'' && c != '\\' {
		return fmt.Sprintf("'%c'", c)
	}
	return fmt.Sprintf("'\\x%02x'", c)
}

func memoIndexSize(op byte) int {
	if op == opBinPut || op == opBinGet {
		return 1
	}
	return 4
}

func (u *unpickler) stop() (any, error) {
	s, err := u.pop()
	if err != nil {
		return nil, err
	}
	// The recorded heights bound the real depth unless a container was changed after
	// it was put into another one (which only cycles through several containers and
	// hand-made pickles do); then, or when the bound is over the limit, measure.
	if s.m >= 0 && (u.stale || u.meta.at(int(s.m)).height > int32(u.maxDepth)) {
		if depthExceeds(s.v, u.maxDepth) {
			return nil, u.fail(ErrLimit, "value nested more than %d deep (Decoder.MaxDepth)", u.maxDepth)
		}
	}
	return s.v, nil
}

// readCounted reads the length prefix of a counted string/bytes opcode and the data.
// The data aliases the input.
func (u *unpickler) readCounted() ([]byte, error) {
	var n uint64
	var err error
	switch u.op {
	case opShortBinUnicode, opShortBinBytes, opShortBinStr:
		n, err = u.readUint(1)
	case opBinUnicode, opBinBytes, opBinString:
		n, err = u.readUint(4) // unsigned, BINSTRING too (CPython 3)
	default: // BINUNICODE8, BINBYTES8, BYTEARRAY8
		n, err = u.readUint(8)
		if err == nil && n > math.MaxInt64 {
			return nil, u.fail(ErrSyntax, "%s exceeds the maximum size", opName(u.op))
		}
	}
	if err != nil {
		return nil, err
	}
	switch u.op {
	case opShortBinBytes, opBinBytes, opBinBytes8, opByteArray8:
		// CPython reads bytes and bytearray payloads on past the end of their frame
		// (from a file as from bytes), so these may leave the frame.
		if u.inFrame() && n > uint64(u.limit-u.pos) {
			u.limit = len(u.data)
		}
	}
	return u.read(n)
}

// pushContainer pushes a new empty container; keyDepth is 1 for a tuple.
func (u *unpickler) pushContainer(v any, keyDepth int32) error {
	m, err := u.newMeta(1, keyDepth, 1)
	if err != nil {
		return err
	}
	return u.push(v, m)
}

func (u *unpickler) buildTuple(start int) error {
	items := u.stack[start:]
	m, err := u.holder(items, true)
	if err != nil {
		return err
	}
	t := u.sl.tuple(u.vals, items)
	u.truncate(start)
	return u.push(t, m)
}

func (u *unpickler) buildList(start int) error {
	items := u.stack[start:]
	m, err := u.holder(items, false)
	if err != nil {
		return err
	}
	l := u.sl.list()
	l.Items = u.sl.appendItems(nil, u.vals, items)
	u.truncate(start)
	return u.push(l, m)
}

func (u *unpickler) buildDict(start int) error {
	items := u.stack[start:]
	if len(items)%2 != 0 {
		return u.fail(ErrStack, "odd number of items for DICT")
	}
	d := u.sl.dict()
	d.t.setStorage(u.sl.itemSlice(len(items) / 2 * 2))
	if err := u.putPairs(&d.t, items); err != nil {
		return err
	}
	m, err := u.holder(items, false)
	if err != nil {
		return err
	}
	u.truncate(start)
	return u.push(d, m)
}

func (u *unpickler) buildFrozenSet(start int) error {
	items := u.stack[start:]
	fs := &FrozenSet{}
	u.sl.mem += int64(unsafe.Sizeof(FrozenSet{}))
	u.grow(&fs.t, len(items), false)
	if err := u.putItems(&fs.t, items); err != nil {
		return err
	}
	m, err := u.holder(items, true)
	if err != nil {
		return err
	}
	u.truncate(start)
	return u.push(fs, m)
}

// appendItems is APPEND and APPENDS: stack[x-1].extend(stack[x:]), as CPython's
// do_append.
func (u *unpickler) appendItems(x int) error {
	n := len(u.stack)
	if x > n || x <= u.fence {
		return u.underflow()
	}
	if x == n {
		return nil // CPython does nothing, whatever stack[x-1] is
	}
	target, items := u.vals[u.stack[x-1]], u.stack[x:]
	switch t := target.v.(type) {
	case *List:
		t.Items = u.sl.appendItems(t.Items, u.vals, items)
	case *Object:
		if t.HasState || len(t.DictItems) > 0 || len(t.SetItems) > 0 {
			return u.fail(ErrUnsupported, "%s to an object after its SETITEMS, ADDITEMS or BUILD", opName(u.op))
		}
		t.ListItems = u.sl.appendItems(t.ListItems, u.vals, items)
	case *ByteArray:
		for i := range items {
			b, err := u.byteValue(u.vals[items[i]].v)
			if err != nil {
				return err
			}
			if len(t.Data) == cap(t.Data) {
				t.Data = grow2(t.Data, 1)
				u.sl.mem += int64(cap(t.Data))
			}
			t.Data = append(t.Data, b)
		}
	default:
		return u.fail(ErrOperation, "'%s' object has no attribute 'append'", TypeName(target.v))
	}
	u.changed(target, items)
	u.truncate(x)
	return u.checkMemory()
}

// byteValue is a value as bytearray's extend and item assignment accept it.
func (u *unpickler) byteValue(v any) (byte, error) {
	i, ok, err := u.index(v)
	if err != nil || !ok {
		return 0, err
	}
	if i < 0 || i > 255 {
		return 0, u.fail(ErrOperation, "byte must be in range(0, 256)")
	}
	return byte(i), nil
}

// index converts an int or bool used as an index; ok is false (with an error) for other
// types, and an int too large for an index is an error as in CPython.
func (u *unpickler) index(v any) (int64, bool, error) {
	switch x := v.(type) {
	case bool:
		if x {
			return 1, true, nil
		}
		return 0, true, nil
	case int64:
		return x, true, nil
	case *big.Int:
		if x.IsInt64() {
			return x.Int64(), true, nil
		}
		return 0, false, u.fail(ErrOperation, "cannot fit 'int' into an index-sized integer")
	}
	return 0, false, u.fail(ErrOperation, "'%s' object cannot be interpreted as an integer", TypeName(v))
}

// setItems is SETITEM and SETITEMS: stack[x-1][k] = v for the pairs stack[x:], as
// CPython's do_setitems.
func (u *unpickler) setItems(x int) error {
	n := len(u.stack)
	if x > n || x <= u.fence {
		return u.underflow()
	}
	if x == n {
		return nil
	}
	if (n-x)%2 != 0 {
		return u.fail(ErrStack, "odd number of items for SETITEMS")
	}
	target, items := u.vals[u.stack[x-1]], u.stack[x:]
	switch t := target.v.(type) {
	case *Dict:
		fresh := cap(t.t.keys) == 0
		if fresh && u.sharedKeys(&t.t, items) {
			break
		}
		if fresh {
			t.t.setStorage(u.sl.itemSlice(len(items)))
		} else {
			u.grow(&t.t, len(items)/2, true)
		}
		if err := u.putPairs(&t.t, items); err != nil {
			return err
		}
		if fresh {
			u.noteKeys(&t.t, items)
		}
	case *Object:
		if t.HasState || len(t.SetItems) > 0 {
			return u.fail(ErrUnsupported, "%s to an object after its ADDITEMS or BUILD", opName(u.op))
		}
		if cap(t.DictItems)-len(t.DictItems) < len(items)/2 {
			t.DictItems = grow2(t.DictItems, len(items)/2)
			u.sl.mem += int64(cap(t.DictItems)) * int64(unsafe.Sizeof(KV{}))
		}
		for i := 0; i < len(items); i += 2 {
			t.DictItems = append(t.DictItems, KV{u.vals[items[i]].v, u.vals[items[i+1]].v})
		}
	case *List:
		for i := 0; i < len(items); i += 2 {
			j, err := u.seqIndex(u.vals[items[i]].v, len(t.Items), "list")
			if err != nil {
				return err
			}
			t.Items[j] = u.vals[items[i+1]].v
		}
	case *ByteArray:
		for i := 0; i < len(items); i += 2 {
			j, err := u.seqIndex(u.vals[items[i]].v, len(t.Data), "bytearray")
			if err != nil {
				return err
			}
			b, err := u.byteValue(u.vals[items[i+1]].v)
			if err != nil {
				return err
			}
			t.Data[j] = b
		}
	default:
		return u.fail(ErrOperation, "'%s' object does not support item assignment", TypeName(target.v))
	}
	u.changed(target, items)
	u.truncate(x)
	return u.checkMemory()
}

// seqIndex resolves a Python sequence index (negative from the end) into [0, n).
func (u *unpickler) seqIndex(v any, n int, what string) (int, error) {
	if _, isInt := v.(int64); !isInt {
		if _, isBool := v.(bool); !isBool {
			if _, isBig := v.(*big.Int); !isBig {
				return 0, u.fail(ErrOperation, "%s indices must be integers or slices, not %s", what, TypeName(v))
			}
		}
	}
	i, _, err := u.index(v)
	if err != nil {
		return 0, err
	}
	if i < 0 {
		i += int64(n)
	}
	if i < 0 || i >= int64(n) {
		return 0, u.fail(ErrOperation, "%s assignment index out of range", what)
	}
	return int(i), nil
}

// addItems is ADDITEMS: stack[x-1].update(stack[x:]) for a set, .add for others.
func (u *unpickler) addItems(x int) error {
	n := len(u.stack)
	if x > n || x <= u.fence {
		return u.underflow()
	}
	if x == n {
		return nil
	}
	target, items := u.vals[u.stack[x-1]], u.stack[x:]
	switch t := target.v.(type) {
	case *Set:
		u.grow(&t.t, len(items), false)
		if err := u.putItems(&t.t, items); err != nil {
			return err
		}
	case *Object:
		if t.HasState {
			return u.fail(ErrUnsupported, "ADDITEMS to an object after its BUILD")
		}
		t.SetItems = u.sl.appendItems(t.SetItems, u.vals, items)
	default:
		return u.fail(ErrOperation, "'%s' object has no attribute 'add'", TypeName(target.v))
	}
	u.changed(target, items)
	u.truncate(x)
	return u.checkMemory()
}

// Classes and objects.

func (u *unpickler) loadGlobal() error {
	// As CPython: the module name is decoded before the class name is read.
	var g Global
	line, err := u.readArgLine()
	if err != nil {
		return err
	}
	if g.Module, err = u.globalName(line[:len(line)-1]); err != nil {
		return err
	}
	if line, err = u.readArgLine(); err != nil {
		return err
	}
	if g.Name, err = u.globalName(line[:len(line)-1]); err != nil {
		return err
	}
	return u.pushScalar(py3Global(g, u.proto))
}

func (u *unpickler) loadStackGlobal() error {
	name, err := u.pop()
	if err != nil {
		return err
	}
	module, err := u.pop()
	if err != nil {
		return err
	}
	m, ok1 := module.v.(string)
	n, ok2 := name.v.(string)
	if !ok1 || !ok2 {
		return u.fail(ErrOperation, "STACK_GLOBAL requires str")
	}
	return u.pushScalar(py3Global(Global{Module: m, Name: n}, u.proto))
}

// globalName decodes a GLOBAL line: UTF-8, strict.
func (u *unpickler) globalName(b []byte) (string, error) {
	if i := invalidUTF8(b, false); i >= 0 {
		return "", u.fail(ErrSyntax, "'utf-8' codec can't decode byte 0x%02x in position %d", b[i], i)
	}
	return u.inputString(b), nil
}

// callable reports whether v may be a class or other callable: a global or the result
// of a call. Values of the built-in types are not callable.
func callable(v any) bool {
	switch v.(type) {
	case Global, *Object:
		return true
	}
	return false
}

// newObject pushes o, made from parts, refs to vals.
func (u *unpickler) newObject(o *Object, parts ...ref) error {
	m, err := u.holder(parts, false)
	if err != nil {
		return err
	}
	return u.push(o, m)
}

func (u *unpickler) loadReduce() error {
	ar, err := u.popRef()
	if err != nil {
		return err
	}
	fr, err := u.popRef()
	if err != nil {
		return err
	}
	args, fn := u.vals[ar], u.vals[fr]
	if !callable(fn.v) {
		return u.fail(ErrOperation, "'%s' object is not callable", TypeName(fn.v))
	}
	t, ok := args.v.(*Tuple)
	if !ok {
		return u.fail(ErrOperation, "argument list must be a tuple")
	}
	o := u.sl.object()
	o.Callable, o.Construct, o.Args = fn.v, Reduce, t
	return u.newObject(o, fr, ar)
}

func (u *unpickler) loadNewObj(ex bool) error {
	var kr ref
	var err error
	if ex {
		if kr, err = u.popRef(); err != nil {
			return err
		}
	}
	ar, err := u.popRef()
	if err != nil {
		return err
	}
	cr, err := u.popRef()
	if err != nil {
		return err
	}
	kwargs, args, cls := u.vals[kr], u.vals[ar], u.vals[cr]
	name := opName(u.op)
	var kw *Dict
	if ex {
		var ok bool
		if kw, ok = kwargs.v.(*Dict); !ok {
			return u.fail(ErrOperation, "NEWOBJ_EX kwargs argument must be dict, not %s", TypeName(kwargs.v))
		}
	}
	t, ok := args.v.(*Tuple)
	if !ok {
		return u.fail(ErrOperation, "%s args argument must be a tuple, not %s", name, TypeName(args.v))
	}
	if !callable(cls.v) {
		return u.fail(ErrOperation, "%s class argument must be a type, not %s", name, TypeName(cls.v))
	}
	o := u.sl.object()
	o.Callable, o.Construct, o.Args = cls.v, NewObj, t
	if ex {
		o.Construct, o.Kwargs = NewObjEx, kw
		return u.newObject(o, cr, ar, kr)
	}
	return u.newObject(o, cr, ar)
}

func (u *unpickler) loadInst() error {
	x, err := u.marker()
	if err != nil {
		return err
	}
	var g Global
	line, err := u.readArgLine()
	if err != nil {
		return err
	}
	if g.Module, err = u.asciiString(line[:len(line)-1]); err != nil {
		return err
	}
	if line, err = u.readArgLine(); err != nil {
		return err
	}
	if g.Name, err = u.asciiString(line[:len(line)-1]); err != nil {
		return err
	}
	cls, err := u.newVal(py3Global(g, u.proto), noMeta)
	if err != nil {
		return err
	}
	return u.instantiate(cls, x, x)
}

func (u *unpickler) loadObj() error {
	x, err := u.marker()
	if err != nil {
		return err
	}
	if len(u.stack)-x < 1 {
		return u.underflow()
	}
	cls := u.stack[x]
	if v := u.vals[cls].v; !callable(v) {
		return u.fail(ErrOperation, "'%s' object is not callable", TypeName(v))
	}
	return u.instantiate(cls, x, x+1)
}

// instantiate makes the object of INST and OBJ from cls and the arguments
// stack[argsAt:], and replaces stack[from:] with it.
func (u *unpickler) instantiate(cls ref, from, argsAt int) error {
	items := u.stack[argsAt:]
	am, err := u.holder(items, true)
	if err != nil {
		return err
	}
	args := u.sl.tuple(u.vals, items)
	u.truncate(from)
	o := u.sl.object()
	o.Callable, o.Construct, o.Args = u.vals[cls].v, Inst, args
	ar, err := u.newVal(args, am)
	if err != nil {
		return err
	}
	return u.newObject(o, cls, ar)
}

// loadBuild is BUILD. On an object it records the state; on the built-in types, which
// have neither __setstate__ nor an instance __dict__, it does what CPython's load_build
// does: nothing for a None state (or a (None, {}) pair), an error otherwise.
func (u *unpickler) loadBuild() error {
	if len(u.stack)-2 < u.fence {
		return u.underflow()
	}
	sr, _ := u.popRef()
	state, target := u.vals[sr], u.vals[u.stack[len(u.stack)-1]]
	switch t := target.v.(type) {
	case *Object:
		if t.HasState {
			return u.fail(ErrUnsupported, "a second BUILD on the same object")
		}
		t.State, t.HasState = state.v, true
		u.changed(target, []ref{sr})
		return nil
	case Global:
		return u.fail(ErrUnsupported, "BUILD applied to the class %s", t)
	}
	st, slots := state.v, any(nil)
	hasSlots := false
	if tp, ok := st.(*Tuple); ok && len(tp.Items) == 2 {
		st, slots, hasSlots = tp.Items[0], tp.Items[1], true
	}
	if st != nil {
		if _, ok := st.(*Dict); !ok {
			return u.fail(ErrOperation, "state is not a dictionary")
		}
		return u.fail(ErrOperation, "'%s' object has no attribute '__dict__'", TypeName(target.v))
	}
	if hasSlots {
		d, ok := slots.(*Dict)
		if !ok {
			return u.fail(ErrOperation, "slot state is not a dictionary")
		}
		if d.Len() > 0 {
			return u.fail(ErrOperation, "'%s' object has no attribute %s", TypeName(target.v), pyRepr(d.t.keys[0]))
		}
	}
	return nil
}

func pyRepr(v any) string {
	if s, ok := v.(string); ok {
		return "'" + s + "'"
	}
	return TypeName(v)
}

func (u *unpickler) loadExt() error {
	var n int
	switch u.op {
	case opExt1:
		n = 1
	case opExt2:
		n = 2
	default:
		n = 4
	}
	x, err := u.readUint(n)
	if err != nil {
		return err
	}
	code := int64(x)
	if n == 4 {
		code = int64(int32(uint32(x)))
	}
	if code <= 0 {
		return u.fail(ErrSyntax, "EXT specifies code <= 0")
	}
	return u.fail(ErrUnsupported, "unregistered extension code %d", code)
}

func (u *unpickler) loadReadonlyBuffer() error {
	r, err := u.topRef()
	if err != nil {
		return err
	}
	t := u.vals[r]
	switch t.v.(type) {
	case []byte:
		return nil // already read-only: CPython leaves it as it is
	case *ByteArray:
		return u.fail(ErrUnsupported, "READONLY_BUFFER on a bytearray (a read-only memoryview)")
	}
	return u.fail(ErrOperation, "memoryview: a bytes-like object is required, not '%s'", TypeName(t.v))
}
