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
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testnginx"
	"github.com/qxbridge/qxbridge/internal/testwrk"
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
	return nginxTo(t, pass)
}

// nginxTo starts nginx passing every request to the SCGI server at pass (an nginx
// scgi_pass address), with the scgi_params a Quixote site uses.
func nginxTo(t testing.TB, pass string) *testnginx.Instance {
	t.Helper()
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

// serverWrkResult is what one wrk run measured.
type serverWrkResult struct {
	testwrk.Result
	// CPU time per request spent by each party, from /proc, getrusage and wrk's
	// own rusage: where the time goes when all three share the machine.
	nginxCPU, goCPU, wrkCPU time.Duration
}

// runServerWrk loads url with wrk (2 threads, 64 connections) for the given duration.
// wrk's errors are kept in the result for the caller to report, not fatal.
// nginxPID is nginx's master process, for the CPU accounting.
func runServerWrk(b *testing.B, url string, duration time.Duration, nginxPID int) serverWrkResult {
	b.Helper()
	nginxBefore, goBefore := nginxCPUTime(b, nginxPID), selfCPUTime(b)
	res := testwrk.Run(b, url, testwrk.Options{Threads: 2, Conns: 64, Duration: duration, AllowErrors: true})
	nginxCPU, goCPU := nginxCPUTime(b, nginxPID)-nginxBefore, selfCPUTime(b)-goBefore
	requests := time.Duration(res.Requests)
	return serverWrkResult{Result: res, nginxCPU: nginxCPU / requests, goCPU: goCPU / requests, wrkCPU: res.CPU / requests}
}

// nginxCPUTime returns the user+system time used so far by nginx's master and its
// workers (Linux /proc, in clock ticks of 10 ms).
func nginxCPUTime(b *testing.B, master int) time.Duration {
	b.Helper()
	dirs, err := os.ReadDir("/proc")
	require.NoError(b, err)
	var ticks int64
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		// After "pid (comm) ": state ppid ... with utime and stime the 12th and 13th.
		i := bytes.LastIndexByte(stat, ')')
		f := strings.Fields(string(stat[i+1:]))
		if ppid, _ := strconv.Atoi(f[1]); pid != master && ppid != master {
			continue
		}
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += utime + stime
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// selfCPUTime returns the user+system time of this process: the SCGI servers.
func selfCPUTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkNginxWrk measures requests per second through nginx with wrk (2 threads,
// 64 connections) for the same small body served three ways in the same run: a
// static file by nginx itself, and a Go handler behind scgi_pass over TCP and over
// a UNIX socket. Run it with -benchtime=1x. WRK_ROUNDS (default 3) rounds of
// WRK_SECONDS (default 5) per target; NGINX_WORKERS sets nginx's worker_processes
// (default: one per CPU).
func BenchmarkNginxWrk(b *testing.B) {
	envInt := func(name string, def int) int {
		if s := os.Getenv(name); s != "" {
			n, err := strconv.Atoi(s)
			require.NoError(b, err, name)
			return n
		}
		return def
	}
	seconds := envInt("WRK_SECONDS", 5)
	rounds := envInt("WRK_ROUNDS", 3)
	body := []byte("Hello from qxbridge!\n")
	root := b.TempDir()
	require.NoError(b, os.WriteFile(filepath.Join(root, "hello.txt"), body, 0o644))
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	// startSCGIServer listens with TCP keep-alive off, as the package doc recommends.
	tcpAddr := startSCGIServer(b, &Server{Handler: handler, ErrorLog: quiet}, "tcp")
	unixAddr := startSCGIServer(b, &Server{Handler: handler, ErrorLog: quiet}, "unix")
	workers := envInt("NGINX_WORKERS", runtime.NumCPU()) // worker_processes auto, as Debian's nginx.conf has it
	ngx := testnginx.Start(b, testnginx.Config{Workers: workers, Locations: fmt.Sprintf(`
        location = /static {
            alias %s/hello.txt;
            default_type text/plain;
        }
        location = /scgi-tcp {
            include scgi_params;
            scgi_pass %s;
        }
        location = /scgi-unix {
            include scgi_params;
            scgi_pass unix:%s;
        }`, root, tcpAddr, unixAddr)})

	for _, path := range []string{"/static", "/scgi-tcp", "/scgi-unix"} {
		resp, err := http.Get(ngx.URL + path)
		require.NoError(b, err)
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(b, string(body), string(got), path)
	}

	// Rounds alternate the three targets so that a change in the machine's load
	// hits all of them alike; each target reports its median round.
	targets := []string{"static", "scgi-tcp", "scgi-unix"}
	b.ResetTimer()
	for b.Loop() {
		results := map[string][]serverWrkResult{}
		for round := 0; round < rounds; round++ {
			for _, name := range targets {
				if round == 0 {
					runServerWrk(b, ngx.URL+"/"+name, time.Second, ngx.PID()) // warm up
				}
				r := runServerWrk(b, ngx.URL+"/"+name, time.Duration(seconds)*time.Second, ngx.PID())
				if r.Errors != "" {
					b.Errorf("%s: wrk reported %s", name, r.Errors)
				}
				results[name] = append(results[name], r)
			}
		}
		median := map[string]serverWrkResult{}
		for _, name := range targets {
			m := testwrk.Median(results[name], func(r serverWrkResult) float64 { return r.RPS })
			median[name] = m
			b.ReportMetric(m.RPS, name+"-req/s")
			b.ReportMetric(float64(m.P50.Microseconds()), name+"-p50-µs")
			b.ReportMetric(float64(m.P99.Microseconds()), name+"-p99-µs")
			b.ReportMetric(float64(m.nginxCPU.Nanoseconds())/1e3, name+"-nginx-cpu-µs/req")
			b.ReportMetric(float64(m.goCPU.Nanoseconds())/1e3, name+"-go-cpu-µs/req")
			b.ReportMetric(float64(m.wrkCPU.Nanoseconds())/1e3, name+"-wrk-cpu-µs/req")
		}
		b.ReportMetric(median["scgi-tcp"].RPS/median["static"].RPS, "tcp/static")
		b.ReportMetric(median["scgi-unix"].RPS/median["static"].RPS, "unix/static")
	}
}
