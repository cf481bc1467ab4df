package gateway

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// listen opens a listener on addr: "host:port" for TCP, or "unix:/path" for a UNIX
// socket, which gets permissions mode (so that a front server running as another user
// can connect, typically through a shared group) and is removed when the listener is
// closed. A socket file left behind by a process that died is replaced; one that a
// live process still listens on is an error, not stolen.
func listen(addr string, mode os.FileMode) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("%q: want host:port or unix:/path", addr)
		}
		return net.Listen("tcp", addr)
	}
	if path == "" {
		return nil, fmt.Errorf("%q: unix: needs a path", addr)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another process is listening on it", path)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	// The socket is created with the process umask (connecting needs write
	// permission, which a usual umask of 022 denies to others) and then given mode.
	// Narrowing the umask around the bind would close that gap but changes it for
	// every goroutine of the process at once.
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, mode); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// inherited is a listening socket passed by systemd socket activation.
type inherited struct {
	name string // from LISTEN_FDNAMES ("" when not given)
	l    net.Listener
}

// listenFDsStart is the first file descriptor systemd passes (SD_LISTEN_FDS_START).
const listenFDsStart = 3

// systemdListeners returns the sockets passed by systemd socket activation
// (sd_listen_fds(3)): LISTEN_FDS sockets from file descriptor 3 on, when LISTEN_PID
// names this process. LISTEN_FDNAMES, when set, names them (FileDescriptorName= in
// the socket unit). The variables are removed from the environment, as
// sd_listen_fds(1) does, so that processes started later do not take the sockets for
// theirs. It returns nil when the process was not socket-activated.
func systemdListeners() ([]inherited, error) {
	pid, fds, names := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES")
	if fds == "" {
		return nil, nil
	}
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	if pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return nil, nil // meant for another process (our parent's, typically)
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 1 || n > 64 {
		return nil, fmt.Errorf("LISTEN_FDS=%q: want a number of sockets", fds)
	}
	var nameList []string
	if names != "" {
		nameList = strings.Split(names, ":")
	}
	var out []inherited
	for i := range n {
		fd := listenFDsStart + i
		syscall.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), "LISTEN_FD_"+strconv.Itoa(fd))
		l, err := net.FileListener(f)
		f.Close() // FileListener made its own copy
		if err != nil {
			for _, in := range out {
				in.l.Close()
			}
			return nil, fmt.Errorf("LISTEN_FDS: file descriptor %d is not a listening socket: %w", fd, err)
		}
		in := inherited{l: l}
		if i < len(nameList) {
			in.name = nameList[i]
		}
		out = append(out, in)
	}
	return out, nil
}

// systemdActivated reports whether LISTEN_FDS is meant for this process.
func systemdActivated(getenv func(string) string) bool {
	if getenv("LISTEN_FDS") == "" {
		return false
	}
	pid := getenv("LISTEN_PID")
	return pid == "" || pid == strconv.Itoa(os.Getpid())
}

// systemdSCGI reports whether systemd passes this process a socket that serves SCGI:
// one not named "http" or "metrics" (see systemdListeners).
func systemdSCGI(getenv func(string) string) bool {
	if !systemdActivated(getenv) {
		return false
	}
	n, err := strconv.Atoi(getenv("LISTEN_FDS"))
	if err != nil {
		return true // refused by systemdListeners; count it as a deployment
	}
	names := strings.Split(getenv("LISTEN_FDNAMES"), ":")
	for i := range n {
		if i >= len(names) || (names[i] != "http" && names[i] != "metrics") {
			return true
		}
	}
	return false
}

// listenerAddr returns a listener's address the way the flags spell it.
func listenerAddr(l net.Listener) string {
	if a, ok := l.Addr().(*net.UnixAddr); ok {
		return "unix:" + a.Name
	}
	return l.Addr().String()
}
