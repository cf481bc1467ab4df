package quixote

import (
	"math/big"
	"strings"

	"github.com/qxbridge/qxbridge/pickle"
)

// Truthy reports whether a value of the pickle model is true in Python's sense
// (bool(v)): None, False, zero numbers, empty strings and bytes, and empty
// containers are false; everything else is true.
//
// Objects are true unless they are one of the standard library types that define
// their own truth and pickle in a known form: decimal.Decimal, complex,
// datetime.timedelta, collections.OrderedDict, defaultdict, Counter, deque, and
// UserDict/UserList/UserString. An application class that defines __bool__ or
// __len__ cannot be judged from its pickle; give such a session class its own
// Class.HasInfo.
func Truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case int64:
		return x != 0
	case int:
		return x != 0
	case *big.Int:
		return x.Sign() != 0
	case float64:
		return x != 0 // NaN is true in Python too
	case string:
		return x != ""
	case []byte:
		return len(x) > 0
	case *pickle.ByteArray:
		return len(x.Data) > 0
	case *pickle.Tuple:
		return len(x.Items) > 0
	case *pickle.List:
		return len(x.Items) > 0
	case *pickle.Dict:
		return x.Len() > 0
	case *pickle.Set:
		return x.Len() > 0
	case *pickle.FrozenSet:
		return x.Len() > 0
	case *pickle.Object:
		return objectTruthy(x)
	}
	return true // Global (a class or function) and anything else
}

func objectTruthy(o *pickle.Object) bool {
	c, ok := o.Class()
	if !ok {
		return true
	}
	var args []any
	if o.Args != nil {
		args = o.Args.Items
	}
	switch c.String() {
	case "decimal.Decimal":
		if len(args) == 1 {
			if s, ok := args[0].(string); ok {
				return !decimalIsZero(s)
			}
		}
	case "builtins.complex":
		if len(args) == 2 {
			return Truthy(args[0]) || Truthy(args[1])
		}
	case "datetime.timedelta":
		for _, a := range args {
			if Truthy(a) {
				return true
			}
		}
		return false
	case "collections.OrderedDict", "collections.defaultdict":
		if len(o.DictItems) > 0 {
			return true
		}
		if o.Construct == pickle.Reduce && len(args) <= 1 {
			return false
		}
	case "collections.Counter":
		if len(args) == 1 {
			return Truthy(args[0]) || len(o.DictItems) > 0
		}
	case "collections.deque":
		if len(o.ListItems) > 0 {
			return true
		}
		if len(args) >= 1 {
			return Truthy(args[0])
		}
	case "collections.UserDict", "collections.UserList", "collections.UserString":
		if d, ok := o.Attr("data"); ok {
			return Truthy(d)
		}
	}
	return true
}

// decimalIsZero reports whether a Decimal's string form (what Decimal.__reduce__
// pickles) is a zero: every mantissa digit is 0. NaN and Infinity are true.
func decimalIsZero(s string) bool {
	s = strings.TrimLeft(s, "+-")
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		s = s[:i]
	}
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r == '0' || r == '.' || r == '_':
		case r >= '1' && r <= '9':
			return false
		default:
			return false // NaN, Infinity, or not a number: true
		}
	}
	return true
}
