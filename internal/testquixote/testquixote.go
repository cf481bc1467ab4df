// Package testquixote runs the real Quixote 3.8 SCGI server for a test: python-scgi's
// pre-forking server (`python -m quixote.server.scgi_server`, connections passed to
// its children over UNIX sockets) publishing qxsite, a small Quixote application of
// ours (testdata/py/sites/qxsite) on session3's SessionManager and
// DirectorySessionStore.
//
//	srv := testquixote.Start(t, testquixote.Options{})
//	p, _ := scgi.NewProxy(srv.Addr)
//
// The server listens on loopback TCP or on a UNIX socket. The test creates the
// listening socket and hands it over as systemd would (LISTEN_FDS=1, LISTEN_PID, file
// descriptor 3: python-scgi's get_systemd_socket), so its address is known before the
// server starts and no port can be taken in between; Options.PortFlag passes
// --host/--port instead, as a user's command line does. Start returns once the server
// has answered a request, and the whole process group (the parent and every child it
// forked) is killed when the test ends.
//
// Quixote 3.8's scgi_server declares --max-children as a string, and python-scgi
// compares it with an int on the first request: the parent dies of a TypeError and
// every request gets a reset. So the command line never carries --max-children; with
// Options.Children set, the server is started through Quixote's own
// quixote.server.scgi_server.run(..., max_children=N), the same server with the number
// as an int.
package testquixote

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testpeer"
)

// Options configure a server. The zero value serves on loopback TCP with Quixote's
// default of 5 children and a fresh session directory.
type Options struct {
	// Unix listens on a UNIX socket in a fresh directory instead of loopback TCP.
	Unix bool
	// PortFlag (TCP only) starts the server with --host 127.0.0.1 --port N, as a
	// user's command line would, instead of handing it a listening socket.
	PortFlag bool
	// Children is python-scgi's max_children; 0 keeps Quixote's default (5).
	Children int
	// ScriptName is passed as --script-name (Quixote's fix for front ends that send
	// the whole path as SCRIPT_NAME).
	ScriptName string
	// SessionDir is the DirectorySessionStore's directory; "" means a new t.TempDir().
	SessionDir string
	// Env adds QXSITE_* settings (see testdata/py/sites/qxsite), "NAME=value" each.
	Env []string
}

// Server is a running Quixote SCGI server.
type Server struct {
	// Addr is the address in the form scgi.NewProxy takes: "127.0.0.1:PORT" or
	// "unix:/path".
	Addr string
	// SessionDir is the session directory the application uses.
	SessionDir string
	// Output has everything the server wrote to stdout and stderr: python-scgi logs
	// each child it starts, and a child's traceback shows here.
	Output *testpeer.Output

	cmd  *exec.Cmd
	done chan struct{}
}

// NoRequestTraceback is what a python-scgi child dies of when a connection ends
// before its request netstring does (an empty connection kills a child).
const NoRequestTraceback = "short netstring read"

// SitesDir is the directory put on PYTHONPATH: it holds the qxsite package only, so
// that nothing there can shadow the installed Quixote or session3.
func SitesDir() string { return testpeer.Testdata("py", "sites") }

// PgstoreDir is the source directory of the qxbridge_pgstore package (python/src),
// also put on PYTHONPATH: with QXSITE_SESSION_DSN, qxsite keeps its sessions in
// PostgreSQL through this checkout's Python store, whether or not (and whichever
// version of) the package is installed.
func PgstoreDir() string { return filepath.Join(testpeer.RepoRoot(), "python", "src") }

// Start starts the server and waits until it answers. It fails t if the server does
// not come up within 30 s, and skips (or under CI=true fails) it when the Python peers
// are not installed.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	py := testpeer.Python(t)
	s := &Server{SessionDir: opt.SessionDir, Output: new(testpeer.Output), done: make(chan struct{})}
	if s.SessionDir == "" {
		s.SessionDir = t.TempDir()
	}

	var listener *os.File
	host, port := "127.0.0.1", 0
	switch {
	case opt.Unix:
		dir, err := os.MkdirTemp("", "qx") // short: a socket path is limited to 107 bytes
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		path := filepath.Join(dir, "quixote.sock")
		l, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		listener = listenerFile(t, l)
		s.Addr = "unix:" + path
	case opt.PortFlag:
		port = freePort(t)
		s.Addr = net.JoinHostPort(host, strconv.Itoa(port))
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listener = listenerFile(t, l)
		s.Addr = l.Addr().String()
	}

	var args []string
	if opt.Children > 0 {
		script := fmt.Sprintf("import quixote.server.scgi_server as s, qxsite; "+
			"s.run(qxsite.create_publisher, host=%q, port=%d, script_name=%s, max_children=%d)",
			host, port, pyStr(opt.ScriptName), opt.Children)
		args = []string{"-c", script}
	} else {
		args = []string{"-m", "quixote.server.scgi_server", "--factory", "qxsite.create_publisher",
			"--host", host, "--port", strconv.Itoa(port)}
		if opt.ScriptName != "" {
			args = append(args, "--script-name", opt.ScriptName)
		}
	}
	var cmd *exec.Cmd
	if listener != nil {
		// LISTEN_PID must be the server's own pid: the shell's, which exec keeps.
		cmd = exec.Command("/bin/sh", append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, py, "-u"}, args...)...)
		cmd.ExtraFiles = []*os.File{listener} // fd 3
	} else {
		cmd = exec.Command(py, append([]string{"-u"}, args...)...)
	}
	cmd.Dir = s.SessionDir // never the source tree: the working directory is on sys.path
	cmd.Env = append(os.Environ(), "PYTHONPATH="+SitesDir()+string(os.PathListSeparator)+PgstoreDir(), "PYTHONDONTWRITEBYTECODE=1",
		"QXSITE_SESSION_DIR="+s.SessionDir)
	if listener != nil {
		cmd.Env = append(cmd.Env, "LISTEN_FDS=1")
	}
	cmd.Env = append(cmd.Env, opt.Env...)
	cmd.Stdout, cmd.Stderr = s.Output, s.Output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second // children share the output pipes; Wait must not wait on them
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if listener != nil {
		listener.Close() // the server has its copy
	}
	s.cmd = cmd
	go func() {
		cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("quixote scgi_server output:\n%s", s.Output)
		}
	})

	if err := s.waitReady(30 * time.Second); err != nil {
		s.Stop()
		t.Fatalf("quixote scgi_server did not come up on %s: %v\noutput:\n%s", s.Addr, err, s.Output)
	}
	return s
}

// Stop kills the server's process group (the parent and its children) and waits for
// the parent to exit. It may be called more than once.
func (s *Server) Stop() {
	select {
	case <-s.done:
	default:
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	// Children the parent forked belong to the group too; kill stragglers that
	// were between fork and exit.
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
}

// Pid returns the server's parent process id, which is also the process group of the
// parent and every child it forks.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Network returns "tcp" or "unix" and the address to dial.
func (s *Server) Network() (network, address string) {
	if p, ok := strings.CutPrefix(s.Addr, "unix:"); ok {
		return "unix", p
	}
	return "tcp", s.Addr
}

// Do sends one raw SCGI request (a GET of path, no body) and returns the CGI
// response as bytes. It is for tests that talk to the server directly.
func (s *Server) Do(path string) ([]byte, error) {
	network, address := s.Network()
	conn, err := net.DialTimeout(network, address, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write(Request("GET", path, "")); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	_, err = out.ReadFrom(bufio.NewReader(conn))
	return out.Bytes(), err
}

// Request encodes an SCGI request as a front end sends it: the header netstring with
// CONTENT_LENGTH first, then body.
func Request(method, uri, body string) []byte {
	path, query, _ := strings.Cut(uri, "?")
	vars := []string{"CONTENT_LENGTH", strconv.Itoa(len(body)), "SCGI", "1",
		"REQUEST_METHOD", method, "REQUEST_URI", uri, "QUERY_STRING", query,
		"SCRIPT_NAME", "", "PATH_INFO", path, "SERVER_PROTOCOL", "HTTP/1.1",
		"SERVER_NAME", "127.0.0.1", "SERVER_PORT", "80", "REMOTE_ADDR", "127.0.0.1",
		"HTTP_HOST", "127.0.0.1"}
	var h []byte
	for _, v := range vars {
		h = append(append(h, v...), 0)
	}
	out := append(strconv.AppendInt(nil, int64(len(h)), 10), ':')
	out = append(append(out, h...), ',')
	return append(out, body...)
}

// waitReady sends GET /hello until the server answers it. With a handed-over socket
// the first connection waits in the listen queue; with --port it is retried until
// the server has bound the port. Every connection carries a whole request: an empty
// one would kill a child.
func (s *Server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-s.done:
			return fmt.Errorf("the server exited (%v)", s.cmd.ProcessState)
		default:
		}
		resp, err := s.Do("/hello")
		if err == nil && bytes.HasPrefix(resp, []byte("Status: 200")) {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("unexpected answer %q", resp)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func listenerFile(t testing.TB, l net.Listener) *os.File {
	t.Helper()
	var f *os.File
	var err error
	switch l := l.(type) {
	case *net.TCPListener:
		f, err = l.File()
	case *net.UnixListener:
		l.SetUnlinkOnClose(false) // the server listens on it now; the test removes it
		f, err = l.File()
	}
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// pyStr is a Python literal for s: None when empty.
func pyStr(s string) string {
	if s == "" {
		return "None"
	}
	return strconv.Quote(s) // a Go quoted ASCII string is a valid Python literal
}
