package testnginx

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStartServesConfiguredLocations(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(root, "hello.txt"), []byte("hello from nginx\n"), 0o644))

	inst := Start(t, Config{
		Locations: `
        location /static/ {
            alias ` + root + `/;
        }
        location = /params {
            include scgi_params;
            include /etc/nginx/scgi_params;
            return 200 "included\n";
        }`,
	})

	resp, err := http.Get(inst.URL + "/static/hello.txt")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "hello from nginx\n", string(body))
	assert.Equal(t, "text/plain", resp.Header.Get("Content-Type"), "mime.types is included")

	resp, err = http.Get(inst.URL + "/params")
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "included\n", string(body))

	assert.FileExists(t, filepath.Join(inst.Dir, "nginx.pid"))
	assert.Contains(t, inst.ErrorLog(), "start worker process")

	inst.Stop()
	_, err = net.Dial("tcp", inst.Addr)
	assert.Error(t, err, "nginx no longer listens after Stop")
	assert.NoFileExists(t, filepath.Join(inst.Dir, "nginx.pid"), "nginx removed its pid file on exit")
}

func TestStartTwoInstancesGetDistinctPorts(t *testing.T) {
	a := Start(t, Config{})
	b := Start(t, Config{})
	assert.NotEqual(t, a.Addr, b.Addr)
	for _, inst := range []*Instance{a, b} {
		resp, err := http.Get(inst.URL + ReadyPath)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	}
}
