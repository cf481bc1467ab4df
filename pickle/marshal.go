package pickle

import (
	"fmt"
	"maps"
	"math"
	"math/big"
	"reflect"
	"slices"
	"time"
)

// Marshal returns the protocol 4 pickle of v, byte for byte what CPython's
// pickle.dumps(obj, 4) writes for the object v describes (see the package doc for the
// exceptions). v is a value of the model (see Unmarshal) or a plain Go value: string,
// bool, any int or uint type, float32/float64, []byte, []any, []string,
// map[string]any, map[string]string, time.Time, or nil.
func Marshal(v any) ([]byte, error) {
	s := getEncState(DefaultProtocol, defaultEncodeDepth, nil)
	defer putEncState(s)
	// The pickle is built in a new buffer the caller keeps, sized after the last
	// pickle this state wrote, rather than in the pooled one and then copied.
	pooled := s.buf
	s.buf = make([]byte, max(s.sizeHint, 256))
	err := s.dump(v)
	out := s.buf[:s.n]
	s.buf, s.n, s.sizeHint = pooled, 0, len(out)+len(out)/8
	if err != nil {
		return nil, err
	}
	if s.deepest > DefaultMaxDepth || s.memoLen > DefaultMaxMemo || len(out) > verifyAbove {
		// The decoder may refuse this pickle (nesting measured its own way, the memo,
		// or the memory it takes): decode it as Unmarshal would, so that nothing is
		// written that cannot be read back.
		if _, err := Unmarshal(out); err != nil {
			return nil, &EncodeError{Err: fmt.Errorf("pickle: the pickle would not decode: %w", err)}
		}
	}
	return out, nil
}

// verifyAbove is the size above which a pickle may take more than DefaultMaxMemory to
// decode: below it, DefaultMemoryPerByte, which no pickle the encoder writes comes
// near, bounds the memory first. A variable for the tests.
var verifyAbove = DefaultMaxMemory / DefaultMemoryPerByte

// --- plain Go values ---

// saveGo writes the plain Go values Marshal accepts besides the model's own types.
// Slices and maps have no identity in the model: each occurrence becomes a new Python
// list or dict.
func (s *encState) saveGo(v any) error {
	switch x := v.(type) {
	case int:
		s.saveInt(int64(x))
	case int8:
		s.saveInt(int64(x))
	case int16:
		s.saveInt(int64(x))
	case int32:
		s.saveInt(int64(x))
	case uint:
		return s.saveUint(uint64(x))
	case uint8:
		s.saveInt(int64(x))
	case uint16:
		s.saveInt(int64(x))
	case uint32:
		s.saveInt(int64(x))
	case uint64:
		return s.saveUint(x)
	case float32:
		s.saveFloat(float64(x))
	case []any:
		return s.saveGoList(len(x), func(i int) any { return x[i] })
	case []string:
		return s.saveGoList(len(x), func(i int) any { return x[i] })
	case map[string]any:
		return s.saveGoMap(sortedKeys(x), func(k string) any { return x[k] })
	case map[string]string:
		return s.saveGoMap(sortedKeys(x), func(k string) any { return x[k] })
	case time.Time:
		o, err := dateTimeObject(x)
		if err != nil {
			return encErr("pickle: %v", err)
		}
		s.keep = append(s.keep, o)
		return s.saveObject(o)
	default:
		return &pathError{err: &UnsupportedTypeError{Type: reflect.TypeOf(v)}}
	}
	return nil
}

func (s *encState) saveUint(u uint64) error {
	if u <= math.MaxInt64 {
		s.saveInt(int64(u))
		return nil
	}
	return s.saveBigInt(new(big.Int).SetUint64(u))
}

func (s *encState) saveGoList(n int, item func(int) any) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer func() { s.depth-- }()
	s.write1(opEmptyList)
	s.put()
	if n == 1 {
		if err := s.save(item(0)); err != nil {
			return wrapStep(err, "[0]")
		}
		s.write1(opAppend)
		return nil
	}
	for start := 0; start < n; start += batchSize {
		end := min(start+batchSize, n)
		s.write1(opMark)
		for i := start; i < end; i++ {
			if err := s.save(item(i)); err != nil {
				return wrapStep(err, fmt.Sprintf("[%d]", i))
			}
		}
		s.write1(opAppends)
	}
	return nil
}

func (s *encState) saveGoMap(keys []string, val func(string) any) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer func() { s.depth-- }()
	s.write1(opEmptyDict)
	s.put()
	return s.setItemsExact(len(keys), func(i int) (any, any) { return keys[i], val(keys[i]) })
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// dateTimeObject returns the object CPython pickles for an aware datetime.datetime at
// the instant and UTC offset of t: datetime(state, timezone(timedelta(0, offset))),
// where state is the 10-byte packed date and time. Python keeps microseconds, so t is
// truncated to the microsecond; Python's years are 1 to 9999.
func dateTimeObject(t time.Time) (*Object, error) {
	if y := t.Year(); y < 1 || y > 9999 {
		return nil, fmt.Errorf("time %v is outside the years 1 to 9999 of Python's datetime", t)
	}
	_, off := t.Zone()
	if off <= -86400 || off >= 86400 {
		return nil, fmt.Errorf("time %v has a UTC offset of a day or more", t)
	}
	days := int64(math.Floor(float64(off) / 86400))
	secs := int64(off) - days*86400
	delta := &Object{Callable: Global{"datetime", "timedelta"}, Construct: Reduce, Args: NewTuple(days, secs, int64(0))}
	tz := &Object{Callable: Global{"datetime", "timezone"}, Construct: Reduce, Args: NewTuple(delta)}
	return &Object{Callable: Global{"datetime", "datetime"}, Construct: Reduce, Args: NewTuple(dateTimeState(t), tz)}, nil
}

// naiveDateTimeObject returns the object CPython pickles for the naive
// datetime.datetime with t's wall clock reading (its location is ignored).
func naiveDateTimeObject(t time.Time) *Object {
	return &Object{Callable: Global{"datetime", "datetime"}, Construct: Reduce, Args: NewTuple(dateTimeState(t))}
}

// dateTimeState is the 10-byte state of a datetime: year (2 bytes), month, day, hour,
// minute, second, microsecond (3 bytes), big-endian.
func dateTimeState(t time.Time) []byte {
	us := t.Nanosecond() / 1000
	return []byte{
		byte(t.Year() >> 8), byte(t.Year()), byte(t.Month()), byte(t.Day()),
		byte(t.Hour()), byte(t.Minute()), byte(t.Second()),
		byte(us >> 16), byte(us >> 8), byte(us),
	}
}
