package gateway

import (
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestAcceptOutOfFDsIsAnError: when the HTTP listener cannot accept for lack of
// file descriptors, the gateway's log says so at error level (net/http reports it
// through the server's ErrorLog, which the gateway wrote at debug level). The
// listener runs in a child process whose descriptor limit is lowered: Linux's
// accept4 needs a free descriptor before it looks for a connection.
func TestAcceptOutOfFDsIsAnError(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestAcceptOutOfFDsIsAnErrorChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "QXBRIDGE_ACCEPT_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "--- PASS: TestAcceptOutOfFDsIsAnErrorChild", "%s", out)
}

func TestAcceptOutOfFDsIsAnErrorChild(t *testing.T) {
	if os.Getenv("QXBRIDGE_ACCEPT_CHILD") == "" {
		t.Skip("run by TestAcceptOutOfFDsIsAnError in a process of its own")
	}
	var logs testpeer.Output
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := newHTTPServer(&http.Server{Handler: http.NotFoundHandler(), ErrorLog: httpErrorLog(log)})
	// Every descriptor from the lowest free one is refused.
	free, err := unix.Dup(0)
	require.NoError(t, err)
	require.NoError(t, unix.Close(free))
	var old unix.Rlimit
	require.NoError(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &old))
	lim := old
	lim.Cur = uint64(free)
	require.NoError(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &lim))
	go func() { _ = srv.Serve(l) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), "Accept error") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &old))
	_ = srv.Close()
	require.Contains(t, logs.String(), `level=ERROR msg="http: Accept error: accept tcp `)
	require.Contains(t, logs.String(), "too many open files")
}
