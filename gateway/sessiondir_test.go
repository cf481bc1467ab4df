package gateway

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSessionDirectoryCreated: the gateway creates a missing session directory 0770
// whatever the umask (it was 0777 minus the umask: 0755, listable by everyone),
// with the parent's group and the setgid bit when the parent is setgid, and writes
// files that give others no access.
func TestSessionDirectoryCreated(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "shared")
	require.NoError(t, os.Mkdir(parent, 0o755))
	require.NoError(t, os.Chmod(parent, os.ModeSetgid|0o775))
	dir := filepath.Join(parent, "sessions")
	g := startGateway(t, "-http", "127.0.0.1:0", "-metrics", "127.0.0.1:0", "-sessions", dir)
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.ModeDir|os.ModeSetgid|0o770, fi.Mode())
	c := client(t)
	require.Equal(t, 200, do(t, c, "POST", g.url()+"/login", "name=ned").Status)
	id := sessionCookie(t, c, g.url())
	fi, err = os.Stat(filepath.Join(dir, id))
	require.NoError(t, err)
	assert.Zero(t, fi.Mode().Perm()&0o007, "others get no access to a session file: %v", fi.Mode())
	assert.NotContains(t, g.log.String(), "others can list")
	h := get(t, c, "http://"+g.addr("metrics")+"/healthz")
	assert.Equal(t, 200, h.Status)

	// /healthz checks the directory as Save does, and says what is wrong.
	require.NoError(t, os.RemoveAll(dir))
	h = get(t, c, "http://"+g.addr("metrics")+"/healthz")
	assert.Equal(t, http.StatusServiceUnavailable, h.Status)
	assert.Contains(t, h.Body, "check session directory "+dir)
	assert.Contains(t, h.Body, "no such file or directory")
}

// TestSessionDirectoryWarnings: at start-up the gateway warns when others can list
// the session directory, and refuses to start, saying why, when it could not share
// its files with the directory's group.
func TestSessionDirectoryWarnings(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sessions")
	require.NoError(t, os.Mkdir(dir, 0o755))
	require.NoError(t, os.Chmod(dir, 0o755))
	g := startGateway(t, "-http", "127.0.0.1:0", "-sessions", dir)
	assert.Contains(t, g.log.String(), "others can list or read the session directory")
	assert.Contains(t, g.log.String(), "mode=0755")
	g.stop()

	shared := filepath.Join(t.TempDir(), "shared")
	require.NoError(t, os.Mkdir(shared, 0o770))
	require.NoError(t, os.Chmod(shared, os.ModeSetgid|0o770))
	var out, errs bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // should it start after all
	defer cancel()
	code := newTestGateway().Run(ctx, []string{"-http", "127.0.0.1:0", "-sessions", shared, "-file-mode", "0600"}, &out, &errs)
	assert.Equal(t, 1, code)
	assert.Contains(t, errs.String(), "cannot be read and written by that group: set the file mode to 0660")
	assert.Contains(t, errs.String(), "directory owner uid")
	assert.Contains(t, errs.String(), "umask")
}
