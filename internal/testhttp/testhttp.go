// Package testhttp serves the tests only: an HTTP client that keeps cookies and does
// not follow redirects, requests read whole, and the session files those requests
// leave in a session directory.
package testhttp

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/quixote"
)

// Client returns an HTTP client with a cookie jar that does not follow redirects.
func Client(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// Response is a response read whole.
type Response struct {
	Status  int
	Body    string
	Header  http.Header
	Cookies []string // Set-Cookie lines
}

// Do makes a request; a non-empty form is sent as a urlencoded body. header holds
// name, value pairs.
func Do(t testing.TB, c *http.Client, method, url, form string, header ...string) Response {
	t.Helper()
	var body io.Reader
	if form != "" {
		body = strings.NewReader(form)
	}
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return Response{resp.StatusCode, string(b), resp.Header, resp.Header.Values("Set-Cookie")}
}

// Get makes a GET request.
func Get(t testing.TB, c *http.Client, url string, header ...string) Response {
	t.Helper()
	return Do(t, c, http.MethodGet, url, "", header...)
}

// SessionFiles lists the names in a session directory.
func SessionFiles(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// ReadSession decodes a session file.
func ReadSession(t testing.TB, dir, id string) *quixote.Session {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, id))
	require.NoError(t, err)
	s, err := quixote.Decode(data)
	require.NoError(t, err)
	return s
}
