package demo

import (
	_ "embed"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/qxbridge/qxbridge/internal/pytext"
	"github.com/qxbridge/qxbridge/quixote"
)

// stylesheet is the demo's one stylesheet, served at style.css for the pages of both
// sides (the Python pages link to ../style.css).
//
//go:embed style.css
var stylesheet []byte

// PythonPrefix is where the demo's pages link to the Python side: the Quixote
// application in demo/python (package qxdemo) serves its pages under /py/. When no
// route sends /py/ to it, the demo answers those paths itself with a 502 page that
// says how to start it.
const PythonPrefix = "/py/"

func (d *demo) style(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=300")
	_, _ = w.Write(stylesheet)
}

// render writes a whole page of the Go side: the stylesheet, the banner naming the
// side that served it, content, the session panel and the links to every page of
// both sides. Links are relative, so that the demo works mounted under a prefix too.
func render(w http.ResponseWriter, r *http.Request, status int, title, content string) {
	base := strings.Repeat("../", max(strings.Count(r.URL.Path, "/")-1, 0))
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>`)
	b.WriteString(htmlEscape(title))
	b.WriteString(` · qxbridge demo</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="`)
	b.WriteString(base)
	b.WriteString(`style.css"></head>
<body class="go">
<header><a class="home" href="`)
	b.WriteString(base + ".")
	b.WriteString(`">qxbridge demo</a><span class="served-by">Served by <strong id="served-by">Go</strong> (the qxbridge gateway)</span></header>
<div class="layout">
<main>
`)
	b.WriteString(content)
	b.WriteString("\n</main>\n")
	b.WriteString(sessionPanel(quixote.SessionFrom(r)))
	b.WriteString(navigation(base))
	b.WriteString("</div>\n</body></html>\n")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if status != http.StatusOK {
		w.WriteHeader(status)
	}
	_, _ = w.Write([]byte(b.String()))
}

// sessionPanel shows what the shared session holds. The Python side's pages show the
// same table, from the same file. The elements have ids, for tests and scripts to
// read them.
func sessionPanel(s *quixote.Session) string {
	if s != nil && s.Expired() {
		s = nil // logged out: what the next request starts with
	}
	user, counter, id, tokens, class := "nobody (not logged in)", "not set", "none (nothing to save yet)", "0", ""
	if s != nil {
		if quixote.Truthy(s.User()) {
			user = pytext.Str(s.User())
			id = "new (given as this page saves it)"
		}
		if v, ok := s.Get("counter"); ok {
			counter = pytext.Str(v)
		}
		if s.ID() != "" {
			id = s.ID()
		}
		tokens = strconv.Itoa(len(s.FormTokens()))
		class = s.Class().String()
	}
	return fmt.Sprintf(`<aside class="session"><h2>The shared session</h2>
<table>
<tr><th>user</th><td id="session-user">%s</td></tr>
<tr><th>counter</th><td id="session-counter">%s</td></tr>
<tr><th>session id</th><td id="session-id">%s</td></tr>
<tr><th>form tokens</th><td id="session-tokens">%s</td></tr>
<tr><th>class</th><td id="session-class">%s</td></tr>
</table></aside>
`, htmlEscape(user), htmlEscape(counter), htmlEscape(id), tokens, htmlEscape(class))
}

// navigation links every page of both sides, from a page base levels below the
// demo's root.
func navigation(base string) string {
	py := base + strings.TrimPrefix(PythonPrefix, "/")
	return `<nav><section class="go-side"><h2>Go pages</h2><ul>
<li><a href="` + base + `.">Home</a></li>
<li><a href="` + base + `login">Log in</a></li>
<li><a href="` + base + `counter">Count</a></li>
<li><a href="` + base + `create_token">Make a form token</a></li>
<li><a href="` + base + `check">The session as text</a></li>
<li><a href="` + base + `check_token">Its form tokens as text</a></li>
<li><a href="` + base + `delete_old?minutes=60">Sweep sessions idle for an hour</a></li>
<li><a href="` + base + `logout">Log out</a></li>
</ul></section>
<section class="python-side"><h2>Python pages</h2><ul>
<li><a href="` + py + `">Home</a></li>
<li><a href="` + py + `login">Log in</a></li>
<li><a href="` + py + `counter">Count</a></li>
<li><a href="` + py + `logout">Log out</a></li>
</ul></section></nav>
`
}

// pythonMissing answers the Python side's paths when no route sends them to the
// Python application: 502, as the gateway answers for a worker that is down, with
// what to run.
func (d *demo) pythonMissing(w http.ResponseWriter, r *http.Request) {
	render(w, r, http.StatusBadGateway, "Python is not running", `<h1>The Python side is not running</h1>
<p>This page belongs to the demo's Quixote application, which the gateway forwards `+htmlEscape(PythonPrefix)+` to
when it runs with a route for it. Start it beside the gateway (see the tour in README.md):</p>
<pre>pip install quixote==3.8 session3==3.4.1 scgi==2.2
PYTHONPATH=demo/python python3 -m qxdemo</pre>
<p>and run the gateway with the route:</p>
<pre>go run ./cmd/scgi-gateway -route /=demo -route /py/=scgi://127.0.0.1:4000</pre>
<p class="note">The Go pages work without it.</p>`)
}
