// Package demo is the gateway's demo application: a small site whose Go pages and
// Python pages share one login. The Go side is this package; the Python side is a
// Quixote 3.8 application on session3 (demo/python, package qxdemo) that the gateway
// forwards /py/ to. Every page says which side served it and shows what the shared
// session holds (user, counter, session id, form tokens, class), from the same
// session file; the pages of both sides use the one stylesheet the Go side serves.
//
// The Go pages keep the behaviour of session3's own test application
// (test/test_runner.py in session3's sources), so that the session3 integration cases
// run against it:
//
//	/              "Not logged in." with a login link, or "Hello, USER!"
//	/login         a form; with a non-empty name field (query or POST body), logs in
//	               as that user and sets counter to 0
//	/logout        expires the session (cookie revoked, file deleted)
//	/counter       counter += 1
//	/create_token  adds a form token and shows its first 16 characters
//	/check_token   plain text: session_id, user, has_form_tokens, form_token_count,
//	               Access time, and a last line naming the Go side
//	/check         plain text: session_id, user, counter, has_info,
//	               form_tokens_count, has_form_tokens, Access time, the same last line
//	/delete_old    store.delete_old_sessions(minutes), with minutes=N (default 0):
//	               a GET shows a form with a form token, and only its POST, with
//	               the token, sweeps (session3's test application sweeps on any
//	               GET, which would let a link or an image on any page delete
//	               every session)
//	/style.css     the stylesheet
//	/py/...        the Python side's pages, when no route sends them to Python: 502
//	               with a page that says how to start it
//
// Values are printed as Python prints them (None, True, a float's repr), and the
// HTML pages escape them as Quixote's htmltext does.
//
// It is an ordinary http.Handler, registered with a gateway like any application's
// own pages (cmd/scgi-gateway does gateway.Handle("demo", demo.New(...))), and reads
// the session the gateway's session manager gives each request.
package demo

import (
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/qxbridge/qxbridge/internal/pytext"
	"github.com/qxbridge/qxbridge/pickle"
	"github.com/qxbridge/qxbridge/quixote"
)

type demo struct {
	dir func() quixote.IterableStore
	log *slog.Logger
	mux *http.ServeMux
}

// New returns the demo application. sessions returns the session store the
// gateway opened (for /delete_old, which sweeps it); log receives its errors (nil
// means slog.Default()). Serve it behind a quixote.Manager, as a gateway does.
func New(sessions func() quixote.IterableStore, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	d := &demo{dir: sessions, log: log, mux: http.NewServeMux()}
	d.mux.HandleFunc("/{$}", d.index)
	d.mux.HandleFunc("/login", d.login)
	d.mux.HandleFunc("/logout", d.logout)
	d.mux.HandleFunc("/counter", d.counter)
	d.mux.HandleFunc("/create_token", d.createToken)
	d.mux.HandleFunc("/check_token", d.checkToken)
	d.mux.HandleFunc("/check", d.check)
	d.mux.HandleFunc("/delete_old", d.deleteOld)
	d.mux.HandleFunc("/style.css", d.style)
	return d
}

func (d *demo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Quixote's traversal matches names exactly: "/login/" is not "/login", and
	// ServeMux would redirect where Quixote answers 404. Route on the exact path.
	switch p := r.URL.Path; {
	case p == "/" || p == "/login" || p == "/logout" || p == "/counter" || p == "/create_token" ||
		p == "/check_token" || p == "/check" || p == "/delete_old" || p == "/style.css":
		d.mux.ServeHTTP(w, r)
	case p+"/" == PythonPrefix || strings.HasPrefix(p, PythonPrefix):
		d.pythonMissing(w, r)
	default:
		d.notFound(w, r)
	}
}

// htmlEscape is Quixote's htmlescape for values put into htmltext: & < > and ".
var htmlEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace

// servedByLine ends the plain-text pages, which say which side served them as the
// HTML pages do.
const servedByLine = "served by: Go (the qxbridge gateway)"

func plain(w http.ResponseWriter, lines ...string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(strings.Join(lines, "\n")))
}

func (d *demo) notFound(w http.ResponseWriter, r *http.Request) {
	render(w, r, http.StatusNotFound, "Not Found", "<h1>Not Found</h1>\n<p>The requested link does not exist on this site.</p>")
}

func (d *demo) fail(w http.ResponseWriter, status int, msg string) {
	http.Error(w, msg, status)
}

// session returns the request's session; the manager always provides one.
func session(r *http.Request) *quixote.Session { return quixote.SessionFrom(r) }

// attr returns getattr(session, name, def).
func attr(s *quixote.Session, name string, def any) any {
	if v, ok := s.Get(name); ok {
		return v
	}
	return def
}

func pyID(s *quixote.Session) string {
	if id := s.ID(); id != "" {
		return id
	}
	return "None"
}

func (d *demo) index(w http.ResponseWriter, r *http.Request) {
	s := session(r)
	var content string
	if quixote.Truthy(s.User()) {
		content = `<h1>Welcome back</h1>
<p>Hello, ` + htmlEscape(pytext.Str(s.User())) + `!</p>`
	} else {
		content = `<h1>Go and Python, one login</h1>
<p>Not logged in.</p><p><a href="login">login</a></p>`
	}
	content += `
<p>This site has two sides. The pages with a blue banner are served by Go, in the
qxbridge gateway; those with a dark blue and yellow banner by Python, a Quixote
application the gateway forwards <code>py/</code> to. Both read and write the same
session, shown on the right: log in on one side, count on the other.</p>`
	render(w, r, http.StatusOK, "Home", content)
}

func (d *demo) login(w http.ResponseWriter, r *http.Request) {
	name := r.FormValue("name")
	if name == "" {
		render(w, r, http.StatusOK, "Log in", `<h1>Log in</h1>
<p>Any name will do. The Python pages will know it too.</p>
<form method="POST" action="login"><input name="name" aria-label="name" /><input type="submit" value="Log in" /></form>`)
		return
	}
	s := session(r)
	s.RenewID() // a new id at login: one planted or seen before is worth nothing
	if err := s.SetUser(name); err != nil {
		d.fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	if err := s.Set("counter", int64(0)); err != nil {
		d.fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	render(w, r, http.StatusOK, "Logged in", `<h1>Logged in</h1>
<p>Welcome! `+htmlEscape(pytext.Str(s.User()))+`</p><p><a href=".">back</a></p>`)
}

func (d *demo) logout(w http.ResponseWriter, r *http.Request) {
	session(r).Expire()
	render(w, r, http.StatusOK, "Logged out", `<h1>Logged out</h1>
<p>Goodbye!</p><p><a href=".">start over</a></p>`)
}

func (d *demo) counter(w http.ResponseWriter, r *http.Request) {
	s := session(r)
	n, err := pyAddOne(attr(s, "counter", int64(0)))
	if err == nil {
		err = s.Set("counter", n)
	}
	if err != nil {
		d.fail(w, http.StatusInternalServerError, "counter: "+err.Error())
		return
	}
	render(w, r, http.StatusOK, "Counter", `<h1>Counted in Go</h1>
<p>Counter: `+htmlEscape(pytext.Str(n))+`</p><p><a href=".">back</a></p>`)
}

// pyAddOne is Python's v + 1 for the numbers a counter can hold.
func pyAddOne(v any) (any, error) {
	switch x := v.(type) {
	case bool:
		if x {
			return int64(2), nil
		}
		return int64(1), nil
	case int64:
		if x == math.MaxInt64 {
			return new(big.Int).Add(big.NewInt(x), big.NewInt(1)), nil
		}
		return x + 1, nil
	case *big.Int:
		return new(big.Int).Add(x, big.NewInt(1)), nil
	case float64:
		return x + 1, nil
	}
	return nil, fmt.Errorf("unsupported operand type(s) for +: '%s' and 'int'", typeName(v))
}

func (d *demo) createToken(w http.ResponseWriter, r *http.Request) {
	tok := session(r).CreateFormToken()
	render(w, r, http.StatusOK, "Form token", `<h1>A form token</h1>
<p>Token created: `+htmlEscape(firstRunes(tok, 16)+"...")+`</p><p><a href=".">back</a></p>`)
}

func (d *demo) checkToken(w http.ResponseWriter, r *http.Request) {
	s := session(r)
	n := len(s.FormTokens())
	plain(w,
		"session_id: "+pyID(s),
		"user: "+pytext.Str(s.User()),
		"has_form_tokens: "+pytext.Str(n > 0),
		"form_token_count: "+strconv.Itoa(n),
		"Access time: "+pytext.FloatRepr(accessTime(s)),
		servedByLine)
}

func (d *demo) check(w http.ResponseWriter, r *http.Request) {
	s := session(r)
	n := len(s.FormTokens())
	plain(w,
		"session_id: "+pyID(s),
		"user: "+pytext.Str(s.User()),
		"counter: "+pytext.Str(attr(s, "counter", "N/A")),
		"has_info: "+pytext.Str(hasInfoValue(s)),
		"form_tokens_count: "+strconv.Itoa(n),
		"has_form_tokens: "+pytext.Str(n > 0),
		"Access time: "+pytext.FloatRepr(accessTime(s)),
		servedByLine)
}

// hasInfoValue is what has_info() returns, as the check page prints it: session3's
// classes return the user itself, not a bool.
func hasInfoValue(s *quixote.Session) any {
	switch s.Class().Kind {
	case quixote.KindSession3, quixote.KindDictSession:
		if s.Class().HasInfo == nil {
			return s.User()
		}
	}
	return s.HasInfo()
}

// accessTime returns _access_time as the float the pickle holds.
func accessTime(s *quixote.Session) float64 {
	if v, ok := s.Object().Attr("_access_time"); ok {
		switch x := v.(type) {
		case float64:
			return x
		case int64:
			return float64(x)
		}
	}
	return float64(s.AccessTime().UnixNano()) / 1e9
}

func (d *demo) deleteOld(w http.ResponseWriter, r *http.Request) {
	minutes := 0
	if v := r.FormValue("minutes"); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			d.fail(w, http.StatusBadRequest, fmt.Sprintf("invalid literal for int() with base 10: %s", pytext.StrRepr(v)))
			return
		}
		minutes = n
	}
	s := session(r)
	if r.Method != http.MethodPost {
		tok := s.CreateFormToken() // saved only in a session with a user: log in first
		render(w, r, http.StatusOK, "Old sessions", fmt.Sprintf(`<h1>Old sessions</h1>
<form method="POST" action="delete_old"><input type="hidden" name="%s" value="%s" /><input type="hidden" name="minutes" value="%d" /><input type="submit" value="Delete the sessions idle for %d minutes" /></form>`,
			quixote.FormTokenField, htmlEscape(tok), minutes, minutes))
		return
	}
	if !s.CheckFormToken(r) {
		d.fail(w, http.StatusForbidden, "delete_old: the form token is missing, used or unknown: log in, then send the form again")
		return
	}
	deleted, remaining, err := d.dir().DeleteIdle(minutesDuration(minutes))
	if err != nil {
		d.fail(w, http.StatusInternalServerError, "delete_old_sessions: "+err.Error())
		return
	}
	// session3 saves the current session at the end of every successful request, so a
	// logged-in visitor whose own file was just swept keeps the session. The manager
	// saves only changed sessions; put the file back here.
	if s.ID() != "" && s.HasInfo() && !s.Expired() {
		if has, err := d.dir().Has(r.Context(), s.ID()); err == nil && !has {
			if data, err := s.Encode(); err == nil {
				if err := d.dir().Save(r.Context(), s.ID(), data); err != nil {
					d.log.Error("demo: cannot restore the current session after the sweep", "id", s.ID(), "error", err)
				}
			}
		}
	}
	render(w, r, http.StatusOK, "Old sessions", fmt.Sprintf(`<h1>Old sessions</h1>
<p>Deleted: %d, Remaining: %d</p>`, deleted, remaining))
}

// minutesDuration is delete_old_sessions' "older than minutes": 0 or less means every
// file older than now.
func minutesDuration(m int) time.Duration {
	if m <= 0 {
		return 0
	}
	return time.Duration(min(m, math.MaxInt32)) * time.Minute
}

func firstRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

func typeName(v any) string {
	if v == nil {
		return "NoneType"
	}
	return pickle.TypeName(v)
}
