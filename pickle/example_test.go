package pickle_test

import (
	"fmt"
	"log"
	"math/big"

	"github.com/qxbridge/qxbridge/pickle"
)

// cartPickle is what CPython's pickle.dumps(cart, 4) writes for a list of one
// myapp.models.CartItem whose attributes are sku, name, price (a Decimal), qty and
// added (an aware datetime).
const cartPickle = "\x80\x04\x95\xd2\x00\x00\x00\x00\x00\x00\x00]\x94\x8c\fmyapp.models\x94\x8c\bCartItem\x94\x93\x94)\x81\x94}\x94(\x8c\x03sku\x94\x8c\x05sku-1\x94\x8c\x04name\x94\x8c\x03Tea\x94\x8c\x05price\x94\x8c\adecimal\x94\x8c\aDecimal\x94\x93\x94\x8c\x044.50\x94\x85\x94R\x94\x8c\x03qty\x94K\x02\x8c\x05added\x94\x8c\bdatetime\x94\x8c\bdatetime\x94\x93\x94C\n\a\xea\f\x01\t\x1e\x00\x00\x00\x00\x94h\x13\x8c\btimezone\x94\x93\x94h\x13\x8c\ttimedelta\x94\x93\x94K\x00K\x00K\x00\x87\x94R\x94\x85\x94R\x94\x86\x94R\x94uba."

// CartItem is the Go view of the application's myapp.models.CartItem: the fields
// name the attributes Go works with; the others (added) are kept as they are.
type CartItem struct {
	Object *pickle.Object `pickle:",object"` // the Python object, so edits go back to it
	SKU    string         `pickle:"sku"`
	Name   string
	Price  pickle.Decimal
	Qty    int
}

// PythonClass makes a new CartItem value a new myapp.models.CartItem in Python.
func (CartItem) PythonClass() pickle.Global {
	return pickle.Global{Module: "myapp.models", Name: "CartItem"}
}

// loadCart decodes cartPickle into the Python value and its Go view.
func loadCart() (any, []CartItem) {
	v, err := pickle.Unmarshal([]byte(cartPickle))
	if err != nil {
		log.Fatal(err)
	}
	var cart []CartItem
	if err := pickle.UnmarshalValue(v, &cart); err != nil {
		log.Fatal(err)
	}
	return v, cart
}

func ExampleUnmarshal() {
	v, err := pickle.Unmarshal([]byte("\x80\x04\x95\x1e\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x04user\x94\x8c\x04dora\x94\x8c\x06visits\x94K\x03u."))
	if err != nil {
		log.Fatal(err)
	}
	d := v.(*pickle.Dict)
	user, _ := d.Get("user")
	visits, _ := d.Get("visits")
	fmt.Println(user, visits)
	// Output: dora 3
}

func ExampleMarshal() {
	d := pickle.NewDict()
	_ = d.Set("user", "dora")
	_ = d.Set("visits", int64(4))
	data, err := pickle.Marshal(d)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n", data)
	// Output: "\x80\x04\x95\x1e\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x04user\x94\x8c\x04dora\x94\x8c\x06visits\x94K\x04u."
}

func ExampleUnmarshalValue() {
	v, err := pickle.Unmarshal([]byte(cartPickle))
	if err != nil {
		log.Fatal(err)
	}
	var cart []CartItem
	if err := pickle.UnmarshalValue(v, &cart); err != nil {
		log.Fatal(err)
	}
	for _, it := range cart {
		fmt.Println(it.SKU, it.Name, it.Price, it.Qty)
	}
	// A Decimal keeps every digit; Rat computes with it exactly.
	price, _ := cart[0].Price.Rat()
	total := new(big.Rat).Mul(price, big.NewRat(int64(cart[0].Qty), 1))
	fmt.Println(total.FloatString(2))

	// A type that does not fit is an error naming the attribute.
	var wrong []struct{ Price float64 }
	fmt.Println(pickle.UnmarshalValue(v, &wrong))
	// Output:
	// sku-1 Tea 4.50 2
	// 9.00
	// pickle: [0].price: Python decimal.Decimal into Go float64
}

func ExampleUpdateValue() {
	v, cart := loadCart()
	cart[0].Qty = 3
	cart = append(cart, CartItem{SKU: "sku-2", Name: "Cup", Price: "12.00", Qty: 1})
	v, err := pickle.UpdateValue(v, cart)
	if err != nil {
		log.Fatal(err)
	}
	// The list and the first item are the objects Python wrote, changed in place;
	// the attribute Go does not name is still there.
	first := v.(*pickle.List).Items[0].(*pickle.Object)
	qty, _ := first.Attr("qty")
	_, hasAdded := first.Attr("added")
	fmt.Println(qty, hasAdded)
	second := v.(*pickle.List).Items[1].(*pickle.Object)
	fmt.Println(pickle.TypeName(second), second.Attrs().Keys())
	data, err := pickle.Marshal(v) // what Python loads
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(data) > 0)
	// Output:
	// 3 true
	// myapp.models.CartItem [sku name price qty]
	// true
}

func ExampleNewObjectFrom() {
	type Account struct {
		Login     string
		LastLogin *string // None
	}
	obj, err := pickle.NewObjectFrom(pickle.Global{Module: "myapp.models", Name: "Account"}, Account{Login: "dora"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(pickle.TypeName(obj), obj.Attrs().Keys())
	// Output: myapp.models.Account [login last_login]
}
