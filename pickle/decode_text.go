package pickle

import (
	"bytes"
	"errors"
	"math"
	"math/big"
	"strconv"
	"unicode/utf8"
)

// The text arguments of protocols 0 and 1, parsed exactly as CPython's C unpickler
// parses them: INT with C's strtol (base 0) and a fallback to Python's int(), LONG and
// the memo indexes of PUT/GET with int(), FLOAT with Python's float parser, STRING with
// bytes-literal escapes, UNICODE with raw-unicode-escape. The C unpickler copies each
// line into a NUL-terminated buffer, so the number parsers stop at the first NUL byte.

// cString returns b up to its first NUL byte.
func cString(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

// isSpace is C's isspace and Python's Py_ISSPACE.
func isSpace(c byte) bool {
	return c == ' ' || (c >= '\t' && c <= '\r')
}

func digitValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	}
	return 99
}

// strtol0 is C's strtol(s, &end, 0) for a 64-bit long: it returns the value, the index
// where parsing stopped (0 when there are no digits) and whether the value overflowed.
func strtol0(s []byte) (int64, int, bool) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	base := uint64(10)
	if i < len(s) && s[i] == '0' {
		base = 8
		if i+2 < len(s) && (s[i+1]|0x20) == 'x' && digitValue(s[i+2]) < 16 {
			base = 16
			i += 2
		}
	}
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	var x uint64
	start, overflow := i, false
	for ; i < len(s); i++ {
		d := uint64(digitValue(s[i]))
		if d >= base {
			break
		}
		if x > (limit-d)/base {
			overflow = true
		} else {
			x = x*base + d
		}
	}
	if i == start {
		return 0, 0, false
	}
	if overflow {
		return 0, i, true
	}
	if neg {
		return int64(-x), i, false // -x wraps to MinInt64 for x = 2**63
	}
	return int64(x), i, false
}

var (
	errIntSyntax = errors.New("invalid literal for int()")
	errIntDigits = errors.New("exceeds the limit (4300 digits) for integer string conversion")
)

// maxStrDigits is CPython's default sys.int_info.default_max_str_digits: int() refuses
// longer decimal text (it would take quadratic time).
const maxStrDigits = 4300

// pyInt is Python's int(s, base) — PyLong_FromString — for base 0 (a Python literal:
// 0x/0o/0b prefixes, underscores between digits, no leading zeros) or base 10, with
// surrounding whitespace allowed. It returns an int64 or, when the value does not fit,
// a *big.Int.
func pyInt(s []byte, base int) (any, error) {
	i, n := 0, len(s)
	for i < n && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < n && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	errorIfNonzero := false
	if base == 0 {
		switch {
		case i >= n || s[i] != '0':
			base = 10
		case i+1 < n && (s[i+1]|0x20) == 'x':
			base = 16
		case i+1 < n && (s[i+1]|0x20) == 'o':
			base = 8
		case i+1 < n && (s[i+1]|0x20) == 'b':
			base = 2
		default:
			// An old-style octal literal like 0777 is invalid, but zeros are zero.
			errorIfNonzero, base = true, 10
		}
	}
	if i+1 < n && s[i] == '0' {
		p := s[i+1] | 0x20
		if (base == 16 && p == 'x') || (base == 8 && p == 'o') || (base == 2 && p == 'b') {
			i += 2
			if i < n && s[i] == '_' {
				i++ // one underscore may follow the prefix
			}
		}
	}
	if i < n && s[i] == '_' {
		return nil, errIntSyntax
	}
	start, digits, underscores := i, 0, false
	var prev byte
	for ; i < n; i++ {
		c := s[i]
		if c == '_' {
			if prev == '_' {
				return nil, errIntSyntax
			}
			underscores = true
		} else if digitValue(c) < base {
			digits++
		} else {
			break
		}
		prev = c
	}
	if digits == 0 || prev == '_' {
		return nil, errIntSyntax
	}
	text := s[start:i]
	for i < n && isSpace(s[i]) {
		i++
	}
	if i != n {
		return nil, errIntSyntax
	}
	if base == 10 && digits > maxStrDigits {
		return nil, errIntDigits
	}
	if underscores {
		text = bytes.ReplaceAll(text, []byte{'_'}, nil)
	}
	v := parseDigits(text, base)
	if errorIfNonzero && v.Sign() != 0 {
		return nil, errIntSyntax
	}
	if neg {
		v.Neg(v)
	}
	return normInt(v), nil
}

// parseDigits converts validated digits; power-of-two bases in linear time.
func parseDigits(text []byte, base int) *big.Int {
	if len(text) <= 15 || (base == 10 && len(text) <= 18) {
		x, _ := strconv.ParseUint(string(text), base, 64)
		return new(big.Int).SetUint64(x)
	}
	if base == 10 {
		v, _ := new(big.Int).SetString(string(text), 10)
		return v
	}
	bits := uint(1)
	switch base {
	case 16:
		bits = 4
	case 8:
		bits = 3
	}
	// Fill a big-endian byte slice from the least significant digit.
	out := make([]byte, (uint(len(text))*bits+7)/8)
	var acc uint
	var nacc uint
	j := len(out) - 1
	for k := len(text) - 1; k >= 0; k-- {
		acc |= uint(digitValue(text[k])) << nacc
		nacc += bits
		for nacc >= 8 {
			out[j] = byte(acc)
			j--
			acc >>= 8
			nacc -= 8
		}
	}
	if nacc > 0 {
		out[j] = byte(acc)
	}
	return new(big.Int).SetBytes(out)
}

// normInt returns x as an int64 when it fits, as the value model wants.
func normInt(x *big.Int) any {
	if x.IsInt64() {
		return x.Int64()
	}
	return x
}

func (u *unpickler) intError(err error) error {
	if errors.Is(err, errIntDigits) {
		return u.fail(ErrLimit, "%v", err)
	}
	return u.fail(ErrSyntax, "could not convert string to int")
}

// loadIntText is INT: C's strtol first, and "00"/"01" (exactly) are False/True.
func (u *unpickler) loadIntText() error {
	line, err := u.readArgLine()
	if err != nil {
		return err
	}
	s := cString(line)
	x, end, overflow := strtol0(s)
	if !overflow && (end == len(s) || s[end] == '\n') {
		if len(line) == 3 && (x == 0 || x == 1) {
			return u.pushScalar(x == 1)
		}
		return u.pushScalar(x)
	}
	v, err := pyInt(s, 0)
	if err != nil {
		return u.intError(err)
	}
	return u.pushScalar(v)
}

// loadLongText is LONG: int(text, 0) after dropping a trailing "L".
func (u *unpickler) loadLongText() error {
	line, err := u.readArgLine()
	if err != nil {
		return err
	}
	s := line
	if s[len(s)-2] == 'L' {
		s = s[:len(s)-2]
	}
	v, err := pyInt(cString(s), 0)
	if err != nil {
		return u.intError(err)
	}
	return u.pushScalar(v)
}

// memoIndexText parses the decimal index of PUT and GET.
func (u *unpickler) memoIndexText(line []byte) (int64, error) {
	v, err := pyInt(cString(line), 10)
	if err != nil {
		return 0, u.intError(err)
	}
	idx, ok := v.(int64)
	if !ok {
		return 0, u.fail(ErrMemo, "memo index too large")
	}
	return idx, nil
}

func (u *unpickler) loadPutText() error {
	line, err := u.readArgLine()
	if err != nil {
		return err
	}
	if _, err := u.topRef(); err != nil {
		return err // CPython checks the stack before it parses the index
	}
	idx, err := u.memoIndexText(line)
	if err != nil {
		return err
	}
	if idx < 0 {
		return u.fail(ErrMemo, "negative PUT argument")
	}
	return u.put(idx)
}

func (u *unpickler) loadGetText() error {
	line, err := u.readArgLine()
	if err != nil {
		return err
	}
	idx, err := u.memoIndexText(line)
	if err != nil {
		return err
	}
	return u.memoGet(idx)
}

// loadFloatText is FLOAT: Python's float syntax (PyOS_string_to_double: no
// whitespace, no underscores, no hex, inf/infinity/nan in any case), then the newline
// or the end of the C string.
func (u *unpickler) loadFloatText() error {
	line, err := u.readArgLine()
	if err != nil {
		return err
	}
	s := cString(line)
	f, end, ok := parsePyFloat(s)
	if !ok {
		return u.fail(ErrSyntax, "could not convert string to float")
	}
	if end != len(s) && s[end] != '\n' {
		return u.fail(ErrSyntax, "could not convert string to float")
	}
	if math.IsInf(f, 0) && !isInfText(s[:end]) {
		return u.fail(ErrSyntax, "value too large to convert to float")
	}
	return u.pushScalar(f)
}

func isInfText(s []byte) bool {
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	return len(s) > 0 && (s[0]|0x20) == 'i'
}

// parsePyFloat parses the longest prefix of s that Python's float parser accepts and
// returns its value and length; ok is false when no prefix is a number.
func parsePyFloat(s []byte) (float64, int, bool) {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		j := i + 1
		frac := 0
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
			frac++
		}
		if digits > 0 || frac > 0 {
			i, digits = j, digits+frac
		}
	}
	if digits == 0 {
		return parseInfNaN(s)
	}
	if i < len(s) && (s[i]|0x20) == 'e' {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		k := j
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		if k > j {
			i = k
		}
	}
	f, err := strconv.ParseFloat(string(s[:i]), 64)
	if err != nil && !math.IsInf(f, 0) {
		return 0, 0, false
	}
	return f, i, true
}

func parseInfNaN(s []byte) (float64, int, bool) {
	i, neg := 0, false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	hasPrefix := func(word string) bool {
		if len(s)-i < len(word) {
			return false
		}
		for k := 0; k < len(word); k++ {
			if s[i+k]|0x20 != word[k] {
				return false
			}
		}
		return true
	}
	switch {
	case hasPrefix("infinity"):
		return math.Inf(signOf(neg)), i + 8, true
	case hasPrefix("inf"):
		return math.Inf(signOf(neg)), i + 3, true
	case hasPrefix("nan"):
		// CPython's NaN: the quiet NaN with the sign asked for.
		bits := uint64(0x7ff8000000000000)
		if neg {
			bits |= 1 << 63
		}
		return math.Float64frombits(bits), i + 3, true
	}
	return 0, 0, false
}

func signOf(neg bool) int {
	if neg {
		return -1
	}
	return 1
}

// loadLongBinary is LONG1 and LONG4: little-endian two's complement.
func (u *unpickler) loadLongBinary() error {
	var n uint64
	var err error
	if u.op == opLong1 {
		n, err = u.readUint(1)
	} else {
		n, err = u.readUint(4)
		if err == nil && int32(uint32(n)) < 0 {
			return u.fail(ErrSyntax, "LONG pickle has negative byte count")
		}
	}
	if err != nil {
		return err
	}
	b, err := u.read(n)
	if err != nil {
		return err
	}
	return u.pushScalar(decodeLong(b))
}

func decodeLong(b []byte) any {
	if len(b) == 0 {
		return int64(0)
	}
	if len(b) <= 8 {
		var x uint64
		for i := len(b) - 1; i >= 0; i-- {
			x = x<<8 | uint64(b[i])
		}
		shift := 64 - 8*uint(len(b))
		return int64(x<<shift) >> shift // sign-extend
	}
	be := make([]byte, len(b))
	for i, c := range b {
		be[len(b)-1-i] = c
	}
	x := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		x.Sub(x, new(big.Int).Lsh(big.NewInt(1), 8*uint(len(b))))
	}
	return normInt(x)
}

// Strings.

// strictUTF8 decodes UTF-8 without surrogates, as GLOBAL's module and name.
func (u *unpickler) strictUTF8(b []byte) (string, error) {
	if i := invalidUTF8(b, false); i >= 0 {
		return "", u.fail(ErrSyntax, "'utf-8' codec can't decode byte 0x%02x in position %d", b[i], i)
	}
	return string(b), nil
}

// invalidUTF8 returns the offset of the first byte that is not valid UTF-8 (allowing
// encoded surrogates when surrogates is set), or -1.
func invalidUTF8(b []byte, surrogates bool) int {
	if utf8.Valid(b) {
		return -1
	}
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			if surrogates && isSurrogateSeq(b[i:]) {
				i += 3
				continue
			}
			return i
		}
		i += size
	}
	return -1
}

func isSurrogateSeq(b []byte) bool {
	return len(b) >= 3 && b[0] == 0xed && b[1] >= 0xa0 && b[1] <= 0xbf && b[2] >= 0x80 && b[2] <= 0xbf
}

func (u *unpickler) asciiString(b []byte) (string, error) {
	for i, c := range b {
		if c >= utf8.RuneSelf {
			return "", u.fail(ErrSyntax, "'ascii' codec can't decode byte 0x%02x in position %d", c, i)
		}
	}
	return string(b), nil
}

// appendCodePoint appends r as UTF-8, encoding surrogates as their three bytes
// ("surrogatepass") where Go would write U+FFFD.
func appendCodePoint(b []byte, r rune) []byte {
	if r >= 0xd800 && r <= 0xdfff {
		return append(b, 0xe0|byte(r>>12), 0x80|byte(r>>6)&0x3f, 0x80|byte(r)&0x3f)
	}
	return utf8.AppendRune(b, r)
}

// pushPy2Str pushes a Python 2 str (STRING, BINSTRING, SHORT_BINSTRING) decoded with
// the Decoder's Encoding.
func (u *unpickler) pushPy2Str(b []byte) error {
	switch u.enc {
	case encBytes:
		return u.pushScalar(append([]byte{}, b...))
	case encLatin1:
		out := make([]byte, 0, len(b)+len(b)/4)
		for _, c := range b {
			out = utf8.AppendRune(out, rune(c))
		}
		return u.pushScalar(string(out))
	case encUTF8:
		s, err := u.strictUTF8(b)
		if err != nil {
			return err
		}
		return u.pushScalar(s)
	}
	s, err := u.asciiString(b)
	if err != nil {
		return err
	}
	return u.pushScalar(s)
}

// loadStringText is STRING: a quoted Python 2 str repr with bytes-literal escapes
// (PyBytes_DecodeEscape).
func (u *unpickler) loadStringText() error {
	line, err := u.readLine()
	if err != nil {
		return err
	}
	s := line[:len(line)-1]
	if len(s) < 2 || s[0] != s[len(s)-1] || (s[0] != '\'' && s[0] != '"') {
		return u.fail(ErrSyntax, "the STRING opcode argument must be quoted")
	}
	s = s[1 : len(s)-1]
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		i++
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i >= len(s) {
			return u.fail(ErrSyntax, "trailing \\ in string")
		}
		c = s[i]
		i++
		switch c {
		case '\n':
		case '\\', '\'', '"':
			out = append(out, c)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 't':
			out = append(out, '\t')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 'v':
			out = append(out, '\v')
		case 'a':
			out = append(out, 7)
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for k := 0; k < 2 && i < len(s) && s[i] >= '0' && s[i] <= '7'; k++ {
				v = v<<3 + int(s[i]-'0')
				i++
			}
			out = append(out, byte(v)) // CPython keeps the low 8 bits of \400..\777
		case 'x':
			if i+1 < len(s) && digitValue(s[i]) < 16 && digitValue(s[i+1]) < 16 {
				out = append(out, byte(digitValue(s[i])<<4|digitValue(s[i+1])))
				i += 2
				break
			}
			return u.fail(ErrSyntax, "invalid \\x escape at position %d", i-2)
		default:
			// Not an escape: the backslash stays and the character is read again.
			out = append(out, '\\')
			i--
		}
	}
	return u.pushPy2Str(out)
}

// loadUnicodeText is UNICODE: raw-unicode-escape, where only \uXXXX and \UXXXXXXXX
// are escapes and every other byte is the code point of the same value (Latin-1).
func (u *unpickler) loadUnicodeText() error {
	line, err := u.readLine()
	if err != nil {
		return err
	}
	s := line[:len(line)-1]
	out := make([]byte, 0, len(s)+len(s)/4)
	for i := 0; i < len(s); {
		c := s[i]
		i++
		if c != '\\' || i >= len(s) {
			out = utf8.AppendRune(out, rune(c))
			continue
		}
		n := 0
		switch s[i] {
		case 'u':
			n = 4
		case 'U':
			n = 8
		default:
			// A backslash and the next byte, both literal: "\\\\u0041" is not an escape.
			out = utf8.AppendRune(out, '\\')
			out = utf8.AppendRune(out, rune(s[i]))
			i++
			continue
		}
		i++
		var r rune
		for k := 0; k < n; k++ {
			if i >= len(s) || digitValue(s[i]) >= 16 {
				return u.fail(ErrSyntax, "truncated \\%c escape", "uU"[n/8])
			}
			r = r<<4 | rune(digitValue(s[i]))
			i++
		}
		if r > utf8.MaxRune || r < 0 {
			return u.fail(ErrSyntax, "\\Uxxxxxxxx out of range")
		}
		out = appendCodePoint(out, r)
	}
	return u.pushScalar(string(out))
}
