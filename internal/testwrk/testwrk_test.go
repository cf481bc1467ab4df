package testwrk

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Outputs of wrk 4.1 against a small Go HTTP server: a clean run, and one against a
// handler answering every second request with 500 and stalling every 50th past
// --timeout 1s.
const (
	cleanOutput = `Running 1s test @ http://127.0.0.1:18765/ok
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.38ms   15.12ms 118.42ms   91.27%
    Req/Sec    60.59k    33.76k   98.36k    54.55%
  Latency Distribution
     50%   17.00us
     75%    1.50ms
     90%   17.34ms
     99%   88.33ms
  66179 requests in 1.00s, 7.70MB read
Requests/sec:  65980.40
Transfer/sec:      7.68MB
`
	erroredOutput = `Running 2s test @ http://127.0.0.1:18765/bad
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    46.23us  289.80us   3.35ms   99.23%
    Req/Sec     1.32k     1.14k    1.98k    66.67%
  Latency Distribution
     50%   17.00us
     75%   27.00us
     90%   37.00us
     99%  129.00us
  396 requests in 2.00s, 56.56KB read
  Socket errors: connect 0, read 0, write 0, timeout 4
  Non-2xx or 3xx responses: 196
Requests/sec:    197.74
Transfer/sec:     28.24KB
`
)

func TestParseCleanOutput(t *testing.T) {
	r, err := parse(cleanOutput)
	require.NoError(t, err)
	assert.Equal(t, 17*time.Microsecond, r.P50)
	assert.Equal(t, 17340*time.Microsecond, r.P90)
	assert.Equal(t, 88330*time.Microsecond, r.P99)
	assert.InDelta(t, 65980.40, r.RPS, 1e-9)
	assert.Equal(t, 66179, r.Requests)
	assert.Empty(t, r.Errors)
	assert.Equal(t, cleanOutput, r.Output)
}

func TestParseErrorLines(t *testing.T) {
	r, err := parse(erroredOutput)
	require.NoError(t, err)
	assert.Equal(t, "Socket errors: connect 0, read 0, write 0, timeout 4; Non-2xx or 3xx responses: 196", r.Errors)
	assert.Equal(t, 396, r.Requests)
	assert.InDelta(t, 197.74, r.RPS, 1e-9)
	assert.Equal(t, 129*time.Microsecond, r.P99)
}

func TestParseRejectsIncompleteOutput(t *testing.T) {
	withoutLatency := strings.Replace(cleanOutput, "     90%   17.34ms\n", "", 1)
	_, err := parse(withoutLatency)
	assert.ErrorContains(t, err, "90% latency")

	// The summary as printed without --latency.
	var noDistribution []string
	for _, l := range strings.Split(cleanOutput, "\n") {
		if !strings.Contains(l, "%   ") && !strings.Contains(l, "Distribution") {
			noDistribution = append(noDistribution, l)
		}
	}
	_, err = parse(strings.Join(noDistribution, "\n"))
	assert.ErrorContains(t, err, "50% latency")

	_, err = parse(strings.Replace(cleanOutput, "Requests/sec:  65980.40\n", "", 1))
	assert.ErrorContains(t, err, "Requests/sec")

	_, err = parse(strings.Replace(cleanOutput, "  66179 requests in", "  lots of requests in", 1))
	assert.ErrorContains(t, err, "request count")

	zero := strings.NewReplacer("66179 requests", "0 requests", "65980.40", "0.00").Replace(cleanOutput)
	_, err = parse(zero)
	assert.ErrorContains(t, err, "no requests")
}

func TestOptionsArgs(t *testing.T) {
	args, err := Options{}.args()
	require.NoError(t, err)
	assert.Equal(t, []string{"-t1", "-c1", "-d1s", "--latency"}, args)

	args, err = Options{Threads: 2, Conns: 64, Duration: time.Minute, Timeout: 10 * time.Second, Script: "/tmp/x.lua"}.args()
	require.NoError(t, err)
	assert.Equal(t, []string{"-t2", "-c64", "-d60s", "--timeout", "10s", "--latency", "-s", "/tmp/x.lua"}, args)

	_, err = Options{Duration: 1500 * time.Millisecond}.args()
	assert.ErrorContains(t, err, "whole number of seconds")
	_, err = Options{Timeout: 500 * time.Millisecond}.args()
	assert.ErrorContains(t, err, "whole number of seconds")
}

func TestMedian(t *testing.T) {
	type round struct {
		name string
		rps  float64
	}
	rs := []round{{"a", 30}, {"b", 10}, {"c", 20}}
	byRPS := func(r round) float64 { return r.rps }
	assert.Equal(t, "c", Median(rs, byRPS).name)
	assert.Equal(t, []round{{"a", 30}, {"b", 10}, {"c", 20}}, rs, "input left unchanged")
	assert.Equal(t, 30.0, Median(append(rs, round{"d", 40}), byRPS).rps, "upper middle of an even count")
	assert.Equal(t, "b", Median(rs[1:2], byRPS).name)
}

// wrkServer returns a local HTTP server running h, or one whose /fail answers 500
// and any other path "hello" when h is nil.
func wrkServer(t *testing.T, h http.Handler) *httptest.Server {
	if _, err := exec.LookPath("wrk"); err != nil {
		testpeer.Missing(t, "wrk")
	}
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/fail" {
				http.Error(w, "failing on purpose", http.StatusInternalServerError)
				return
			}
			w.Write([]byte("hello\n"))
		})
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func TestRunAgainstLocalServer(t *testing.T) {
	srv := wrkServer(t, nil)
	r := Run(t, srv.URL+"/hello", Options{Conns: 2})
	assert.Positive(t, r.Requests)
	assert.Positive(t, r.RPS)
	assert.Positive(t, r.P50)
	assert.LessOrEqual(t, r.P50, r.P90)
	assert.LessOrEqual(t, r.P90, r.P99)
	assert.Positive(t, r.CPU, "wrk used CPU")
	assert.Empty(t, r.Errors)
	assert.Contains(t, r.Output, "Latency Distribution")
}

func TestRunScript(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	srv := wrkServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get("X-Round")] = true
		mu.Unlock()
	}))
	script := filepath.Join(t.TempDir(), "header.lua")
	require.NoError(t, os.WriteFile(script, []byte(`wrk.headers["X-Round"] = "scripted"`), 0o644))
	Run(t, srv.URL, Options{Script: script})
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, map[string]bool{"scripted": true}, seen)
}

// recorder stands in for a benchmark's testing.TB to see Run fail it.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	failed bool
	msgs   []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

func (r *recorder) FailNow() {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
	runtime.Goexit()
}

func TestRunFailsOnNon2xxUnlessAllowed(t *testing.T) {
	srv := wrkServer(t, nil)
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(rec, srv.URL+"/fail", Options{})
	}()
	<-done
	assert.True(t, rec.failed, "a run answered with 500s fails the benchmark")
	assert.Contains(t, strings.Join(rec.msgs, "\n"), "wrk reported errors")

	r := Run(t, srv.URL+"/fail", Options{AllowErrors: true})
	assert.Contains(t, r.Errors, "Non-2xx or 3xx responses: ")
	assert.Positive(t, r.Requests)
}
