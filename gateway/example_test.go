package gateway_test

import (
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/qxbridge/qxbridge/gateway"
	"github.com/qxbridge/qxbridge/quixote"
)

// A gateway with one Go page, "hello", routed at /hello: it reads and changes the
// session of the request, which the gateway loads from and saves to the session
// directory that the Python workers share. Here the gateway serves through
// httptest; a program serves listeners with Serve or ServeSCGI, or hands over to
// Main.
func Example() {
	dir, err := os.MkdirTemp("", "sessions")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	g := gateway.New()
	g.Logger = slog.New(slog.DiscardHandler)
	g.HandleFunc("hello", func(w http.ResponseWriter, r *http.Request) {
		s := quixote.SessionFrom(r)
		if name := r.FormValue("name"); name != "" {
			_ = s.SetUser(name) // a session with a user is saved, and gets a cookie
		}
		user, _ := s.UserString()
		fmt.Fprintf(w, "hello, %s\n", user)
	})
	g.Config.SessionsDir = dir
	g.Config.Routes = []gateway.Route{
		{Prefix: "/hello", Target: "hello"},
		// {Prefix: "/", Target: "scgi://127.0.0.1:4000"}: everything else to Python
	}
	if err := g.Open(); err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	srv := httptest.NewServer(g)
	defer srv.Close()

	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	for _, path := range []string{"/hello?name=ann", "/hello", "/elsewhere"} {
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s: %d %s", path, resp.StatusCode, body)
	}
	files, _ := os.ReadDir(dir)
	fmt.Println("session files:", len(files))
	// Output:
	// /hello?name=ann: 200 hello, ann
	// /hello: 200 hello, ann
	// /elsewhere: 404 404 page not found
	// session files: 1
}

// A site's gateway program: its own Go pages registered by name, and every flag,
// the configuration file, the sessions admin commands, signals, socket activation,
// metrics and logs of scgi-gateway from Main. Run as
//
//	myapp-gateway -scgi unix:/run/qxbridge/gateway.sock -sessions /var/lib/myapp/sessions \
//	    -route /reports/=reports -route /=scgi://127.0.0.1:4000
func ExampleGateway_Main() {
	g := gateway.New()
	g.Handle("reports", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _ := quixote.SessionFrom(r).UserString()
		fmt.Fprintf(w, "reports for %s\n", user)
	}))
	// The application's own session class, as Python names it.
	g.Config.NewClass = quixote.Class{Module: "myapp.session", Name: "MySession", Kind: quixote.KindSession3}
	// The program's own series on the gateway's /metrics.
	g.Registry.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "myapp_reports_total", Help: "Reports rendered."}))
	g.Main()
}

// A Go page reads the request's id: the X-Request-ID the front server or client sent
// when it is valid, else one the gateway made. The response carries it, the request
// log names it, and a Python route receives it as HTTP_X_REQUEST_ID.
func ExampleRequestID() {
	dir, err := os.MkdirTemp("", "sessions")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	g := gateway.New()
	g.Logger = slog.New(slog.DiscardHandler)
	g.HandleFunc("work", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "working on %s\n", gateway.RequestID(r))
	})
	g.Config.SessionsDir = dir
	g.Config.Routes = []gateway.Route{{Prefix: "/work", Target: "work"}}
	if err := g.Open(); err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	for _, id := range []string{"3f2a9c1e-0b7d-4c55-9e61-5a8d2f0c7b14", "not valid"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/work", nil)
		req.Header.Set(gateway.RequestIDHeader, id)
		g.ServeHTTP(rec, req)
		got := rec.Header().Get(gateway.RequestIDHeader)
		fmt.Printf("sent %q: kept %v, %d characters, the page saw it: %v\n",
			id, got == id, len(got), rec.Body.String() == "working on "+got+"\n")
	}
	// Output:
	// sent "3f2a9c1e-0b7d-4c55-9e61-5a8d2f0c7b14": kept true, 36 characters, the page saw it: true
	// sent "not valid": kept false, 32 characters, the page saw it: true
}

// A Go handler on a mounted route (-mount /shop/=shop) sees the path below the
// mount point and builds its links with ScriptName, so the application works
// wherever it is mounted.
func ExampleScriptName() {
	dir, err := os.MkdirTemp("", "sessions")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	g := gateway.New()
	g.Logger = slog.New(slog.DiscardHandler)
	g.HandleFunc("shop", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old-cart" {
			http.Redirect(w, r, gateway.ScriptName(r)+"/cart", http.StatusSeeOther)
			return
		}
		fmt.Fprintf(w, "path %s, link %s/cart\n", r.URL.Path, gateway.ScriptName(r))
	})
	g.Config.SessionsDir = dir
	g.Config.Routes = []gateway.Route{{Prefix: "/shop/", Target: "shop", Mount: true}}
	if err := g.Open(); err != nil {
		log.Fatal(err)
	}
	defer g.Close()

	for _, path := range []string{"/shop/items", "/shop/old-cart"} {
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if loc := rec.Header().Get("Location"); loc != "" {
			fmt.Println(rec.Code, "to", loc)
		} else {
			fmt.Print(rec.Code, " ", rec.Body.String())
		}
	}
	// Output:
	// 200 path /items, link /shop/cart
	// 303 to /shop/cart
}
