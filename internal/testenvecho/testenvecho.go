// Package testenvecho is an SCGI server for front-server tests: it answers every
// request with the SCGI environment it received, so that a test can assert exactly
// what nginx, Apache or lighttpd sends for a given configuration.
//
//	echo := testenvecho.Start(t)           // on a UNIX socket a front server can reach
//	site := testapache.Start(t, ...)       // configured to pass to echo.Socket
//	got := testenvecho.Get(t, site.URL+"/x") // the variables of that request, in wire order
//
// It is scgi.Server with a handler, so requests the SCGI parser refuses are answered
// 400 by it as they would be by the gateway.
package testenvecho

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/qxbridge/qxbridge/scgi"
)

// Reply is what the server answers: the environment in wire order (repeated names
// kept) and what it read of the body.
type Reply struct {
	Env scgi.Env `json:"env"`
	// BodyBytes is the number of body bytes read, BodySHA256 their SHA-256 (hex).
	BodyBytes  int64  `json:"body_bytes"`
	BodySHA256 string `json:"body_sha256"`
	// BodyError is the error reading the body ended with, if any.
	BodyError string `json:"body_error,omitempty"`
}

// Server is a running echo server.
type Server struct {
	// Socket is the path of its UNIX socket, in a testpeer.SocketDir and granted to
	// the front server's group (testpeer.GrantSocket).
	Socket string

	mu      sync.Mutex
	replies []Reply
}

// Start serves on a new UNIX socket until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{Socket: filepath.Join(testpeer.SocketDir(t), "echo.sock")}
	l, err := net.Listen("unix", s.Socket)
	if err != nil {
		t.Fatalf("testenvecho: %v", err)
	}
	testpeer.GrantSocket(t, s.Socket)
	srv := &scgi.Server{Handler: http.HandlerFunc(s.serve)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return s
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	rep := Reply{Env: scgi.RequestEnv(r), BodyBytes: n, BodySHA256: hex.EncodeToString(h.Sum(nil))}
	if err != nil {
		rep.BodyError = err.Error()
	}
	s.mu.Lock()
	s.replies = append(s.replies, rep)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(rep)
}

// Replies returns what the server answered so far, in order (HEAD requests included,
// whose answers the front server did not pass on).
func (s *Server) Replies() []Reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Reply(nil), s.replies...)
}

// Last returns the last reply, or fails t if there was none.
func (s *Server) Last(t testing.TB) Reply {
	t.Helper()
	r := s.Replies()
	if len(r) == 0 {
		t.Fatalf("testenvecho: no request reached %s", s.Socket)
	}
	return r[len(r)-1]
}

// Client does not follow redirects: a test sees the front server's own answer.
var Client = &http.Client{
	Timeout:       60 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// Do sends req with Client and decodes the echoed environment, failing t unless the
// answer is a 200 from the echo server.
func Do(t testing.TB, req *http.Request) Reply {
	t.Helper()
	resp, err := Client.Do(req)
	if err != nil {
		t.Fatalf("testenvecho: %s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("testenvecho: %s %s: reading the answer: %v", req.Method, req.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("testenvecho: %s %s: %s\n%s", req.Method, req.URL, resp.Status, body)
	}
	var rep Reply
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("testenvecho: %s %s: %v\n%s", req.Method, req.URL, err, body)
	}
	return rep
}

// Get is Do for a GET of url.
func Get(t testing.TB, url string) Reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatalf("testenvecho: %v", err)
	}
	return Do(t, req)
}

// One returns the value of the variable name, failing t unless it was sent exactly
// once.
func (r Reply) One(t testing.TB, name string) string {
	t.Helper()
	vs := r.Env.Values(name)
	if len(vs) != 1 {
		t.Errorf("testenvecho: %s sent %d times (%q), want once; environment:\n%s", name, len(vs), vs, r)
		if len(vs) == 0 {
			return ""
		}
	}
	return vs[0]
}

// Has reports whether the variable name was sent.
func (r Reply) Has(name string) bool {
	_, ok := r.Env.Lookup(name)
	return ok
}

// String lists the environment one variable a line, for failure messages.
func (r Reply) String() string {
	var b strings.Builder
	for _, v := range r.Env {
		fmt.Fprintf(&b, "  %s=%q\n", v.Name, v.Value)
	}
	return b.String()
}

// Request returns a request for Do with the given header lines (a name with two
// values is sent as two lines).
func Request(t testing.TB, method, url string, body []byte, header http.Header) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("testenvecho: %v", err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return req
}

// Upload posts a form body of size bytes to url and fails t unless the server read
// every byte of it, unchanged. It returns the reply, whose environment tells how the
// body was announced.
func Upload(t testing.TB, url string, size int) Reply {
	t.Helper()
	body := make([]byte, size)
	for i := range body {
		body[i] = "0123456789abcdef"[i%16]
	}
	sum := sha256.Sum256(body)
	rep := Do(t, Request(t, http.MethodPost, url, body, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}))
	if rep.BodyBytes != int64(size) || rep.BodySHA256 != hex.EncodeToString(sum[:]) || rep.BodyError != "" {
		t.Errorf("testenvecho: POST %s: the server read %d bytes (sha256 %s, error %q), want the %d sent", url, rep.BodyBytes, rep.BodySHA256, rep.BodyError, size)
	}
	return rep
}
