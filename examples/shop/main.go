// Command shop-gateway is the shop's gateway: it serves the pages already moved to
// Go, /cart/ and /account/, with the sessions of the Python shop in python/, and
// forwards every other path to the shop's Python workers.
//
//	shop-gateway -scgi unix:/run/shop/gateway.sock -sessions /var/lib/shop/sessions \
//	    -route /cart/=cart -route /account/=account -route /=scgi://127.0.0.1:4000
//
// See README.md for running it with the Python side and nginx.
package main

import (
	"github.com/qxbridge/qxbridge/gateway"
	"github.com/qxbridge/qxbridge/quixote"
)

func main() {
	newGateway().Main()
}

// shopSession is shop.session.ShopSession, the class of the shop's sessions, as Go
// must treat it. Its __init__ adds an empty cart and orders list: a session made in
// Go gets them too. Its has_info keeps a session with a user, a cart or an
// outstanding form token: Go keeps the same ones, so that a cart filled in Go by a
// visitor who has not logged in is saved, as Python would save it.
var shopSession = quixote.Class{
	Module: "shop.session",
	Name:   "ShopSession",
	Kind:   quixote.KindSession3,
	Init: func(s *quixote.Session) {
		// New attributes of a new session: these cannot fail.
		_ = s.EncodeAttr("cart", []CartItem{})
		_ = s.EncodeAttr("orders", []Order{})
	},
	HasInfo: func(s *quixote.Session) bool {
		cart, _ := s.Get("cart")
		return s.LoggedIn() || quixote.Truthy(cart) || len(s.FormTokens()) > 0
	},
}

// newGateway returns the shop's gateway: the Go pages registered by name, for the
// routes to name, and the shop's session class and cookie settings.
func newGateway() *gateway.Gateway {
	g := gateway.New()
	g.Handle("cart", cartHandler{})
	g.Handle("account", accountHandler{})
	g.Config.NewClass = shopSession
	g.Config.Classes = []quixote.Class{shopSession}
	// As shop.publisher configures Quixote: SESSION_COOKIE_PATH = "/",
	// SESSION_COOKIE_HTTPONLY.
	g.Config.Cookie.Path = "/"
	g.Config.Cookie.HttpOnly = true
	return g
}
