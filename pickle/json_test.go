package pickle

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// jsonOf decodes ToJSON's output with encoding/json, which also proves it is JSON.
func jsonOf(t *testing.T, v any) any {
	t.Helper()
	out, err := ToJSON(v)
	require.NoError(t, err)
	require.True(t, json.Valid(out), "%s", out)
	var x any
	require.NoError(t, json.Unmarshal(out, &x), "%s", out)
	return x
}

func TestToJSONShowsPythonTypes(t *testing.T) {
	got := jsonOf(t, encShopSession())
	s := got.(map[string]any)
	assert.Equal(t, "myapp.models.ShopSession", s["__class__"])
	state := s["__state__"].(map[string]any)
	assert.Equal(t, "Q4PJ1fkwwK8", state["id"])
	assert.Equal(t, 1795303038.065931, state["_creation_time"])
	user := state["user"].(map[string]any)
	assert.Equal(t, "myapp.models.Account", user["__class__"])
	assert.Equal(t, map[string]any{"__set__": []any{"admin"}}, user["__state__"].(map[string]any)["roles"])
	assert.Equal(t, map[string]any{"__datetime__": "2026-11-21T09:30:00"}, user["__state__"].(map[string]any)["last_login"])
	assert.Equal(t, map[string]any{"__decimal__": "12.50"}, state["total"])
	assert.Equal(t, map[string]any{"__tuple__": []any{"sku-1", "sku-9"}}, state["seen"])
	assert.Equal(t, map[string]any{"__datetime__": "2026-11-21T09:30:15.250000+01:00"}, state["tz_login"])
	assert.Equal(t, map[string]any{"__datetime__": "2026-11-21T08:30:00+00:00"}, state["utc_login"])
	assert.Equal(t, map[string]any{"__date__": "2026-11-21"}, state["day"])
	assert.Equal(t, map[string]any{"__time__": "09:30:15.000500"}, state["at"])
	assert.Equal(t, map[string]any{"__timedelta__": "-1 day, 0:00:05"}, state["delta"])

	out, err := ToJSON(encScalars())
	require.NoError(t, err)
	text := string(out)
	for _, want := range []string{
		`null,true,false,0,1,255,`, `9223372036854775808,`, `1.5,-0.0,0.0,{"__float__":"inf"},{"__float__":"-inf"},{"__float__":"nan"},1e+300,5e-324,`,
		`"","a","héllo","😀","\ud800","a\udc80b","\ud83d\ude00",`,
		`{"__bytes__":""},{"__bytes__":"AP8="},{"__bytearray__":""},{"__bytearray__":"AGFi"}`,
	} {
		assert.Contains(t, text, want)
	}
}

func TestToJSONSharedReferencesAndCycles(t *testing.T) {
	got := jsonOf(t, encCycles()).([]any)
	assert.Equal(t, map[string]any{"__list__": []any{map[string]any{"__ref__": 1.0}}, "__id__": 1.0}, got[0])
	assert.Equal(t, map[string]any{"__dict__": map[string]any{"self": map[string]any{"__ref__": 2.0}}, "__id__": 2.0}, got[1])
	node := got[2].(map[string]any)
	assert.Equal(t, "pickle_encode_classes.Node", node["__class__"])
	assert.Equal(t, 3.0, node["__id__"])
	assert.Equal(t, map[string]any{"me": map[string]any{"__ref__": 3.0}, "peers": []any{map[string]any{"__ref__": 3.0}}}, node["__state__"])

	shared := jsonOf(t, encShared()).(map[string]any)
	assert.Equal(t, map[string]any{"__list__": []any{1.0}, "__id__": 1.0}, shared["l1"])
	assert.Equal(t, map[string]any{"__ref__": 1.0}, shared["l2"])
	assert.Equal(t, map[string]any{"__tuple__": []any{1.0, 2.0}, "__id__": 2.0}, shared["t1"])
	assert.Equal(t, map[string]any{"__ref__": 2.0}, shared["t2"])
	assert.Equal(t, map[string]any{"__tuple__": []any{}}, shared["e2"], "the empty tuple has no identity")

	// A dict whose keys are not all str, or whose first key looks like a tag.
	d := encDict(int64(1), "one", NewTuple("a"), "tuple")
	assert.Equal(t, map[string]any{"__dict__": []any{[]any{1.0, "one"}, []any{map[string]any{"__tuple__": []any{"a"}}, "tuple"}}}, jsonOf(t, d))
	assert.Equal(t, map[string]any{"__dict__": []any{[]any{"__class__", "x"}}}, jsonOf(t, encDict("__class__", "x")))
	assert.Equal(t, map[string]any{"__dict__": []any{[]any{"__id__", 1.0}}}, jsonOf(t, map[string]any{"__id__": 1}))
}

func TestToJSONObjectsInFull(t *testing.T) {
	objs := jsonOf(t, encObjects()).([]any)
	withArgs := objs[0].(map[string]any)
	assert.Equal(t, []any{5.0}, withArgs["__args__"].(map[string]any)["__tuple__"])
	reduced := objs[1].(map[string]any)
	assert.Equal(t, "REDUCE", reduced["__construct__"])
	myList := objs[5].(map[string]any)
	assert.Equal(t, []any{1.0, 2.0}, myList["__listitems__"])
	od := objs[9].(map[string]any)
	assert.Equal(t, "collections.OrderedDict", od["__class__"])
	assert.Equal(t, []any{[]any{"a", 1.0}, []any{"b", 2.0}}, od["__dictitems__"])
	assert.NotContains(t, objs[7].(map[string]any), "__state__", "Plain() has no state")

	rec := &Object{Callable: Global{"copyreg", "_reconstructor"}, Construct: Reduce,
		Args: NewTuple(Global{"m", "Old"}, Global{"builtins", "object"}, nil), State: encDict("a", int64(1)), HasState: true}
	got := jsonOf(t, rec).(map[string]any)
	assert.Equal(t, "m.Old", got["__class__"])
	assert.Equal(t, map[string]any{"__global__": "copyreg._reconstructor"}, got["__callable__"])
}

// TestToJSONTextsMatchPython compares the float, datetime, date, time, timedelta and
// Decimal texts of ToJSON with Python's repr, isoformat and str of the same values.
func TestToJSONTextsMatchPython(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	values := []any{0.1, 1e16, 1e15, 123456789012345678.0, 1.5e-5, 1e-4, 0.001, -2.5, 1e22, 1e21, 5e-324, math.MaxFloat64, 100.0, 3.0e-7}
	for range 300 {
		values = append(values, math.Float64frombits(rng.Uint64()&^(0x7ff<<52)|uint64(rng.IntN(0x7fe)+1)<<52))
	}
	for _, f := range []float64{1, 10, 1e5, 1e-5} {
		values = append(values, f*rng.Float64())
	}
	zones := []*time.Location{time.UTC, time.FixedZone("", 3600), time.FixedZone("", -5*3600-30*60), time.FixedZone("", 5*3600+45*60+30)}
	for i := range 40 {
		tm := time.Date(1+rng.IntN(9999), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60), rng.IntN(2)*rng.IntN(1000000)*1000, zones[i%len(zones)])
		values = append(values, tm, naiveDateTimeObject(tm))
	}
	values = append(values,
		encReduce("datetime", "date", []byte{0x07, 0xea, 2, 28}),
		encReduce("datetime", "time", []byte{0, 0, 0, 0, 0, 0}),
		encReduce("datetime", "time", []byte{23, 59, 59, 0x0f, 0x42, 0x3f}, encReduce("datetime", "timezone", encReduce("datetime", "timedelta", int64(-1), int64(86399), int64(999999)))),
		encReduce("datetime", "timedelta", int64(0), int64(0), int64(0)),
		encReduce("datetime", "timedelta", int64(1), int64(3661), int64(5)),
		encReduce("datetime", "timedelta", int64(-2), int64(86399), int64(0)),
		encReduce("datetime", "timedelta", int64(999999999), int64(86399), int64(999999)),
		encReduce("decimal", "Decimal", "-1.50E+3"),
		encReduce("decimal", "Decimal", "NaN"),
	)
	data, err := Marshal(NewList(values...))
	require.NoError(t, err)
	res := runEncodeCheck[map[string]string, struct{ Texts []string }](t, "texts", []map[string]string{{"pickle": base64.StdEncoding.EncodeToString(data)}})
	want := res[0].Texts
	require.Len(t, want, len(values))
	got := jsonOf(t, NewList(values...)).([]any)
	out, err := ToJSON(NewList(values...))
	require.NoError(t, err)
	var raw []json.RawMessage
	require.NoError(t, json.Unmarshal(out, &raw))
	for i, v := range values {
		var text string
		if _, ok := v.(float64); ok {
			text = string(raw[i])
		} else {
			m := got[i].(map[string]any)
			require.Len(t, m, 1, "%v", m)
			for _, x := range m {
				text = x.(string)
			}
		}
		assert.Equal(t, want[i], text, "value %d: %v", i, v)
	}
}

func TestFromJSONMatchesPythonJSON(t *testing.T) {
	docs := []string{
		`null`, `true`, `false`, `0`, `-0`, `-12`, `9223372036854775807`, `9223372036854775808`, `-9223372036854775809`,
		`123456789012345678901234567890123456789`, `1.5`, `-0.0`, `1e3`, `1E-3`, `2.5e+300`, `0.1`,
		`""`, `"abc"`, `"\u00e9\n\t\"\\\/"`, `"\ud83d\ude00"`, `"\ud800"`, `"x\udc80y"`, `"\ud800\u0041"`, `"😀é"`,
		`[]`, `{}`, `[1, "two", 3.0, [null, {"k": [true]}]]`,
		`{"user": "alice", "counter": 3, "cart": {"sku-1": 2, "sku-9": 1}, "tokens": ["t1", "t2"]}`,
		` { "a" : 1 , "b" : [ ] } `, `{"a": 1, "a": 2}`,
		strings.Repeat("[", 200) + strings.Repeat("]", 200),
	}
	type req struct {
		Name string `json:"name"`
		JSON string `json:"json"`
	}
	type res struct {
		Name   string  `json:"name"`
		Pickle []byte  `json:"pickle"`
		Error  *string `json:"error"`
	}
	var reqs []req
	for i, d := range docs {
		reqs = append(reqs, req{Name: fmt.Sprint(i), JSON: d})
	}
	results := runEncodeCheck[req, res](t, "fromjson", reqs)
	for i, d := range docs {
		require.Nil(t, results[i].Error, d)
		v, err := FromJSON([]byte(d))
		require.NoError(t, err, d)
		got, err := Marshal(v)
		require.NoError(t, err, d)
		assert.Equal(t, results[i].Pickle, got, "%s", d)
	}
}

func TestFromJSONRejectsBadInput(t *testing.T) {
	for _, d := range []string{
		``, ` `, `nul`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{1: 2}`, `[1] 2`, `"abc`, `"\x"`, `"\u12"`, "\"a\x01\"",
		`01`, `1.`, `.5`, `1e`, `-`, `+1`, `NaN`, `Infinity`, `1e400`, `"\xff"`,
		`{"__class__": "m.C"}`, `{"__ref__": 1}`, `{"__global__": "m.C"}`, `{"__tuple__": [1], "x": 2}`,
		`{"__tuple__": 1}`, `{"__set__": [[1]]}`, `{"__bytes__": "!!"}`, `{"__float__": "NaN"}`,
		`{"__dict__": [[1]]}`, `{"__dict__": [[[], 1]]}`, `{"__decimal__": "1,5"}`, `{"__decimal__": 1}`,
		`{"__date__": "2026-02-30"}`, `{"__datetime__": "2026-11-21 09:30"}`, `{"__datetime__": "2026-11-21T09:30:00.0000001"}`,
		strings.Repeat("9", maxJSONIntDigits+1),
		strings.Repeat("[", defaultEncodeDepth+2) + strings.Repeat("]", defaultEncodeDepth+2),
	} {
		v, err := FromJSON([]byte(d))
		assert.Error(t, err, "%q gave %v", d, v)
	}
}

func TestFromJSONReadsToJSONOfSimpleValues(t *testing.T) {
	v := NewList(
		NewTuple(int64(1), "a"), encSet(int64(1)), encFrozenSet("x"), []byte{0, 1, 2}, &ByteArray{Data: []byte("ab")},
		math.Inf(1), math.Inf(-1), encDict(int64(1), "one", NewTuple("k"), NewList()), encDict("__class__", "not an object"),
		encReduce("decimal", "Decimal", "12.50"), encReduce("datetime", "date", []byte{0x07, 0xea, 11, 21}),
		naiveDateTimeObject(time.Date(2026, 11, 21, 9, 30, 15, 250000000, time.UTC)),
		time.Date(2026, 11, 21, 9, 30, 0, 0, time.FixedZone("", -5*3600)),
		encPow2(100), math.Copysign(0, -1), 1e-7, "\xed\xa0\x80 lone", "😀",
	)
	want, err := Marshal(v)
	require.NoError(t, err)
	text, err := ToJSON(v)
	require.NoError(t, err)
	back, err := FromJSON(text)
	require.NoError(t, err, "%s", text)
	got, err := Marshal(back)
	require.NoError(t, err)
	assert.Equal(t, want, got, "%s", text)

	nan, err := FromJSON([]byte(`{"__float__": "nan"}`))
	require.NoError(t, err)
	assert.True(t, math.IsNaN(nan.(float64)))
}

func TestToJSONErrors(t *testing.T) {
	_, err := ToJSON(make(chan int))
	var ut *UnsupportedTypeError
	assert.ErrorAs(t, err, &ut)
	_, err = ToJSON(NewList("\xff"))
	assert.Error(t, err)
	m := map[string]any{}
	m["m"] = m
	_, err = ToJSON(m)
	assert.Error(t, err)
	tup := NewTuple(nil)
	tup.Items[0] = tup
	out, err := ToJSON(tup)
	require.NoError(t, err, "a cycle of tuples is finite in JSON")
	assert.JSONEq(t, `{"__tuple__": [{"__ref__": 1}], "__id__": 1}`, string(out))
	var v any = "leaf"
	for range defaultEncodeDepth + 1 {
		v = NewList(v)
	}
	_, err = ToJSON(v)
	assert.Error(t, err)
}
