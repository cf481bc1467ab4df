package main

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math/big"
	"time"

	"github.com/qxbridge/qxbridge/pickle"
)

// User is shop.auth.User, the logged-in user in session.user.
type User struct {
	Login string    `pickle:"login"`
	Name  string    `pickle:"name"`
	Email string    `pickle:"email"`
	Since time.Time `pickle:"since"`
}

// PythonClass makes decoding anything but a shop.auth.User into a User an error.
func (User) PythonClass() pickle.Global { return pickle.Global{Module: "shop.auth", Name: "User"} }

// CartItem is shop.models.CartItem, one line of session.cart.
type CartItem struct {
	// Object is the item's Python object: writing the cart back changes that
	// object, wherever the item has moved; nil makes a new shop.models.CartItem.
	Object *pickle.Object `pickle:",object"`
	SKU    string         `pickle:"sku"`
	Name   string         `pickle:"name"`
	Price  pickle.Decimal `pickle:"price"`
	Qty    int            `pickle:"qty"`
}

// PythonClass makes a new CartItem a shop.models.CartItem in Python.
func (CartItem) PythonClass() pickle.Global {
	return pickle.Global{Module: "shop.models", Name: "CartItem"}
}

// Total is the line's price times its quantity.
func (i CartItem) Total() (*big.Rat, error) {
	p, ok := i.Price.Rat()
	if !ok {
		return nil, fmt.Errorf("cart item %s: price %s is not a number", i.SKU, i.Price)
	}
	return p.Mul(p, new(big.Rat).SetInt64(int64(i.Qty))), nil
}

// Order is shop.models.Order, a placed order in session.orders.
type Order struct {
	Number int            `pickle:"number"`
	Items  []CartItem     `pickle:"items"`
	Total  pickle.Decimal `pickle:"total"`
	Placed time.Time      `pickle:"placed"`
}

// Product is an entry of the catalog.
type Product struct {
	SKU   string         `json:"sku"`
	Name  string         `json:"name"`
	Price pickle.Decimal `json:"price"`
}

// The catalog is the Python side's own file, so both sides sell the same things at
// the same prices.
//
//go:embed python/shop/catalog.json
var catalogJSON []byte

// catalog is the products, in the file's order.
var catalog = mustCatalog(catalogJSON)

func mustCatalog(data []byte) []Product {
	var ps []Product
	if err := json.Unmarshal(data, &ps); err != nil {
		panic("catalog.json: " + err.Error())
	}
	for i, p := range ps {
		d, err := pickle.ParseDecimal(string(p.Price))
		if err != nil {
			panic("catalog.json: " + err.Error())
		}
		ps[i].Price = d // as Python's Decimal(text) has it
	}
	return ps
}

func product(sku string) (Product, bool) {
	for _, p := range catalog {
		if p.SKU == sku {
			return p, true
		}
	}
	return Product{}, false
}

// money writes an amount with two decimals, as the Python pages do
// (Decimal.quantize(Decimal("0.01"))).
func money(r *big.Rat) string { return r.FloatString(2) }

// decimalMoney is money for a Decimal.
func decimalMoney(d pickle.Decimal) string {
	r, ok := d.Rat()
	if !ok {
		return d.String()
	}
	return money(r)
}
