package scgi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testapache"
	"github.com/qxbridge/qxbridge/internal/testlighttpd"
	"github.com/qxbridge/qxbridge/internal/testnginx"
	"github.com/qxbridge/qxbridge/internal/testpeer"
)

// guard bounds the waits of these tests: reaching it is a failure, not a measure.
const guard = 10 * time.Second

// halfCloseWindow is how long a handler gives the front end to show a half-close
// (which comes right after the request) before it answers.
const halfCloseWindow = 300 * time.Millisecond

// rawRequest is an SCGI request as a front end sends it: a GET, or a POST of body.
func rawRequest(uri, body string) string {
	method := "GET"
	if body != "" {
		method = "POST"
	}
	h := fmt.Sprintf("CONTENT_LENGTH\x00%d\x00SCGI\x001\x00REQUEST_METHOD\x00%s\x00REQUEST_URI\x00%s\x00",
		len(body), method, uri)
	return netstring(h) + "," + body
}

// departures is a handler that reads the whole body (unless skipBody), reports that
// it started, and waits for its request's context to end, which it reports.
type departures struct {
	started  chan struct{}
	canceled chan error
	skipBody bool
}

func newDepartures() *departures {
	return &departures{started: make(chan struct{}, 1), canceled: make(chan error, 1)}
}

func (d *departures) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !d.skipBody {
		_, _ = io.Copy(io.Discard, r.Body)
	}
	d.started <- struct{}{}
	select {
	case <-r.Context().Done():
		d.canceled <- r.Context().Err()
	case <-time.After(guard):
		d.canceled <- nil
	}
}

// TestServerNoticesDepartedClient: a front end that closes the connection while the
// handler runs, once the request (body included) has arrived, cancels the request's
// context at once, as net/http does, not when the response is written: a large body
// once the handler has read it, a small one that came with the header even if the
// handler has not read it (a handler waiting for its session's turn).
func TestServerNoticesDepartedClient(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		for _, tc := range []struct {
			body     string
			skipBody bool
		}{{"", false}, {strings.Repeat("b", 100<<10), false}, {"a=1&b=2", true}} {
			body := tc.body
			t.Run(fmt.Sprintf("%s/body=%d/unread=%v", network, len(body), tc.skipBody), func(t *testing.T) {
				d := newDepartures()
				d.skipBody = tc.skipBody
				addr := startSCGIServer(t, &Server{Handler: d, ErrorLog: discardLog()}, network)
				c, err := net.Dial(network, addr)
				require.NoError(t, err)
				_, err = io.WriteString(c, rawRequest("/wait", body))
				require.NoError(t, err)
				waitFor(t, d.started, "the handler to start")
				require.NoError(t, c.Close())
				select {
				case err := <-d.canceled:
					assert.ErrorIs(t, err, context.Canceled, "the context is canceled when the client leaves")
				case <-time.After(2 * guard):
					t.Fatal("the handler never returned")
				}
			})
		}
	}
}

// TestServerKeepsRequestOfStayingClient: a front end that keeps the connection open
// while it waits for the response (with or without a body, or sending stray bytes
// after the request) does not get its request canceled.
func TestServerKeepsRequestOfStayingClient(t *testing.T) {
	for name, extra := range map[string]string{"plain": "", "stray bytes after the request": "xyz"} {
		for _, body := range []string{"", "a=1&b=2"} {
			t.Run(fmt.Sprintf("%s/body=%d", name, len(body)), func(t *testing.T) {
				addr := startSCGIServer(t, &Server{Handler: patient(), ErrorLog: discardLog()}, "tcp")
				c, err := net.Dial("tcp", addr)
				require.NoError(t, err)
				defer c.Close()
				_, err = io.WriteString(c, rawRequest("/x", body)+extra)
				require.NoError(t, err)
				require.NoError(t, c.SetReadDeadline(time.Now().Add(guard)))
				resp, err := io.ReadAll(c)
				require.NoError(t, err)
				assert.True(t, strings.HasSuffix(string(resp), "\r\n\r\nnot canceled"), "%q", resp)
			})
		}
	}
}

// patient answers "not canceled" when its request's context was not canceled after
// the half-close window.
func patient() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
			io.WriteString(w, "canceled")
		case <-time.After(halfCloseWindow):
			io.WriteString(w, "not canceled")
		}
	})
}

// TestServerFrontEndHalfCloses: a front end that shuts down its sending side after
// the request still reads the response. By default that looks like a departure and
// cancels the request; with FrontEndHalfCloses the server does not watch, and the
// request runs to its end.
func TestServerFrontEndHalfCloses(t *testing.T) {
	for _, halfCloses := range []bool{false, true} {
		t.Run(fmt.Sprint("FrontEndHalfCloses=", halfCloses), func(t *testing.T) {
			addr := startSCGIServer(t, &Server{Handler: patient(), ErrorLog: discardLog(), FrontEndHalfCloses: halfCloses}, "tcp")
			c, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			defer c.Close()
			_, err = io.WriteString(c, rawRequest("/x", ""))
			require.NoError(t, err)
			require.NoError(t, c.(*net.TCPConn).CloseWrite())
			require.NoError(t, c.SetReadDeadline(time.Now().Add(guard)))
			resp, err := io.ReadAll(c)
			require.NoError(t, err)
			want := "canceled"
			if halfCloses {
				want = "not canceled"
			}
			assert.True(t, strings.HasSuffix(string(resp), "\r\n\r\n"+want), "%q", resp)
		})
	}
}

// TestServerDepartureFrontEnds: behind the real nginx, a browser that goes away
// while the handler runs cancels its request (nginx closes the upstream
// connection); behind nginx, Apache's mod_proxy_scgi and lighttpd, configured as
// docs/ shows, a request whose browser waits is not canceled: none of them
// half-closes the connection to the gateway.
func TestServerDepartureFrontEnds(t *testing.T) {
	fronts := []struct {
		name  string
		start func(t *testing.T, socket string) string
	}{
		{"nginx", func(t *testing.T, socket string) string {
			return testnginx.Start(t, testnginx.Config{Locations: testpeer.DocSnippet(t, "nginx.conf", socket)}).URL
		}},
		{"apache", func(t *testing.T, socket string) string {
			doc, err := os.ReadFile(filepath.Join(testpeer.RepoRoot(), "docs", "apache.conf"))
			require.NoError(t, err)
			return testapache.Start(t, testapache.Config{Modules: testapache.A2enmod(string(doc)),
				Site: testpeer.DocSnippet(t, "apache.conf", socket)}).URL
		}},
		{"lighttpd", func(t *testing.T, socket string) string {
			return testlighttpd.Start(t, testlighttpd.Config{Site: testpeer.DocSnippet(t, "lighttpd.conf", socket)}).URL
		}},
	}
	for _, front := range fronts {
		t.Run(front.name, func(t *testing.T) {
			d := newDepartures()
			var served atomic.Int32
			mux := http.NewServeMux()
			mux.Handle("/wait", d)
			mux.HandleFunc("/patient", func(w http.ResponseWriter, r *http.Request) {
				served.Add(1)
				patient().ServeHTTP(w, r)
			})
			socket := filepath.Join(testpeer.SocketDir(t), "gateway.sock")
			l, err := net.Listen("unix", socket)
			require.NoError(t, err)
			testpeer.GrantSocket(t, socket)
			srv := &Server{Handler: mux, ErrorLog: discardLog()}
			go func() { _ = srv.Serve(l) }()
			t.Cleanup(func() { srv.Close() })
			site := front.start(t, socket)

			c := &http.Client{Timeout: guard}
			for _, body := range []string{"", "a=1&b=2"} {
				var resp *http.Response
				if body == "" {
					resp, err = c.Get(site + "/patient")
				} else {
					resp, err = c.Post(site+"/patient", "application/x-www-form-urlencoded", strings.NewReader(body))
				}
				require.NoError(t, err)
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				assert.Equal(t, "not canceled", string(got), "body %q", body)
			}
			assert.EqualValues(t, 2, served.Load())

			if front.name != "nginx" {
				return // they notice a departed browser only when they write to it
			}
			u := strings.TrimPrefix(site, "http://")
			conn, err := net.Dial("tcp", u)
			require.NoError(t, err)
			_, err = io.WriteString(conn, "GET /wait HTTP/1.1\r\nHost: "+u+"\r\n\r\n")
			require.NoError(t, err)
			waitFor(t, d.started, "the handler to start")
			require.NoError(t, conn.Close())
			select {
			case err := <-d.canceled:
				assert.ErrorIs(t, err, context.Canceled, "nginx closed the connection: the request is canceled")
			case <-time.After(2 * guard):
				t.Fatal("the handler never returned")
			}
		})
	}
}

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(guard):
		t.Fatalf("waited in vain for %s", what)
	}
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
