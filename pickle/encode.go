package pickle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/bits"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"
)

// DefaultProtocol is the protocol Marshal writes: 4, the protocol session3 writes
// (pickle.dump(session, f, 4)) and CPython's default since 3.8.
const DefaultProtocol = 4

// defaultEncodeDepth bounds how deeply an encoded value may nest. It is twice the
// nesting the decoder accepts by default (DefaultMaxDepth, counted the same way: the
// containers and objects on the chain the walk descends through), so every value
// Unmarshal returns can be written back, while a cyclic graph of Go values that CPython
// could never have built (a tuple containing itself, a map holding itself) ends in an
// error instead of exhausting the stack.
const defaultEncodeDepth = 2 * DefaultMaxDepth

const (
	frameHeaderSize = 9         // FRAME opcode + 8-byte length
	frameSizeMin    = 4         // smaller frames are dropped, as CPython does
	frameSizeTarget = 64 * 1024 // a frame is committed at the first opcode boundary past this
	batchSize       = 1000      // items per APPENDS/SETITEMS/ADDITEMS batch
)

// An Encoder writes pickles to an output stream. Each call to Encode writes one
// complete pickle with a memo of its own, so every pickle can be loaded on its own
// (CPython's Pickler, by contrast, keeps its memo across dump calls).
type Encoder struct {
	// Protocol is the pickle protocol to write, 2 to 5. Zero means DefaultProtocol.
	Protocol int
	// MaxDepth bounds how deeply a value may nest; zero means a default far above
	// what the decoder accepts.
	MaxDepth int

	w io.Writer
}

// NewEncoder returns an encoder that writes to w.
func NewEncoder(w io.Writer) *Encoder { return &Encoder{w: w} }

// Encode writes the pickle of v to the stream. As CPython's pickler does when it dumps
// to a file, it writes each protocol 4+ frame as soon as it is complete and writes
// strings and bytes of 64 KiB or more straight through, so memory stays bounded by
// the frame size plus the value being written. On error, part of the pickle may
// already have been written.
func (e *Encoder) Encode(v any) error {
	proto := e.Protocol
	if proto == 0 {
		proto = DefaultProtocol
	}
	if proto < 2 || proto > highestProtocol {
		return fmt.Errorf("pickle: cannot encode protocol %d: the encoder writes protocols 2 to %d", proto, highestProtocol)
	}
	depth := e.MaxDepth
	if depth <= 0 {
		depth = defaultEncodeDepth
	}
	s := getEncState(proto, depth, e.w)
	defer putEncState(s)
	if err := s.dump(v); err != nil {
		return err
	}
	return s.flush()
}

// UnsupportedTypeError is returned when a value has a Go type the encoder cannot map
// to a Python object.
type UnsupportedTypeError struct {
	Type reflect.Type
}

func (e *UnsupportedTypeError) Error() string {
	return "pickle: cannot encode Go type " + e.Type.String()
}

// An EncodeError reports a value that cannot be written as a pickle and where in the
// encoded value it sits.
type EncodeError struct {
	// Path locates the value from the root, in Python-like notation, e.g.
	// `.__dict__["user"].__dict__["roles"]` or `[3]`. Empty for the root itself.
	Path string
	Err  error
}

func (e *EncodeError) Error() string {
	msg := strings.TrimPrefix(e.Err.Error(), "pickle: ")
	if e.Path == "" {
		return "pickle: " + msg
	}
	return "pickle: at " + e.Path + ": " + msg
}

func (e *EncodeError) Unwrap() error { return e.Err }

// errTooDeep is wrapped in an EncodeError when a value nests beyond the depth limit.
var errTooDeep = errors.New("value nests too deeply (a cycle without a list, dict, set or object in it?)")

// pathError collects the path of a failing value while the recursion unwinds; only
// the error path pays for it.
type pathError struct {
	steps []string // innermost first
	err   error
}

func (p *pathError) Error() string { return p.err.Error() }

func wrapStep(err error, step string) error {
	if pe, ok := err.(*pathError); ok {
		pe.steps = append(pe.steps, step)
		return pe
	}
	return err
}

func encErr(format string, args ...any) error {
	return &pathError{err: fmt.Errorf(format, args...)}
}

func finishError(err error) error {
	pe, ok := err.(*pathError)
	if !ok {
		return err
	}
	var b strings.Builder
	for i := len(pe.steps) - 1; i >= 0; i-- {
		b.WriteString(pe.steps[i])
	}
	return &EncodeError{Path: b.String(), Err: pe.err}
}

// encState is one pickling run: the output buffer, framing and the memo. It mirrors
// the state of CPython's C pickler so that the same decisions are taken at the same
// points.
type encState struct {
	proto    int
	maxDepth int
	depth    int
	deepest  int       // the greatest depth reached
	w        io.Writer // nil: everything stays in buf (Marshal)
	werr     error

	buf        []byte // the output is buf[:n]; buf's length is its capacity
	n          int
	framing    bool
	frameStart int // offset of the open frame's header in buf, -1 when none is open

	// The memo. CPython keys it by object identity. Containers and objects are Go
	// pointers here, so they are keyed by pointer; str, bytes and class references
	// have no identity in Go and are keyed by value (see the package doc).
	memoLen    int
	memoFull   bool                              // memoLen passed what LONG_BINPUT can number
	funcModule int                               // memo index of the module name of built-in functions, or -1
	chars      map[rune]int                      // one-character strs built while pickling (saveTempStr)
	built      map[unsafe.Pointer]unsafe.Pointer // arguments CPython builds anew, by the object they were saved for (saveArgs)
	ptrs       ptrTable
	strs       strTable
	bytes      strTable
	globals    map[Global]int
	sizeHint   int   // capacity for Marshal's next output buffer
	keep       []any // values made while encoding (time.Time): alive until the end, so their addresses stay unique
}

var encStatePool = sync.Pool{New: func() any {
	return &encState{
		chars:   make(map[rune]int),
		built:   make(map[unsafe.Pointer]unsafe.Pointer),
		globals: make(map[Global]int),
	}
}}

func getEncState(proto, maxDepth int, w io.Writer) *encState {
	s := encStatePool.Get().(*encState)
	s.proto, s.maxDepth, s.w = proto, maxDepth, w
	s.depth, s.deepest, s.werr, s.memoLen, s.funcModule, s.memoFull = 0, 0, nil, 0, -1, false
	s.framing, s.frameStart = false, -1
	s.n = 0
	return s
}

// putEncState returns s to the pool. Maps that grew large are dropped rather than
// cleared, so that one huge pickle does not make every later small one pay for
// clearing a big table.
func putEncState(s *encState) {
	const keep = 4096
	s.ptrs.reset()
	s.strs.reset()
	s.bytes.reset()
	clear(s.keep)
	s.keep = s.keep[:0]
	resetMap(&s.globals, keep)
	clear(s.chars)
	clear(s.built)
	if len(s.buf) > 1<<20 {
		s.buf = nil
	}
	s.w = nil
	encStatePool.Put(s)
}

func resetMap[K comparable](m *map[K]int, keep int) {
	if len(*m) > keep {
		*m = make(map[K]int)
	} else {
		clear(*m)
	}
}

// dump writes a whole pickle: PROTO, the value, STOP, as CPython's dump() does.
func (s *encState) dump(v any) error {
	b := s.room(2)
	b[0], b[1] = opProto, byte(s.proto)
	if s.proto >= 4 {
		s.framing = true
	}
	if err := s.save(v); err != nil {
		return finishError(err)
	}
	if s.memoFull {
		return &EncodeError{Err: errors.New("memo grew beyond 2**32 entries, more than BINPUT/LONG_BINPUT can number")}
	}
	if s.memoLen > DefaultMaxMemo {
		return &EncodeError{Err: fmt.Errorf("pickle: more than %d memo entries, which the decoder refuses (DefaultMaxMemo)", DefaultMaxMemo)}
	}
	s.write1(opStop)
	s.commitFrame()
	s.framing = false
	return s.werr
}

// flush writes what is buffered to the stream.
func (s *encState) flush() error {
	if s.werr != nil {
		return s.werr
	}
	if s.w != nil && s.n > 0 {
		if _, err := s.w.Write(s.buf[:s.n]); err != nil {
			s.werr = err
			return err
		}
		s.n = 0
	}
	return nil
}

// --- output and framing (CPython: _Pickler_Write, _Pickler_CommitFrame,
// _Pickler_OpcodeBoundary, _Pickler_write_bytes) ---

// open starts a frame when framing is on and none is open: CPython opens a frame
// lazily at the first write after the previous one was committed.
func (s *encState) open() {
	if s.framing && s.frameStart < 0 {
		s.frameStart = s.n
		b := s.room(frameHeaderSize)
		b[0] = opFrame // the length is filled in when the frame is committed
	}
}

func (s *encState) write1(b byte) {
	s.open()
	if s.n < len(s.buf) {
		s.buf[s.n] = b
		s.n++
		return
	}
	s.room(1)[0] = b
}

func (s *encState) write2(a, b byte) {
	s.open()
	r := s.room(2)
	r[0], r[1] = a, b
}

// room reserves the next k bytes of the output and returns them to be written. The
// output is written by index rather than appended to, which stores no pointer (and
// so runs no GC write barrier) except when the buffer grows.
func (s *encState) room(k int) []byte {
	if len(s.buf)-s.n < k {
		s.growBuf(k)
	}
	b := s.buf[s.n : s.n+k : s.n+k]
	s.n += k
	return b
}

func (s *encState) growBuf(k int) {
	nb := make([]byte, max(2*len(s.buf), s.n+k, 256))
	copy(nb, s.buf[:s.n])
	s.buf = nb
}

// commitFrame closes the open frame: it fills in the header, or removes it when the
// frame is too small to be worth one.
func (s *encState) commitFrame() {
	if !s.framing || s.frameStart < 0 {
		return
	}
	start := s.frameStart
	n := s.n - start - frameHeaderSize
	if n >= frameSizeMin {
		binary.LittleEndian.PutUint64(s.buf[start+1:], uint64(n))
	} else {
		copy(s.buf[start:], s.buf[start+frameHeaderSize:s.n])
		s.n -= frameHeaderSize
	}
	s.frameStart = -1
}

// boundary is called before each value is saved: a frame that reached the target size
// is committed there (and, when streaming, written out).
func (s *encState) boundary() {
	// frameStart is -1 whenever no frame is open, including when framing is off.
	if s.frameStart >= 0 && s.n-s.frameStart >= frameHeaderSize+frameSizeTarget {
		s.endFrame()
	}
}

func (s *encState) endFrame() {
	s.commitFrame()
	if s.w != nil {
		_ = s.flush()
	}
}

// writeData writes an opcode header followed by a payload. Payloads of 64 KiB or more
// are written outside any frame, after committing the open one.
func (s *encState) writeData(header []byte, data string) {
	if len(data) < frameSizeTarget {
		s.open()
		b := s.room(len(header) + len(data))
		copy(b[copy(b, header):], data)
		return
	}
	s.commitFrame()
	copy(s.room(len(header)), header)
	if s.w != nil {
		if s.flush() == nil {
			if _, err := io.WriteString(s.w, data); err != nil && s.werr == nil {
				s.werr = err
			}
		}
		return
	}
	copy(s.room(len(data)), data)
}

// --- memo (CPython: memo_put, memo_get) ---

// put assigns the next memo index to the value on top of the stack and returns it.
func (s *encState) put() int {
	idx := s.memoLen
	s.memoLen++
	if uint64(idx) >= math.MaxUint32 {
		s.memoFull = true
	}
	switch {
	case s.proto >= 4:
		s.write1(opMemoize)
	case idx < 256:
		s.write2(opBinPut, byte(idx))
	default:
		s.open()
		b := s.room(5)
		b[0] = opLongBinPut
		binary.LittleEndian.PutUint32(b[1:], uint32(idx))
	}
	return idx
}

func (s *encState) get(idx int) {
	if idx < 256 {
		s.write2(opBinGet, byte(idx))
		return
	}
	s.open()
	b := s.room(5)
	b[0] = opLongBinGet
	binary.LittleEndian.PutUint32(b[1:], uint32(idx))
}

func (s *encState) putPtr(p unsafe.Pointer) {
	s.ptrs.set(p, s.put())
	if len(s.built) > 0 {
		delete(s.built, p)
	}
}

// putBuilt memoizes an argument of the object o that CPython builds anew on each save
// of o (see saveArgs).
func (s *encState) putBuilt(p, o unsafe.Pointer) {
	s.ptrs.set(p, s.put())
	s.built[p] = o
}

// builtRef writes a memo reference to p, an argument of the object o that CPython
// builds anew on each save of o, and reports whether it did: it does unless the memo
// entry was made as the argument of o itself, in an inner save of o.
func (s *encState) builtRef(p, o unsafe.Pointer) bool {
	idx, ok := s.ptrs.get(p)
	if !ok {
		return false
	}
	if builder, built := s.built[p]; built && builder == o {
		return false
	}
	s.get(idx)
	return true
}

// memoized writes a memo reference to p if it was saved before.
func (s *encState) memoized(p unsafe.Pointer) bool {
	if idx, ok := s.ptrs.get(p); ok {
		s.get(idx)
		return true
	}
	return false
}

// --- values (CPython: save and the save_* functions) ---

func (s *encState) enter() error {
	s.depth++
	if s.depth > s.maxDepth {
		return &pathError{err: errTooDeep}
	}
	s.deepest = max(s.deepest, s.depth)
	return nil
}

// checkKey refuses a dict key or set item the decoder would refuse to hash: a tuple or
// frozenset of more than maxKeySize nested values, counted as the decoder counts them.
func checkKey(k any) error {
	switch k.(type) {
	case *Tuple, *FrozenSet:
		if keySize(k, maxKeySize+1) > maxKeySize {
			return encErr("pickle: dict key or set item of more than %d nested values, which the decoder refuses", maxKeySize)
		}
	}
	return nil
}

// keySize is the number of values hashing k visits (tuples and frozensets expanded),
// counted up to limit.
func keySize(k any, limit int) int {
	var items []any
	switch x := k.(type) {
	case *Tuple:
		items = x.Items
	case *FrozenSet:
		items = x.t.keys
	default:
		return 1
	}
	n := 1
	for _, it := range items {
		if n += keySize(it, limit-n); n >= limit {
			return limit
		}
	}
	return n
}

// save writes one value. As CPython's save(), it first gives the frame a chance to be
// committed, writes atoms (None, bool, int, float) without touching the memo, and
// writes a memo reference for anything saved before.
func (s *encState) save(v any) error {
	s.boundary()
	switch x := v.(type) {
	case nil:
		s.write1(opNone)
	case bool:
		if x {
			s.write1(opNewTrue)
		} else {
			s.write1(opNewFalse)
		}
	case int64:
		s.saveInt(x)
	case float64:
		s.saveFloat(x)
	case string:
		return s.saveStr(x, false)
	case []byte:
		return s.saveBytes(x, false)
	case *big.Int:
		if x == nil {
			return encErr("pickle: nil *big.Int")
		}
		return s.saveBigInt(x)
	case Global:
		return s.saveGlobal(x)
	case *Tuple:
		if x == nil {
			return encErr("pickle: nil *Tuple")
		}
		return s.saveTuple(x)
	case *List:
		if x == nil {
			return encErr("pickle: nil *List")
		}
		return s.saveList(x)
	case *Dict:
		if x == nil {
			return encErr("pickle: nil *Dict")
		}
		return s.saveDict(x)
	case *Object:
		if x == nil {
			return encErr("pickle: nil *Object")
		}
		return s.saveObject(x)
	case *Set:
		if x == nil {
			return encErr("pickle: nil *Set")
		}
		return s.saveSet(x)
	case *FrozenSet:
		if x == nil {
			return encErr("pickle: nil *FrozenSet")
		}
		return s.saveFrozenSet(x)
	case *ByteArray:
		if x == nil {
			return encErr("pickle: nil *ByteArray")
		}
		return s.saveByteArray(x)
	default:
		return s.saveGo(v)
	}
	return nil
}

// saveInt writes an int the way CPython's save_long does: BININT1, BININT2 or BININT
// when it fits in 32 signed bits, else LONG1 with the shortest two's complement form.
func (s *encState) saveInt(x int64) {
	if x >= math.MinInt32 && x <= math.MaxInt32 {
		u := uint32(x)
		switch {
		case u <= 0xff:
			s.write2(opBinInt1, byte(u))
		case u <= 0xffff:
			s.open()
			b := s.room(3)
			b[0], b[1], b[2] = opBinInt2, byte(u), byte(u>>8)
		default:
			s.open()
			b := s.room(5)
			b[0] = opBinInt
			binary.LittleEndian.PutUint32(b[1:], u)
		}
		return
	}
	// |x| has nbits bits; CPython reserves nbits/8+1 bytes and drops the top byte of a
	// negative number when it is pure sign extension.
	abs := uint64(x)
	if x < 0 {
		abs = -abs
	}
	n := bits.Len64(abs)/8 + 1
	var le [9]byte
	binary.LittleEndian.PutUint64(le[:], uint64(x))
	if x < 0 {
		le[8] = 0xff
		if n > 1 && le[n-1] == 0xff && le[n-2]&0x80 != 0 {
			n--
		}
	}
	s.open()
	b := s.room(2 + n)
	b[0], b[1] = opLong1, byte(n)
	copy(b[2:], le[:n])
}

func (s *encState) saveBigInt(x *big.Int) error {
	if x.IsInt64() {
		s.saveInt(x.Int64())
		return nil
	}
	n := x.BitLen()/8 + 1
	if n > math.MaxInt32 {
		return encErr("pickle: int too large to pickle")
	}
	// Little-endian |x| in n bytes, then two's complement for a negative x.
	le := make([]byte, n)
	abs := new(big.Int).Abs(x).Bytes()
	for i, b := range abs {
		le[len(abs)-1-i] = b
	}
	if x.Sign() < 0 {
		// Two's complement in n bytes: invert and add one.
		carry := byte(1)
		for i := range le {
			v := ^le[i] + carry
			if carry == 1 && v != 0 {
				carry = 0
			}
			le[i] = v
		}
		if n > 1 && le[n-1] == 0xff && le[n-2]&0x80 != 0 {
			n--
		}
	}
	s.open()
	if n < 256 {
		b := s.room(2)
		b[0], b[1] = opLong1, byte(n)
	} else {
		b := s.room(5)
		b[0] = opLong4
		binary.LittleEndian.PutUint32(b[1:], uint32(n))
	}
	copy(s.room(n), le[:n])
	return nil
}

func (s *encState) saveFloat(f float64) {
	s.open()
	b := s.room(9)
	b[0] = opBinFloat
	binary.BigEndian.PutUint64(b[1:], math.Float64bits(f))
}

// saveStr writes a str. fresh marks a string CPython creates anew while pickling (it
// is memoized under an identity nothing else shares), so it neither uses nor fills
// the by-value memo.
func (s *encState) saveStr(str string, fresh bool) error {
	var slot int
	if !fresh {
		idx, ok, sl := s.strs.lookup(str)
		if ok {
			s.get(idx)
			return nil
		}
		slot = sl
	}
	if !validPyString(str) {
		return encErr("pickle: str is not UTF-8 (lone surrogates must be in their 3-byte surrogatepass form): %q", truncate(str, 40))
	}
	n := len(str)
	if n <= 0xff && s.proto >= 4 {
		// The common case, written in one go: SHORT_BINUNICODE, the text, MEMOIZE.
		s.open()
		b := s.room(n + 3)
		b[0], b[1], b[n+2] = opShortBinUnicode, byte(n), opMemoize
		copy(b[2:], str)
		idx := s.memoLen
		s.memoLen++
		if !fresh {
			s.strs.insert(str, slot, idx)
		}
		return nil
	}
	var hdr [9]byte
	var h []byte
	switch {
	case uint64(n) <= math.MaxUint32:
		hdr[0] = opBinUnicode
		binary.LittleEndian.PutUint32(hdr[1:], uint32(n))
		h = hdr[:5]
	case s.proto >= 4:
		hdr[0] = opBinUnicode8
		binary.LittleEndian.PutUint64(hdr[1:], uint64(n))
		h = hdr[:9]
	default:
		return encErr("pickle: a str of 4 GiB or more needs protocol 4 or higher")
	}
	s.writeData(h, str)
	idx := s.put()
	if !fresh {
		s.strs.insert(str, slot, idx)
	}
	return nil
}

// validPyString reports whether s is UTF-8 in which lone surrogates, if any, appear in
// their 3-byte "surrogatepass" form, which is how CPython pickles such strings.
func validPyString(s string) bool {
	if utf8.ValidString(s) {
		return true
	}
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			if s[i] == 0xed && i+2 < len(s) && s[i+1] >= 0xa0 && s[i+1] <= 0xbf && s[i+2]&0xc0 == 0x80 {
				i += 3
				continue
			}
			return false
		}
		i += size
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// saveBytes writes bytes: SHORT_BINBYTES, BINBYTES or BINBYTES8 from protocol 3 on;
// at protocol 2, which has no bytes opcode, CPython's _codecs.encode(str, "latin1")
// call (or bytes() when empty). fresh is as for saveStr.
func (s *encState) saveBytes(b []byte, fresh bool) error {
	key := unsafe.String(unsafe.SliceData(b), len(b))
	var slot int
	if !fresh {
		idx, ok, sl := s.bytes.lookup(key)
		if ok {
			s.get(idx)
			return nil
		}
		slot = sl
	}
	if s.proto < 3 {
		if len(b) == 0 {
			if err := s.save(Global{"builtins", "bytes"}); err != nil {
				return err
			}
			s.write1(opEmptyTuple)
		} else {
			if err := s.save(Global{"_codecs", "encode"}); err != nil {
				return err
			}
			if err := s.saveTempTuple2(latin1String(b), "latin1"); err != nil {
				return err
			}
		}
		s.write1(opReduce)
	} else {
		n := len(b)
		var hdr [9]byte
		var h []byte
		switch {
		case n <= 0xff:
			hdr[0], hdr[1] = opShortBinBytes, byte(n)
			h = hdr[:2]
		case uint64(n) <= math.MaxUint32:
			hdr[0] = opBinBytes
			binary.LittleEndian.PutUint32(hdr[1:], uint32(n))
			h = hdr[:5]
		case s.proto >= 4:
			hdr[0] = opBinBytes8
			binary.LittleEndian.PutUint64(hdr[1:], uint64(n))
			h = hdr[:9]
		default:
			return encErr("pickle: bytes of 4 GiB or more need protocol 4 or higher")
		}
		s.writeData(h, key)
	}
	idx := s.put()
	if !fresh {
		s.bytes.insert(key, slot, idx)
	}
	return nil
}

// saveTempTuple2 writes the 2-tuple (latin1Text, "latin1") of protocol 2 bytes. The
// text is a new str in CPython, except that one-character Latin-1 strings are shared
// singletons there.
func (s *encState) saveTempTuple2(text, codec string) error {
	s.boundary()
	if err := s.saveTempStr(text); err != nil {
		return err
	}
	s.boundary()
	if err := s.saveStr(codec, false); err != nil {
		return err
	}
	s.write1(opTuple2)
	s.put()
	return nil
}

// saveTempStr writes a str that CPython builds while pickling: a new object, except
// for one-character Latin-1 strings, which are singletons there. They are shared among
// such built strs but not with the strs of the value: a str a program wrote as a
// literal is another object than the singleton.
func (s *encState) saveTempStr(str string) error {
	r, size := utf8.DecodeRuneInString(str)
	if size != len(str) || r >= 256 || r == utf8.RuneError {
		return s.saveStr(str, true)
	}
	if idx, ok := s.chars[r]; ok {
		s.get(idx)
		return nil
	}
	if err := s.saveStr(str, true); err != nil {
		return err
	}
	s.chars[r] = s.memoLen - 1
	return nil
}

// latin1String decodes b as Latin-1.
func latin1String(b []byte) string {
	ascii := true
	for _, c := range b {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return string(b)
	}
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

func (s *encState) saveByteArray(ba *ByteArray) error {
	p := unsafe.Pointer(ba)
	if s.memoized(p) {
		return nil
	}
	if s.proto >= 5 {
		var hdr [9]byte
		hdr[0] = opByteArray8
		binary.LittleEndian.PutUint64(hdr[1:], uint64(len(ba.Data)))
		s.writeData(hdr[:], unsafe.String(unsafe.SliceData(ba.Data), len(ba.Data)))
		s.putPtr(p)
		return nil
	}
	// bytearray(bytes) by REDUCE; the bytes argument is a new object in CPython.
	if err := s.save(Global{"builtins", "bytearray"}); err != nil {
		return err
	}
	if len(ba.Data) == 0 {
		s.write1(opEmptyTuple)
	} else {
		s.boundary() // the argument tuple, then the bytes in it
		if err := s.saveBytes(ba.Data, true); err != nil {
			return err
		}
		s.write1(opTuple1)
		s.put()
	}
	return s.finishReduce(p, opReduce)
}

// finishReduce ends a REDUCE/NEWOBJ/NEWOBJ_EX/OBJ call for the object at p, as
// CPython's save_reduce does: if saving the arguments already saved the object (a
// cycle through its arguments), the new one is dropped and the memo entry used.
func (s *encState) finishReduce(p unsafe.Pointer, op byte) error {
	s.write1(op)
	if idx, ok := s.ptrs.get(p); ok {
		s.write1(opPop)
		s.get(idx)
		return nil
	}
	s.putPtr(p)
	return nil
}

func (s *encState) saveTuple(t *Tuple) error {
	n := len(t.Items)
	if n == 0 {
		s.write1(opEmptyTuple)
		return nil
	}
	p := unsafe.Pointer(t)
	if s.memoized(p) {
		return nil
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer func() { s.depth-- }()
	if n > 3 {
		s.write1(opMark)
	}
	for i, it := range t.Items {
		if err := s.save(it); err != nil {
			return wrapStep(err, fmt.Sprintf("[%d]", i))
		}
	}
	if idx, ok := s.ptrs.get(p); ok {
		// The tuple is recursive: it was saved while saving its items. Drop what was
		// pushed and refer to the saved one.
		if n > 3 {
			s.write1(opPopMark)
		} else {
			for range n {
				s.write1(opPop)
			}
		}
		s.get(idx)
		return nil
	}
	if n > 3 {
		s.write1(opTuple)
	} else {
		s.write1(opTuple1 + byte(n-1))
	}
	s.putPtr(p)
	return nil
}

func (s *encState) saveList(l *List) error {
	p := unsafe.Pointer(l)
	if s.memoized(p) {
		return nil
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer func() { s.depth-- }()
	s.write1(opEmptyList)
	s.putPtr(p)
	return s.appendsExact(l.Items)
}

// appendsExact writes the items of a list as CPython's batch_list_exact does: a
// single item with APPEND, otherwise batches of MARK ... APPENDS.
func (s *encState) appendsExact(items []any) error {
	switch len(items) {
	case 0:
		return nil
	case 1:
		if err := s.save(items[0]); err != nil {
			return wrapStep(err, "[0]")
		}
		s.write1(opAppend)
		return nil
	}
	for start := 0; start < len(items); start += batchSize {
		end := min(start+batchSize, len(items))
		s.write1(opMark)
		for i := start; i < end; i++ {
			if err := s.save(items[i]); err != nil {
				return wrapStep(err, fmt.Sprintf("[%d]", i))
			}
		}
		s.write1(opAppends)
	}
	return nil
}

// appendsIter writes list items of an object (listitems of a reduce value) as
// CPython's batch_list does for an iterator: batches of up to 1000 with
// MARK ... APPENDS, a last lone item with APPEND.
func (s *encState) appendsIter(items []any) error {
	i := 0
	for {
		rest := len(items) - i
		if rest == 0 {
			return nil
		}
		if rest == 1 {
			if err := s.save(items[i]); err != nil {
				return wrapStep(err, fmt.Sprintf(".listitems[%d]", i))
			}
			s.write1(opAppend)
			return nil
		}
		n := min(rest, batchSize)
		s.write1(opMark)
		for j := i; j < i+n; j++ {
			if err := s.save(items[j]); err != nil {
				return wrapStep(err, fmt.Sprintf(".listitems[%d]", j))
			}
		}
		s.write1(opAppends)
		i += n
		if n < batchSize {
			return nil
		}
	}
}

func (s *encState) saveDict(d *Dict) error {
	p := unsafe.Pointer(d)
	if s.memoized(p) {
		return nil
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer func() { s.depth-- }()
	s.write1(opEmptyDict)
	s.putPtr(p)
	keys, vals := d.t.keys, d.t.vals
	if len(keys) == 1 {
		if err := s.saveItem(keys[0], vals[0]); err != nil {
			return err
		}
		s.write1(opSetItem)
		return nil
	}
	// The loop of setItemsExact, without a call per item.
	for i := 0; len(keys) > 0; {
		s.write1(opMark)
		n := min(len(keys)-i, batchSize)
		for j := i; j < i+n; j++ {
			if err := s.saveItem(keys[j], vals[j]); err != nil {
				return err
			}
		}
		s.write1(opSetItems)
		i += n
		if n != batchSize {
			return nil
		}
	}
	return nil
}

// setItemsExact writes dict items as CPython's batch_dict_exact does: a single item
// with SETITEM, otherwise batches of MARK ... SETITEMS; a dict whose size is a
// multiple of 1000 gets a final empty batch, exactly as CPython writes it.
func (s *encState) setItemsExact(n int, item func(int) (any, any)) error {
	if n == 0 {
		return nil
	}
	if n == 1 {
		k, v := item(0)
		if err := s.saveItem(k, v); err != nil {
			return err
		}
		s.write1(opSetItem)
		return nil
	}
	i := 0
	for {
		s.write1(opMark)
		c := 0
		for i < n {
			k, v := item(i)
			if err := s.saveItem(k, v); err != nil {
				return err
			}
			i++
			if c++; c == batchSize {
				break
			}
		}
		s.write1(opSetItems)
		if c != batchSize {
			return nil
		}
	}
}

func (s *encState) saveItem(k, v any) error {
	var err error
	if ks, ok := k.(string); ok { // most keys: skip save's type switch
		s.boundary()
		err = s.saveStr(ks, false)
	} else if err = checkKey(k); err == nil {
		err = s.save(k)
	}
	if err != nil {
		return wrapStep(err, "<key "+keyRepr(k)+">")
	}
	if err := s.save(v); err != nil {
		return wrapStep(err, "["+keyRepr(k)+"]")
	}
	return nil
}

// keyRepr renders a dict key for an error path.
func keyRepr(k any) string {
	switch x := k.(type) {
	case string:
		return fmt.Sprintf("%q", truncate(x, 40))
	case int64, bool, float64, *big.Int:
		return fmt.Sprint(x)
	case nil:
		return "None"
	}
	return TypeName(k)
}

// setItemsIter writes the dict items of an object (dictitems of a reduce value) as
// CPython's batch_dict does for an iterator.
func (s *encState) setItemsIter(items []KV) error {
	i := 0
	for {
		rest := len(items) - i
		if rest == 0 {
			return nil
		}
		if rest == 1 {
			if err := s.saveItem(items[i].Key, items[i].Value); err != nil {
				return wrapStep(err, ".dictitems")
			}
			s.write1(opSetItem)
			return nil
		}
		n := min(rest, batchSize)
		s.write1(opMark)
		for j := i; j < i+n; j++ {
			if err := s.saveItem(items[j].Key, items[j].Value); err != nil {
				return wrapStep(err, ".dictitems")
			}
		}
		s.write1(opSetItems)
		i += n
		if n < batchSize {
			return nil
		}
	}
}

func (s *encState) saveSet(set *Set) error {
	p := unsafe.Pointer(set)
	if s.memoized(p) {
		return nil
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer func() { s.depth-- }()
	if s.proto < 4 {
		// set([items]) by REDUCE: protocols 2 and 3 have no set opcodes.
		return s.saveSetReduce(p, "set", set.t.keys)
	}
	s.write1(opEmptySet)
	s.putPtr(p)
	keys := set.t.keys
	if len(keys) == 0 {
		return nil
	}
	// Batches of MARK ... ADDITEMS; as in CPython, a full last batch is followed by an
	// empty one.
	i := 0
	for {
		s.write1(opMark)
		c := 0
		for i < len(keys) {
			err := checkKey(keys[i])
			if err == nil {
				err = s.save(keys[i])
			}
			if err != nil {
				return wrapStep(err, fmt.Sprintf("<item %d>", i))
			}
			i++
			if c++; c == batchSize {
				break
			}
		}
		s.write1(opAddItems)
		if c != batchSize {
			return nil
		}
	}
}

// saveSetReduce writes set(list) or frozenset(list) by REDUCE, with the list and the
// argument tuple as new objects, as CPython does below protocol 4.
func (s *encState) saveSetReduce(p unsafe.Pointer, class string, items []any) error {
	if err := s.save(Global{"builtins", class}); err != nil {
		return err
	}
	s.boundary() // the argument tuple
	s.boundary() // the list in it
	s.write1(opEmptyList)
	s.put()
	if err := s.appendsExact(items); err != nil {
		return err
	}
	s.write1(opTuple1)
	s.put()
	return s.finishReduce(p, opReduce)
}

func (s *encState) saveFrozenSet(fs *FrozenSet) error {
	p := unsafe.Pointer(fs)
	if s.memoized(p) {
		return nil
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer func() { s.depth-- }()
	if s.proto < 4 {
		return s.saveSetReduce(p, "frozenset", fs.t.keys)
	}
	s.write1(opMark)
	for i, it := range fs.t.keys {
		err := checkKey(it)
		if err == nil {
			err = s.save(it)
		}
		if err != nil {
			return wrapStep(err, fmt.Sprintf("<item %d>", i))
		}
	}
	if idx, ok := s.ptrs.get(p); ok {
		s.write1(opPopMark)
		s.get(idx)
		return nil
	}
	s.write1(opFrozenSet)
	s.putPtr(p)
	return nil
}

// saveObject writes an instance the way CPython's save_reduce does: the class or
// callable and its arguments, the constructing opcode, the memo entry, then list
// items, dict items, set items and the BUILD state.
func (s *encState) saveObject(o *Object) error {
	p := unsafe.Pointer(o)
	if s.memoized(p) {
		return nil
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer func() { s.depth-- }()
	args := o.Args
	if args == nil {
		args = emptyTuple
	}
	var op byte
	switch o.Construct {
	case NewObj:
		if err := s.saveCallable(o.Callable); err != nil {
			return err
		}
		if err := s.saveArgs(o, args); err != nil {
			return wrapStep(err, ".args")
		}
		op = opNewObj
	case NewObjEx:
		if s.proto < 4 {
			if err := s.saveNewObjExPartial(o, args); err != nil {
				return err
			}
			op = opReduce
			break
		}
		if err := s.saveCallable(o.Callable); err != nil {
			return err
		}
		if err := s.saveArgs(o, args); err != nil {
			return wrapStep(err, ".args")
		}
		if err := s.saveKwargs(o.Kwargs, p); err != nil {
			return err
		}
		op = opNewObjEx
	case Reduce:
		if err := s.saveCallable(o.Callable); err != nil {
			return err
		}
		if err := s.saveArgs(o, args); err != nil {
			return wrapStep(err, ".args")
		}
		op = opReduce
	case Inst:
		// INST/OBJ objects (protocols 0 and 1) are written with OBJ, which every
		// protocol's unpickler accepts and which keeps their exact meaning.
		s.write1(opMark)
		if err := s.saveCallable(o.Callable); err != nil {
			return err
		}
		for i, a := range args.Items {
			if err := s.save(a); err != nil {
				return wrapStep(err, fmt.Sprintf(".args[%d]", i))
			}
		}
		op = opObj
	default:
		return encErr("pickle: object of unknown construction %v", o.Construct)
	}
	s.write1(op)
	if idx, ok := s.ptrs.get(p); ok {
		s.write1(opPop)
		s.get(idx)
		return nil
	}
	s.putPtr(p)
	if err := s.appendsIter(o.ListItems); err != nil {
		return err
	}
	if err := s.setItemsIter(o.DictItems); err != nil {
		return err
	}
	for start := 0; start < len(o.SetItems); start += batchSize {
		end := min(start+batchSize, len(o.SetItems))
		s.write1(opMark)
		for i := start; i < end; i++ {
			if err := s.save(o.SetItems[i]); err != nil {
				return wrapStep(err, fmt.Sprintf(".setitems[%d]", i))
			}
		}
		s.write1(opAddItems)
	}
	if o.HasState {
		if err := s.save(o.State); err != nil {
			return wrapStep(err, stateStep(o.State))
		}
		s.write1(opBuild)
	}
	return nil
}

func stateStep(state any) string {
	if _, ok := state.(*Dict); ok {
		return ".__dict__"
	}
	return ".__state__"
}

func (s *encState) saveCallable(c any) error {
	if err := s.save(c); err != nil {
		return wrapStep(err, ".__class__")
	}
	return nil
}

var emptyTuple = &Tuple{}

// saveKwargs writes the keyword arguments of NEWOBJ_EX, a dict CPython builds anew
// (see saveArgs); an absent dict is written as a new empty one.
func (s *encState) saveKwargs(kw *Dict, o unsafe.Pointer) error {
	s.boundary()
	if kw == nil {
		s.write1(opEmptyDict)
		s.put()
		return nil
	}
	p := unsafe.Pointer(kw)
	if s.builtRef(p, o) {
		return nil
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer func() { s.depth-- }()
	s.write1(opEmptyDict)
	s.putBuilt(p, o)
	err := s.setItemsExact(kw.Len(), func(i int) (any, any) { return kw.t.keys[i], kw.t.vals[i] })
	return wrapStep(err, ".kwargs")
}

// argsKind names the reduce calls whose arguments hold more that CPython builds anew
// on every save than the argument tuple itself.
type argsKind uint8

const (
	plainArgs     argsKind = iota
	setArgs                // set(list) / frozenset(list): the list is new
	codecsArgs             // _codecs.encode(str, "latin1") for protocol 2 bytes: the str is new
	byteArrayArgs          // bytearray(bytes): the bytes are new
)

func argsKindOf(o *Object) argsKind {
	if o.Construct != Reduce {
		return plainArgs
	}
	switch o.Callable {
	case Global{"builtins", "set"}, Global{"builtins", "frozenset"}:
		return setArgs
	case Global{"_codecs", "encode"}:
		return codecsArgs
	case Global{"builtins", "bytearray"}:
		return byteArrayArgs
	}
	return plainArgs
}

// saveArgs writes the argument tuple of an object. CPython's __reduce__ methods
// build the argument tuple anew each time the object is saved; that shows when the
// object is saved again while it is being saved (a cycle through its arguments): the
// inner save writes new arguments, and so does the outer one after it. So a memo
// entry the arguments got as the arguments of an inner save of the same object is not
// referred to. A tuple the rest of the graph shares (memoized by a regular save, or
// as the arguments of another object) is referred to, and if it was memoized so
// while its items were written, it is recursive and unwound as CPython unwinds a
// recursive tuple. For the reduce calls CPython uses for sets, frozensets,
// bytes and bytearrays below protocols 4 and 5, the list, str or bytes argument is
// built anew as well.
func (s *encState) saveArgs(o *Object, args *Tuple) error {
	s.boundary()
	n := len(args.Items)
	if n == 0 {
		s.write1(opEmptyTuple)
		return nil
	}
	p, op := unsafe.Pointer(args), unsafe.Pointer(o)
	if s.builtRef(p, op) {
		return nil
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer func() { s.depth-- }()
	if n > 3 {
		s.write1(opMark)
	}
	kind := argsKindOf(o)
	for i, it := range args.Items {
		var err error
		switch x := it.(type) {
		case *List:
			if i == 0 && kind == setArgs && x != nil {
				err = s.saveNewList(x, op)
			} else {
				err = s.save(it)
			}
		case string:
			if i == 0 && kind == codecsArgs {
				s.boundary()
				err = s.saveTempStr(x)
			} else {
				err = s.save(it)
			}
		case []byte:
			if i == 0 && kind == byteArrayArgs {
				s.boundary()
				err = s.saveBytes(x, true)
			} else {
				err = s.save(it)
			}
		default:
			err = s.save(it)
		}
		if err != nil {
			return wrapStep(err, fmt.Sprintf("[%d]", i))
		}
	}
	if idx, ok := s.ptrs.get(p); ok {
		if builder, built := s.built[p]; !built || builder != op {
			if n > 3 {
				s.write1(opPopMark)
			} else {
				for range n {
					s.write1(opPop)
				}
			}
			s.get(idx)
			return nil
		}
	}
	if n > 3 {
		s.write1(opTuple)
	} else {
		s.write1(opTuple1 + byte(n-1))
	}
	s.putBuilt(p, op)
	return nil
}

// saveNewList writes a list CPython builds anew on each save (see saveArgs).
func (s *encState) saveNewList(l *List, o unsafe.Pointer) error {
	s.boundary()
	p := unsafe.Pointer(l)
	if s.builtRef(p, o) {
		return nil
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer func() { s.depth-- }()
	s.write1(opEmptyList)
	s.putBuilt(p, o)
	return s.appendsExact(l.Items)
}

// saveNewObjExPartial writes cls.__new__(cls, *args, **kwargs) for protocols 2 and 3,
// which lack NEWOBJ_EX, as CPython does: functools.partial(cls.__new__, cls, *args,
// **kwargs)() by REDUCE. CPython names the __new__ of the class that defines it (e.g.
// getattr(object, "__new__")); the encoder does not know that class and names
// getattr(cls, "__new__"), which is the same function.
func (s *encState) saveNewObjExPartial(o *Object, args *Tuple) error {
	// partial(fn) ...
	if err := s.save(Global{"functools", "partial"}); err != nil {
		return err
	}
	s.boundary() // (fn,)
	s.boundary() // fn = getattr(cls, "__new__")
	if err := s.save(Global{"builtins", "getattr"}); err != nil {
		return err
	}
	s.boundary() // (cls, "__new__")
	if err := s.saveCallable(o.Callable); err != nil {
		return err
	}
	s.boundary()
	if err := s.saveStr("__new__", false); err != nil {
		return err
	}
	s.write1(opTuple2)
	s.put()
	s.write1(opReduce)
	fn := s.put()
	s.write1(opTuple1)
	s.put()
	s.write1(opReduce)
	s.put() // the partial object
	// ... with state (fn, (cls, *args), kwargs, None) by BUILD ...
	s.boundary()
	s.write1(opMark)
	s.boundary()
	s.get(fn)
	s.boundary()
	n := len(args.Items) + 1
	if n > 3 {
		s.write1(opMark)
	}
	if err := s.saveCallable(o.Callable); err != nil {
		return err
	}
	for i, a := range args.Items {
		if err := s.save(a); err != nil {
			return wrapStep(err, fmt.Sprintf(".args[%d]", i))
		}
	}
	if n > 3 {
		s.write1(opTuple)
	} else {
		s.write1(opTuple1 + byte(n-1))
	}
	s.put()
	// The partial holds a copy of the keyword arguments.
	s.boundary()
	s.write1(opEmptyDict)
	s.put()
	if o.Kwargs != nil {
		kw := o.Kwargs
		if err := s.setItemsExact(kw.Len(), func(i int) (any, any) { return kw.t.keys[i], kw.t.vals[i] }); err != nil {
			return wrapStep(err, ".kwargs")
		}
	}
	s.boundary()
	s.write1(opNone)
	s.write1(opTuple)
	s.put()
	s.write1(opBuild)
	// ... called with no arguments.
	s.boundary()
	s.write1(opEmptyTuple)
	return nil
}

// saveGlobal writes a reference to a class or function: STACK_GLOBAL from protocol 4
// on, GLOBAL (with Python 2 names at protocol 2, as fix_imports does) below it, and
// getattr(parent, name) below protocol 4 for a nested qualified name.
func (s *encState) saveGlobal(g Global) error {
	if idx, ok := s.globals[g]; ok {
		s.get(idx)
		return nil
	}
	if g.Module == "" || g.Name == "" {
		return encErr("pickle: global %q has an empty module or name", g.String())
	}
	if s.proto >= 4 {
		s.boundary()
		if g.Module == "builtins" && isBuiltinFunction(g.Name) {
			// The __module__ of a built-in function is the builtins module's own name
			// object, one str shared by all of them but distinct from the "builtins"
			// of the built-in types.
			if s.funcModule >= 0 {
				s.get(s.funcModule)
			} else {
				if err := s.saveStr(g.Module, true); err != nil {
					return err
				}
				s.funcModule = s.memoLen - 1
			}
		} else if err := s.saveStr(g.Module, false); err != nil {
			return err
		}
		s.boundary()
		if err := s.saveStr(g.Name, freshGlobalName(g)); err != nil {
			return err
		}
		s.write1(opStackGlobal)
	} else if dot := strings.LastIndexByte(g.Name, '.'); dot >= 0 {
		if err := s.save(Global{"builtins", "getattr"}); err != nil {
			return err
		}
		s.boundary() // (parent, name)
		if err := s.save(Global{g.Module, g.Name[:dot]}); err != nil {
			return err
		}
		s.boundary()
		if err := s.saveTempStr(g.Name[dot+1:]); err != nil {
			return err
		}
		s.write1(opTuple2)
		s.put()
		s.write1(opReduce)
	} else {
		module, name := g.Module, g.Name
		if s.proto < 3 {
			module, name = fixImports(module, name)
			if !isASCII(module) || !isASCII(name) {
				return encErr("pickle: cannot write global %s at protocol %d: the name is not ASCII", g, s.proto)
			}
		} else if !utf8.ValidString(module) || !utf8.ValidString(name) {
			return encErr("pickle: global %q is not UTF-8", g.String())
		}
		if strings.ContainsRune(module, '\n') || strings.ContainsRune(name, '\n') {
			return encErr("pickle: global %q contains a newline", g.String())
		}
		s.open()
		b := s.room(len(module) + len(name) + 3)
		b[0] = opGlobal
		copy(b[1:], module)
		b[1+len(module)] = '\n'
		copy(b[2+len(module):], name)
		b[len(b)-1] = '\n'
	}
	s.globals[g] = s.put()
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
