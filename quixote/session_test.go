package quixote

import (
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/pickle"
)

// shopClass describes the fixture application's myapp.models.ShopSession, whose
// has_info is `self.user is not None or bool(getattr(self, "cart", None))`.
var shopClass = Class{
	Module: "myapp.models", Name: "ShopSession", Kind: KindSession3,
	HasInfo: func(s *Session) bool {
		cart, _ := s.Get("cart")
		return s.User() != nil || Truthy(cart)
	},
}

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)

func TestNewSessionAttributes(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC)
	base := []string{"id", "user", "_remote_address", "_creation_time", "_access_time", "_form_tokens"}
	for _, tc := range []struct {
		class Class
		want  []string
	}{
		{Session3Class, base},
		{QuixoteClass, append(append([]string{}, base...), "_csrf_token")},
		{DictSessionClass, append(append([]string{}, base...), "data")},
		{shopClass, base},
	} {
		t.Run(tc.class.String(), func(t *testing.T) {
			s := NewSession(tc.class, "203.0.113.7", now)
			var names []string
			for k := range s.Object().Attrs().All() {
				names = append(names, k.(string))
			}
			assert.Equal(t, tc.want, names)
			g, _ := s.Object().Class()
			assert.Equal(t, tc.class.Global(), g)
			assert.Equal(t, "", s.ID())
			id, _ := s.Object().Attr("id")
			assert.Nil(t, id, "id is None until saved")
			assert.Nil(t, s.User())
			assert.Equal(t, "203.0.113.7", s.RemoteAddress())
			ct, _ := s.Object().Attr("_creation_time")
			at, _ := s.Object().Attr("_access_time")
			assert.IsType(t, float64(0), ct)
			assert.Equal(t, ct, at)
			assert.InDelta(t, 1795255200.123456789, ct.(float64), 1e-6)
			assert.True(t, s.CreationTime().Equal(s.AccessTime()))
			assert.WithinDuration(t, now, s.CreationTime(), time.Microsecond)
			assert.Empty(t, s.FormTokens())
			assert.False(t, s.HasInfo())
		})
	}
	s := NewSession(Session3Class, "", now)
	addr, ok := s.Object().Attr("_remote_address")
	assert.True(t, ok)
	assert.Nil(t, addr, "an unknown address is None")
}

func TestNewID(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9_-]{11}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		require.Regexp(t, re, id)
		require.False(t, seen[id], "duplicate id %s", id)
		seen[id] = true
	}
}

func TestUserAndHasInfo(t *testing.T) {
	s := NewSession(Session3Class, "", time.Now())
	assert.False(t, s.LoggedIn())
	require.NoError(t, s.SetUser("alice"))
	u, ok := s.UserString()
	assert.True(t, ok)
	assert.Equal(t, "alice", u)
	assert.True(t, s.HasInfo())
	require.NoError(t, s.SetUser(""))
	assert.False(t, s.HasInfo(), "an empty str user is false in Python")
	require.NoError(t, s.SetUser(0))
	assert.Equal(t, int64(0), s.User(), "Go ints are stored as Python ints")
	assert.False(t, s.HasInfo())
	require.NoError(t, s.SetUser(pickle.NewObject(pickle.Global{Module: "myapp.models", Name: "Account"})))
	assert.True(t, s.HasInfo(), "objects are true")
	_, ok = s.UserString()
	assert.False(t, ok)
	require.NoError(t, s.SetUser(nil))
	assert.False(t, s.HasInfo())
	assert.ErrorIs(t, s.SetUser(make(chan int)), ErrValue)

	// session3's has_info ignores form tokens; Quixote's own counts them and the CSRF token.
	s.CreateFormToken()
	assert.False(t, s.HasInfo())
	q := NewSession(QuixoteClass, "", time.Now())
	assert.False(t, q.HasInfo())
	tok := q.CreateFormToken()
	assert.True(t, q.HasInfo())
	q.RemoveFormToken(tok)
	assert.False(t, q.HasInfo())
	csrf, err := q.CSRFToken()
	require.NoError(t, err)
	assert.Regexp(t, tokenRE, csrf)
	assert.True(t, q.HasInfo())
	again, _ := q.CSRFToken()
	assert.Equal(t, csrf, again, "the CSRF token is made once")
	_, err = s.CSRFToken()
	assert.ErrorIs(t, err, ErrNoCSRFToken)

	// An application class's own rule.
	shop := NewSession(shopClass, "", time.Now())
	assert.False(t, shop.HasInfo())
	cart := pickle.NewDict()
	require.NoError(t, shop.Set("cart", cart))
	assert.False(t, shop.HasInfo(), "an empty cart is false")
	require.NoError(t, cart.Set("sku-1", int64(1)))
	assert.True(t, shop.HasInfo())
	require.NoError(t, shop.Set("cart", nil))
	require.NoError(t, shop.SetUser(""))
	assert.True(t, shop.HasInfo(), "ShopSession: user is not None")
}

func TestTruthy(t *testing.T) {
	obj := func(mod, name string, c pickle.Construct, args ...any) *pickle.Object {
		return &pickle.Object{Callable: pickle.Global{Module: mod, Name: name}, Construct: c, Args: pickle.NewTuple(args...)}
	}
	emptySet, _ := pickle.NewSet()
	fullSet, _ := pickle.NewSet("a")
	emptyFS, _ := pickle.NewFrozenSet()
	full := pickle.NewDict()
	require.NoError(t, full.Set("k", nil))
	od := obj("collections", "OrderedDict", pickle.Reduce)
	odFull := obj("collections", "OrderedDict", pickle.Reduce)
	odFull.DictItems = []pickle.KV{{Key: "a", Value: int64(1)}}
	userDict := pickle.NewObject(pickle.Global{Module: "collections", Name: "UserDict"})
	require.NoError(t, userDict.SetAttr("data", pickle.NewDict()))
	for _, tc := range []struct {
		v    any
		want bool
	}{
		{nil, false}, {false, false}, {true, true},
		{int64(0), false}, {int64(-1), true}, {new(big.Int), false}, {big.NewInt(7), true},
		{0.0, false}, {0.5, true}, {"", false}, {"x", true},
		{[]byte{}, false}, {[]byte("x"), true}, {&pickle.ByteArray{}, false},
		{pickle.NewTuple(), false}, {pickle.NewTuple(nil), true},
		{pickle.NewList(), false}, {pickle.NewList(int64(0)), true},
		{pickle.NewDict(), false}, {full, true},
		{emptySet, false}, {fullSet, true}, {emptyFS, false},
		{pickle.Global{Module: "builtins", Name: "int"}, true},
		{pickle.NewObject(pickle.Global{Module: "myapp.models", Name: "Account"}), true},
		{obj("decimal", "Decimal", pickle.Reduce, "0.00"), false},
		{obj("decimal", "Decimal", pickle.Reduce, "-0E+3"), false},
		{obj("decimal", "Decimal", pickle.Reduce, "12.50"), true},
		{obj("decimal", "Decimal", pickle.Reduce, "NaN"), true},
		{obj("builtins", "complex", pickle.Reduce, 0.0, 0.0), false},
		{obj("builtins", "complex", pickle.Reduce, 0.0, 1.0), true},
		{obj("datetime", "timedelta", pickle.Reduce, int64(0), int64(0), int64(0)), false},
		{obj("datetime", "timedelta", pickle.Reduce, int64(0), int64(1), int64(0)), true},
		{obj("datetime", "datetime", pickle.Reduce, []byte{7, 234, 11, 21, 9, 30, 0, 0, 0, 0}), true},
		{od, false}, {odFull, true},
		{obj("collections", "Counter", pickle.Reduce, pickle.NewDict()), false},
		{userDict, false},
	} {
		assert.Equal(t, tc.want, Truthy(tc.v), "Truthy(%s %v)", pickle.TypeName(tc.v), tc.v)
	}
}

func TestAttributes(t *testing.T) {
	s := NewSession(Session3Class, "", time.Now())
	for _, name := range []string{"id", "user", "_remote_address", "_creation_time", "_access_time", "_form_tokens"} {
		assert.ErrorIs(t, s.Set(name, int64(1)), ErrReserved, name)
		assert.ErrorIs(t, s.Delete(name), ErrReserved, name)
		_, ok := s.Get(name)
		assert.False(t, ok, name)
	}
	// _csrf_token and data are ordinary attributes of a session3 session...
	require.NoError(t, s.Set("data", "x"))
	require.NoError(t, s.Delete("data"))
	// ...but reserved where the class has them.
	assert.ErrorIs(t, NewSession(QuixoteClass, "", time.Now()).Set("_csrf_token", "x"), ErrReserved)
	assert.ErrorIs(t, NewSession(DictSessionClass, "", time.Now()).Set("data", "x"), ErrReserved)

	require.NoError(t, s.Set("counter", 3))
	require.NoError(t, s.Set("name", "bob"))
	require.NoError(t, s.Set("ratio", float32(0.5)))
	require.NoError(t, s.Set("flag", true))
	require.NoError(t, s.Set("big", uint64(1<<63)))
	n, ok := s.GetInt("counter")
	assert.True(t, ok)
	assert.Equal(t, int64(3), n)
	str, ok := s.GetString("name")
	assert.True(t, ok)
	assert.Equal(t, "bob", str)
	_, ok = s.GetString("counter")
	assert.False(t, ok, "counter is not a str")
	f, ok := s.GetFloat("ratio")
	assert.True(t, ok)
	assert.Equal(t, 0.5, f)
	b, ok := s.GetBool("flag")
	assert.True(t, ok)
	assert.True(t, b)
	v, _ := s.Get("big")
	assert.Equal(t, "9223372036854775808", v.(*big.Int).String())
	assert.Equal(t, []string{"counter", "name", "ratio", "flag", "big"}, s.Names())
	require.NoError(t, s.Set("counter", 4))
	assert.Equal(t, []string{"counter", "name", "ratio", "flag", "big"}, s.Names(), "a changed attribute keeps its place")
	require.NoError(t, s.Delete("name"))
	require.NoError(t, s.Delete("missing"))
	assert.Equal(t, []string{"counter", "ratio", "flag", "big"}, s.Names())
	err := s.Set("x", make(chan int))
	assert.ErrorIs(t, err, ErrValue)
	assert.EqualError(t, err, "quixote: value cannot be pickled: chan int: pickle: Go chan int has no Python form")

	// Whatever EncodeAttr can write, Set stores too: as pickle.MarshalValue makes it.
	when := time.Date(2026, 12, 2, 23, 5, 0, 0, time.UTC)
	for name, v := range map[string]any{
		"when":  when,
		"tags":  []string{"a", "b"},
		"prefs": map[string]any{"theme": "dark", "size": 3},
		"point": struct{ X, Y int }{1, 2},
	} {
		require.NoError(t, s.Set(name, v), name)
		want, err := pickle.MarshalValue(v)
		require.NoError(t, err)
		got, _ := s.Get(name)
		assert.Equal(t, want, got, name)
	}
}

func TestDictSessionItems(t *testing.T) {
	s := NewSession(DictSessionClass, "", time.Now())
	require.NoError(t, s.SetUser("dora"))
	assert.False(t, s.truthy(), "an empty DictSession is false")
	assert.False(t, s.keep(), "so session3 does not keep it, user or not")
	require.NoError(t, s.SetItem("cart", pickle.NewList()))
	require.NoError(t, s.SetItem(int64(7), "seven"))
	assert.True(t, s.keep())
	assert.Equal(t, []any{"cart", int64(7)}, s.Keys())
	v, ok := s.Item(int64(7))
	assert.True(t, ok)
	assert.Equal(t, "seven", v)
	_, ok = s.Get("cart")
	assert.False(t, ok, "keys are not attributes")
	require.NoError(t, s.Set("cart", "attribute"))
	v, _ = s.Item("cart")
	assert.IsType(t, &pickle.List{}, v, "attributes are not keys")
	assert.Equal(t, []string{"cart"}, s.Names())
	assert.True(t, s.DeleteItem("cart"))
	assert.False(t, s.DeleteItem("cart"))
	assert.Equal(t, 1, s.Data().Len())

	plain := NewSession(Session3Class, "", time.Now())
	assert.ErrorIs(t, plain.SetItem("k", "v"), ErrNotDictSession)
	assert.Nil(t, plain.Data())
	assert.Empty(t, plain.Keys())
	assert.False(t, plain.DeleteItem("k"))
}

func TestFormTokens(t *testing.T) {
	for _, tc := range []struct {
		class Class
		max   int
	}{{Session3Class, 32}, {QuixoteClass, 16}, {Class{Module: "m", Name: "C", MaxFormTokens: 3}, 3}} {
		s := NewSession(tc.class, "", time.Now())
		var made []string
		for range tc.max + 5 {
			tok := s.CreateFormToken()
			require.Regexp(t, tokenRE, tok)
			made = append(made, tok)
		}
		assert.Equal(t, made[5:], s.FormTokens(), "%s keeps the newest %d", tc.class, tc.max)
		assert.False(t, s.HasFormToken(made[4]), "oldest dropped")
		assert.True(t, s.HasFormToken(made[5]))
	}

	s := NewSession(Session3Class, "", time.Now())
	a, b := s.CreateFormToken(), s.CreateFormToken()
	assert.True(t, s.RemoveFormToken(a))
	assert.False(t, s.RemoveFormToken(a))
	assert.Equal(t, []string{b}, s.FormTokens())

	// CheckFormToken reads _form_token from the query or a POSTed form and consumes it.
	get := httptest.NewRequest("GET", "/submit?_form_token="+b, nil)
	assert.True(t, s.CheckFormToken(get))
	assert.False(t, s.CheckFormToken(httptest.NewRequest("GET", "/submit?_form_token="+b, nil)), "accepted once")
	c := s.CreateFormToken()
	post := httptest.NewRequest("POST", "/submit", strings.NewReader(url.Values{"_form_token": {c}}.Encode()))
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	assert.True(t, s.CheckFormToken(post))
	assert.False(t, s.CheckFormToken(httptest.NewRequest("GET", "/submit", nil)), "no token")
	assert.False(t, s.CheckFormToken(httptest.NewRequest("GET", "/submit?_form_token=forged", nil)))
}

func TestValidCSRFToken(t *testing.T) {
	q := NewSession(QuixoteClass, "", time.Now())
	tok, err := q.CSRFToken()
	require.NoError(t, err)
	form := func(method, field, value string) *http.Request {
		r := httptest.NewRequest(method, "/", strings.NewReader(url.Values{field: {value}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	assert.True(t, q.ValidCSRFToken(form("POST", "csrf_token", tok), ""))
	assert.True(t, q.ValidCSRFToken(form("POST", "tok", tok), "tok"))
	assert.False(t, q.ValidCSRFToken(form("PUT", "csrf_token", tok), ""), "POST only")
	assert.False(t, q.ValidCSRFToken(form("POST", "csrf_token", tok+"x"), ""))
	assert.False(t, q.ValidCSRFToken(form("POST", "csrf_token", ""), ""))
	assert.False(t, NewSession(Session3Class, "", time.Now()).ValidCSRFToken(form("POST", "csrf_token", tok), ""))
}

func TestTouch(t *testing.T) {
	t0 := time.Unix(1795303038, 63304400)
	s := NewSession(Session3Class, "", t0)
	assert.False(t, s.Touch(t0.Add(time.Second)), "exactly 1 s is not more than the resolution")
	assert.True(t, s.AccessTime().Equal(s.CreationTime()))
	assert.True(t, s.Touch(t0.Add(1500*time.Millisecond)))
	assert.WithinDuration(t, t0.Add(1500*time.Millisecond), s.AccessTime(), time.Microsecond)
	assert.WithinDuration(t, t0, s.CreationTime(), time.Microsecond, "creation time stays")
	assert.False(t, s.Touch(t0.Add(2*time.Second)))
}

func TestEpochSeconds(t *testing.T) {
	for _, f := range []float64{0, 1795303038.0633044, 1795303038.065931, 1.5, -1.25} {
		assert.Equal(t, f, epochSeconds(fromEpochSeconds(f)), "%v", f)
	}
	assert.True(t, fromEpochSeconds(1e300).IsZero())
}

func TestExpireMark(t *testing.T) {
	s := NewSession(Session3Class, "", time.Now())
	assert.False(t, s.Expired())
	s.Expire()
	assert.True(t, s.Expired())
}

// TestUserName: a str user is its own name; an object user is named by the first of
// UserNameAttrs it has as a non-empty str or an int.
func TestUserName(t *testing.T) {
	obj := func(kv ...any) *pickle.Object {
		o := pickle.NewObject(pickle.Global{Module: "shop.auth", Name: "User"})
		for i := 0; i < len(kv); i += 2 {
			require.NoError(t, o.SetAttr(kv[i].(string), kv[i+1]))
		}
		return o
	}
	for _, c := range []struct {
		user any
		want string
	}{
		{nil, ""}, {"alice", "alice"}, {"", ""}, {int64(3), ""},
		{obj("name", "Ann Smith", "login", "ann"), "ann"},
		{obj("id", int64(42), "name", "Bob"), "42"},
		{obj("username", "", "name", "Carol"), "Carol"},
		{obj("email", "x@example.org"), ""},
	} {
		s := NewSession(Session3Class, "", time.Now())
		require.NoError(t, s.SetUser(c.user))
		assert.Equal(t, c.want, s.UserName(), "%#v", c.user)
	}
}
