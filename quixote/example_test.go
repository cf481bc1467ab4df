package quixote_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"time"

	"github.com/qxbridge/qxbridge/quixote"
	"github.com/qxbridge/qxbridge/store"
)

// A Go handler behind session3's session manager, over a session directory that
// Python's DirectorySessionStore reads and writes too.
func ExampleManager() {
	dir, err := os.MkdirTemp("", "sessions")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	m := quixote.NewManager(st)
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := quixote.SessionFrom(r)
		if r.URL.Path == "/login" {
			_ = s.SetUser(r.FormValue("name"))
			_ = s.Set("counter", 0)
		}
		n, _ := s.GetInt("counter")
		_ = s.Set("counter", n+1)
		user, _ := s.UserString()
		fmt.Fprintf(w, "user %q, counter %d\n", user, n+1)
	})
	srv := httptest.NewServer(m.Handler(app))
	defer srv.Close()

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	for _, path := range []string{"/login?name=ann", "/", "/"} {
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Print(string(body))
	}
	// Output:
	// user "ann", counter 1
	// user "ann", counter 2
	// user "ann", counter 3
}

// A session made in Go is the object Python's Session.__init__ makes; encoded, it
// is the pickle session3 would write, and decoding reads it back.
func ExampleNewSession() {
	s := quixote.NewSession(quixote.Session3Class, "203.0.113.7", time.Unix(1795305578, 0))
	_ = s.SetUser("ann")
	if err := s.Set("counter", 3); err != nil {
		log.Fatal(err)
	}
	data, err := s.Encode()
	if err != nil {
		log.Fatal(err)
	}
	again, err := quixote.Decode(data)
	if err != nil {
		log.Fatal(err)
	}
	user, _ := again.UserString()
	fmt.Println(again.Class(), user, again.RemoteAddress(), again.Names(), again.HasInfo())
	// Output:
	// session3.Session.Session ann 203.0.113.7 [counter] true
}

// ParseCookies reads a Cookie header as Quixote does: commas separate cookies too,
// quoted values lose their quotes and escapes, and the last of a repeated name wins.
func ExampleParseCookies() {
	c := quixote.ParseCookies(`theme=dark, QX_session="abc"; lang="en\"gb"; QX_session=KyPJ1fkwwK8`)
	fmt.Println(c["theme"], c["lang"], c["QX_session"])
	// Output:
	// dark en"gb KyPJ1fkwwK8
}
