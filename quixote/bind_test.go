package quixote

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/qxbridge/qxbridge/pickle"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Go types of the fixture application's myapp.models classes.

type shopItem struct {
	Obj   *pickle.Object `pickle:",object"`
	SKU   string         `pickle:"sku"`
	Name  string
	Price pickle.Decimal
	Qty   int
}

func (shopItem) PythonClass() pickle.Global {
	return pickle.Global{Module: "myapp.models", Name: "CartItem"}
}

type shopUser struct {
	Login     string
	Balance   pickle.Decimal
	LastLogin time.Time
	Favorite  *shopItem
}

// bindSession has CPython build a myapp.models.ShopSession holding a User object and a
// cart of CartItems (testdata/py/pickle_bind_check.py) and decodes it.
func bindSession(t *testing.T) ([]byte, *Session) {
	t.Helper()
	cmd := testpeer.PythonCmd(t, "pickle_bind_check.py", "make", "session")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	data, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	s, err := Decode(data, shopClass)
	require.NoError(t, err)
	return data, s
}

func TestSessionDecodeAttr(t *testing.T) {
	_, s := bindSession(t)
	var u shopUser
	require.NoError(t, s.DecodeAttr("user", &u))
	assert.Equal(t, "dora", u.Login)
	assert.Equal(t, pickle.Decimal("12345678901234567890.123456789"), u.Balance)
	assert.Equal(t, time.Date(2026, 12, 1, 9, 30, 15, 250000000, time.UTC), u.LastLogin)
	require.NotNil(t, u.Favorite)
	var cart []shopItem
	require.NoError(t, s.DecodeAttr("cart", &cart))
	require.Len(t, cart, 2)
	assert.Same(t, u.Favorite.Obj, cart[0].Obj, "the favorite is the cart's first item")
	assert.Equal(t, pickle.Decimal("7.25"), cart[1].Price)
	var visits int
	require.NoError(t, s.DecodeAttr("visits", &visits))
	assert.Equal(t, 3, visits)
	var id string
	require.NoError(t, s.DecodeAttr("id", &id))
	assert.Equal(t, "bIgSeSsIoN1", id)

	err := s.DecodeAttr("wishlist", &cart)
	assert.ErrorIs(t, err, ErrNoAttribute)
	var wrong []struct{ Price int }
	err = s.DecodeAttr("cart", &wrong)
	var me *pickle.MappingError
	require.ErrorAs(t, err, &me)
	assert.EqualError(t, err, "pickle: session.cart[0].price: Python decimal.Decimal into Go int")
	var flag bool
	assert.EqualError(t, s.DecodeAttr("visits", &flag), "pickle: session.visits: Python int into Go bool")
}

// TestSessionEncodeAttrLoadsInCPython changes a session's objects in Go and has CPython
// compare the session it loads with the one it gets by making the change itself.
func TestSessionEncodeAttrLoadsInCPython(t *testing.T) {
	data, s := bindSession(t)

	// Written back unchanged, the session file is the same bytes.
	var u shopUser
	var cart []shopItem
	require.NoError(t, s.DecodeAttr("user", &u))
	require.NoError(t, s.DecodeAttr("cart", &cart))
	require.NoError(t, s.EncodeAttr("user", u))
	require.NoError(t, s.EncodeAttr("cart", cart))
	out, err := s.Encode()
	require.NoError(t, err)
	assert.Equal(t, data, out)

	// change_checkout of pickle_bind_check.py.
	cart[1].Qty++
	cart = append(cart, shopItem{SKU: "sku-9", Name: "Gift card", Price: "25.00", Qty: 1})
	u.Balance = "12345678901234567890.113456789"
	u.LastLogin = time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)
	require.NoError(t, s.EncodeAttr("cart", cart))
	require.NoError(t, s.EncodeAttr("user", &u))
	require.NoError(t, s.EncodeAttr("visits", 4))
	// Refused: an accessor's attribute, and a value with no Python form (the session
	// stays as it was).
	assert.ErrorIs(t, s.EncodeAttr("_form_tokens", []string{}), ErrReserved)
	err = s.EncodeAttr("cart", []any{cart[0], make(chan int)})
	assert.EqualError(t, err, "pickle: session.cart[1]: Go chan int has no Python form")
	out, err = s.Encode()
	require.NoError(t, err)

	var in bytes.Buffer
	require.NoError(t, json.NewEncoder(&in).Encode(map[string]any{"case": "session", "change": "checkout", "pickle": out}))
	cmd := testpeer.PythonCmd(t, "pickle_bind_check.py", "check")
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	res, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	var r2 struct {
		Graph bool    `json:"graph"`
		Why   *string `json:"why"`
		Error *string `json:"error"`
	}
	require.NoError(t, json.Unmarshal(res, &r2))
	if r2.Error != nil {
		t.Fatalf("CPython cannot load the session: %s", *r2.Error)
	}
	if !r2.Graph && r2.Why != nil {
		t.Fatalf("CPython loads another session than its own change gives:\n%s", *r2.Why)
	}
}

func TestSessionDictSessionItems(t *testing.T) {
	data := fixture(t, "dictsession-cart.pkl") // written by the real session3
	s, err := Decode(data)
	require.NoError(t, err)
	var cart []struct {
		SKU string
		Qty int
	}
	// The cart is a list of (sku, qty) tuples: a tuple decodes into an array.
	var tuples [][2]any
	require.NoError(t, s.DecodeItem("cart", &tuples))
	assert.Equal(t, [][2]any{{"sku-1", int64(2)}, {"sku-9", int64(1)}}, tuples)
	err = s.DecodeItem("cart", &cart)
	assert.EqualError(t, err, `pickle: session["cart"][0]: Python tuple into Go struct { SKU string; Qty int }`)
	var note string
	require.NoError(t, s.DecodeItem("note", &note))
	assert.Equal(t, "gift wrap ✓", note)
	assert.ErrorIs(t, s.DecodeItem("wishlist", &note), ErrNoAttribute)

	// Written back unchanged: the same bytes. Changed: the tuple that changed is new.
	require.NoError(t, s.EncodeItem("cart", tuples))
	out, err := s.Encode()
	require.NoError(t, err)
	assert.Equal(t, data, out)
	tuples[1][1] = 3
	require.NoError(t, s.EncodeItem("cart", tuples))
	require.NoError(t, s.EncodeItem("count", 2))
	v, _ := s.Item("cart")
	assert.Equal(t, int64(3), v.(*pickle.List).Items[1].(*pickle.Tuple).Items[1])
	keys := s.Keys()
	assert.Equal(t, []any{"cart", "note", "count"}, keys)

	plain := NewSession(Session3Class, "", time.Now())
	assert.ErrorIs(t, plain.EncodeItem("cart", tuples), ErrNotDictSession)
}
