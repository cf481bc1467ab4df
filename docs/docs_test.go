// Package docs_test keeps README.md true to the files and commands it shows: the
// front-server snippets are docs/*.conf, which the front-server harnesses run
// (internal/testnginx, internal/testapache, internal/testlighttpd), and the Python
// worker command runs as written.
package docs_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testapache"
	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/qxbridge/qxbridge/scgi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readmeBlocks returns the contents of README.md's fenced code blocks, in order.
func readmeBlocks(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testpeer.RepoRoot(), "README.md"))
	require.NoError(t, err)
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```[a-z]*\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		blocks = append(blocks, m[1])
	}
	require.NotEmpty(t, blocks)
	return blocks
}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testpeer.RepoRoot(), "docs", name))
	require.NoError(t, err)
	return string(b)
}

// TestREADMEShowsDocumentedSnippets: each front-server snippet of README.md is the
// docs file the tests run, from its first directive on, byte for byte; the Apache
// section's a2enmod command names the modules docs/apache.conf names (the ones
// internal/testapache loads for it).
func TestREADMEShowsDocumentedSnippets(t *testing.T) {
	blocks := readmeBlocks(t)
	for _, name := range []string{"nginx.conf", "apache.conf", "lighttpd.conf"} {
		body := testpeer.SnippetBody(readDoc(t, name))
		require.NotEmpty(t, body, name)
		assert.Contains(t, blocks, body, "README.md shows docs/%s from its first directive on", name)
		assert.Equal(t, 1, strings.Count(body, testpeer.DocsSocket), "docs/%s passes to the documented socket", name)
	}
	mods := testapache.A2enmod(readDoc(t, "apache.conf"))
	require.NotEmpty(t, mods)
	assert.Contains(t, blocks, "a2enmod "+strings.Join(mods, " ")+"\n")
}

// workerCommand returns README.md's command for the Python workers.
func workerCommand(t *testing.T) string {
	t.Helper()
	var found []string
	for _, b := range readmeBlocks(t) {
		if strings.HasPrefix(b, "python3 -m quixote.server.scgi_server ") {
			found = append(found, b)
		}
	}
	require.Len(t, found, 1, "README.md shows one worker command")
	return found[0]
}

// TestREADMEWorkerCommand runs the README's Python worker command with the real
// Quixote 3.8 and python-scgi (on a free port instead of 4000, with a myapp whose
// create_publisher is Quixote's demo) and serves requests through it: Quixote 3.8's
// --max-children takes a string, which makes the server fail on its first request,
// so the command must do without it.
func TestREADMEWorkerCommand(t *testing.T) {
	py := testpeer.Python(t)
	cmdline := workerCommand(t)
	assert.NotContains(t, cmdline, "--max-children")
	args := strings.Fields(strings.ReplaceAll(cmdline, "\\\n", " "))
	require.Equal(t, "python3", args[0])
	port := freePort(t)
	i := indexOf(args, "--port")
	require.Positive(t, i, "the command names its port")
	require.Equal(t, "4000", args[i+1], "the port the README's -route points at")
	args[i+1] = port
	require.Equal(t, "127.0.0.1", args[indexOf(args, "--host")+1])

	app := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(app, "myapp.py"), []byte("from quixote.demo import create_publisher\n"), 0o644))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, py, args[1:]...)
	cmd.Dir = app
	cmd.Env = append(os.Environ(), "PYTHONPATH="+app, "PYTHONDONTWRITEBYTECODE=1")
	out := &testpeer.Output{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("worker output:\n%s", out.String())
		}
	})
	addr := "127.0.0.1:" + port
	// Wait for the worker with whole requests (a bare connect would be a request
	// cut short, logged with a traceback), each through a new proxy: a proxy rests
	// a backend that refused a connection.
	deadline := time.Now().Add(20 * time.Second)
	for {
		proxy, err := scgi.NewProxy(addr)
		require.NoError(t, err)
		rec := httptest.NewRecorder()
		proxy.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Code == http.StatusOK {
			break
		}
		require.True(t, time.Now().Before(deadline), "the worker did not answer on %s: %d\n%s", addr, rec.Code, out.String())
		time.Sleep(50 * time.Millisecond)
	}

	proxy, err := scgi.NewProxy(addr)
	require.NoError(t, err)
	front := httptest.NewServer(proxy)
	defer front.Close()
	for range 3 {
		resp, err := http.Get(front.URL + "/")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	}
	assert.NotContains(t, out.String(), "Traceback")
}

func indexOf(args []string, s string) int {
	for i, a := range args {
		if a == s {
			return i
		}
	}
	return -1
}

func freePort(t *testing.T) string {
	t.Helper()
	addr, err := testpeer.FreeLoopbackAddr()
	require.NoError(t, err)
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	return port
}
