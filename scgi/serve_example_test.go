package scgi_test

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/qxbridge/qxbridge/scgi"
)

// Serve runs an http.Handler behind a front server that speaks SCGI (nginx's
// scgi_pass, Apache's mod_proxy_scgi, lighttpd's mod_scgi). Here the front server is
// played by hand: an SCGI request is a netstring of CGI headers, then the body, and
// the answer is a CGI response.
func ExampleServe() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	go scgi.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s from %s\n", r.Method, r.URL, r.Header.Get("User-Agent"))
	}))

	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	var headers strings.Builder
	for _, kv := range [][2]string{
		{"CONTENT_LENGTH", "0"}, {"SCGI", "1"}, {"REQUEST_METHOD", "GET"},
		{"REQUEST_URI", "/hello?x=1"}, {"SERVER_PROTOCOL", "HTTP/1.1"}, {"HTTP_USER_AGENT", "nginx"},
	} {
		headers.WriteString(kv[0] + "\x00" + kv[1] + "\x00")
	}
	fmt.Fprintf(c, "%d:%s,", headers.Len(), headers.String())

	resp, err := io.ReadAll(bufio.NewReader(c))
	if err != nil {
		log.Fatal(err)
	}
	status, _, _ := strings.Cut(string(resp), "\r\n")
	_, body, _ := strings.Cut(string(resp), "\r\n\r\n")
	fmt.Println(status)
	fmt.Print(body)
	// Output:
	// Status: 200 OK
	// GET /hello?x=1 from nginx
}

// A Proxy mounted at /py/ beside Go pages, forwarding to a pool of Python workers
// (python-scgi with a Quixote application). Its ErrorHandler answers when no worker
// can take the request: here the only worker is not running.
func ExampleProxy() {
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	addr := down.Addr().String()
	down.Close() // nothing listens there: connections are refused

	p, err := scgi.NewProxy(addr) // more addresses make a pool, least-connections balanced
	if err != nil {
		log.Fatal(err)
	}
	p.ScriptName = "/py"     // the workers see SCRIPT_NAME=/py, PATH_INFO=the rest
	p.MaxConnsPerBackend = 5 // the workers' number of children
	p.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		// (the default handler logs err to ErrorLog and answers with its status text)
		http.Error(w, "the Python side is not running", scgi.StatusForError(err))
	}
	mux := http.NewServeMux()
	mux.Handle("/py/", p)
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "a Go page") })

	for _, path := range []string{"/", "/py/counter"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Print(path, ": ", rec.Code, " ", rec.Body.String())
	}
	// Output:
	// /: 200 a Go page
	// /py/counter: 502 the Python side is not running
}
