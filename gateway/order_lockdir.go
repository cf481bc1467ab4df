package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// LockDir is a SessionLocker over flock(2) locks on one small file per session in a
// directory of its own: the gateways of one host (a restart's overlap, several
// gateways behind one front server) and the sessions administration commands order
// their requests of a session through it. Python workers never touch it, and it is
// never the session file's own lock, which Python's load takes LOCK_SH on and which
// must therefore never be held across a request.
//
// A lock file is named by a hash of the session id (a listing of the directory shows
// no id, which is a bearer token) and is empty. It stays after its lock is released,
// so that the next request of the session only opens it (creating and removing a file
// per request would cost a journalled directory change each time); a sweep, at most
// once per LockSweepInterval, removes the files nobody holds. Removing a file others
// may be waiting on is safe because the sweep removes only a file it holds itself,
// and a locker, once it holds the flock, checks that the file it locked is still the
// one at the path (same device and inode) and otherwise starts again on the new one.
//
// The directory must be on a local filesystem: over NFS, flock(2) is emulated with
// POSIX locks, which do not exclude each other within one process.
type LockDir struct {
	dir      string
	sessions string // the session directory, or ""
	// lastSweep is when the last sweep started (unix nanoseconds); sweeping is set
	// while one runs.
	lastSweep atomic.Int64
	sweeping  atomic.Bool
	// chown is set when the process runs as root: its lock files are given to the
	// directory's owner and group, so that a gateway waiting on one can open it.
	chown    bool
	uid, gid int
}

// Waits for a lock held by another process poll with LOCK_NB, from lockPollFirst
// doubling to lockPollMax, rather than block a thread in flock(2), which could not be
// abandoned when the client leaves.
const (
	lockPollFirst = 500 * time.Microsecond
	lockPollMax   = 20 * time.Millisecond
)

// OpenLockDir returns the lock directory at path, creating it (mode 0770, and the
// parent directories it needs) if missing, for the session directory sessions ("" if
// none). When the process runs as root the directory it creates is given to the owner
// and group of the session directory, so that a gateway running as that user can use
// it afterwards. A lock file is kept after its lock is released only while the
// session directory holds a session of that id: a cookie naming no session (made up,
// or of a session since deleted) leaves no file behind.
func OpenLockDir(path, sessions string) (*LockDir, error) {
	if path == "" {
		return nil, errors.New("lock directory: no path")
	}
	_, err := os.Stat(path)
	created := false
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(path, 0o770); err != nil {
			return nil, fmt.Errorf("lock directory: %w", err)
		}
		// MkdirAll's mode is filtered by the umask; the group needs the access.
		if err := os.Chmod(path, 0o770); err != nil {
			return nil, fmt.Errorf("lock directory: %w", err)
		}
		created = true
	} else if err != nil {
		return nil, fmt.Errorf("lock directory: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("lock directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("lock directory %s: not a directory", path)
	}
	if created && os.Geteuid() == 0 && sessions != "" {
		var st unix.Stat_t
		if unix.Stat(sessions, &st) == nil {
			_ = os.Lchown(path, int(st.Uid), int(st.Gid))
		}
	}
	d := &LockDir{dir: path, sessions: sessions}
	if os.Geteuid() == 0 {
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			return nil, fmt.Errorf("lock directory: %w", err)
		}
		d.chown, d.uid, d.gid = true, int(st.Uid), int(st.Gid)
	}
	return d, nil
}

// Check reports whether the directory is still usable: there, a directory, and open
// to this process for creating lock files.
func (d *LockDir) Check() error {
	fi, err := os.Stat(d.dir)
	if err == nil && !fi.IsDir() {
		err = errors.New("not a directory")
	}
	if err == nil {
		err = unix.Access(d.dir, unix.W_OK|unix.X_OK)
	}
	if err != nil {
		return fmt.Errorf("lock directory %s: %w", d.dir, err)
	}
	return nil
}

// Dir returns the directory's path.
func (d *LockDir) Dir() string { return d.dir }

// path returns the lock file of session id.
func (d *LockDir) path(id string) string {
	sum := sha256.Sum256([]byte(id))
	return filepath.Join(d.dir, hex.EncodeToString(sum[:16]))
}

// Lock takes session id's lock, waiting for another process that holds it until ctx
// ends. unlock removes the lock file and releases the lock.
func (d *LockDir) Lock(ctx context.Context, id string) (unlock func(), err error) {
	path := d.path(id)
	pause := lockPollFirst
	var timer *time.Timer
	for {
		fd, err := openLockFile(path)
		if err != nil {
			return nil, fmt.Errorf("session lock: %w", err)
		}
		if d.chown {
			_ = unix.Fchown(fd, d.uid, d.gid)
		}
		err = flockNB(fd)
		for err == unix.EWOULDBLOCK {
			if timer == nil {
				timer = time.NewTimer(pause)
				defer timer.Stop()
			} else {
				timer.Reset(pause)
			}
			select {
			case <-ctx.Done():
				unix.Close(fd)
				return nil, ctx.Err()
			case <-timer.C:
			}
			pause = min(2*pause, lockPollMax)
			err = flockNB(fd)
		}
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("session lock %s: %w", path, err)
		}
		if same, err := stillAt(fd, path); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("session lock %s: %w", path, err)
		} else if !same {
			// The holder removed the file as we waited on it: lock the new one.
			unix.Close(fd)
			continue
		}
		return func() {
			if !d.hasSession(id) {
				// Removed while still locked (see Sweep): nothing keeps files of ids
				// that name no session, however many a client makes up.
				_ = unix.Unlink(path)
			}
			unix.Close(fd) // releases the lock
			d.maybeSweep()
		}, nil
	}
}

// hasSession reports whether the session directory holds a session of id (always
// true without a session directory: the sweep alone removes files then).
func (d *LockDir) hasSession(id string) bool {
	if d.sessions == "" {
		return true
	}
	var st unix.Stat_t
	return unix.Stat(filepath.Join(d.sessions, id), &st) == nil
}

// LockSweepInterval is how often, at most, a LockDir removes the lock files of the
// sessions that have no request in flight.
const LockSweepInterval = time.Minute

// maybeSweep starts a sweep in the background when none ran for LockSweepInterval.
func (d *LockDir) maybeSweep() {
	now := time.Now().UnixNano()
	last := d.lastSweep.Load()
	if now-last < int64(LockSweepInterval) || !d.lastSweep.CompareAndSwap(last, now) {
		return
	}
	if last == 0 {
		return // the first unlock only starts the clock
	}
	if d.sweeping.CompareAndSwap(false, true) {
		go func() {
			defer d.sweeping.Store(false)
			_, _ = d.Sweep()
		}()
	}
}

// Sweep removes the lock files that no process holds, and returns how many it
// removed. Each is removed while Sweep holds its lock, so that a locker waiting on it
// finds it gone once it gets it, and starts again on a new file.
func (d *LockDir) Sweep() (removed int, err error) {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return 0, fmt.Errorf("lock directory: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(d.dir, e.Name())
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err != nil {
			continue // removed meanwhile, or not ours to touch
		}
		if flockNB(fd) == nil {
			if same, err := stillAt(fd, path); err == nil && same && unix.Unlink(path) == nil {
				removed++
			}
		}
		unix.Close(fd)
	}
	return removed, nil
}

func openLockFile(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o660)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func flockNB(fd int) error {
	for {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			return err
		}
	}
}

// stillAt reports whether the file open as fd is the one at path.
func stillAt(fd int, path string) (bool, error) {
	var a, b unix.Stat_t
	if err := unix.Fstat(fd, &a); err != nil {
		return false, err
	}
	if err := unix.Stat(path, &b); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, err
	}
	return a.Dev == b.Dev && a.Ino == b.Ino, nil
}
