package gateway

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testnginx"
)

func TestValidRequestID(t *testing.T) {
	for _, id := range []string{"a", "0af7651916cd43dd8448eb211c80319c", "123e4567-e89b-12d3-a456-426614174000",
		"Root=1-67891233-abcdef012345678912345678", "trace_1.2:3+4/5@x", strings.Repeat("x", MaxRequestIDLength)} {
		assert.True(t, validRequestID(id), id)
	}
	for _, id := range []string{"", strings.Repeat("x", MaxRequestIDLength+1), "a b", `a"b`, "a\nb", "a;b", "a,b",
		"a\x00b", "é", "<script>", "a\\b", "a=b c"} {
		assert.False(t, validRequestID(id), "%q", id)
	}
	assert.Regexp(t, `^[0-9a-f]{32}$`, newRequestID())
	assert.NotEqual(t, newRequestID(), newRequestID())
}

var madeRequestID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestRequestIDs: a request keeps a valid X-Request-ID and gets a new one otherwise;
// the Go handler reads it with RequestID, the real Quixote worker receives it as
// HTTP_X_REQUEST_ID, the response carries it and the request log names it. The JSON
// log gives durations in seconds.
func TestRequestIDs(t *testing.T) {
	w := startQuixote(t)
	g := startGatewayWith(t, func(g *Gateway) {
		g.Handle("rid", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, RequestID(r))
		}))
	}, "-http", "127.0.0.1:0", "-sessions", t.TempDir(), "-log-format", "json",
		"-route", "/go/=rid", "-route", "/py/="+quixoteTarget(w))
	c := client(t)
	python := func(h ...string) (string, response) {
		t.Helper()
		r := get(t, c, g.url()+"/py/env", h...)
		require.Equal(t, http.StatusNotFound, r.Status, "qxsite answers /py/env 404 with its environment")
		var env struct {
			Env map[string]string `json:"env"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.Body), &env), r.Body)
		return env.Env["HTTP_X_REQUEST_ID"], r
	}

	// Kept when valid.
	const trace = "0af7651916cd43dd8448eb211c80319c-01:a/B="
	r := get(t, c, g.url()+"/go/x", "X-Request-ID", trace)
	assert.Equal(t, trace, r.Body, "the Go handler reads it")
	assert.Equal(t, []string{trace}, r.Header.Values(RequestIDHeader))
	got, r := python("X-Request-Id", trace)
	assert.Equal(t, trace, got, "Python receives it")
	assert.Equal(t, []string{trace}, r.Header.Values(RequestIDHeader))

	// Made when missing, invalid or repeated: a new one for each request.
	seen := map[string]bool{}
	for _, h := range [][]string{nil, {"X-Request-ID", "has space"}, {"X-Request-ID", strings.Repeat("a", 129)},
		{"X-Request-ID", `"quoted"`}, {"X-Request-ID", "one", "X-Request-ID", "two"}} {
		r := get(t, c, g.url()+"/go/x", h...)
		assert.Regexp(t, madeRequestID, r.Body, "%q", h)
		assert.Equal(t, []string{r.Body}, r.Header.Values(RequestIDHeader))
		seen[r.Body] = true
		got, r := python(h...)
		assert.Regexp(t, madeRequestID, got, "%q", h)
		assert.Equal(t, got, r.Header.Get(RequestIDHeader), "Python received the id the response carries")
		seen[got] = true
	}
	assert.Len(t, seen, 10)

	// The request log: one JSON record per request, with the id and the duration
	// in seconds.
	// The router logs a request once its handler has returned, which can be just
	// after the client has read the whole response: wait for the last record.
	var records []map[string]any
	require.Eventually(t, func() bool {
		records = nil
		sc := bufio.NewScanner(strings.NewReader(g.log.String()))
		for sc.Scan() {
			var rec map[string]any
			require.NoError(t, json.Unmarshal(sc.Bytes(), &rec), sc.Text())
			if rec["msg"] == "request" {
				records = append(records, rec)
			}
		}
		return len(records) >= 12
	}, 10*time.Second, 5*time.Millisecond)
	require.Len(t, records, 12)
	assert.Equal(t, trace, records[0]["request_id"])
	assert.Equal(t, "/go/x", records[0]["path"])
	assert.Equal(t, trace, records[1]["request_id"])
	for i, rec := range records {
		assert.NotContains(t, rec, "duration", "no nanoseconds")
		d, ok := rec["duration_s"].(float64)
		if assert.True(t, ok, "duration_s is a number: %v", rec) {
			assert.Greater(t, d, 0.0)
			assert.Less(t, d, 60.0, "seconds, not nanoseconds")
		}
		if i >= 2 {
			assert.True(t, seen[rec["request_id"].(string)], "the made id is logged: %v", rec)
		}
	}
}

// TestTextLogDuration: the text log keeps Go's durations and names the request id.
func TestTextLogDuration(t *testing.T) {
	g := startGateway(t, "-http", "127.0.0.1:0", "-sessions", t.TempDir())
	r := get(t, client(t), g.url()+"/", "X-Request-ID", "abc-123")
	require.Equal(t, http.StatusOK, r.Status)
	// The record is written once the handler has returned, which can be just after
	// the client has read the response.
	line := regexp.MustCompile(`msg=request method=GET path=/ route=/ status=200 duration=[0-9.]+(ns|µs|ms|s) .* request_id=abc-123`)
	assert.Eventually(t, func() bool { return line.MatchString(g.log.String()) }, 10*time.Second, 5*time.Millisecond, g.log.String())
}

// TestRequestIDFromNginx: with the README's line added to docs/nginx.conf, nginx's
// $request_id is the request's id, on the Go side, in the Python environment and on
// the response, whatever X-Request-ID the client sent.
func TestRequestIDFromNginx(t *testing.T) {
	w := startQuixote(t)
	sock := "unix:" + filepath.Join(shortTempDir(t), "gw.sock")
	startGatewayWith(t, func(g *Gateway) {
		g.Handle("rid", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, RequestID(r))
		}))
	}, "-scgi", sock, "-sessions", t.TempDir(), "-route", "/go/=rid", "-route", "/py/="+quixoteTarget(w))
	conf := documentedNginx(t, sock)
	pass := "    scgi_pass " + sock + ";"
	require.Contains(t, conf, pass)
	conf = strings.Replace(conf, pass, "    scgi_param HTTP_X_REQUEST_ID $request_id;\n"+pass, 1)
	site := testnginx.Start(t, testnginx.Config{Locations: conf})
	c := client(t)

	r := get(t, c, site.URL+"/go/x", "X-Request-ID", "from-the-client")
	assert.Regexp(t, madeRequestID, r.Body, "nginx's $request_id: 32 hex digits")
	assert.Equal(t, r.Body, r.Header.Get(RequestIDHeader))
	r = get(t, c, site.URL+"/py/env", "X-Request-ID", "from-the-client")
	var env struct {
		Env map[string]string `json:"env"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.Body), &env), r.Body)
	assert.Regexp(t, madeRequestID, env.Env["HTTP_X_REQUEST_ID"])
	assert.Equal(t, env.Env["HTTP_X_REQUEST_ID"], r.Header.Get(RequestIDHeader))
}
