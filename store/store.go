package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// MaxIDLength is the longest session id ValidID accepts. Quixote and session3 make
// 11-character ids; the bound leaves room for applications that make longer ones.
const MaxIDLength = 64

// Defaults for the options.
const (
	// DefaultLockTimeout bounds a wait for a peer's lock when the context has no
	// earlier deadline: a peer that holds a lock for this long is stuck.
	DefaultLockTimeout = 10 * time.Second
	// DefaultPartialWait bounds how long Load waits for a session file that is empty
	// or cut short to be completed by the Python writer that truncated it.
	DefaultPartialWait = 2 * time.Second
	// DefaultMaxSize bounds the size of a session file Load reads and Save writes.
	DefaultMaxSize = 64 << 20
)

// staleAge is how old a zero-length session file or a temporary file must be before
// DeleteIdle takes it for the remains of a crashed writer. Live writers touch
// their files within microseconds, so a minute is far beyond any real save.
const staleAge = time.Minute

// tempPrefix starts the name of every temporary file Save makes, followed by the
// process id, the session id and a random number. The leading dot makes the name an
// invalid session id, so neither side can take it for a session.
const tempPrefix = ".qxbridge-tmp-"

// deadWriterAge is how old a temporary file of a process that no longer exists must
// be for Open to remove it: old enough that the process id cannot be one reused by a
// save at work that has just created the file.
const deadWriterAge = time.Second

var (
	// ErrNotFound reports that no session file exists for the id. It wraps
	// fs.ErrNotExist.
	ErrNotFound = fmt.Errorf("no such session: %w", fs.ErrNotExist)
	// ErrInvalidID reports a session id that is empty, too long or has a character
	// outside [A-Za-z0-9_-]. It is returned before any filesystem call.
	ErrInvalidID = errors.New("invalid session id")
	// ErrEmpty reports a session file that stayed zero-length for the whole partial
	// wait: the remains of a Python writer that died between truncating the file and
	// writing it. session3's load_session would loop on such a file forever.
	ErrEmpty = errors.New("session file is empty")
	// ErrTruncated reports a session file that stayed incomplete (see LooksComplete
	// and WithCheck) for the whole partial wait.
	ErrTruncated = errors.New("session file is incomplete")
	// ErrNotRegular reports that the name of a session is taken by something other
	// than a regular file: a symbolic link (never followed), a directory, a FIFO, a
	// device.
	ErrNotRegular = errors.New("session path is not a regular file")
	// ErrTooLarge reports a session larger than the configured maximum size.
	ErrTooLarge = errors.New("session too large")
	// ErrNoData reports a Save of zero bytes. An empty session file would make
	// session3's readers loop forever, so Save never writes one.
	ErrNoData = errors.New("refusing to save an empty session")
	// ErrLockTimeout reports that a peer held the session file's lock for longer
	// than the lock timeout (see WithLockTimeout).
	ErrLockTimeout = errors.New("timed out waiting for the session file lock")
	// ErrUnavailable reports that a session store cannot serve the call now, for a
	// reason that says nothing of the session itself. The session may well exist,
	// and holds whole bytes, the old or the new ones, never a mix: callers answer
	// 503, never take it for a missing session. The directory store returns it
	// when the process is out of file descriptors (EMFILE) or the system is
	// (ENFILE), when memory, disk space or quota ran out, for an I/O error, and
	// for a stale or unresponsive NFS server, with the system error in the chain
	// too (errors.Is(err, syscall.EMFILE) holds); a lock held too long is
	// ErrLockTimeout. Stores over a database (store/pgstore) return it when the
	// database is unreachable, restarting, out of space or too slow.
	ErrUnavailable = errors.New("session store unavailable")
	// ErrPermission reports that the session file's permissions forbid a save: it
	// could not give its file the group of the file it replaces, which belongs to
	// another user who would lose access; or, with POSIX locks (NFS), it may not
	// open that file for writing, which an exclusive lock needs there. The error
	// says which, and what to change. It wraps fs.ErrPermission.
	ErrPermission = fmt.Errorf("session file permissions forbid the save: %w", fs.ErrPermission)
)

// ValidID reports whether id can name a session file: 1 to MaxIDLength characters of
// the URL-safe base64 alphabet [A-Za-z0-9_-] that Quixote and session3 generate ids
// from. Such a name never contains a path separator, NUL or dot, so it can only name
// an entry directly inside the session directory and never a temporary file.
func ValidID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidID)
	}
	if len(id) > MaxIDLength {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidID, MaxIDLength)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: byte %#02x at offset %d is not in [A-Za-z0-9_-]", ErrInvalidID, c, i)
		}
	}
	return nil
}

// Directory is a session directory shared with session3's DirectorySessionStore: one
// file per session, named by the session id, holding the session's bytes (a pickle).
// A Directory holds no open files and is safe for concurrent use by many goroutines
// and processes.
type Directory struct {
	dir          string
	staging      string // WithStagingDir: where saves create their files ("": in dir)
	create       bool
	perm         os.FileMode // 0 means "like Python": 0666 minus umask, or the replaced file's mode
	lockTimeout  time.Duration
	partialWait  time.Duration
	maxSize      int64
	sync         bool
	check        func([]byte) bool
	lockWaitHook func(op string, waited time.Duration)

	// flushOnReplace: the filesystem writes a file's data out when a rename makes it
	// replace another (ext4's auto_da_alloc); saves start that write-out earlier.
	flushOnReplace bool
	// noUnnamed is set once files without a name (O_TMPFILE) turned out not to
	// work here; saves then write named temporary files. linkByProc is set once
	// linkat(AT_EMPTY_PATH) turned out not to be permitted.
	noUnnamed, linkByProc atomic.Bool
	// noExchange is set once renameat2(RENAME_EXCHANGE) turned out not to work
	// here; saves then rename over the session file.
	noExchange atomic.Bool
	writeOut   bool // WithWriteOut
	inPlace    bool // WithInPlace
	// overwrite: saves of small sessions write over the session file (WithInPlace,
	// on a filesystem where it is allowed; see inPlaceAllowed).
	overwrite bool
	dirMode   os.FileMode
	// customCheck: WithCheck replaced LooksComplete, so Load must read a file whole
	// to check it.
	customCheck bool
	euid        int // this process's effective uid, at Open

	// lockFile takes (how = LOCK_SH or LOCK_EX, with LOCK_NB) or releases a lock:
	// flock(2), or whole-file POSIX locks when built with the nfslocks tag; tests
	// also swap in POSIX locks to show that they would not interoperate with
	// Python's fcntl.flock on a local filesystem.
	lockFile func(fd int, how int) error
	// openUnnamed and linkUnnamed make a file without a name and give it one; tests
	// swap in failures to exercise the fallback to named temporary files.
	openUnnamed func(dir string, perm uint32) (int, error)
	linkUnnamed func(fd int, newpath string) error
	// testHook, if set, is told of events tests need to see or act on: "load-locked"
	// and "save-locked" run while Load or Save holds the session file's lock (so a
	// test can hold it against a peer); "lock-busy" that a lock is held by someone
	// else and will be waited for; "empty", "truncated" and "replaced" report an
	// attempt of Load that has to start over.
	testHook func(event string)
}

// Option configures a Directory.
type Option func(*Directory)

// WithCreate makes Open create the directory if it does not exist, with one mkdir(2)
// like session3's create=True (mode 0777 minus umask; the parent must exist).
func WithCreate() Option { return func(d *Directory) { d.create = true } }

// WithDirMode makes Open, with WithCreate, create the session directory with exactly
// this permission (whatever the umask; 0770 keeps others from listing the session
// ids, which are bearer tokens), and give it the group of its parent directory with
// the setgid bit when that group is shared — the parent is setgid, or its group is
// not this process's own but one it belongs to — so that every session file made in
// it gets that group. Without it the directory gets 0777 minus the umask, as with
// session3's create=True.
func WithDirMode(perm os.FileMode) Option {
	return func(d *Directory) { d.dirMode = perm.Perm() }
}

// WithFileMode gives every file Save writes exactly this permission, instead of
// Python's behaviour: 0666 minus umask for a new file, the old mode for a file that
// is replaced.
func WithFileMode(perm os.FileMode) Option {
	return func(d *Directory) { d.perm = perm.Perm() }
}

// WithLockTimeout bounds each wait for a peer's lock (DefaultLockTimeout); a context
// deadline that comes sooner wins. Zero or less leaves only the context.
func WithLockTimeout(d time.Duration) Option {
	return func(dd *Directory) { dd.lockTimeout = d }
}

// WithPartialWait bounds how long Load waits for an empty or incomplete session file
// to be completed by the Python writer that truncated it (DefaultPartialWait) before
// it returns ErrEmpty or ErrTruncated. Zero makes Load report such a file at once.
func WithPartialWait(d time.Duration) Option {
	return func(dd *Directory) { dd.partialWait = max(d, 0) }
}

// WithMaxSize bounds the size of the sessions Load reads and Save writes
// (DefaultMaxSize).
func WithMaxSize(n int64) Option {
	return func(d *Directory) { d.maxSize = n }
}

// WithSync makes Save fsync the new file before it replaces the old one and the
// directory after, so a saved session survives a power loss or kernel crash. Without
// it a save survives the death of any process (the kernel has the data) but relies
// on the filesystem's own ordering (ext4's auto_da_alloc) across a power loss.
// session3 never syncs. It turns WithInPlace off.
func WithSync() Option { return func(d *Directory) { d.sync = true } }

// WithWriteOut makes Save start writing the new file's data to the disk
// (sync_file_range(2), without waiting for it) before the file replaces the session.
// On ext4 (data=ordered, the default) a power loss then leaves each session old or
// new; without it, a session saved in the last seconds before the power loss can be
// left as an empty file (see the package documentation). It costs a disk write per
// save, about what session3's own save costs. WithSync gives more: a save that
// returned survives a power loss. It turns WithInPlace off.
func WithWriteOut() Option { return func(d *Directory) { d.writeOut = true } }

// WithCheck replaces LooksComplete as the test of whether bytes read from a session
// file are a whole session rather than the start of one a Python writer is still
// writing. A decoder's own validation can be plugged in here. nil accepts any
// non-empty content. With WithInPlace, a whole session file can hold bytes after the
// pickle's STOP opcode (the rest of a longer session it overwrote): the check must
// accept them, as Python's unpickler and pickle.Unmarshal do.
func WithCheck(complete func(data []byte) bool) Option {
	return func(d *Directory) { d.check, d.customCheck = complete, true }
}

// WithStagingDir makes Save create and write its files in dir, a directory outside
// the session directory on the same filesystem, and move each one into the session
// directory with a swap (or rename) that gives it the session's name: nothing but session
// files ever appears in the session directory. Use it when Python sweeps the session
// directory with session3's delete_old_sessions, which fails on a name that vanishes
// while it runs (see the package documentation). Open checks that dir is a directory,
// on the same filesystem and mount as the session directory and not inside it. Files
// get their group and default ACL from the directory they are created in: give dir
// the session directory's (a setgid directory of the same group) where that matters.
func WithStagingDir(dir string) Option {
	return func(d *Directory) { d.staging = dir }
}

// WithLockWaitHook calls hook each time a Load or Save could not take a session
// file's lock at once — another process (or a Load or Save of this one) held it — once
// the wait is over, whether the lock was granted or the wait ended with the context
// or the lock timeout. op is "load" or "save"; waited is how long the wait took. A
// Load or Save can wait more than once (a file replaced meanwhile is locked anew).
// The hook runs on the goroutine of the operation: it must be quick and safe for
// concurrent use. It suits a metric of lock contention.
func WithLockWaitHook(hook func(op string, waited time.Duration)) Option {
	return func(d *Directory) { d.lockWaitHook = hook }
}

// Open returns the session directory dir, made absolute like session3's
// DirectorySessionStore(directory). A missing directory is an error unless
// WithCreate is given; a path that is not a directory is always an error. Open
// removes the temporary files that saves of processes that died left behind (see
// the package documentation); it lists the directory to find them.
func Open(dir string, opts ...Option) (*Directory, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("store: open %q: %w", dir, err)
	}
	d := &Directory{
		dir:         abs,
		lockTimeout: DefaultLockTimeout,
		partialWait: DefaultPartialWait,
		maxSize:     DefaultMaxSize,
		check:       LooksComplete,
		lockFile:    lockFileDefault,
		openUnnamed: openUnnamed,
	}
	d.linkUnnamed = func(fd int, newpath string) error { return linkUnnamed(fd, newpath, &d.linkByProc) }
	for _, o := range opts {
		o(d)
	}
	if nfsLocks {
		d.noUnnamed.Store(true)
		d.noExchange.Store(true)
	}
	if d.check == nil {
		d.check = func([]byte) bool { return true }
	}
	fi, err := os.Stat(abs)
	if errors.Is(err, fs.ErrNotExist) && d.create {
		if err := makeDir(abs, d.dirMode); err != nil {
			return nil, fmt.Errorf("store: create session directory: %w", err)
		}
		fi, err = os.Stat(abs)
	}
	if err != nil {
		return nil, fmt.Errorf("store: session directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("store: session directory %s: not a directory", abs)
	}
	d.euid = os.Geteuid()
	d.flushOnReplace = flushesOnReplace(abs)
	d.overwrite = d.inPlace && inPlaceAllowed(d, overwritesInPlace(abs))
	if d.staging != "" {
		if d.staging, err = checkStaging(abs, d.staging); err != nil {
			return nil, err
		}
	}
	if err := d.removeStaleTemps(false); err != nil {
		return nil, err
	}
	return d, nil
}

// makeDir creates the session directory dir with one mkdir(2) (a directory made
// meanwhile by someone else is left as it is), then, if perm is not 0, gives it
// exactly perm and, where the parent's group is shared, that group and the setgid
// bit (see WithDirMode).
func makeDir(dir string, perm os.FileMode) error {
	mkdirPerm := perm
	if perm == 0 {
		mkdirPerm = 0o777
	}
	err := os.Mkdir(dir, mkdirPerm)
	if errors.Is(err, fs.ErrExist) || err == nil && perm == 0 {
		return nil
	}
	if err != nil {
		return err
	}
	var parent, st unix.Stat_t
	if err := unix.Stat(filepath.Dir(dir), &parent); err != nil {
		return &os.PathError{Op: "stat", Path: filepath.Dir(dir), Err: err}
	}
	if err := unix.Stat(dir, &st); err != nil {
		return &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	mode := perm
	shared := sharedGroup(&parent)
	if shared && st.Gid != parent.Gid {
		if err := os.Lchown(dir, -1, int(parent.Gid)); err != nil {
			return fmt.Errorf("cannot give the session directory the group %d of its parent: %w", parent.Gid, err)
		}
	}
	if shared {
		mode |= os.ModeSetgid
	}
	return os.Chmod(dir, mode)
}

// checkStaging checks that staging can serve the session directory dir as
// WithStagingDir's directory, and returns its absolute path.
func checkStaging(dir, staging string) (string, error) {
	abs, err := filepath.Abs(staging)
	if err != nil {
		return "", fmt.Errorf("store: staging directory %q: %w", staging, err)
	}
	fail := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("store: staging directory %s: "+format, append([]any{abs}, args...)...)
	}
	var sst, dst unix.Stat_t
	if err := unix.Stat(abs, &sst); err != nil {
		return fail("%w", &os.PathError{Op: "stat", Path: abs, Err: err})
	}
	if sst.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fail("not a directory")
	}
	if err := unix.Stat(dir, &dst); err != nil {
		return fail("%w", &os.PathError{Op: "stat", Path: dir, Err: err})
	}
	if sst.Dev != dst.Dev {
		return fail("not on the same filesystem as the session directory %s (rename(2) cannot move files between filesystems)", dir)
	}
	// Not the session directory, nor anywhere inside it: session3's sweep would
	// find the staging directory (or the directory holding it) among the sessions.
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return fail("%w", err)
	}
	for p := real; ; p = filepath.Dir(p) {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return fail("%w", &os.PathError{Op: "stat", Path: p, Err: err})
		}
		if st.Dev == dst.Dev && st.Ino == dst.Ino {
			return fail("must be outside the session directory %s", dir)
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	// One filesystem can be mounted twice (bind mounts), and rename(2) refuses to
	// cross mounts. Renaming a name that does not exist tells without touching
	// anything: the kernel compares the mounts before it looks the name up.
	probe := tempPrefix + "probe-" + strconv.FormatUint(rand.Uint64(), 36)
	switch err := unix.Rename(filepath.Join(abs, probe), filepath.Join(dir, probe)); err {
	case unix.ENOENT:
	case unix.EXDEV:
		return fail("not on the same mount as the session directory %s (rename(2) cannot move files between mounts)", dir)
	case nil:
		return fail("a file named %s was moved into the session directory", probe) // cannot happen
	default:
		return fail("cannot rename into the session directory %s: %w", dir, err)
	}
	if err := unix.Faccessat(unix.AT_FDCWD, abs, unix.W_OK|unix.X_OK, unix.AT_EACCESS); err != nil {
		return fail("not writable: %w", err)
	}
	return abs, nil
}

// Dir returns the absolute path of the session directory.
func (d *Directory) Dir() string { return d.dir }

// path is the session file of a valid id.
func (d *Directory) path(id string) string {
	if d.dir == "/" {
		return "/" + id
	}
	return d.dir + "/" + id
}

// opError wraps err with the operation and the (quoted, shortened) id, and marks
// the system errors that make storage unavailable with ErrUnavailable.
func opError(op, id string, err error) error {
	if len(id) > 2*MaxIDLength {
		id = id[:2*MaxIDLength] + "..."
	}
	if unavailable(err) {
		return fmt.Errorf("store: %s %s: %w (%w)", op, strconv.Quote(id), err, ErrUnavailable)
	}
	return fmt.Errorf("store: %s %s: %w", op, strconv.Quote(id), err)
}

// unavailable reports whether err comes from a system error that makes storage
// unavailable for a while (see ErrUnavailable), not yet marked so.
func unavailable(err error) bool {
	var errno unix.Errno
	if !errors.As(err, &errno) || errors.Is(err, ErrUnavailable) {
		return false
	}
	switch errno {
	case unix.EMFILE, unix.ENFILE, unix.ENOMEM, unix.ENOBUFS, unix.EIO, unix.ENOSPC, unix.EDQUOT,
		unix.EFBIG, unix.ESTALE, unix.ETIMEDOUT, unix.EAGAIN, unix.ENOLCK, unix.EROFS:
		return true
	}
	return false
}

// Has reports whether a session file exists for id. Unlike session3's has_session it
// does not load the file (a zero-length file counts as existing), which is what
// a caller choosing a fresh id needs. A name taken by something other than a regular
// file gives ErrNotRegular.
func (d *Directory) Has(ctx context.Context, id string) (bool, error) {
	if err := ValidID(id); err != nil {
		return false, opError("has", id, err)
	}
	if err := ctx.Err(); err != nil {
		return false, opError("has", id, err)
	}
	var st unix.Stat_t
	err := ignoringEINTR(func() error { return unix.Lstat(d.path(id), &st) })
	switch {
	case err == unix.ENOENT:
		return false, nil
	case err != nil:
		return false, opError("has", id, &os.PathError{Op: "lstat", Path: d.path(id), Err: err})
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return false, opError("has", id, ErrNotRegular)
	}
	return true, nil
}

// Delete removes the session file of id, like session3's delete_session (unlink,
// without a lock: readers that already opened the file finish reading it). A missing
// session gives ErrNotFound; a name taken by something other than a regular file is
// left alone and gives ErrNotRegular.
func (d *Directory) Delete(ctx context.Context, id string) error {
	if err := ValidID(id); err != nil {
		return opError("delete", id, err)
	}
	if err := ctx.Err(); err != nil {
		return opError("delete", id, err)
	}
	path := d.path(id)
	var st unix.Stat_t
	err := ignoringEINTR(func() error { return unix.Lstat(path, &st) })
	if err == nil && st.Mode&unix.S_IFMT != unix.S_IFREG {
		return opError("delete", id, ErrNotRegular)
	}
	if err == nil {
		err = ignoringEINTR(func() error { return unix.Unlink(path) })
	}
	switch {
	case err == unix.ENOENT:
		return opError("delete", id, ErrNotFound)
	case err != nil:
		return opError("delete", id, &os.PathError{Op: "unlink", Path: path, Err: err})
	}
	return nil
}

// IDs returns the ids of the sessions in the directory, sorted: the names that are
// valid ids of regular files. Temporary files and foreign entries are never listed.
// (session3 never implemented iter_sessions for directories.)
func (d *Directory) IDs(ctx context.Context) ([]string, error) {
	var ids []string
	err := scan(ctx, d.dir, func(name string, typ fs.FileMode) error {
		if ValidID(name) == nil && typ.IsRegular() {
			ids = append(ids, name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	return ids, nil
}

// scan calls fn for every entry of dir, reading it in batches so that a directory
// of millions of sessions is never held in memory at once.
func scan(ctx context.Context, dir string, fn func(name string, typ fs.FileMode) error) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: list sessions: %w", err)
	}
	defer f.Close()
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("store: list sessions: %w", err)
		}
		entries, err := f.ReadDir(1024)
		for _, e := range entries {
			if err := fn(e.Name(), e.Type()); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("store: list sessions: %w", err)
		}
	}
}

// DeleteIdle deletes the sessions whose files were not modified for olderThan, like
// session3's delete_old_sessions(minutes) (which compares mtimes the same way), and
// returns how many it deleted and how many sessions remain. It also deletes
// zero-length session files and temporary files (in the session directory and the
// staging directory) older than a minute: the remains of writers that crashed, the
// first of which would make session3's readers loop forever.
//
// Unlike delete_old_sessions it touches only regular files named by valid ids (and
// its own temporary files): foreign files, links and directories are neither deleted
// nor counted. A session is deleted only under an exclusive lock that it can take
// at once, after checking again that the file is still the idle one, so a session
// that a Go process saves or a peer holds locked meanwhile is kept and counted as
// remaining.
func (d *Directory) DeleteIdle(olderThan time.Duration) (deleted, remaining int, err error) {
	now := time.Now()
	cutoff := now.Add(-olderThan)
	staleCutoff := now.Add(-staleAge)
	var errs []error
	if d.staging != "" {
		if err := d.removeStaleTemps(true); err != nil {
			errs = append(errs, err)
		}
	}
	byPID := !onNFS(d.dir)
	scanErr := scan(context.Background(), d.dir, func(name string, typ fs.FileMode) error {
		path := d.path(name)
		if strings.HasPrefix(name, tempPrefix) {
			if err := removeStaleTemp(path, staleCutoff, byPID); err != nil {
				errs = append(errs, err)
			}
			return nil
		}
		if ValidID(name) != nil || !typ.IsRegular() {
			return nil
		}
		gone, kept, err := d.deleteIfIdle(path, cutoff, staleCutoff)
		if err != nil {
			errs = append(errs, err)
		}
		if gone {
			deleted++
		}
		if kept {
			remaining++
		}
		return nil
	})
	if scanErr != nil {
		errs = append(errs, scanErr)
	}
	return deleted, remaining, errors.Join(errs...)
}

// deleteIfIdle deletes the session file at path if it is idle, reporting whether it
// was deleted or kept as a remaining session (neither when it vanished meanwhile or
// turned out not to be a regular file).
func (d *Directory) deleteIfIdle(path string, cutoff, staleCutoff time.Time) (deleted, kept bool, err error) {
	idle := func(st *unix.Stat_t) bool {
		mtime := time.Unix(st.Mtim.Unix())
		return mtime.Before(cutoff) || (st.Size == 0 && mtime.Before(staleCutoff))
	}
	release, ok := tryLockPath(path)
	if !ok {
		return false, true, nil // in use by this process
	}
	defer release()
	fd, st, err := openForLock(path)
	switch {
	case err == unix.ENOENT || errors.Is(err, ErrNotRegular):
		return false, false, nil
	case err != nil:
		return false, false, fmt.Errorf("store: delete idle: %w", err)
	}
	defer func() {
		if fd >= 0 {
			unix.Close(fd)
		}
	}()
	if !idle(&st) {
		return false, true, nil
	}
	// Take the lock without waiting: a file someone holds is not idle.
	if err := d.lockFile(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return false, true, nil
	}
	// Under the lock no Go save can replace the file; check that it is still the
	// idle file at path before unlinking the name.
	var now unix.Stat_t
	switch err := ignoringEINTR(func() error { return unix.Lstat(path, &now) }); {
	case err == unix.ENOENT:
		return false, false, nil
	case err != nil:
		return false, true, fmt.Errorf("store: delete idle: %w", &os.PathError{Op: "lstat", Path: path, Err: err})
	}
	if now.Dev != st.Dev || now.Ino != st.Ino || !idle(&now) {
		return false, true, nil
	}
	closeBeforeUnlink(&fd)
	if d.testHook != nil {
		d.testHook("idle-unlinking")
	}
	switch err := ignoringEINTR(func() error { return unix.Unlink(path) }); {
	case err == unix.ENOENT:
		return false, false, nil
	case err != nil:
		return false, true, fmt.Errorf("store: delete idle: %w", &os.PathError{Op: "unlink", Path: path, Err: err})
	}
	return true, false, nil
}

// removeStaleTemps removes the temporary files that saves which died left in the
// staging directory, and, unless stagingOnly, in the session directory: files older
// than a minute, and, at once, those of a process that no longer exists (on this
// host: not on NFS, where the process may live on another).
func (d *Directory) removeStaleTemps(stagingOnly bool) error {
	cutoff := time.Now().Add(-staleAge)
	byPID := !onNFS(d.dir)
	var errs []error
	dirs := []string{d.staging}
	if !stagingOnly {
		dirs = append(dirs, d.dir)
	}
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		err := scan(context.Background(), dir, func(name string, typ fs.FileMode) error {
			if strings.HasPrefix(name, tempPrefix) {
				if err := removeStaleTemp(dir+"/"+name, cutoff, byPID); err != nil {
					errs = append(errs, err)
				}
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// writerGone reports whether the temporary file name was made by a process of this
// host that no longer exists.
func writerGone(name string) bool {
	rest := strings.TrimPrefix(name, tempPrefix)
	i := strings.IndexByte(rest, '-')
	if i <= 0 {
		return false
	}
	pid, err := strconv.Atoi(rest[:i])
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return unix.Kill(pid, 0) == unix.ESRCH
}

// removeStaleTemp removes a temporary file left by a Save that died: once it is old
// enough that no live Save can still be writing it, or, with byPID, once the process
// that made it is gone.
func removeStaleTemp(path string, staleCutoff time.Time, byPID bool) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return nil // gone already: renamed or removed by its writer
	}
	mtime := time.Unix(st.Mtim.Unix())
	stale := mtime.Before(staleCutoff) ||
		byPID && mtime.Before(time.Now().Add(-deadWriterAge)) && writerGone(filepath.Base(path))
	if st.Mode&unix.S_IFMT != unix.S_IFREG || !stale {
		return nil
	}
	if err := unix.Unlink(path); err != nil && err != unix.ENOENT {
		return fmt.Errorf("store: remove stale temporary file: %w", &os.PathError{Op: "unlink", Path: path, Err: err})
	}
	return nil
}

// sharedGroup reports whether a directory is shared with its group: it is setgid,
// or its group is not this process's own but one it belongs to. The files made in
// it must then be readable and writable by that group.
func sharedGroup(st *unix.Stat_t) bool {
	groups, _ := os.Getgroups()
	return st.Mode&unix.S_ISGID != 0 ||
		int(st.Gid) != os.Getegid() && slices.Contains(groups, int(st.Gid))
}

// SharedWithGroup reports whether the directory dir is shared with its group
// (setgid, or of a group this process belongs to that is not its own), in which
// case the files written in it must give that group read and write access
// (WithFileMode(0o660)) whatever the umask.
func SharedWithGroup(dir string) (bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return false, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	return sharedGroup(&st), nil
}
