// Package testpg runs a throw-away PostgreSQL cluster for a test: Debian's
// PostgreSQL binaries (/usr/lib/postgresql/<version>/bin), a data directory made by
// initdb in a fresh temporary directory, the server listening only on a UNIX socket
// in that directory (no TCP port, so parallel tests and other programs never
// collide), trust authentication, and fsync off (a test cluster need not survive a
// power loss). The cluster is removed when the test ends.
//
//	srv := testpg.Start(t)
//	pool, err := pgxpool.New(ctx, srv.DSN)
//	srv.Stop(t)  // the database goes away mid-test...
//	srv.Start(t) // ...and comes back on the same socket, with its data
//
// PostgreSQL refuses to run as root. When the tests run as root, initdb and the
// server run as the "postgres" user (created by Debian's postgresql package), and the
// temporary directory belongs to that user. A missing PostgreSQL skips the test, or
// fails it under CI=true (testpeer.Missing).
package testpg

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testpeer"
)

// DSNEnv names the environment variable Server.Env sets for programs a test runs
// (the Python store's tests read it).
const DSNEnv = "QXBRIDGE_PG_DSN"

// startTimeout bounds initdb and each server start: a loaded CI machine can be slow,
// a stuck one is stuck.
const startTimeout = 2 * time.Minute

// Server is a test's PostgreSQL cluster.
type Server struct {
	// DSN is a postgres:// URL of the database "postgres" as superuser "postgres",
	// over the UNIX socket: postgres:///postgres?host=DIR&port=5432&user=postgres.
	// It stays valid across Stop and Start.
	DSN string
	// Dir holds the data directory (Dir/data), the socket and the server log
	// (Dir/server.log).
	Dir string
	// Bin is the directory of the PostgreSQL programs used.
	Bin string

	cred    *syscall.Credential // nil when not running as root
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	running bool
}

// port only names the socket file (.s.PGSQL.5432) in the cluster's own directory.
const port = 5432

// BinDir returns the directory of the newest Debian PostgreSQL installation, or ""
// when there is none.
func BinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest version first: sort by the numeric version in the path.
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return ""
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Start makes a new cluster, starts its server and returns once it accepts
// connections. The server is stopped and its directory removed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := BinDir()
	if bin == "" {
		testpeer.Missing(t, "PostgreSQL (apt-get install postgresql)")
		return nil
	}
	s := &Server{Bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			testpeer.Missing(t, "the postgres user to run PostgreSQL as (tests run as root; apt-get install postgresql creates it)")
			return nil
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// Not t.TempDir: its parent is private to the test's user, and the server may
	// run as another. The socket path must also stay short (108 bytes).
	dir, err := os.MkdirTemp("", "qxbridge-pg-")
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if s.cred != nil {
		if err := os.Chown(dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			t.Fatalf("testpg: %v", err)
		}
	}
	s.Dir = dir
	s.DSN = (&url.URL{Scheme: "postgres", Path: "/postgres", RawQuery: url.Values{
		"host": {dir}, "port": {strconv.Itoa(port)}, "user": {"postgres"}, "sslmode": {"disable"},
	}.Encode()}).String()

	initdb := s.command(filepath.Join(bin, "initdb"), "-D", s.dataDir(), "-U", "postgres",
		"-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("testpg: initdb: %v\n%s", err, out)
	}
	t.Cleanup(func() { s.stop(syscall.SIGQUIT) })
	s.Start(t)
	return s
}

func (s *Server) dataDir() string { return filepath.Join(s.Dir, "data") }

// LogPath is the server's log file; it accumulates across restarts.
func (s *Server) LogPath() string { return filepath.Join(s.Dir, "server.log") }

// command runs a PostgreSQL program as the cluster's user.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd
}

// Start starts the server (again, after Stop or Kill) and waits until it accepts
// connections.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		t.Fatalf("testpg: server already running")
	}
	logf, err := os.OpenFile(s.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	defer logf.Close()
	cmd := s.command(filepath.Join(s.Bin, "postgres"), "-D", s.dataDir(), "-k", s.Dir,
		"-p", strconv.Itoa(port), "-c", "listen_addresses=", "-c", "fsync=off",
		"-c", "full_page_writes=off", "-c", "synchronous_commit=off", "-c", "max_connections=200",
		"-c", "shared_buffers=16MB")
	cmd.Stdout, cmd.Stderr = logf, logf
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// A test binary that dies must not leave a server behind: the postmaster gets
	// SIGQUIT (immediate shutdown, which ends its backends too) when the test
	// process goes.
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	if err := cmd.Start(); err != nil {
		t.Fatalf("testpg: start postgres: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.cmd, s.exited, s.running = cmd, exited, true

	deadline := time.Now().Add(startTimeout)
	for {
		out, err := s.command(filepath.Join(s.Bin, "pg_isready"), "-q", "-h", s.Dir, "-p", strconv.Itoa(port),
			"-U", "postgres", "-d", "postgres").CombinedOutput()
		if err == nil {
			return
		}
		select {
		case <-exited:
			s.running = false
			t.Fatalf("testpg: postgres exited at start:\n%s", s.tail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("testpg: postgres not ready after %v (pg_isready: %v %s):\n%s", startTimeout, err, out, s.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop shuts the server down as an administrator's restart would (fast shutdown:
// open transactions are rolled back, connections are closed) and waits for it to
// exit. Clients see their connections drop and new ones refused until Start.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if err := s.stop(syscall.SIGINT); err != nil {
		t.Fatalf("testpg: stop: %v\n%s", err, s.tail())
	}
}

// Kill stops the server as a crash would (immediate shutdown: no checkpoint; the next
// Start recovers from the write-ahead log) and waits for it to exit.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	if err := s.stop(syscall.SIGQUIT); err != nil {
		t.Fatalf("testpg: kill: %v\n%s", err, s.tail())
	}
}

func (s *Server) stop(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	s.running = false
	if err := s.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-s.exited:
		return nil
	case <-time.After(startTimeout):
		s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("postgres did not exit within %v of %v", startTimeout, sig)
	}
}

// Env returns os.Environ() with DSNEnv set to the server's DSN, for a program a test
// runs against the server.
func (s *Server) Env() []string {
	return append(os.Environ(), DSNEnv+"="+s.DSN)
}

// SQL runs statements with psql as the superuser, for a test's setup or fault
// injection, and returns psql's output (unaligned, tuples only).
func (s *Server) SQL(t testing.TB, sql string) string {
	t.Helper()
	cmd := s.command(filepath.Join(s.Bin, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", s.Dir, "-p", strconv.Itoa(port), "-U", "postgres", "-d", "postgres", "-c", sql)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("testpg: psql %q: %v\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

// tail returns the end of the server log, for failure messages.
func (s *Server) tail() string {
	b, _ := os.ReadFile(s.LogPath())
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}
