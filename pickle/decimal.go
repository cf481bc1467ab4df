package pickle

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Decimal is a Python decimal.Decimal as its text: what str() gives for it in Python
// ("9.99", "1.10", "-0", "1E+3", "NaN", "-Infinity"). CPython pickles a Decimal as a
// call decimal.Decimal(str(d)), so the text is the value exactly, every digit and the
// exponent included: 1.10 and 1.1 are different Decimals. Use ParseDecimal to check a
// text and put it in that form, NewDecimal to make one from an integer coefficient
// and an exponent, and Rat to compute with one.
type Decimal string

// String returns the text.
func (d Decimal) String() string { return string(d) }

// ParseDecimal reads a number as Python's decimal.Decimal(s) does (surrounding
// whitespace, a sign, decimal digits of any script, a fraction and an exponent;
// Infinity, Inf, NaN and sNaN with a payload, in any case; underscores anywhere are
// ignored) and returns it
// in the form str() gives, which is how CPython pickles it: ParseDecimal("007.50")
// is "7.50", ParseDecimal("1e3") is "1E+3".
func ParseDecimal(s string) (Decimal, error) {
	t, ok := asciiNumber(s)
	if !ok {
		return "", fmt.Errorf("pickle: %q is not a decimal number", s)
	}
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg = t[0] == '-'
		t = t[1:]
	}
	sign := ""
	if neg {
		sign = "-"
	}
	lower := strings.ToLower(t)
	switch {
	case lower == "inf" || lower == "infinity":
		return Decimal(sign + "Infinity"), nil
	case strings.HasPrefix(lower, "nan") || strings.HasPrefix(lower, "snan"):
		name, payload := "NaN", t[3:]
		if lower[0] == 's' {
			name, payload = "sNaN", t[4:]
		}
		digits, ok := decimalDigits(payload, true)
		if !ok {
			break
		}
		digits = strings.TrimLeft(digits, "0")
		return Decimal(sign + name + digits), nil
	default:
		mant, exp, hasExp := t, "", false
		if i := strings.IndexAny(t, "eE"); i >= 0 {
			mant, exp, hasExp = t[:i], t[i+1:], true
		}
		intPart, frac, _ := strings.Cut(mant, ".")
		iDigits, ok1 := decimalDigits(intPart, true)
		fDigits, ok2 := decimalDigits(frac, true)
		if !ok1 || !ok2 || iDigits+fDigits == "" {
			break
		}
		var e int64
		if hasExp {
			es := exp
			if es != "" && (es[0] == '+' || es[0] == '-') {
				es = es[1:]
			}
			ed, ok := decimalDigits(es, false)
			ed = strings.TrimLeft(ed, "0")
			if !ok || len(ed) > 18 {
				if ok {
					return "", fmt.Errorf("pickle: decimal %q: exponent out of range", s)
				}
				break
			}
			e, _ = strconv.ParseInt(ed, 10, 64)
			if exp[0] == '-' {
				e = -e
			}
		}
		return Decimal(sign + sciString(iDigits+fDigits, e-int64(len(fDigits)))), nil
	}
	return "", fmt.Errorf("pickle: %q is not a decimal number", s)
}

// asciiNumber prepares number text as CPython's decimal module does before parsing
// it: surrounding whitespace removed, underscores dropped, decimal digits of other
// scripts replaced by ASCII ones; ok is false for other non-ASCII characters.
func asciiNumber(s string) (string, bool) {
	s = strings.TrimSpace(s)
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '_':
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		case unicode.Is(unicode.Nd, r):
			// Digits come in runs of ten starting at zero.
			start := r
			for unicode.Is(unicode.Nd, start-1) {
				start--
			}
			b.WriteByte(byte('0' + (r-start)%10))
		default:
			return "", false
		}
	}
	return b.String(), true
}

// decimalDigits returns s when it is ASCII digits (or empty, when empty is true).
func decimalDigits(s string, empty bool) (string, bool) {
	if s == "" {
		return "", empty
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return "", false
		}
	}
	return s, true
}

// sciString is the General Decimal Arithmetic to-scientific-string of a coefficient
// (decimal digits) and an exponent, as Python's Decimal.__str__ writes it.
func sciString(coef string, exp int64) string {
	coef = strings.TrimLeft(coef, "0")
	if coef == "" {
		coef = "0"
	}
	n := int64(len(coef))
	left := exp + n // digits left of the point
	dot := int64(1)
	if exp <= 0 && left > -6 {
		dot = left
	}
	var b strings.Builder
	switch {
	case dot <= 0:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", int(-dot)))
		b.WriteString(coef)
	case dot >= n:
		b.WriteString(coef)
		b.WriteString(strings.Repeat("0", int(dot-n)))
	default:
		b.WriteString(coef[:dot])
		b.WriteByte('.')
		b.WriteString(coef[dot:])
	}
	if left != dot {
		fmt.Fprintf(&b, "E%+d", left-dot)
	}
	return b.String()
}

// NewDecimal returns the Decimal coef × 10^exp, keeping the exponent:
// NewDecimal(big.NewInt(110), -2) is "1.10".
func NewDecimal(coef *big.Int, exp int) Decimal {
	sign := ""
	if coef.Sign() < 0 {
		sign = "-"
	}
	return Decimal(sign + sciString(new(big.Int).Abs(coef).String(), int64(exp)))
}

// Rat returns the value of a finite Decimal as a fraction; ok is false for NaN,
// infinities and text that is not a decimal number. Rat("-0") is 0.
func (d Decimal) Rat() (r *big.Rat, ok bool) {
	c, err := ParseDecimal(string(d))
	if err != nil || strings.ContainsAny(string(c), "IN") {
		return nil, false
	}
	s := string(c)
	mant, exp, _ := strings.Cut(s, "E")
	e := 0
	if exp != "" {
		n, err := strconv.Atoi(exp)
		if err != nil || n > 1e6 || n < -1e6 {
			return nil, false // beyond any exponent a fraction can reasonably hold
		}
		e = n
	}
	r, ok = new(big.Rat).SetString(mant)
	if !ok {
		return nil, false
	}
	p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(max(e, -e))), nil)
	if e >= 0 {
		return r.Mul(r, new(big.Rat).SetInt(p)), true
	}
	return r.Quo(r, new(big.Rat).SetInt(p)), true
}

var decimalClass = Global{"decimal", "Decimal"}

// decimalOf returns the text of a pickled decimal.Decimal: decimal.Decimal(text).
func decimalOf(v any) (string, bool) {
	o, ok := v.(*Object)
	if !ok || o.Construct != Reduce || o.Callable != decimalClass || o.Args == nil || len(o.Args.Items) != 1 || o.HasState {
		return "", false
	}
	s, ok := o.Args.Items[0].(string)
	return s, ok
}

// decimalObject is the object CPython pickles for Decimal(text).
func decimalObject(text string) *Object {
	return &Object{Callable: decimalClass, Construct: Reduce, Args: NewTuple(text)}
}
