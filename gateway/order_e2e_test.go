package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testnginx"
	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/qxbridge/qxbridge/quixote"
)

// The per-session ordering proof: nginx (docs/nginx.conf) → the gateway over SCGI →
// the Go demo at / and the real Quixote 3.8 application qxsite (session3's
// DirectorySessionStore) at /py/, on one session directory. Every Python worker
// child loads, changes and saves the session file on its own; only the gateway's
// ordering keeps two requests of one session from interleaving.
//
// QXBRIDGE_TEST_ORDER_OFF=1 runs the increment tests with -order=false, to see what
// they lose without ordering (they are expected to fail then).

// orderSite is the deployment under test.
type orderSite struct {
	url      string // nginx
	sessions string
	gws      []*runningGateway // in this process
	procs    []*gatewayProcess // or as processes of their own
	py       *testquixote.Server
}

// orderArgs are the ordering flags of the increment tests.
func orderArgs() []string {
	if os.Getenv("QXBRIDGE_TEST_ORDER_OFF") == "1" {
		return []string{"-order=false"}
	}
	return nil
}

// startOrderSite starts the Quixote workers, n gateways in this process (each with
// its own ordering state; they share the session directory and its lock directory)
// and nginx spreading requests over them round-robin.
func startOrderSite(t *testing.T, n int, register func(*Gateway), extra ...string) *orderSite {
	return startOrderSiteHow(t, n, false, register, extra...)
}

// startOrderSiteHow is startOrderSite, with the gateways run as processes of their
// own (the scgi-gateway command: the demo only) when procs is set.
func startOrderSiteHow(t *testing.T, n int, procs bool, register func(*Gateway), extra ...string) *orderSite {
	t.Helper()
	tmp := shortTempDir(t)
	sessions := filepath.Join(tmp, "sessions")
	require.NoError(t, os.Mkdir(sessions, 0o770))
	py := testquixote.Start(t, testquixote.Options{Unix: true, Children: 4, SessionDir: sessions,
		Env: []string{"QXSITE_COOKIE_PATH=/"}})
	target := "scgi+unix://" + strings.TrimPrefix(py.Addr, "unix:")
	site := &orderSite{sessions: sessions, py: py}
	var servers strings.Builder
	for i := range n {
		sock := "unix:" + filepath.Join(tmp, fmt.Sprintf("gw%d.sock", i))
		args := append([]string{"-scgi", sock, "-sessions", sessions, "-route", "/=demo",
			"-mount", "/py/=" + target, "-cookie-path", "/"}, extra...)
		if procs {
			site.procs = append(site.procs, startGatewayProcess(t, 1, nil, nil, "", args...))
		} else {
			site.gws = append(site.gws, startGatewayWith(t, register, args...))
		}
		fmt.Fprintf(&servers, "    server %s;\n", sock)
	}
	conf := strings.Replace(documentedNginx(t, docsSocket), "scgi_pass "+docsSocket+";", "scgi_pass gateways;", 1)
	ng := testnginx.Start(t, testnginx.Config{HTTP: "upstream gateways {\n" + servers.String() + "}\n", Locations: conf})
	site.url = ng.URL
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error log:\n%s", ng.ErrorLog())
		}
	})
	return site
}

// login logs a new user in through Python and returns the session id.
func (s *orderSite) login(t *testing.T, user string) string {
	t.Helper()
	r := get(t, &http.Client{}, s.url+"/py/login?user="+user)
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	m := regexp.MustCompile(`^QX_session="([A-Za-z0-9_-]+)"`).FindStringSubmatch(strings.Join(r.Cookies, "\n"))
	require.NotNil(t, m, "a session cookie: %q", r.Cookies)
	return m[1]
}

// fetch is a request from a client goroutine: no test helpers that stop the test.
func fetch(c *http.Client, method, u, id, form string) (int, string, http.Header, error) {
	var body io.Reader
	if form != "" {
		body = strings.NewReader(form)
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return 0, "", nil, err
	}
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Cookie", `QX_session="`+id+`"`)
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header, err
}

var goCounter = regexp.MustCompile(`<p>Counter: (\d+)</p>`)

// increments runs 400 counter increments of session id from 8 goroutines, each
// taking its side from side(goroutine, i): Go's /counter or Python's /py/counter.
// Every answer must be 200 with a count; it returns the counts answered.
func (s *orderSite) increments(t *testing.T, id string, side func(g, i int) string) []int {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	var mu sync.Mutex
	var counts []int
	var failures atomic.Int32
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				path := side(g, i)
				code, body, _, err := fetch(c, http.MethodGet, s.url+path, id, "")
				n := -1
				if m := goCounter.FindStringSubmatch(body); m != nil {
					n, _ = strconv.Atoi(m[1])
				} else if v, err := strconv.Atoi(strings.TrimSpace(body)); err == nil {
					n = v
				}
				if err != nil || code != http.StatusOK || n < 0 {
					if failures.Add(1) <= 3 {
						t.Errorf("%s: %d %v %.200q", path, code, err, body)
					}
					continue
				}
				mu.Lock()
				counts = append(counts, n)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return counts
}

// checkCount asserts that session id counts 400 increments, each answered with a
// distinct count (none lost, none seen twice), in the file and on both sides.
func (s *orderSite) checkCount(t *testing.T, id string, counts []int) {
	t.Helper()
	n, ok := readSession(t, s.sessions, id).GetInt("counter")
	require.True(t, ok)
	assert.Equal(t, int64(400), n, "increments lost")
	seen := map[int]bool{}
	for _, c := range counts {
		seen[c] = true
	}
	assert.Equal(t, 400, len(seen), "every request saw its own count")
	assert.Equal(t, "401", strings.TrimSpace(get(t, &http.Client{}, s.url+"/py/counter", "Cookie", `QX_session="`+id+`"`).Body))
	assert.NotContains(t, s.py.Output.String(), "Traceback")
}

func TestOrderIncrementsMixed(t *testing.T) {
	s := startOrderSite(t, 1, nil, orderArgs()...)
	id := s.login(t, "alice")
	counts := s.increments(t, id, func(g, i int) string {
		if (g+i)%2 == 0 {
			return "/counter"
		}
		return "/py/counter"
	})
	s.checkCount(t, id, counts)
	m := scrapeGateway(t, s.gws[0])
	assert.Regexp(t, `qxbridge_session_queue_wait_seconds_count\{route="/py/"\} \d+`, m)
	assert.Contains(t, s.gws[0].log.String(), " wait=")
}

func TestOrderIncrementsPython(t *testing.T) {
	s := startOrderSite(t, 1, nil, orderArgs()...)
	id := s.login(t, "bob")
	s.checkCount(t, id, s.increments(t, id, func(int, int) string { return "/py/counter" }))
}

func TestOrderIncrementsGo(t *testing.T) {
	s := startOrderSite(t, 1, nil, orderArgs()...)
	id := s.login(t, "carol")
	s.checkCount(t, id, s.increments(t, id, func(int, int) string { return "/counter" }))
}

// TestOrderTwoGateways: two gateway processes behind one nginx, round-robin, on one
// session directory, Go and Python mixed: their lock directory orders them.
func TestOrderTwoGateways(t *testing.T) {
	s := startOrderSiteHow(t, 2, true, nil, orderArgs()...)
	id := s.login(t, "dave")
	counts := s.increments(t, id, func(g, i int) string {
		if (g+i/2)%2 == 0 {
			return "/counter"
		}
		return "/py/counter"
	})
	s.checkCount(t, id, counts)
	for _, p := range s.procs {
		assert.Contains(t, p.log.String(), "path=/counter", "both gateways served")
		assert.Contains(t, p.log.String(), "path=/py/counter", "both gateways served")
	}
	// The session's lock file stays for its next request; a sweep removes it once no
	// request holds it (the turn ends just after the response is sent).
	locks, err := OpenLockDir(s.sessions+".locks", "")
	require.NoError(t, err)
	eventually(t, func() bool {
		_, err := locks.Sweep()
		names, _ := os.ReadDir(locks.Dir())
		return err == nil && len(names) == 0
	})
}

// TestOrderFormTokenOnce: a form token made on one side and submitted eight times at
// once, on both sides, is accepted exactly once.
func TestOrderFormTokenOnce(t *testing.T) {
	register := func(g *Gateway) {
		g.HandleFunc("tokens", func(w http.ResponseWriter, r *http.Request) {
			s := quixote.SessionFrom(r)
			switch r.URL.Path {
			case "/go/token":
				io.WriteString(w, s.CreateFormToken())
			case "/go/submit":
				if tok := r.PostFormValue("_form_token"); tok != "" && s.RemoveFormToken(tok) {
					io.WriteString(w, "accepted")
					return
				}
				http.Error(w, "rejected", http.StatusForbidden)
			}
		})
	}
	s := startOrderSite(t, 1, register, "-route", "/go/=tokens")
	id := s.login(t, "erin")
	c := &http.Client{}
	for round := range 10 {
		side := []string{"/go", "/py"}[round%2]
		code, tok, _, err := fetch(c, http.MethodGet, s.url+side+"/token", id, "")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code, tok)
		var accepted, rejected atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				path := []string{"/go/submit", "/py/submit"}[i%2]
				code, body, _, err := fetch(c, http.MethodPost, s.url+path, id, url.Values{"_form_token": {tok}}.Encode())
				switch {
				case err == nil && code == http.StatusOK && body == "accepted":
					accepted.Add(1)
				case err == nil && code == http.StatusForbidden:
					rejected.Add(1)
				default:
					t.Errorf("%s: %d %v %.200q", path, code, err, body)
				}
			}()
		}
		wg.Wait()
		assert.Equal(t, int32(1), accepted.Load(), "round %d (token from %s): accepted once", round, side)
		assert.Equal(t, int32(7), rejected.Load())
		assert.NotContains(t, readSession(t, s.sessions, id).FormTokens(), tok)
	}
}

// TestOrderFlood: a session flooded past its queue gets 503s with Retry-After while
// its first request holds the turn, and another session is served meanwhile.
func TestOrderFlood(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	register := func(g *Gateway) {
		g.HandleFunc("hold", func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			<-release
			io.WriteString(w, "held")
		})
	}
	s := startOrderSite(t, 1, register, "-route", "/hold=hold", "-order-queue", "3", "-http", "127.0.0.1:0")
	busy, other := s.login(t, "fred"), s.login(t, "gina")
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 20}}
	type result struct {
		code  int
		retry string
	}
	results := make(chan result, 20)
	send := func(path string) {
		code, _, h, err := fetch(c, http.MethodGet, s.url+path, busy, "")
		if err != nil {
			t.Error(err)
		}
		results <- result{code, h.Get("Retry-After")}
	}
	go send("/hold")
	<-entered
	g := s.gws[0]

	// A client that gives up while it waits leaves the queue. (On the HTTP listener,
	// which notices a closed connection at once; an SCGI connection closed by the front
	// server is noticed when the request's turn comes.)
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url()+"/counter", nil)
	require.NoError(t, err)
	req.Header.Set("Cookie", `QX_session="`+busy+`"`)
	gaveUp := make(chan error, 1)
	go func() {
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		gaveUp <- err
	}()
	eventually(t, func() bool { return g.orderer.waiting() == 1 })
	cancel()
	assert.ErrorIs(t, <-gaveUp, context.Canceled)
	eventually(t, func() bool { return g.orderer.waiting() == 0 })
	for range 3 {
		go send("/py/counter")
	}
	eventually(t, func() bool { return g.orderer.waiting() == 3 })
	for range 5 {
		go send("/counter")
	}
	refused := 0
	for range 5 {
		r := <-results
		assert.Equal(t, http.StatusServiceUnavailable, r.code)
		assert.Equal(t, "1", r.retry)
		refused++
	}
	// Meanwhile another session is served at once, on both sides.
	code, body, _, err := fetch(c, http.MethodGet, s.url+"/py/counter", other, "")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "1", body)
	code, body, _, err = fetch(c, http.MethodGet, s.url+"/counter", other, "")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "Counter: 2")

	close(release)
	for range 4 {
		assert.Equal(t, http.StatusOK, (<-results).code, "the held and the queued requests are served")
	}
	n, _ := readSession(t, s.sessions, busy).GetInt("counter")
	assert.Equal(t, int64(3), n)
	m := scrapeGateway(t, g)
	assert.Contains(t, m, `qxbridge_session_queue_rejections_total{reason="queue_full",route="/"} 5`)
	assert.Contains(t, g.log.String(), "refusing a request: its session is busy")
	assert.Equal(t, 5, refused)
}

// scrapeGateway returns the metrics of an in-process gateway.
func scrapeGateway(t *testing.T, g *runningGateway) string {
	t.Helper()
	w := httptest.NewRecorder()
	g.metrics.handler(g.health).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return w.Body.String()
}
