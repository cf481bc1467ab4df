package gateway

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testnginx"
	"github.com/qxbridge/qxbridge/internal/testpg"
	"github.com/qxbridge/qxbridge/internal/testquixote"
)

// host is one host of a multi-host deployment: a gateway process and its own
// Quixote workers, both keeping their sessions in the shared database.
type host struct {
	gw *gatewayProcess
	qx *testquixote.Server
}

// startHost starts a host over the database dsn: Quixote 3.8 with session3's
// SessionManager over qxbridge-pgstore, and the gateway (its own process) with the
// Go demo at / and Quixote mounted at /py/, serving SCGI for the front server.
func startHost(t *testing.T, dsn string, extra ...string) host {
	t.Helper()
	qx := testquixote.Start(t, testquixote.Options{Children: 2,
		Env: []string{"QXSITE_SESSION_DSN=" + dsn, "QXSITE_COOKIE_PATH=/"}})
	args := append([]string{"-scgi", "127.0.0.1:0", "-metrics", "127.0.0.1:0", "-sessions", dsn,
		"-route", "/=demo", "-mount", "/py/=" + quixoteTarget(qx), "-cookie-path", "/"}, extra...)
	return host{gw: startGatewayProcess(t, 2, nil, nil, "", args...), qx: qx}
}

// twoHosts starts a database, two hosts over it and nginx in front of both, and
// returns the database, the hosts and the site's URL.
func twoHosts(t *testing.T) (srv *testpg.Server, a, b host, site string) {
	t.Helper()
	srv = testpg.Start(t)
	a, b = startHost(t, srv.DSN), startHost(t, srv.DSN)
	return srv, a, b, frontOf(t, a, b).URL
}

// frontOf starts nginx with the documented configuration, passing round-robin to
// the hosts' gateways.
func frontOf(t *testing.T, hosts ...host) *testnginx.Instance {
	t.Helper()
	var servers strings.Builder
	for _, h := range hosts {
		fmt.Fprintf(&servers, "    server %s;\n", h.gw.addrs["scgi"])
	}
	return testnginx.Start(t, testnginx.Config{
		HTTP:      "upstream gateways {\n" + servers.String() + "}\n",
		Locations: documentedNginx(t, "gateways"),
	})
}

// requestsServed returns how many requests a gateway served on a route, by status.
func requestsServed(t *testing.T, h host, route, status string) int {
	t.Helper()
	re := regexp.MustCompile(`(?m)^qxbridge_requests_total\{route="` + regexp.QuoteMeta(route) + `",status="` + status + `"\} (\d+)$`)
	m := re.FindStringSubmatch(scrape(t, h.gw.addrs["metrics"]))
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestMultiHostPostgres is a deployment on two hosts in miniature: one database,
// two hosts each with a gateway and its own Quixote workers (the Python side on
// qxbridge-pgstore), nginx spreading requests round-robin over the two gateways. A
// scripted user logs in through Python and counts through Go and Python on both
// hosts, each step seeing the last; the database restarts (503s on both sides, then
// the same session again); then one host is killed in the middle of a burst of
// requests, and no session that a request committed is lost.
func TestMultiHostPostgres(t *testing.T) {
	srv, a, b, u := twoHosts(t)
	c := client(t)
	r := get(t, c, u+"/py/login?user=alice")
	require.Equal(t, http.StatusOK, r.Status, r.Body)
	require.Equal(t, "ok", r.Body)
	assert.Contains(t, get(t, c, u+"/").Body, "<p>Hello, alice!</p>")
	// Go and Python take turns, each request on the other host than the last.
	want := 0
	for i := range 12 {
		want++
		if i%4 < 2 {
			assert.Contains(t, get(t, c, u+"/counter").Body, "<p>Counter: "+strconv.Itoa(want)+"</p>", "Go, step %d", i)
		} else {
			assert.Equal(t, strconv.Itoa(want), get(t, c, u+"/py/counter").Body, "Python, step %d", i)
		}
	}
	st := statusOf(t, get(t, c, u+"/py/status"))
	assert.Equal(t, "alice", st.User)
	assert.Equal(t, float64(want), st.Attrs["counter"])
	for _, h := range []host{a, b} {
		assert.Positive(t, requestsServed(t, h, "/", "200"), "each host served Go pages")
		assert.Positive(t, requestsServed(t, h, "/py/", "200"), "each host served Python pages")
	}
	id := sessionCookie(t, c, u)
	db := openPG(t, srv.DSN)
	n, _ := loadPG(t, db, id).GetInt("counter")
	assert.Equal(t, int64(want), n)

	// The database restarts: both hosts answer 503 for Go and Python pages alike
	// meanwhile, and serve the session as it was once the database is back.
	srv.Stop(t)
	for range 2 {
		r := get(t, c, u+"/counter")
		assert.Equal(t, http.StatusServiceUnavailable, r.Status, "Go: %s", r.Body)
		r = get(t, c, u+"/py/counter")
		assert.Equal(t, http.StatusServiceUnavailable, r.Status, "Python: %s", r.Body)
	}
	srv.Start(t)
	for range 2 {
		want++
		assert.Contains(t, get(t, c, u+"/counter").Body, "<p>Counter: "+strconv.Itoa(want)+"</p>")
		want++
		assert.Equal(t, strconv.Itoa(want), get(t, c, u+"/py/counter").Body)
	}

	// Other users' sessions, made on either host.
	others := map[string]*http.Client{}
	for _, name := range []string{"bob", "carol", "dave"} {
		others[name] = client(t)
		require.Equal(t, "ok", get(t, others[name], u+"/py/login?user="+name).Body)
	}

	// One host dies (gateway and workers, as a machine does) in the middle of a
	// burst; nginx passes the rest to the other.
	ok, failed := 0, 0
	for i := range 60 {
		if i == 20 {
			require.NoError(t, a.gw.cmd.Process.Kill())
			a.qx.Stop()
		}
		switch s := get(t, c, u+"/counter").Status; s {
		case http.StatusOK:
			ok++
		default:
			failed++
			t.Logf("request %d: %d", i, s)
		}
	}
	assert.LessOrEqual(t, failed, 1, "at most the request in flight on the dying host fails")
	n, _ = loadPG(t, db, id).GetInt("counter")
	assert.GreaterOrEqual(t, n, int64(want+ok), "every count answered 200 is stored")
	assert.LessOrEqual(t, n, int64(want+ok+1), "at most the request in flight on the dying host counted unanswered")
	assert.Contains(t, get(t, c, u+"/counter").Body, fmt.Sprintf("<p>Counter: %d</p>", n+1), "the surviving host serves the session as stored")
	for name, oc := range others {
		assert.Contains(t, get(t, oc, u+"/").Body, "<p>Hello, "+name+"!</p>", "the surviving host serves %s's session", name)
		assert.Equal(t, name, statusOf(t, get(t, oc, u+"/py/status")).User)
	}
}
