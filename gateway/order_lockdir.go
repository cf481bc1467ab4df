package gateway

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
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
// and so does its descriptor, in a cache of up to MaxOpenLockFiles: the next request
// of the session only takes and releases the flock and checks the path (three system
// calls instead of an open, an fstat, two stats and a close, and a journalled directory
// change each time had the file been created and removed per request). A sweep, at
// most once per LockSweepInterval, closes the cached descriptors and removes the files
// nobody holds. Removing a file others may be waiting on, or keep open, is safe
// because the sweep removes only a file it holds itself, and a locker, once it holds
// the flock, checks that the file it locked is still the one at the path (same device
// and inode) and otherwise starts again on the new one.
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

	// The descriptors of lock files nobody in this process holds, kept open for the
	// next request of their session (see MaxOpenLockFiles); a held one is out of the
	// cache until its unlock.
	mu     sync.Mutex
	cache  map[string]*lockFile // by path
	order  list.List            // the cached files, least recently put first
	closed bool
}

// lockFile is an open lock file: its descriptor, and the device and inode it had when
// opened, against which the path is checked after each flock.
type lockFile struct {
	path     string
	fd       int
	dev, ino uint64
	// kept: the session directory held the session when the file was last unlocked,
	// so that it is kept; checked on the first unlock only (afterwards the sweep
	// removes the files of sessions since deleted).
	kept bool
	elem *list.Element // in order, while cached
}

// MaxOpenLockFiles is how many lock files a LockDir keeps open while nobody holds
// them, for the sessions most recently served; more are closed, oldest first.
const MaxOpenLockFiles = 1024

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
// it afterwards. A lock file is kept after the first release of its lock only if the
// session directory holds a session of that id: a cookie naming no session (made up,
// or of a session already deleted) leaves no file behind; the file of a session
// deleted later goes with the next sweep.
func OpenLockDir(path, sessions string) (*LockDir, error) {
	return openLockDir(path, sessions, true)
}

// openLockDir is OpenLockDir; without create, a missing directory is an error
// wrapping fs.ErrNotExist.
func openLockDir(path, sessions string, create bool) (*LockDir, error) {
	if path == "" {
		return nil, errors.New("lock directory: no path")
	}
	_, err := os.Stat(path)
	created := false
	if errors.Is(err, os.ErrNotExist) && create {
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
	d := &LockDir{dir: path, sessions: sessions, cache: map[string]*lockFile{}}
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
// ends. unlock releases the lock, keeping the lock file (and its descriptor) only if
// the session exists.
func (d *LockDir) Lock(ctx context.Context, id string) (unlock func(), err error) {
	path := d.path(id)
	pause := lockPollFirst
	var timer *time.Timer
	for {
		f := d.take(path)
		if f == nil {
			if f, err = d.open(path); err != nil {
				return nil, err
			}
		}
		err = flockNB(f.fd)
		for err == unix.EWOULDBLOCK {
			if timer == nil {
				timer = time.NewTimer(pause)
				defer timer.Stop()
			} else {
				timer.Reset(pause)
			}
			select {
			case <-ctx.Done():
				d.put(f)
				return nil, ctx.Err()
			case <-timer.C:
			}
			pause = min(2*pause, lockPollMax)
			err = flockNB(f.fd)
		}
		if err != nil {
			unix.Close(f.fd)
			return nil, fmt.Errorf("session lock %s: %w", path, err)
		}
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil && !errors.Is(err, unix.ENOENT) {
			unix.Close(f.fd)
			return nil, fmt.Errorf("session lock %s: %w", path, err)
		} else if err != nil || uint64(st.Dev) != f.dev || st.Ino != f.ino {
			// Removed (by a sweep, ours or another process's) while we did not
			// hold it, or as we waited on it: lock the file at the path now.
			unix.Close(f.fd)
			continue
		}
		return func() { d.unlock(id, f) }, nil
	}
}

// open opens (creating it if need be) the lock file at path.
func (d *LockDir) open(path string) (*lockFile, error) {
	fd, created, err := openLockFile(path)
	if err != nil {
		return nil, fmt.Errorf("session lock: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("session lock %s: %w", path, err)
	}
	// Lock files are never linked twice: a hard link put there (to /etc/shadow, or
	// a session file) is refused, and only a file this process just created is
	// given away, so a root gateway never changes the owner of another file.
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink > 1 {
		unix.Close(fd)
		return nil, fmt.Errorf("session lock %s: not a lock file (mode %#o, %d links)", path, st.Mode, st.Nlink)
	}
	if d.chown && created {
		_ = unix.Fchown(fd, d.uid, d.gid)
	}
	return &lockFile{path: path, fd: fd, dev: uint64(st.Dev), ino: st.Ino}, nil
}

// unlock releases f, the lock file of session id, held.
func (d *LockDir) unlock(id string, f *lockFile) {
	if !f.kept {
		if !d.hasSession(id) {
			// Removed while still locked (see Sweep): nothing keeps files of ids
			// that name no session, however many a client makes up.
			_ = unix.Unlink(f.path)
			unix.Close(f.fd) // releases the lock
			d.maybeSweep()
			return
		}
		f.kept = true
	}
	if unix.Flock(f.fd, unix.LOCK_UN) != nil {
		unix.Close(f.fd) // releases the lock all the same
	} else {
		d.put(f)
	}
	d.maybeSweep()
}

// take returns the cached descriptor of the lock file at path, out of the cache, or
// nil.
func (d *LockDir) take(path string) *lockFile {
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.cache[path]
	if f != nil {
		delete(d.cache, path)
		d.order.Remove(f.elem)
		f.elem = nil
	}
	return f
}

// put caches f, which nobody holds, closing the oldest cached file if the cache is
// full; it closes f instead once the LockDir is closed.
func (d *LockDir) put(f *lockFile) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.cache[f.path] != nil {
		unix.Close(f.fd)
		return
	}
	if len(d.cache) >= MaxOpenLockFiles {
		old := d.order.Remove(d.order.Front()).(*lockFile)
		delete(d.cache, old.path)
		unix.Close(old.fd)
	}
	d.cache[f.path] = f
	f.elem = d.order.PushBack(f)
}

// dropCache closes the cached descriptors.
func (d *LockDir) dropCache() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, f := range d.cache {
		unix.Close(f.fd)
	}
	clear(d.cache)
	d.order.Init()
}

// Close closes the lock files this LockDir keeps open; the locks still held are
// released by their unlocks, which then close their files too. The LockDir still
// locks, without keeping files open.
func (d *LockDir) Close() error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.dropCache()
	return nil
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
	// The cached descriptors go first: a file this process keeps open but does not
	// hold is removed like any other (its next Lock opens a new one).
	d.dropCache()
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

// openLockFile opens the lock file at path, creating it if missing, and reports
// whether this call created it.
func openLockFile(path string) (fd int, created bool, err error) {
	for {
		fd, err = unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err != unix.ENOENT {
			if err == unix.EINTR {
				continue
			}
			return fd, false, err
		}
		fd, err = unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o660)
		switch err {
		case unix.EINTR, unix.EEXIST: // made meanwhile by another locker: open that one
			continue
		}
		return fd, err == nil, err
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
