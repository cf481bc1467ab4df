package main

import (
	"errors"
	"math/big"
	"net/http"
	"slices"

	"github.com/qxbridge/qxbridge/quixote"
)

// cartHandler serves /cart/ (the cart, with forms to remove a line or add a
// product), and the forms' POSTs to /cart/add and /cart/remove. It reads and writes
// session.cart, the list of shop.models.CartItem objects the Python pages use: an
// item added here is a new CartItem that Python's checkout reads, and a quantity
// changed here changes the item's own object.
type cartHandler struct{}

var cartPage = withBody(`{{with .Body}}{{if .Lines}}<table>
<tr><th>Item</th><th>Qty</th><th>Price</th><th>Total</th></tr>
{{range .Lines}}<tr class="item" data-sku="{{.SKU}}"><td>{{.Name}}</td><td>{{.Qty}}</td><td>{{.Price}}</td><td>{{.Total}}</td></tr>
{{end}}<tr><th colspan="3">Total</th><td id="total">{{.Total}}</td></tr>
</table>
{{range .Lines}}<form method="post" action="/cart/remove"><input type="hidden" name="_form_token" value="{{$.Token}}"><input type="hidden" name="sku" value="{{.SKU}}"><input type="submit" value="Remove {{.Name}}"></form>
{{end}}<p><a href="/checkout">Check out</a></p>
{{else}}<p>Your cart is empty.</p>
{{end}}<h2>Add to your cart</h2>
<ul>
{{range .Products}}<li>{{.Name}}, {{.Price}} <form method="post" action="/cart/add"><input type="hidden" name="_form_token" value="{{$.Token}}"><input type="hidden" name="sku" value="{{.SKU}}"><input type="submit" value="Add to cart"></form></li>
{{end}}</ul>
{{end}}`)

type cartLine struct {
	SKU, Name, Price, Total string
	Qty                     int
}

func (cartHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := quixote.SessionFrom(r)
	switch r.URL.Path {
	case "/cart":
		http.Redirect(w, r, "/cart/", http.StatusMovedPermanently)
	case "/cart/":
		showCart(w, r, s)
	case "/cart/add", "/cart/remove":
		changeCart(w, r, s)
	default:
		http.NotFound(w, r)
	}
}

// loadCart decodes session.cart; a session without one has an empty cart.
func loadCart(s *quixote.Session) ([]CartItem, error) {
	var cart []CartItem
	if err := s.DecodeAttr("cart", &cart); err != nil && !errors.Is(err, quixote.ErrNoAttribute) {
		return nil, err
	}
	return cart, nil
}

func showCart(w http.ResponseWriter, r *http.Request, s *quixote.Session) {
	user, err := currentUser(s)
	if err != nil {
		serverError(w, r, err)
		return
	}
	cart, err := loadCart(s)
	if err != nil {
		serverError(w, r, err)
		return
	}
	var body struct {
		Lines    []cartLine
		Total    string
		Products []struct{ SKU, Name, Price string }
	}
	total := new(big.Rat)
	for _, it := range cart {
		t, err := it.Total()
		if err != nil {
			serverError(w, r, err)
			return
		}
		total.Add(total, t)
		body.Lines = append(body.Lines, cartLine{SKU: it.SKU, Name: it.Name, Qty: it.Qty,
			Price: decimalMoney(it.Price), Total: money(t)})
	}
	body.Total = money(total)
	for _, p := range catalog {
		body.Products = append(body.Products, struct{ SKU, Name, Price string }{p.SKU, p.Name, decimalMoney(p.Price)})
	}
	// One token for the page's forms: the first one submitted uses it up, and
	// the page it leads to has a new one.
	render(w, cartPage, frame{Title: "Your cart", User: user, Token: s.CreateFormToken(), Body: body})
}

func changeCart(w http.ResponseWriter, r *http.Request, s *quixote.Session) {
	if !formPost(w, r, s) {
		return
	}
	cart, err := loadCart(s)
	if err != nil {
		serverError(w, r, err)
		return
	}
	sku := r.PostFormValue("sku")
	if r.URL.Path == "/cart/add" {
		p, ok := product(sku)
		if !ok {
			http.Error(w, "No such product.", http.StatusNotFound)
			return
		}
		if i := slices.IndexFunc(cart, func(it CartItem) bool { return it.SKU == sku }); i >= 0 {
			cart[i].Qty++ // the item's own object gets the new qty
		} else {
			cart = append(cart, CartItem{SKU: p.SKU, Name: p.Name, Price: p.Price, Qty: 1})
		}
	} else {
		cart = slices.DeleteFunc(cart, func(it CartItem) bool { return it.SKU == sku })
	}
	// Into the session's list, in place; saved when the handler returns.
	if err := s.EncodeAttr("cart", cart); err != nil {
		serverError(w, r, err)
		return
	}
	http.Redirect(w, r, "/cart/", http.StatusSeeOther)
}
