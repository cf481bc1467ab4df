package pickle

import (
	"math/big"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones of the tests, wherever they run

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func bindInst(class string, kv ...any) *Object {
	mod, name, _ := strings.Cut(class, ":")
	o := NewObject(Global{mod, name})
	for i := 0; i < len(kv); i += 2 {
		if err := o.SetAttr(kv[i].(string), kv[i+1]); err != nil {
			panic(err)
		}
	}
	return o
}

func TestUnmarshalValueErrorsNameThePath(t *testing.T) {
	item := func(price any) *Object {
		return bindInst("myapp.models:CartItem", "sku", "a", "name", "A", "price", price, "qty", int64(1))
	}
	session := bindInst("myapp.models:User", "login", "dora", "cart",
		NewList(item(decimalObject("1.00")), item(decimalObject("2.00")), item(decimalObject("3.50"))))
	type badItem struct{ Price int }
	var dst struct{ Cart []badItem }
	err := UnmarshalValue(session, &dst)
	var me *MappingError
	require.ErrorAs(t, err, &me)
	assert.Equal(t, ".cart[0].price", me.Path)
	assert.Equal(t, "pickle: cart[0].price: Python decimal.Decimal into Go int", err.Error())

	cases := []struct {
		v    any
		dst  any
		want string
	}{
		{int64(300), new(int8), "pickle: Python int 300 overflows Go int8"},
		{int64(-1), new(uint), "pickle: Python int -1 overflows Go uint"},
		{new(big.Int).Lsh(big.NewInt(1), 64), new(int64), "pickle: Python int 18446744073709551616 overflows Go int64"},
		{new(big.Int).Lsh(big.NewInt(1), 64), new(uint64), "pickle: Python int 18446744073709551616 overflows Go uint64"},
		{int64(1) << 60, new(float64), "pickle: Python int 1152921504606846976 does not convert exactly to Go float64"},
		{true, new(int), "pickle: Python bool into Go int"},
		{"x", new([]byte), "pickle: Python str into Go []uint8"},
		{NewTuple(int64(1)), new([2]int), "pickle: Python tuple of 1 items into Go [2]int"},
		{NewList("a"), new(map[string]int), "pickle: Python list into Go map[string]int"},
		{encDict("k", "v"), new(map[string]int), "pickle: k: Python str into Go int"},
		{encDict(int64(7), "v"), new(map[string]string), "pickle: [7]: Python int into Go string"},
		{encDict("a b", int64(1)), new(struct{ X string }), ""},
		{bindInst("myapp.models:Other"), new(bindCartItem), "pickle: Python myapp.models.Other into Go pickle.bindCartItem, which is myapp.models.CartItem"},
		{decimalObject("1"), new(struct{ X int }), "pickle: Python decimal.Decimal into Go struct { X int }"},
		{bindInst("m:C", "x", "s"), new(struct{ X *int }), "pickle: x: Python str into Go int"},
		{"x", new(error), "pickle: cannot decode into Go error, an interface with methods"},
		{"x", new(chan int), "pickle: cannot decode into Go chan int"},
		{&Object{Callable: Global{"m", "C"}, Construct: NewObj, Args: NewTuple(), State: "custom", HasState: true}, new(struct{ X int }),
			"pickle: Python m.C has a state of type str, not attributes; decode it into a *pickle.Object"},
	}
	for _, c := range cases {
		err := UnmarshalValue(c.v, c.dst)
		if c.want == "" {
			assert.NoError(t, err)
			continue
		}
		if assert.Error(t, err, "%T", c.dst) {
			assert.Equal(t, c.want, err.Error())
		}
	}
	assert.EqualError(t, UnmarshalValue("x", dst), "pickle: UnmarshalValue needs a non-nil pointer, not struct { Cart []pickle.badItem }")
}

func TestUnmarshalValueScalars(t *testing.T) {
	var s struct {
		Small   int8
		Big     *big.Int
		BigVal  big.Int
		U       uint64
		F       float32
		FromInt float64
		None    string
		NoneP   *string
		Any     any
		Raw     *Object
		Arr     [2]string
		List    []int
		Set     map[int64]bool
		Class   Global
		Attrs   map[string]any
		Bytes   []byte
		Ba      []byte
		Latin   []byte
		Decimal Decimal
	}
	big1 := new(big.Int).Lsh(big.NewInt(3), 70)
	set, _ := NewFrozenSet(int64(1), int64(2))
	raw := decimalObject("5")
	v := bindInst("m:C", "small", int64(-128), "big", big1, "big_val", int64(-5), "u", new(big.Int).SetUint64(1<<63), "f", 0.1,
		"from_int", int64(3), "none", nil, "none_p", nil, "any", NewList("x"), "raw", raw, "arr", NewTuple("a", "b"),
		"list", NewTuple(int64(1), int64(2)), "set", set, "class", Global{"m", "C"}, "attrs", bindInst("m:D", "x", int64(1)),
		"bytes", []byte("b"), "ba", &ByteArray{Data: []byte("ba")},
		"latin", &Object{Callable: Global{"_codecs", "encode"}, Construct: Reduce, Args: NewTuple("\u00e9t\u00e9", "latin1")},
		"decimal", decimalObject("-0.00"))
	require.NoError(t, UnmarshalValue(v, &s))
	assert.Equal(t, int8(-128), s.Small)
	assert.Equal(t, big1, s.Big)
	assert.Equal(t, int64(-5), s.BigVal.Int64())
	assert.Equal(t, uint64(1<<63), s.U)
	assert.Equal(t, float32(0.1), s.F)
	assert.Equal(t, 3.0, s.FromInt)
	assert.Nil(t, s.NoneP)
	assert.Equal(t, NewList("x"), s.Any)
	assert.Same(t, raw, s.Raw)
	assert.Equal(t, [2]string{"a", "b"}, s.Arr)
	assert.Equal(t, []int{1, 2}, s.List)
	assert.Equal(t, map[int64]bool{1: true, 2: true}, s.Set)
	assert.Equal(t, Global{"m", "C"}, s.Class)
	assert.Equal(t, map[string]any{"x": int64(1)}, s.Attrs)
	assert.Equal(t, []byte("b"), s.Bytes)
	assert.Equal(t, []byte("ba"), s.Ba)
	assert.Equal(t, []byte("\xe9t\xe9"), s.Latin)
	assert.Equal(t, Decimal("-0.00"), s.Decimal)

	// Writing the unchanged struct back changes nothing, None included.
	before := encodeAt(t, v, 4)
	nv, err := UpdateValue(v, &s)
	require.NoError(t, err)
	assert.Same(t, v, nv)
	assert.Equal(t, before, encodeAt(t, v, 4))
}

func TestTimes(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	utcTZ := &Object{Callable: timezoneClass, Construct: Reduce, Args: NewTuple(&Object{Callable: timedeltaCls, Construct: Reduce, Args: NewTuple(int64(0), int64(0), int64(0))})}
	brt := &Object{Callable: timezoneClass, Construct: Reduce, Args: NewTuple(&Object{Callable: timedeltaCls, Construct: Reduce, Args: NewTuple(int64(-1), int64(75600), int64(0))}, "BRT")}
	zi := func(key string) *Object {
		getattr := &Object{Callable: Global{"builtins", "getattr"}, Construct: Reduce, Args: NewTuple(zoneInfoClass, "_unpickle")}
		return &Object{Callable: getattr, Construct: Reduce, Args: NewTuple(key, int64(1))}
	}
	dt := func(st string, tz any) *Object {
		args := NewTuple([]byte(st))
		if tz != nil {
			args.Items = append(args.Items, tz)
		}
		return &Object{Callable: dateTimeClass, Construct: Reduce, Args: args}
	}
	// 2024-11-03 01:30 happens twice in New York; the second (fold=1) is EST.
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	cases := []struct {
		v    any
		want time.Time
	}{
		{dt("\x07\xe8\x05\x06\x07\x08\x09\x01\xe2\x40", utcTZ), time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)},
		{dt("\x07\xe8\x05\x06\x00\x00\x00\x00\x00\x00", brt), time.Date(2024, 5, 6, 0, 0, 0, 0, time.FixedZone("BRT", -3*3600))},
		{dt("\x07\xe8\x05\x06\x00\x00\x00\x00\x00\x00", nil), time.Date(2024, 5, 6, 0, 0, 0, 0, time.UTC)},
		{dt("\x07\xe8\x0b\x03\x01\x1e\x00\x00\x00\x00", zi("America/New_York")), time.Date(2024, 11, 3, 5, 30, 0, 0, time.UTC).In(ny)},
		{dt("\x07\xe8\x8b\x03\x01\x1e\x00\x00\x00\x00", zi("America/New_York")), time.Date(2024, 11, 3, 6, 30, 0, 0, time.UTC).In(ny)},
		{dt("\x07\xe8\x07\x01\x0c\x00\x00\x00\x00\x00", zi("Europe/Paris")), time.Date(2024, 7, 1, 12, 0, 0, 0, paris)},
		{&Object{Callable: dateClass, Construct: Reduce, Args: NewTuple([]byte("\x07\xc6\x07\x0e"))}, time.Date(1990, 7, 14, 0, 0, 0, 0, time.UTC)},
	}
	for i, c := range cases {
		var got time.Time
		require.NoError(t, UnmarshalValue(c.v, &got), "case %d", i)
		assert.True(t, sameTime(c.want, got), "case %d: got %v, want %v", i, got, c.want)
		// Unchanged, it is written back as it was.
		nv, err := UpdateValue(c.v, got)
		require.NoError(t, err)
		assert.Same(t, c.v, nv, "case %d", i)
		// Changed, it keeps its kind and its tzinfo object when the zone is the same.
		later := got.Add(time.Hour)
		if c.v.(*Object).Callable == dateClass {
			later = got.AddDate(0, 0, 1)
		}
		nv, err = UpdateValue(c.v, later)
		require.NoError(t, err)
		var back time.Time
		require.NoError(t, UnmarshalValue(nv, &back))
		assert.True(t, sameTime(later, back), "case %d: got %v, want %v", i, back, later)
		o, old := nv.(*Object), c.v.(*Object)
		assert.Equal(t, old.Callable, o.Callable)
		assert.Equal(t, len(old.Args.Items), len(o.Args.Items))
		if len(old.Args.Items) == 2 {
			assert.Same(t, old.Args.Items[1], o.Args.Items[1], "case %d: tzinfo kept", i)
		}
	}
	// The fold bit is set for the second 01:30.
	nv, err := UpdateValue(cases[3].v, cases[4].want)
	require.NoError(t, err)
	assert.Equal(t, []byte("\x07\xe8\x8b\x03\x01\x1e\x00\x00\x00\x00"), nv.(*Object).Args.Items[0])

	// Errors.
	var tm time.Time
	assert.EqualError(t, UnmarshalValue(dt("\x07\xe8\x0d\x06\x00\x00\x00\x00\x00\x00", nil), &tm), "pickle: datetime state 07e80d06000000000000 is out of range")
	assert.EqualError(t, UnmarshalValue(dt("\x07\xe8\x05\x06\x00\x00\x00\x00\x00\x00", zi("No/Such_Zone")), &tm), `pickle: zoneinfo.ZoneInfo("No/Such_Zone"): unknown time zone No/Such_Zone`)
	_, err = MarshalValue(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
	assert.EqualError(t, err, "pickle: time 10000-01-01 00:00:00 +0000 UTC is outside the years 1 to 9999 of Python's datetime")

	// New values: aware by default, naive or date on request.
	type when struct {
		At    time.Time
		Naive time.Time `pickle:",naive"`
		Day   time.Time `pickle:"day,date"`
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, paris)
	v, err := MarshalValue(when{at, at, at})
	require.NoError(t, err)
	d := v.(*Dict)
	a, _ := d.Get("at")
	n, _ := d.Get("naive")
	day, _ := d.Get("day")
	assert.Len(t, a.(*Object).Args.Items, 2)
	assert.Equal(t, []byte("\x07\xea\x01\x02\x02\x04\x05\x00\x00\x06"), n.(*Object).Args.Items[0], "naive datetimes hold the UTC wall clock")
	assert.Equal(t, dateClass, day.(*Object).Callable)
}

func TestDecimal(t *testing.T) {
	assert.Equal(t, Decimal("1.10"), NewDecimal(big.NewInt(110), -2))
	assert.Equal(t, Decimal("-1.2E+4"), NewDecimal(big.NewInt(-12), 3))
	r, ok := Decimal("12345678901234567890.123456789").Rat()
	require.True(t, ok)
	assert.Equal(t, "12345678901234567890123456789/1000000000", r.String())
	r, ok = Decimal("-1.5E+3").Rat()
	require.True(t, ok)
	assert.Equal(t, "-1500/1", r.String())
	_, ok = Decimal("NaN").Rat()
	assert.False(t, ok)

	// Written in Python's form; an invalid text is an error naming the field.
	v, err := MarshalValue(struct{ Price Decimal }{"007.50"})
	require.NoError(t, err)
	p, _ := v.(*Dict).Get("price")
	assert.Equal(t, decimalObject("7.50"), p)
	_, err = MarshalValue(struct{ Price Decimal }{"1,5"})
	assert.EqualError(t, err, `pickle: price: "1,5" is not a decimal number`)
}

func TestUpdateValueKeepsWhatGoDoesNotName(t *testing.T) {
	// A shared object decoded into two value copies: the copy that changed wins.
	shared := bindInst("myapp.models:CartItem", "sku", "a", "name", "A", "price", decimalObject("1.00"), "qty", int64(1), "_seen", true)
	root := encDict("x", shared, "y", shared)
	var r struct {
		X, Y struct{ Name string }
	}
	require.NoError(t, UnmarshalValue(root, &r))
	r.Y.Name = "B"
	_, err := UpdateValue(root, &r)
	require.NoError(t, err)
	name, _ := shared.Attr("name")
	assert.Equal(t, "B", name)
	seen, _ := shared.Attr("_seen")
	assert.Equal(t, true, seen)

	// A cycle through pointers ends.
	type node struct {
		Name string
		Next *node
	}
	a := &node{Name: "a"}
	a.Next = &node{Name: "b", Next: a}
	v, err := MarshalValue(a)
	require.NoError(t, err)
	next, _ := v.(*Dict).Get("next")
	back, _ := next.(*Dict).Get("next")
	assert.Same(t, v, back)
	var again *node
	require.NoError(t, UnmarshalValue(v, &again))
	assert.Same(t, again, again.Next.Next)

	// None read into zero values stays None; zero times and Decimals are None.
	type coupon struct{ Code string }
	var z struct {
		When  time.Time
		Price Decimal
		C     coupon
		L     []int
		M     map[string]int
		P     *coupon
	}
	nones := bindInst("m:C", "when", nil, "price", nil, "c", nil, "l", nil, "m", nil, "p", nil)
	before := encodeAt(t, nones, 4)
	require.NoError(t, UnmarshalValue(nones, &z))
	_, err = UpdateValue(nones, z)
	require.NoError(t, err)
	assert.Equal(t, before, encodeAt(t, nones, 4))
	fresh, err := NewObjectFrom(Global{"m", "C"}, z)
	require.NoError(t, err)
	for _, name := range []string{"when", "price", "p"} {
		v, ok := fresh.Attr(name)
		assert.True(t, ok)
		assert.Nil(t, v, name)
	}

	// A failed update changes nothing.
	obj := bindInst("m:C", "a", NewList(int64(1)), "b", "x", "n", encDict("k", int64(1)))
	before = encodeAt(t, obj, 4)
	_, err = UpdateValue(obj, struct {
		A []int
		N map[string]int
		B chan int
	}{[]int{2, 3}, map[string]int{"j": 2}, nil})
	assert.EqualError(t, err, "pickle: b: Go chan int has no Python form")
	assert.Equal(t, before, encodeAt(t, obj, 4))

	// Mistyped Go values are errors with a path.
	_, err = UpdateValue(encDict("c", NewList(int64(1))), struct{ C []chan int }{[]chan int{nil, make(chan int)}})
	assert.EqualError(t, err, "pickle: c[0]: Go chan int has no Python form")
	_, err = UpdateValue(shared, bindUser{})
	assert.EqualError(t, err, "pickle: Go pickle.bindUser is myapp.models.User, where Python has myapp.models.CartItem")
	_, err = UpdateValue(encDict("s", NewList()), map[string]any{"s": []map[string]any{{"k": struct{ F func() }{}}}})
	assert.EqualError(t, err, `pickle: s[0].k.f: Go func() has no Python form`)
}

func TestNewObjectFrom(t *testing.T) {
	o, err := NewObjectFrom(Global{"m", "Empty"}, struct{}{})
	require.NoError(t, err)
	assert.False(t, o.HasState, "no BUILD for an instance without attributes, as CPython")
	_, err = NewObjectFrom(Global{"m", "C"}, 5)
	assert.EqualError(t, err, "pickle: NewObjectFrom needs a struct, not int")
	o, err = NewObjectFrom(Global{"m", "C"}, &struct {
		A       int
		B       string `pickle:"-"`
		C       []int  `pickle:",omitempty"`
		UserID  int
		private int
	}{A: 1, B: "x", private: 2})
	require.NoError(t, err)
	assert.Equal(t, []any{"a", "user_id"}, o.Attrs().Keys())
}

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{"LastLogin": "last_login", "UserID": "user_id", "HTTPServer": "http_server", "ID": "id", "A1B": "a1_b", "X": "x"} {
		assert.Equal(t, want, snakeCase(in))
	}
}

type expandValue struct{ L []expandValue }
type expandPointer struct{ L []*expandPointer }

// TestUnmarshalValueBoundsExpansion: a value shared at every level of 40 expands to
// 2^40 copies in non-pointer Go types; the conversion stops after a bound linear in
// the size of the value. In pointer types it is one Go value per Python value.
func TestUnmarshalValueBoundsExpansion(t *testing.T) {
	v := any(encDict("l", NewList()))
	for range 40 {
		v = encDict("l", NewList(v, v))
	}
	var e expandValue
	err := UnmarshalValue(v, &e)
	var me *MappingError
	require.ErrorAs(t, err, &me)
	assert.Equal(t, "the value converts to more than 68144 Go values", me.Msg) // 65536 + 16 × 163 values
	var p expandPointer
	require.NoError(t, UnmarshalValue(v, &p))
	assert.Same(t, p.L[0], p.L[1])
	err = (&Converter{MaxValues: 10}).Unmarshal(v, &p)
	assert.ErrorContains(t, err, "the value converts to more than 10 Go values")
}
