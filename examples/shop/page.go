package main

import (
	"html/template"
	"log/slog"
	"net/http"

	"github.com/qxbridge/qxbridge/quixote"
)

// layout is the frame of every page, the same as the Python pages' (shop.ui.page).
var layout = template.Must(template.New("layout").Parse(`<!DOCTYPE html>
<html><head><title>{{.Title}} · Shop</title></head><body>
<nav><a href="/">Shop</a> · <a href="/products">products</a> · <a href="/cart/">cart</a> · {{with .User}}{{.Name}} · <a href="/account/">account</a> · <a href="/logout">log out</a>{{else}}<a href="/login">log in</a>{{end}}</nav>
<h1>{{.Title}}</h1>
{{template "body" .}}</body></html>
`))

// frame is what layout needs; Body is the page's own data.
type frame struct {
	Title string
	User  *User
	Token string // the form token of the page's forms
	Body  any
}

// render writes a page made of layout and body (a template defining "body").
func render(w http.ResponseWriter, body *template.Template, f frame) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := body.ExecuteTemplate(w, "layout", f); err != nil {
		slog.Error("rendering a page", "page", f.Title, "error", err)
	}
}

// withBody returns layout with the page's body template.
func withBody(text string) *template.Template {
	return template.Must(template.Must(layout.Clone()).New("body").Parse(text))
}

// currentUser decodes session.user: nil when nobody is logged in. A user that is
// not a shop.auth.User is an error.
func currentUser(s *quixote.Session) (*User, error) {
	if !s.LoggedIn() {
		return nil, nil
	}
	var u User
	if err := s.DecodeAttr("user", &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// serverError logs err and answers 500 without details.
func serverError(w http.ResponseWriter, r *http.Request, err error) {
	slog.Error("shop page failed", "path", r.URL.Path, "error", err)
	http.Error(w, "Internal Server Error", http.StatusInternalServerError)
}

// formPost reports whether r is a POST of a form the session handed out: it must
// carry an outstanding form token, which it uses up. Otherwise it answers 405 or 403.
func formPost(w http.ResponseWriter, r *http.Request, s *quixote.Session) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return false
	}
	if !s.CheckFormToken(r) {
		http.Error(w, "The form has expired; reload the page.", http.StatusForbidden)
		return false
	}
	return true
}
