package testpeer

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FrontUser is the account Debian's Apache and lighttpd run their workers as, and the
// one the test harnesses run them as when the tests run as root (neither server
// serves requests as root).
const FrontUser = "www-data"

// FreeLoopbackAddr returns "127.0.0.1:PORT" for a port that was free a moment ago. It
// is found by binding and releasing it, so another process can take it first: a
// harness that gets "Address already in use" tries again with a new one.
func FreeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// SocketDir returns a new directory for UNIX sockets that a front server's workers
// can reach: under os.TempDir() (a short path, since a socket path is limited to 107
// bytes, and outside t.TempDir(), whose 0700 parents FrontUser cannot traverse), mode
// 0711 (traversable, not listable). It is removed when the test ends.
func SocketDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "qxsock")
	if err != nil {
		t.Fatalf("SocketDir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatalf("SocketDir: %v", err)
	}
	return dir
}

// GrantSocket gives the group the front server's workers run in (FrontUser's, when the
// tests run as root) read and write permission on the UNIX socket at path, mode 0660:
// what a deployment does with the gateway's -socket-mode and a shared group, or with
// systemd's SocketGroup=. As an ordinary user the front server runs as that user, who
// owns the socket already.
func GrantSocket(t testing.TB, path string) {
	t.Helper()
	if os.Geteuid() == 0 {
		gid, err := FrontGID()
		if err != nil {
			t.Fatalf("GrantSocket: %v", err)
		}
		if err := os.Chown(path, -1, gid); err != nil {
			t.Fatalf("GrantSocket: %v", err)
		}
	}
	if err := os.Chmod(path, 0o660); err != nil {
		t.Fatalf("GrantSocket: %v", err)
	}
}

// FrontGID returns the primary group of FrontUser.
func FrontGID() (int, error) {
	u, err := user.Lookup(FrontUser)
	if err != nil {
		return 0, fmt.Errorf("user %s: %w (Debian's base-passwd creates it)", FrontUser, err)
	}
	return strconv.Atoi(u.Gid)
}

// Binary returns the path of the named program, looked for in $PATH, /usr/sbin and
// /usr/local/sbin (where Debian installs servers), or "" when there is none.
func Binary(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
		p := dir + "/" + name
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// DocsSocket is the gateway socket the documented front-server snippets (docs/*.conf)
// and systemd units name.
const DocsSocket = "/run/qxbridge/gateway.sock"

// DocSnippet returns the documented front-server configuration docs/name, as the
// README shows it (SnippetBody), with the gateway socket it names (DocsSocket, which
// must appear exactly once) replaced by socket.
func DocSnippet(t testing.TB, name, socket string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(RepoRoot(), "docs", name))
	if err != nil {
		t.Fatalf("DocSnippet: %v", err)
	}
	body := SnippetBody(string(b))
	if n := strings.Count(body, DocsSocket); n != 1 {
		t.Fatalf("DocSnippet: docs/%s names %s %d times, want once", name, DocsSocket, n)
	}
	return strings.Replace(body, DocsSocket, socket, 1)
}

// SnippetBody returns a documented snippet without its leading comment: from the first
// line that is neither blank nor a comment to the end. That is the part README.md shows.
func SnippetBody(text string) string {
	rest := text
	for rest != "" {
		line, after, _ := strings.Cut(rest, "\n")
		if trimmed := strings.TrimSpace(line); trimmed != "" && !strings.HasPrefix(trimmed, "#") {
			return rest
		}
		rest = after
	}
	return ""
}
