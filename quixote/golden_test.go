package quixote

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/qxbridge/qxbridge/pickle"
)

// pyFloat is a float literal CPython reads back bit for bit.
func pyFloat(f float64) string {
	return "float.fromhex('" + strconv.FormatFloat(f, 'x', -1, 64) + "')"
}

// pyStr is a str literal (JSON string syntax is valid Python for these values).
func pyStr(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

type goldenCase struct {
	Name     string         `json:"name"`
	Mode     string         `json:"mode"`
	Original string         `json:"original,omitempty"`
	Result   string         `json:"result"`
	Change   map[string]any `json:"change,omitempty"`
	Class    string         `json:"class,omitempty"`
	Remote   string         `json:"remote_address,omitempty"`
}

// readAll reads every attribute of a fixture session through the API and checks
// it against what CPython shows for the file (see testdata/README.md).
func readAll(t *testing.T, name string, s *Session) {
	t.Helper()
	times := map[string]float64{
		"session3-login.pkl":          1795303038.0633044,
		"session3-counter-tokens.pkl": 1795303038.0633044,
		"dictsession-cart.pkl":        1795303038.0654354,
		"subclass-rich.pkl":           1795303038.065931,
		"quixote-session.pkl":         1795303038.0710256,
	}
	assert.Equal(t, "203.0.113.7", s.RemoteAddress())
	assert.Equal(t, times[name], epochSeconds(s.CreationTime()))
	assert.Equal(t, times[name], epochSeconds(s.AccessTime()))
	user, _ := s.UserString()
	switch name {
	case "session3-login.pkl", "session3-counter-tokens.pkl":
		assert.Equal(t, "session3.Session.Session", s.Class().String())
		assert.Equal(t, KindSession3, s.Class().Kind)
		assert.Equal(t, "4qihCikDywk", s.ID())
		assert.Equal(t, "alice", user)
		assert.Equal(t, []string{"counter"}, s.Names())
		n, ok := s.GetInt("counter")
		assert.True(t, ok)
		if name == "session3-login.pkl" {
			assert.Equal(t, int64(0), n)
			assert.Empty(t, s.FormTokens())
		} else {
			assert.Equal(t, int64(3), n)
			assert.Equal(t, []string{"epYIEYFdJ-ka1_L1fwoZRw", "vBRv0fYGV6q389utr30XIg"}, s.FormTokens())
		}
	case "dictsession-cart.pkl":
		assert.Equal(t, KindDictSession, s.Class().Kind)
		assert.Equal(t, "bb2_-Qy4sEs", s.ID())
		assert.Equal(t, "dora", user)
		assert.Empty(t, s.Names(), "data is not an attribute")
		assert.Equal(t, []any{"cart", "note"}, s.Keys())
		cart, _ := s.Item("cart")
		l := cart.(*pickle.List)
		require.Len(t, l.Items, 2)
		assert.Equal(t, []any{"sku-1", int64(2)}, l.Items[0].(*pickle.Tuple).Items)
		assert.Equal(t, []any{"sku-9", int64(1)}, l.Items[1].(*pickle.Tuple).Items)
		note, _ := s.Item("note")
		assert.Equal(t, "gift wrap ✓", note)
		assert.True(t, s.keep())
	case "subclass-rich.pkl":
		assert.Equal(t, "myapp.models.ShopSession", s.Class().String())
		assert.Equal(t, "Q4PJ1fkwwK8", s.ID())
		acct := s.User().(*pickle.Object)
		g, _ := acct.Class()
		assert.Equal(t, "myapp.models.Account", g.String())
		login, _ := acct.Attr("login")
		assert.Equal(t, "carol", login)
		roles, _ := acct.Attr("roles")
		assert.ElementsMatch(t, []any{"ops", "admin"}, roles.(*pickle.Set).Items())
		last, _ := acct.Attr("last_login")
		assert.Equal(t, "datetime.datetime", pickle.TypeName(last))
		assert.True(t, s.LoggedIn())
		assert.Equal(t, []string{"cart", "total", "seen"}, s.Names())
		cart, _ := s.Get("cart")
		n, _ := cart.(*pickle.Dict).Get("sku-1")
		assert.Equal(t, int64(2), n)
		total, _ := s.Get("total")
		assert.Equal(t, []any{"12.50"}, total.(*pickle.Object).Args.Items)
		seen, _ := s.Get("seen")
		assert.Equal(t, []any{"home", "cart"}, seen.(*pickle.Tuple).Items)
		assert.True(t, s.HasInfo())
	case "quixote-session.pkl":
		assert.Equal(t, KindQuixote, s.Class().Kind)
		assert.Equal(t, "_dz4opoXoCaSYW452SPgjQ", s.ID())
		assert.Equal(t, "alice", user)
		assert.Equal(t, []string{"8mbAEnIvsnFBTWGCODhk9A"}, s.FormTokens())
		csrf, _ := s.Object().Attr("_csrf_token")
		assert.Nil(t, csrf)
		assert.Equal(t, []string{"counter"}, s.Names())
		n, _ := s.GetInt("counter")
		assert.Equal(t, int64(0), n)
	default:
		t.Fatalf("no expectations for %s", name)
	}
}

// goldenChanges are the single changes made to each fixture: each returns the
// change description quixote_golden_check.py verifies.
var goldenChanges = map[string][]struct {
	name   string
	change func(t *testing.T, s *Session) map[string]any
}{
	"session3-login.pkl": {
		{"counter", func(t *testing.T, s *Session) map[string]any {
			require.NoError(t, s.Set("counter", 1))
			return map[string]any{"attr": "counter", "expect": "1"}
		}},
		{"user", func(t *testing.T, s *Session) map[string]any {
			require.NoError(t, s.SetUser("bob"))
			return map[string]any{"attr": "user", "expect": "'bob'"}
		}},
		{"new attribute", func(t *testing.T, s *Session) map[string]any {
			require.NoError(t, s.Set("theme", "dark"))
			return map[string]any{"attr": "theme", "added": true, "expect": "'dark'"}
		}},
		{"access time", func(t *testing.T, s *Session) map[string]any {
			require.True(t, s.Touch(s.AccessTime().Add(90*time.Second)))
			return map[string]any{"attr": "_access_time", "expect": pyFloat(epochSeconds(s.AccessTime()))}
		}},
	},
	"session3-counter-tokens.pkl": {
		{"remove token", func(t *testing.T, s *Session) map[string]any {
			require.True(t, s.RemoveFormToken("epYIEYFdJ-ka1_L1fwoZRw"))
			return map[string]any{"attr": "_form_tokens", "expect": "['vBRv0fYGV6q389utr30XIg']"}
		}},
		{"create token", func(t *testing.T, s *Session) map[string]any {
			tok := s.CreateFormToken()
			return map[string]any{"attr": "_form_tokens",
				"expect": "['epYIEYFdJ-ka1_L1fwoZRw', 'vBRv0fYGV6q389utr30XIg', " + pyStr(tok) + "]"}
		}},
		{"delete attribute", func(t *testing.T, s *Session) map[string]any {
			require.NoError(t, s.Delete("counter"))
			return map[string]any{"attr": "counter", "deleted": true}
		}},
	},
	"dictsession-cart.pkl": {
		{"change key", func(t *testing.T, s *Session) map[string]any {
			require.NoError(t, s.SetItem("note", "no wrap ✗"))
			return map[string]any{"item": "note", "expect": pyStr("no wrap ✗")}
		}},
		{"new key", func(t *testing.T, s *Session) map[string]any {
			require.NoError(t, s.SetItem("coupon", 5))
			return map[string]any{"item": "coupon", "expect": "5"}
		}},
		{"logout", func(t *testing.T, s *Session) map[string]any {
			require.NoError(t, s.SetUser(nil))
			return map[string]any{"attr": "user", "expect": "None"}
		}},
	},
	"subclass-rich.pkl": {
		{"decimal", func(t *testing.T, s *Session) map[string]any {
			total := &pickle.Object{Callable: pickle.Global{Module: "decimal", Name: "Decimal"},
				Construct: pickle.Reduce, Args: pickle.NewTuple("13.00")}
			require.NoError(t, s.Set("total", total))
			return map[string]any{"attr": "total", "expect": "Decimal('13.00')"}
		}},
		{"cart key", func(t *testing.T, s *Session) map[string]any {
			cart, _ := s.Get("cart")
			require.NoError(t, cart.(*pickle.Dict).Set("sku-2", int64(1)))
			return map[string]any{"attr": "cart", "expect": "{'sku-1': 2, 'sku-2': 1}"}
		}},
		{"user object", func(t *testing.T, s *Session) map[string]any {
			require.NoError(t, s.User().(*pickle.Object).SetAttr("login", "dave"))
			return map[string]any{"attr": "user", "check": "lambda u: type(u).__name__ == 'Account' and " +
				"vars(u) == {'login': 'dave', 'roles': {'ops', 'admin'}, " +
				"'last_login': datetime.datetime(2026, 11, 21, 9, 30)}"}
		}},
	},
	"quixote-session.pkl": {
		{"csrf token", func(t *testing.T, s *Session) map[string]any {
			tok, err := s.CSRFToken()
			require.NoError(t, err)
			return map[string]any{"attr": "_csrf_token", "expect": pyStr(tok)}
		}},
		{"counter", func(t *testing.T, s *Session) map[string]any {
			require.NoError(t, s.Set("counter", 5))
			return map[string]any{"attr": "counter", "expect": "5"}
		}},
	},
}

// TestGolden loads each session3 fixture, reads every attribute, makes one change,
// saves, and has CPython verify that exactly that change happened.
func TestGolden(t *testing.T) {
	testpeer.Python(t)
	dir := t.TempDir()
	var cases []goldenCase
	for _, name := range fixtures {
		orig := testpeer.Testdata("session3", name)
		data := fixture(t, name)
		// Unchanged, a loaded session encodes to an equal pickle.
		s, err := Decode(data, shopClass)
		require.NoError(t, err, name)
		readAll(t, name, s)
		same, err := s.Encode()
		require.NoError(t, err)
		sameFile := filepath.Join(dir, "unchanged-"+name)
		require.NoError(t, os.WriteFile(sameFile, same, 0o644))
		cases = append(cases, goldenCase{Name: name + "/unchanged", Mode: "change", Original: orig, Result: sameFile,
			Change: map[string]any{"attr": "id", "expect": pyStr(s.ID())}})

		require.NotEmpty(t, goldenChanges[name], name)
		for i, ch := range goldenChanges[name] {
			s, err := Decode(data, shopClass)
			require.NoError(t, err)
			spec := ch.change(t, s)
			out, err := s.Encode()
			require.NoError(t, err, "%s/%s", name, ch.name)
			result := filepath.Join(dir, strconv.Itoa(i)+"-"+name)
			require.NoError(t, os.WriteFile(result, out, 0o644))
			cases = append(cases, goldenCase{Name: name + "/" + ch.name, Mode: "change",
				Original: orig, Result: result, Change: spec})
		}
	}
	// New sessions made in Go, as the manager stores them.
	for _, c := range []Class{Session3Class, DictSessionClass, QuixoteClass, shopClass} {
		s := NewSession(c, "203.0.113.7", time.Now())
		s.setID(NewID())
		require.NoError(t, s.SetUser("alice"))
		out, err := s.Encode()
		require.NoError(t, err)
		result := filepath.Join(dir, "new-"+c.String())
		require.NoError(t, os.WriteFile(result, out, 0o644))
		cases = append(cases, goldenCase{Name: "new " + c.String(), Mode: "new", Result: result,
			Class: c.String(), Remote: "203.0.113.7"})
	}

	goldenCheckOK(t, dir, cases, len(cases))
}

// TestGoldenCheckerCatchesChanges makes sure the CPython checker is not blind: an
// extra change, a changed type or a changed class must fail it.
func TestGoldenCheckerCatchesChanges(t *testing.T) {
	testpeer.Python(t)
	dir := t.TempDir()
	orig := testpeer.Testdata("session3", "session3-login.pkl")
	write := func(name string, f func(s *Session)) string {
		s, err := Decode(fixture(t, "session3-login.pkl"))
		require.NoError(t, err)
		f(s)
		out, err := s.Encode()
		require.NoError(t, err)
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, out, 0o644))
		return p
	}
	counter1 := map[string]any{"attr": "counter", "expect": "1"}
	cases := []goldenCase{
		{Name: "two changes", Mode: "change", Original: orig, Change: counter1, Result: write("two", func(s *Session) {
			_ = s.Set("counter", 1)
			_ = s.SetUser("bob")
		})},
		{Name: "int became float", Mode: "change", Original: orig, Change: counter1, Result: write("float", func(s *Session) {
			_ = s.Set("counter", 1.0)
		})},
		{Name: "class changed", Mode: "change", Original: orig, Change: counter1, Result: write("class", func(s *Session) {
			_ = s.Set("counter", 1)
			s.Object().Callable = QuixoteClass.Global()
		})},
		{Name: "order changed", Mode: "change", Original: orig, Change: counter1, Result: write("order", func(s *Session) {
			_ = s.Set("counter", 1)
			u := s.User()
			s.Object().DelAttr("user")
			_ = s.Object().SetAttr("user", u)
		})},
	}
	out, err := runGoldenCheck(t, dir, cases)
	require.Error(t, err, "%s", out)
	for _, c := range cases {
		assert.Contains(t, out, "FAIL "+c.Name+":", "%s", out)
	}
}
