package scgi

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testnginx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nginxEcho is what the echo handler reports about the request it got.
type nginxEcho struct {
	Method        string            `json:"method"`
	RequestURI    string            `json:"request_uri"`
	Path          string            `json:"path"`
	RawQuery      string            `json:"raw_query"`
	Query         url.Values        `json:"query"`
	Host          string            `json:"host"`
	RemoteAddr    string            `json:"remote_addr"`
	Proto         string            `json:"proto"`
	TLS           bool              `json:"tls"`
	Header        http.Header       `json:"header"`
	Cookies       []string          `json:"cookies"`
	ContentLength int64             `json:"content_length"`
	BodyLen       int64             `json:"body_len"`
	BodySHA256    string            `json:"body_sha256"`
	Env           map[string]string `json:"env"`
	RawCookieEnv  []string          `json:"raw_cookie_env"`
}

// nginxTestHandler is the Go application behind nginx in the end-to-end tests.
func nginxTestHandler(release <-chan struct{}) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		e := nginxEcho{
			Method: r.Method, RequestURI: r.RequestURI, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
			Query: r.URL.Query(), Host: r.Host, RemoteAddr: r.RemoteAddr, Proto: r.Proto,
			TLS: r.TLS != nil, Header: r.Header, ContentLength: r.ContentLength, BodyLen: n,
			BodySHA256: hex.EncodeToString(h.Sum(nil)), Env: ProcessEnv(r),
			RawCookieEnv: RequestEnv(r).Values("HTTP_COOKIE"),
		}
		for _, c := range r.Cookies() {
			e.Cookies = append(e.Cookies, c.Name+"="+c.Value)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(e)
	})
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/target?a=b", http.StatusFound)
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Accel-Buffering", "no") // nginx: pass the response on as it comes
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
			io.WriteString(w, "second\n")
		case <-time.After(5 * time.Second):
			// The client never saw "first" while this handler ran.
			io.WriteString(w, "second, after waiting in vain\n")
		}
	})
	mux.HandleFunc("/reject-upload", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upload refused", http.StatusRequestEntityTooLarge)
	})
	mux.HandleFunc("/panic", func(w http.ResponseWriter, r *http.Request) {
		panic("handler failure")
	})
	return mux
}

// startBehindNginx serves handler with a Server on network ("tcp" or "unix") and
// starts nginx with scgi_pass to it, with the scgi_params a Quixote site uses.
func startBehindNginx(t testing.TB, network string, handler http.Handler) *testnginx.Instance {
	t.Helper()
	var log serverLog
	srv := &Server{Handler: handler, ErrorLog: log.logger()}
	addr := startSCGIServer(t, srv, network)
	pass := addr
	if network == "unix" {
		pass = "unix:" + addr
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("scgi server log:\n%s", log.String())
		}
	})
	return testnginx.Start(t, testnginx.Config{Locations: fmt.Sprintf(`
        location / {
            include scgi_params;
            scgi_param SCRIPT_NAME "";
            scgi_param PATH_INFO $document_uri;
            scgi_pass %s;
        }`, pass)})
}

func TestServerBehindNginx(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			release := make(chan struct{}, 1)
			ngx := startBehindNginx(t, network, nginxTestHandler(release))
			client := &http.Client{
				Timeout:       30 * time.Second,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			}
			echo := func(t *testing.T, req *http.Request) nginxEcho {
				t.Helper()
				resp, err := client.Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", body)
				assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
				var e nginxEcho
				require.NoError(t, json.Unmarshal(body, &e))
				return e
			}

			t.Run("GET with query string", func(t *testing.T) {
				req, _ := http.NewRequest("GET", ngx.URL+"/echo?x=1&y=%2F&z=caf%C3%A9&x=2", nil)
				req.Header.Set("X-Custom-Thing", "v1")
				e := echo(t, req)
				assert.Equal(t, "GET", e.Method)
				assert.Equal(t, "/echo?x=1&y=%2F&z=caf%C3%A9&x=2", e.RequestURI)
				assert.Equal(t, "/echo", e.Path)
				assert.Equal(t, url.Values{"x": {"1", "2"}, "y": {"/"}, "z": {"café"}}, e.Query)
				assert.Equal(t, "127.0.0.1", e.Host, "Debian's scgi_params send HTTP_HOST $host")
				host, port, err := net.SplitHostPort(e.RemoteAddr)
				require.NoError(t, err)
				assert.Equal(t, "127.0.0.1", host)
				assert.NotEqual(t, "0", port)
				assert.Equal(t, "HTTP/1.1", e.Proto)
				assert.False(t, e.TLS)
				assert.Equal(t, []string{"v1"}, e.Header["X-Custom-Thing"])
				assert.Equal(t, int64(0), e.ContentLength)
				assert.Equal(t, "", e.Env["SCRIPT_NAME"])
				assert.Equal(t, "/echo", e.Env["PATH_INFO"])
				assert.Equal(t, "x=1&y=%2F&z=caf%C3%A9&x=2", e.Env["QUERY_STRING"])
				assert.Equal(t, "1", e.Env["SCGI"])
			})

			t.Run("POST 10 MB", func(t *testing.T) {
				body := make([]byte, 10<<20)
				_, err := rand.Read(body)
				require.NoError(t, err)
				sum := sha256.Sum256(body)
				req, _ := http.NewRequest("POST", ngx.URL+"/echo", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/octet-stream")
				e := echo(t, req)
				assert.Equal(t, "POST", e.Method)
				assert.Equal(t, int64(len(body)), e.ContentLength)
				assert.Equal(t, int64(len(body)), e.BodyLen)
				assert.Equal(t, hex.EncodeToString(sum[:]), e.BodySHA256)
				assert.Equal(t, []string{"application/octet-stream"}, e.Header["Content-Type"])
				assert.Equal(t, []string{fmt.Sprint(len(body))}, e.Header["Content-Length"])
			})

			t.Run("form POST", func(t *testing.T) {
				resp, err := client.PostForm(ngx.URL+"/echo", url.Values{"name": {"TestUser"}})
				require.NoError(t, err)
				var e nginxEcho
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
				resp.Body.Close()
				assert.Equal(t, int64(len("name=TestUser")), e.BodyLen)
				assert.Equal(t, "application/x-www-form-urlencoded", e.Env["CONTENT_TYPE"])
			})

			t.Run("cookies, including two Cookie lines", func(t *testing.T) {
				// net/http's client would write the header lines as given too, but
				// a raw request shows exactly what nginx receives.
				c, err := net.Dial("tcp", ngx.Addr)
				require.NoError(t, err)
				defer c.Close()
				_, err = io.WriteString(c, "GET /echo HTTP/1.1\r\nHost: localhost\r\n"+
					"Cookie: a=1; b=2\r\nCookie: QX_session=0123456789abcdef\r\nConnection: close\r\n\r\n")
				require.NoError(t, err)
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				require.NoError(t, err)
				defer resp.Body.Close()
				require.Equal(t, http.StatusOK, resp.StatusCode)
				var e nginxEcho
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
				assert.Equal(t, []string{"a=1; b=2", "QX_session=0123456789abcdef"}, e.Header["Cookie"])
				assert.Equal(t, []string{"a=1", "b=2", "QX_session=0123456789abcdef"}, e.Cookies)
				assert.Equal(t, []string{"a=1; b=2", "QX_session=0123456789abcdef"}, e.RawCookieEnv)
				assert.Equal(t, "a=1; b=2; QX_session=0123456789abcdef", e.Env["HTTP_COOKIE"])
			})

			t.Run("streamed response arrives before the handler ends", func(t *testing.T) {
				resp, err := client.Get(ngx.URL + "/stream")
				require.NoError(t, err)
				defer resp.Body.Close()
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				br := bufio.NewReader(resp.Body)
				line, err := br.ReadString('\n')
				require.NoError(t, err)
				assert.Equal(t, "first\n", line, "flushed while the handler is still waiting")
				release <- struct{}{} // buffered: never blocks
				rest, err := io.ReadAll(br)
				require.NoError(t, err)
				assert.Equal(t, "second\n", string(rest))
			})

			t.Run("HEAD", func(t *testing.T) {
				resp, err := client.Head(ngx.URL + "/hello")
				require.NoError(t, err)
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				require.NoError(t, err)
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Equal(t, int64(5), resp.ContentLength)
				assert.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
				assert.Empty(t, body)
			})

			t.Run("GET small", func(t *testing.T) {
				resp, err := client.Get(ngx.URL + "/hello")
				require.NoError(t, err)
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				assert.Equal(t, "hello", string(body))
				assert.Equal(t, int64(5), resp.ContentLength)
			})

			t.Run("redirect", func(t *testing.T) {
				resp, err := client.Get(ngx.URL + "/redirect")
				require.NoError(t, err)
				resp.Body.Close()
				assert.Equal(t, http.StatusFound, resp.StatusCode)
				assert.Equal(t, "/target?a=b", resp.Header.Get("Location"))
			})

			t.Run("upload refused without reading it", func(t *testing.T) {
				body := bytes.Repeat([]byte("r"), 10<<20)
				resp, err := client.Post(ngx.URL+"/reject-upload", "application/octet-stream", bytes.NewReader(body))
				require.NoError(t, err)
				msg, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
				assert.Equal(t, "upload refused\n", string(msg))
			})

			t.Run("panic is a 500 and the server goes on", func(t *testing.T) {
				resp, err := client.Get(ngx.URL + "/panic")
				require.NoError(t, err)
				resp.Body.Close()
				assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
				resp, err = client.Get(ngx.URL + "/hello")
				require.NoError(t, err)
				resp.Body.Close()
				assert.Equal(t, http.StatusOK, resp.StatusCode)
			})

			assert.NotContains(t, ngx.ErrorLog(), "[error]", "nginx logged no upstream errors")
		})
	}
}

func TestServerBehindNginxHTTPS(t *testing.T) {
	// nginx sets HTTPS only over TLS; scgi_param can stand in for a TLS listener
	// (the variable is all the server sees either way).
	srv := &Server{Handler: nginxTestHandler(nil)}
	addr := startSCGIServer(t, srv, "tcp")
	ngx := testnginx.Start(t, testnginx.Config{Locations: `
        location / {
            include scgi_params;
            scgi_param HTTPS on;
            scgi_pass ` + addr + `;
        }`})
	resp, err := http.Get(ngx.URL + "/echo")
	require.NoError(t, err)
	defer resp.Body.Close()
	var e nginxEcho
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
	assert.True(t, e.TLS)
	assert.Equal(t, "on", e.Env["HTTPS"])
	assert.True(t, strings.HasPrefix(e.RemoteAddr, "127.0.0.1:"))
}
