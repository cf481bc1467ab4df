package testpg_test

import (
	"net/url"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testpg"
)

func TestStartStopKeepsData(t *testing.T) {
	srv := testpg.Start(t)
	u, err := url.Parse(srv.DSN)
	require.NoError(t, err)
	require.Equal(t, srv.Dir, u.Query().Get("host"))
	srv.SQL(t, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")

	srv.Stop(t)
	isReady := exec.Command(filepath.Join(srv.Bin, "pg_isready"), "-h", srv.Dir, "-p", "5432")
	require.Error(t, isReady.Run(), "the server still answers after Stop")

	srv.Start(t)
	require.Equal(t, "42", srv.SQL(t, "SELECT v FROM kept"))

	srv.Kill(t)
	srv.Start(t) // recovers from the write-ahead log
	require.Equal(t, "42", srv.SQL(t, "SELECT v FROM kept"))
}
