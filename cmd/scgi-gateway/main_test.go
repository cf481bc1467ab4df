package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testpeer"
)

// TestDemoOnlyToTryOut: the demo, which logs anyone in under any name, serves / only
// when the command line names no deployment; a command line that names the session
// store, a front server or a configuration file but no route is refused.
func TestDemoOnlyToTryOut(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "gateway.toml")
	require.NoError(t, os.WriteFile(conf, []byte("[sessions]\ndir = \""+t.TempDir()+"\"\n"), 0o600))
	for _, args := range [][]string{
		{"-sessions", t.TempDir()},
		{"-scgi", "unix:" + filepath.Join(t.TempDir(), "gw.sock")},
		{"-config", conf},
		{"-http", "127.0.0.1:0", "-sessions", t.TempDir(), "-metrics", "127.0.0.1:0"},
	} {
		var stderr strings.Builder
		assert.Equal(t, 2, newGateway().Run(t.Context(), args, io.Discard, &stderr), "%v", args)
		assert.Contains(t, stderr.String(), "no routes: give -route PREFIX=TARGET", "%v", args)
		assert.Contains(t, stderr.String(), "demo at / serves only when none of -route, -mount, -config, -sessions, -scgi is given", "%v", args)
	}

	t.Run("usage", func(t *testing.T) {
		var stderr strings.Builder
		assert.Equal(t, 0, newGateway().Run(t.Context(), []string{"-h"}, io.Discard, &stderr))
		usage := stderr.String()
		assert.Contains(t, usage, "-route /reports/=reports -route /=scgi://", "the deployment example names a handler of the site's own")
		assert.NotContains(t, usage, "=demo", "no example deploys the demo")
		assert.Contains(t, usage, "To try it out, with none of -route, -mount, -config, -sessions, -scgi it serves demo at /")
	})

	t.Run("no deployment", func(t *testing.T) {
		t.Chdir(t.TempDir()) // ./sessions
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		logs := &testpeer.Output{}
		exit := make(chan int, 1)
		go func() { exit <- newGateway().Run(ctx, []string{"-http", "127.0.0.1:0"}, io.Discard, logs) }()
		addr := regexp.MustCompile(`kind=http addr=(\S+)`)
		var m []string
		for start := time.Now(); m == nil; time.Sleep(10 * time.Millisecond) {
			require.Less(t, time.Since(start), 20*time.Second, "no listener in the log:\n%s", logs)
			m = addr.FindStringSubmatch(logs.String())
		}
		assert.Contains(t, logs.String(), `msg="defaults: demo serves /"`)
		resp, err := http.Get("http://" + m[1] + "/")
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Contains(t, string(body), "Not logged in.", "the demo's home page")
		cancel()
		assert.Equal(t, 0, <-exit, "%s", logs)
	})
}
