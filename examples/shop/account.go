package main

import (
	"errors"
	"net/http"
	"time"

	"github.com/qxbridge/qxbridge/quixote"
)

// accountHandler serves /account/, the logged-in user's details (session.user, a
// shop.auth.User) and orders (session.orders, placed by the Python checkout), and
// its log-out form's POST to /account/logout, which ends the session on both sides.
type accountHandler struct{}

var accountPage = withBody(`{{with .User}}<p id="name">{{.Name}}</p>
<p id="email">{{.Email}}</p>
<p id="since">Customer since {{.Since.Format "January 2006"}}</p>
{{end}}<ul>
{{range .Body}}<li>Order {{.Number}}, {{.Placed.Format "2006-01-02"}}: {{.Total}}</li>
{{end}}</ul>
<form method="post" action="/account/logout"><input type="hidden" name="_form_token" value="{{.Token}}"><input type="submit" value="Log out"></form>
`)

func (accountHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := quixote.SessionFrom(r)
	switch r.URL.Path {
	case "/account":
		http.Redirect(w, r, "/account/", http.StatusMovedPermanently)
	case "/account/":
		showAccount(w, r, s)
	case "/account/logout":
		logout(w, r, s)
	default:
		http.NotFound(w, r)
	}
}

func showAccount(w http.ResponseWriter, r *http.Request, s *quixote.Session) {
	user, err := currentUser(s)
	if err != nil {
		serverError(w, r, err)
		return
	}
	if user == nil {
		http.Redirect(w, r, "/login?next=/account/", http.StatusSeeOther) // a Python page
		return
	}
	var orders []Order
	if err := s.DecodeAttr("orders", &orders); err != nil && !errors.Is(err, quixote.ErrNoAttribute) {
		serverError(w, r, err)
		return
	}
	type orderLine struct {
		Number int
		Placed time.Time
		Total  string
	}
	lines := make([]orderLine, len(orders))
	for i, o := range orders {
		lines[i] = orderLine{o.Number, o.Placed, decimalMoney(o.Total)}
	}
	render(w, accountPage, frame{Title: "Your account", User: user, Token: s.CreateFormToken(), Body: lines})
}

func logout(w http.ResponseWriter, r *http.Request, s *quixote.Session) {
	if !formPost(w, r, s) {
		return
	}
	// As Python's expire_session: the file is deleted and the cookie revoked when
	// the handler returns.
	s.Expire()
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
