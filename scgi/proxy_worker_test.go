package scgi

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/stretchr/testify/require"
)

// startQuixote starts the real Quixote 3.8 SCGI server (python-scgi's pre-forking
// server publishing testdata/py/sites/qxsite) with the given number of children
// (0: Quixote's default of 5). When the test ends it checks that no child died of a
// connection without a complete request: the proxy must never open one.
func startQuixote(t testing.TB, opt testquixote.Options) *testquixote.Server {
	t.Helper()
	s := testquixote.Start(t, opt)
	t.Cleanup(func() {
		require.NotContains(t, s.Output.String(), testquixote.NoRequestTraceback,
			"the proxy opened a connection to the Quixote server without sending a whole request")
	})
	return s
}

// unixSocketPath returns a short path for a UNIX socket (the limit is 107 bytes, and
// t.TempDir can be long).
func unixSocketPath(t testing.TB, name string) string {
	dir, err := os.MkdirTemp("", "scgi")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, name)
}

// deadAddr returns a loopback TCP address where nothing listens.
func deadAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}
