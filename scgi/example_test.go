package scgi_test

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"

	"github.com/qxbridge/qxbridge/scgi"
)

// A Go handler served over SCGI (as nginx's scgi_pass or a python-scgi client would
// reach it), and a Proxy that forwards an HTTP request to it, mounting the
// application at /app: the backend sees SCRIPT_NAME /app and PATH_INFO the rest, as
// a Quixote application configured for a sub-path expects.
func Example() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	backend := &scgi.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		env := scgi.ProcessEnv(r)
		fmt.Fprintf(w, "SCRIPT_NAME=%s PATH_INFO=%s QUERY_STRING=%s\n", env["SCRIPT_NAME"], env["PATH_INFO"], env["QUERY_STRING"])
	})}
	go backend.Serve(l)
	defer backend.Close()

	p, err := scgi.NewProxy(l.Addr().String()) // or "unix:/run/app/scgi.sock"; several for a pool
	if err != nil {
		log.Fatal(err)
	}
	p.ScriptName = "/app"
	front := httptest.NewServer(p)
	defer front.Close()

	resp, err := http.Get(front.URL + "/app/hello?x=1")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(resp.StatusCode, " ", string(body))
	// Output:
	// 200 SCRIPT_NAME=/app PATH_INFO=/hello QUERY_STRING=x=1
}
