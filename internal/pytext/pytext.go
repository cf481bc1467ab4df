// Package pytext writes values of the pickle model as Python prints them: str(v) and
// repr(v), floats with repr's shortest round-trip form. The demo pages print session
// attributes this way, as session3's test application does with f-strings and
// %-formatting, and the sessions admin command names attributes with it.
package pytext

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/qxbridge/qxbridge/pickle"
)

// Str returns str(v) for a value of the pickle model.
func Str(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return Repr(v)
}

// Repr returns repr(v). Objects are shown as <module.Class object>, without the
// memory address Python adds; sets in the order Go holds them.
func Repr(v any) string {
	var b strings.Builder
	writeRepr(&b, v, 0, false)
	return b.String()
}

// ExactRepr returns repr(v) exactly as CPython 3.11 writes it, or false when v holds
// a value whose repr Go does not rebuild exactly: objects (their default repr has a
// memory address), sets (their order follows string hashes, randomized per process),
// classes, a str that is not valid UTF-8 (a lone surrogate), ints longer than
// CPython converts to text (4300 digits), and nesting deeper than 32 (cycles
// included). Characters assigned in a Unicode edition later than CPython 3.11's (14.0)
// are printable in Go's tables but escaped by CPython.
func ExactRepr(v any) (string, bool) {
	var b strings.Builder
	ok := writeRepr(&b, v, 0, true)
	return b.String(), ok
}

const maxReprDepth = 32

// maxIntDigits is CPython 3.11's default sys.get_int_max_str_digits(): repr of an
// int with more digits raises ValueError.
const maxIntDigits = 4300

// writeRepr writes repr(v); exact refuses (returns false) what ExactRepr refuses,
// where Repr writes an approximation.
func writeRepr(b *strings.Builder, v any, depth int, exact bool) bool {
	if depth > maxReprDepth {
		if exact {
			return false
		}
		b.WriteString("...")
		return true
	}
	seq := func(open, close string, items []any) bool {
		b.WriteString(open)
		for i, x := range items {
			if i > 0 {
				b.WriteString(", ")
			}
			if !writeRepr(b, x, depth+1, exact) {
				return false
			}
		}
		b.WriteString(close)
		return true
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("None")
	case bool:
		if x {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case *big.Int:
		t := x.String()
		if exact && len(strings.TrimPrefix(t, "-")) > maxIntDigits {
			return false
		}
		b.WriteString(t)
	case float64:
		b.WriteString(FloatRepr(x))
	case string:
		return writeStrRepr(b, x, exact)
	case []byte:
		b.WriteString(bytesRepr(x))
	case *pickle.ByteArray:
		b.WriteString("bytearray(" + bytesRepr(x.Data) + ")")
	case *pickle.List:
		return seq("[", "]", x.Items)
	case *pickle.Tuple:
		if len(x.Items) == 1 {
			return seq("(", ",)", x.Items)
		}
		return seq("(", ")", x.Items)
	case *pickle.Dict:
		b.WriteString("{")
		i := 0
		for k, val := range x.All() {
			if i > 0 {
				b.WriteString(", ")
			}
			i++
			if !writeRepr(b, k, depth+1, exact) {
				return false
			}
			b.WriteString(": ")
			if !writeRepr(b, val, depth+1, exact) {
				return false
			}
		}
		b.WriteString("}")
	case *pickle.Set:
		if exact {
			return false
		}
		items := x.Items()
		if len(items) == 0 {
			b.WriteString("set()")
		} else {
			seq("{", "}", items)
		}
	case *pickle.FrozenSet:
		if exact {
			return false
		}
		items := x.Items()
		if len(items) == 0 {
			b.WriteString("frozenset()")
		} else {
			seq("frozenset({", "})", items)
		}
	case pickle.Global:
		if exact {
			return false
		}
		b.WriteString("<class '" + x.String() + "'>")
	case *pickle.Object:
		if exact {
			return false
		}
		b.WriteString("<" + pickle.TypeName(x) + " object>")
	default:
		if exact {
			return false
		}
		fmt.Fprintf(b, "<%T>", v)
	}
	return true
}

// FloatRepr returns repr(f) as CPython writes it: the shortest digits that read back
// as f, in fixed notation when the decimal point falls within 16 digits of the first
// digit and 4 places after it, else in exponent notation with a signed exponent of
// at least two digits; always with a ".0" when integral.
func FloatRepr(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // [-]d[.ddd]e±XX
	sign := ""
	if s[0] == '-' {
		sign, s = "-", s[1:]
	}
	mant, expText, _ := strings.Cut(s, "e")
	digits := strings.Replace(mant, ".", "", 1)
	exp, _ := strconv.Atoi(expText)
	decpt := exp + 1 // the value is 0.DIGITS × 10^decpt
	if decpt <= -4 || decpt > 16 {
		m := digits[:1]
		if len(digits) > 1 {
			m += "." + digits[1:]
		}
		es := "+"
		if exp < 0 {
			es, exp = "-", -exp
		}
		return fmt.Sprintf("%s%se%s%02d", sign, m, es, exp)
	}
	switch {
	case decpt <= 0:
		return sign + "0." + strings.Repeat("0", -decpt) + digits
	case decpt >= len(digits):
		return sign + digits + strings.Repeat("0", decpt-len(digits)) + ".0"
	default:
		return sign + digits[:decpt] + "." + digits[decpt:]
	}
}

// StrRepr returns repr(s) for a str as CPython's unicode_repr writes it: single
// quotes unless the text has a single quote and no double quote; backslash escapes
// for the quote, backslash, \t \n \r; \xXX, \uXXXX or \UXXXXXXXX for other
// characters that str.isprintable() rejects (control, format, separator other than
// the space, private use, unassigned). Bytes that are not UTF-8 are shown as \xXX.
func StrRepr(s string) string {
	var b strings.Builder
	writeStrRepr(&b, s, false)
	return b.String()
}

// writeStrRepr writes StrRepr(s); exact refuses a string that is not valid UTF-8.
func writeStrRepr(b *strings.Builder, s string, exact bool) bool {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	b.WriteByte(q)
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && w <= 1 {
			if exact {
				return false
			}
			fmt.Fprintf(b, `\x%02x`, s[i])
			i++
			continue
		}
		i += w
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(b, `\x%02x`, r)
		case r < 0x7f || unicode.IsPrint(r):
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(b, `\x%02x`, r)
		case r < 0x10000:
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			fmt.Fprintf(b, `\U%08x`, r)
		}
	}
	b.WriteByte(q)
	return true
}

// bytesRepr returns repr(b) for bytes.
func bytesRepr(p []byte) string {
	q := byte('\'')
	if strings.IndexByte(string(p), '\'') >= 0 && strings.IndexByte(string(p), '"') < 0 {
		q = '"'
	}
	var b strings.Builder
	b.WriteString("b")
	b.WriteByte(q)
	for _, c := range p {
		switch {
		case c == q || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte(q)
	return b.String()
}
