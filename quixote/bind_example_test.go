package quixote_test

import (
	"fmt"
	"log"
	"time"

	"github.com/qxbridge/qxbridge/pickle"
	"github.com/qxbridge/qxbridge/quixote"
)

// CartItem is the Go view of the application's shop.models.CartItem.
type CartItem struct {
	Object *pickle.Object `pickle:",object"` // keeps each item's Python object
	SKU    string         `pickle:"sku"`
	Price  pickle.Decimal
	Qty    int
}

// PythonClass makes a new CartItem a shop.models.CartItem in Python.
func (CartItem) PythonClass() pickle.Global {
	return pickle.Global{Module: "shop.models", Name: "CartItem"}
}

func ExampleSession_DecodeAttr() {
	shop := quixote.Class{Module: "shop.session", Name: "ShopSession", Kind: quixote.KindSession3}
	s := quixote.NewSession(shop, "198.51.100.23", time.Now())

	// A handler adds to the cart (the session's cart attribute, a list of
	// shop.models.CartItem objects), as Python code would.
	var cart []CartItem
	if err := s.DecodeAttr("cart", &cart); err != nil {
		fmt.Println(err) // a new session has no cart yet
	}
	cart = append(cart, CartItem{SKU: "tea-1", Price: "4.50", Qty: 2})
	if err := s.EncodeAttr("cart", cart); err != nil {
		log.Fatal(err)
	}

	// Another request reads it back.
	cart = nil
	if err := s.DecodeAttr("cart", &cart); err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(cart), cart[0].SKU, cart[0].Price, pickle.TypeName(cart[0].Object))

	// A Go type that does not fit names the attribute.
	var wrong []struct{ Price float64 }
	fmt.Println(s.DecodeAttr("cart", &wrong))
	// Output:
	// quixote: session has no such attribute: cart
	// 1 tea-1 4.50 shop.models.CartItem
	// pickle: session.cart[0].price: Python decimal.Decimal into Go float64
}

// Preferences is the part of the application's myapp.models.Profile that a Go page
// changes; the profile's other attributes are Python's business.
type Preferences struct {
	Theme string `pickle:"theme"`
}

// EncodeAttr writes a Go value into the objects the attribute already holds: only
// what the Go value names changes, and Python finds every other attribute as it left
// it. (Set would replace the whole attribute with a new value.)
func ExampleSession_EncodeAttr() {
	s := quixote.NewSession(quixote.Session3Class, "198.51.100.23", time.Now())
	// The profile as Python code put it in the session.
	profile := pickle.NewObject(pickle.Global{Module: "myapp.models", Name: "Profile"})
	_ = profile.SetAttr("name", "Ann")
	_ = profile.SetAttr("theme", "light")
	_ = profile.SetAttr("_cache", pickle.NewDict())
	if err := s.Set("profile", profile); err != nil {
		log.Fatal(err)
	}

	if err := s.EncodeAttr("profile", Preferences{Theme: "dark"}); err != nil {
		log.Fatal(err)
	}

	v, _ := s.Get("profile")
	obj := v.(*pickle.Object)
	name, _ := obj.Attr("name")
	theme, _ := obj.Attr("theme")
	fmt.Println(obj == profile, obj.Attrs().Keys(), name, theme)
	// Output:
	// true [name theme _cache] Ann dark
}
