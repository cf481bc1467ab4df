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
// memory address Python adds.
func Repr(v any) string {
	var b strings.Builder
	writeRepr(&b, v, 0)
	return b.String()
}

const maxReprDepth = 32

func writeRepr(b *strings.Builder, v any, depth int) {
	if depth > maxReprDepth {
		b.WriteString("...")
		return
	}
	seq := func(open, close string, items []any) {
		b.WriteString(open)
		for i, x := range items {
			if i > 0 {
				b.WriteString(", ")
			}
			writeRepr(b, x, depth+1)
		}
		b.WriteString(close)
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
		b.WriteString(x.String())
	case float64:
		b.WriteString(FloatRepr(x))
	case string:
		b.WriteString(StrRepr(x))
	case []byte:
		b.WriteString(bytesRepr(x))
	case *pickle.ByteArray:
		b.WriteString("bytearray(" + bytesRepr(x.Data) + ")")
	case *pickle.List:
		seq("[", "]", x.Items)
	case *pickle.Tuple:
		if len(x.Items) == 1 {
			seq("(", ",)", x.Items)
		} else {
			seq("(", ")", x.Items)
		}
	case *pickle.Dict:
		b.WriteString("{")
		i := 0
		for k, val := range x.All() {
			if i > 0 {
				b.WriteString(", ")
			}
			i++
			writeRepr(b, k, depth+1)
			b.WriteString(": ")
			writeRepr(b, val, depth+1)
		}
		b.WriteString("}")
	case *pickle.Set:
		items := x.Items()
		if len(items) == 0 {
			b.WriteString("set()")
		} else {
			seq("{", "}", items)
		}
	case *pickle.FrozenSet:
		items := x.Items()
		if len(items) == 0 {
			b.WriteString("frozenset()")
		} else {
			seq("frozenset({", "})", items)
		}
	case pickle.Global:
		b.WriteString("<class '" + x.String() + "'>")
	case *pickle.Object:
		b.WriteString("<" + pickle.TypeName(x) + " object>")
	default:
		fmt.Fprintf(b, "<%T>", v)
	}
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

// StrRepr returns repr(s) for a str: single quotes unless the text has a single
// quote and no double quote, backslash escapes for the quote, backslash, \t \n \r and
// other non-printable characters.
func StrRepr(s string) string {
	q := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for i, w := 0, 0; i < len(s); i += w {
		r, width := utf8.DecodeRuneInString(s[i:])
		w = width
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
		case r == utf8.RuneError && width == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && r < 0xa0:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
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
