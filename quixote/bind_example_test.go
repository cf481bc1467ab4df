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
