package demo

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/quixote"
	"github.com/stretchr/testify/require"
)

// client returns an HTTP client with a cookie jar that does not follow redirects.
func client(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}

// response is a response read whole.
type response struct {
	status  int
	body    string
	cookies []string // Set-Cookie lines
}

func do(t testing.TB, c *http.Client, method, url, form string, header ...string) response {
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
	return response{resp.StatusCode, string(b), resp.Header.Values("Set-Cookie")}
}

func get(t testing.TB, c *http.Client, url string, header ...string) response {
	t.Helper()
	return do(t, c, http.MethodGet, url, "", header...)
}

// sessionFiles lists the names in a session directory.
func sessionFiles(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// readSession decodes a session file.
func readSession(t testing.TB, dir, id string) *quixote.Session {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, id))
	require.NoError(t, err)
	s, err := quixote.Decode(data)
	require.NoError(t, err)
	return s
}
