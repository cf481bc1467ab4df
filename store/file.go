package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// errReplaced reports internally that the session file was replaced (renamed over)
// while Load or Save waited for its lock: the lock must be taken on the new file.
var errReplaced = errors.New("session file replaced while waiting for its lock")

// errNoUnnamed reports internally that files without a name (O_TMPFILE) cannot be
// made or linked here: saves use named temporary files instead.
var errNoUnnamed = errors.New("no O_TMPFILE support")

// Polling bounds. Peers hold their locks for microseconds, and the window in which a
// session3 writer's file is whole can be as short (it truncates the file again at its
// next save), so waiters poll often: a poll costs a few system calls, and waiting is
// rare. session3's own reader sleeps 100 ms between attempts and can miss a busy
// writer's every save.
const (
	lockPollFirst    = 20 * time.Microsecond
	lockPollMax      = time.Millisecond
	partialPollFirst = 50 * time.Microsecond
	partialPollMax   = time.Millisecond
)

// Load returns the bytes of the session id. A missing session gives ErrNotFound.
//
// It follows session3's load_session where Python can see it: the session file is
// opened (never through a symbolic link) and read under a shared flock(2) lock, so it
// waits for a Python writer holding LOCK_EX, and a Python writer waits for it. It
// also checks, once the lock is granted, that the file it locked is still the one
// at the session's path, and starts over on the new file if a save replaced it
// meanwhile. An empty or incomplete file (the window in which session3's writer has
// truncated the file but not yet written it) is read again after short pauses, for up
// to the partial wait; one that stays so gives ErrEmpty or ErrTruncated. Waits end
// with the context (its error is returned, wrapped) or after the lock timeout
// (ErrLockTimeout).
func (d *Directory) Load(ctx context.Context, id string) ([]byte, error) {
	if err := ValidID(id); err != nil {
		return nil, opError("load", id, err)
	}
	path := d.path(id)
	lockDeadline := d.lockDeadline()
	var partialUntil time.Time
	var last fileVersion // of the last incomplete file read
	pause := partialPollFirst
	for {
		if err := ctx.Err(); err != nil {
			return nil, opError("load", id, err)
		}
		release, err := lockPath(ctx, path)
		if err != nil {
			return nil, opError("load", id, err)
		}
		data, err := d.loadOnce(ctx, path, lockDeadline, &last)
		release()
		if err != nil && d.testHook != nil {
			switch err {
			case errReplaced:
				d.testHook("replaced")
			case ErrEmpty:
				d.testHook("empty")
			case ErrTruncated:
				d.testHook("truncated")
			}
		}
		switch {
		case err == nil:
			return data, nil
		case err == errReplaced || errors.Is(err, unix.ESTALE):
			// Replaced while we waited for the lock; on NFS, replaced on the
			// server after we opened it (a stale file handle).
			if !lockDeadline.IsZero() && time.Now().After(lockDeadline) {
				return nil, opError("load", id, ErrLockTimeout)
			}
			continue
		case err == ErrEmpty || err == ErrTruncated:
		default:
			return nil, opError("load", id, err)
		}
		now := time.Now()
		if partialUntil.IsZero() {
			partialUntil = now.Add(d.partialWait)
		}
		left := partialUntil.Sub(now)
		if left <= 0 {
			return nil, opError("load", id, err)
		}
		if err := sleep(ctx, min(pause, left)); err != nil {
			return nil, opError("load", id, err)
		}
		pause = min(2*pause, partialPollMax)
	}
}

// fileVersion tells apart the contents a file had at different times: a write
// changes the modification and change times.
type fileVersion struct {
	ino        uint64
	size       int64
	mtim, ctim unix.Timespec
}

func versionOf(st *unix.Stat_t) fileVersion {
	return fileVersion{ino: uint64(st.Ino), size: st.Size, mtim: st.Mtim, ctim: st.Ctim}
}

// loadOnce makes one attempt to read the session file at path under a shared lock.
// last is the version of the file an earlier attempt found incomplete: a file
// still at that version is not read again (a large file that stays incomplete for
// the whole partial wait would otherwise be read again and again). With the default
// check, only the bytes LooksComplete looks at are read from a large file until they
// pass.
func (d *Directory) loadOnce(ctx context.Context, path string, lockDeadline time.Time, last *fileVersion) ([]byte, error) {
	fd, st, err := openSession(path)
	if err != nil {
		return nil, fileError("open", path, err)
	}
	defer unix.Close(fd)
	if st.Size == 0 {
		// A session3 writer has truncated the file and is about to lock it, or has
		// written and released it but not yet flushed its buffer. Do not take the
		// lock: the writer may be waiting for every shared lock to go, and readers
		// polling an empty file with shared locks can keep it waiting for good.
		return nil, ErrEmpty
	}
	if err := d.lock(ctx, "load", fd, unix.LOCK_SH, lockDeadline); err != nil {
		return nil, fileError("lock", path, err)
	}
	defer d.lockFile(fd, unix.LOCK_UN)
	now, err := stillAt(path, &st)
	if err != nil {
		return nil, fileError("lstat", path, err)
	}
	if d.testHook != nil {
		d.testHook("load-locked")
	}
	size := now.Size
	switch {
	case size == 0:
		return nil, ErrEmpty
	case size > d.maxSize:
		return nil, ErrTooLarge
	case size > smallSession && versionOf(&now) == *last:
		// Unchanged since found incomplete. (Small files are read again
		// anyway: a coarse clock can give two writes the same times.)
		return nil, ErrTruncated
	}
	incomplete := func() ([]byte, error) {
		*last = versionOf(&now)
		return nil, ErrTruncated
	}
	if !d.customCheck && size > smallSession {
		ok, err := endsLookComplete(fd, size)
		if err != nil {
			return nil, fileError("read", path, err)
		}
		if !ok {
			return incomplete()
		}
	}
	buf := make([]byte, size)
	n, err := readFull(fd, buf)
	if err != nil {
		return nil, fileError("read", path, err)
	}
	// A short read means a Python writer truncated the file under our shared lock
	// (its open(path, 'wb') takes no lock); its data is yet to come.
	if int64(n) < size || !d.check(buf) {
		return incomplete()
	}
	return buf, nil
}

// smallSession is the size up to which Load reads an incomplete-looking file whole
// every time: reading its ends first would cost two system calls more than the read
// that follows, and a file this small costs nothing to read again.
const smallSession = 64 << 10

// endsLookComplete reads the bytes of a file of size bytes that LooksComplete
// decides on — the first eleven and the last — and reports whether they pass. A
// file that ends early (a writer truncated it) does not.
func endsLookComplete(fd int, size int64) (bool, error) {
	const head = 11
	if size <= 2*head {
		return true, nil // small enough to read whole and check
	}
	var b [head + 1]byte
	for _, r := range []struct {
		buf []byte
		off int64
	}{{b[:head], 0}, {b[head:], size - 1}} {
		var n int
		err := ignoringEINTR(func() (err error) {
			n, err = unix.Pread(fd, r.buf, r.off)
			return err
		})
		if err != nil {
			return false, err
		}
		if n < len(r.buf) {
			return false, nil
		}
	}
	return looksComplete(b[:head], b[head], size), nil
}

// RemoveEmpty removes the session file of id if it is empty and has been for at
// least the partial wait (WithPartialWait): the remains of a Python writer that died,
// or met a full disk, between truncating the file and writing it, on which session3's
// load_session loops forever. Call it when Load reports ErrEmpty. A file that is not
// empty, was truncated more recently, or is locked by anyone (a writer at work) is
// kept. It reports whether it removed the file; a missing file gives ErrNotFound.
func (d *Directory) RemoveEmpty(ctx context.Context, id string) (bool, error) {
	if err := ValidID(id); err != nil {
		return false, opError("remove empty", id, err)
	}
	path := d.path(id)
	release, err := lockPath(ctx, path)
	if err != nil {
		return false, opError("remove empty", id, err)
	}
	defer release()
	removed, err := d.removeEmpty(path, time.Now().Add(-d.partialWait))
	if err != nil {
		return false, opError("remove empty", id, err)
	}
	return removed, nil
}

// removeEmpty removes the file at path if it is empty and was last modified before
// cutoff, under an exclusive lock taken without waiting.
func (d *Directory) removeEmpty(path string, cutoff time.Time) (bool, error) {
	fd, st, err := openForLock(path)
	if err != nil {
		return false, fileError("open", path, err)
	}
	defer func() {
		if fd >= 0 {
			unix.Close(fd)
		}
	}()
	abandoned := func(st *unix.Stat_t) bool {
		return st.Size == 0 && time.Unix(st.Mtim.Unix()).Before(cutoff)
	}
	if !abandoned(&st) {
		return false, nil
	}
	if err := d.lockFile(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return false, nil // a writer holds it
	}
	var now unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Lstat(path, &now) }); err != nil {
		return false, fileError("lstat", path, err)
	}
	if now.Dev != st.Dev || now.Ino != st.Ino || !abandoned(&now) {
		return false, nil
	}
	closeBeforeUnlink(&fd)
	if err := ignoringEINTR(func() error { return unix.Unlink(path) }); err != nil {
		return false, fileError("unlink", path, err)
	}
	return true, nil
}

// closeBeforeUnlink is called with *fd the locked session file that DeleteIdle or
// RemoveEmpty is about to unlink. The name goes while the lock is held, so that a
// save waiting for the lock in another process finds the file gone and saves anew;
// closing first would let it save into the file in between, report success, and
// lose the save to the unlink. With POSIX locks (the nfslocks build, for NFS) it
// closes the file first instead (setting *fd to -1), as an open file that is
// unlinked on NFS stays as a ".nfsXXXX" file until it is closed.
func closeBeforeUnlink(fd *int) {
	if nfsLocks {
		unix.Close(*fd)
		*fd = -1
	}
}

// Save stores data as the session id, replacing any previous session file whole.
//
// Readers never see a partial file: data goes to a new file without a name (open(2)
// O_TMPFILE) in the session directory, or in the staging directory if WithStagingDir
// is given. Then, while Save holds an exclusive lock on the file being replaced — so
// Python readers and writers and Go loads that hold that file finish first — the new
// file gets a temporary name (never a valid id) and is at once swapped with the
// session file (renameat2 RENAME_EXCHANGE), which is then unlinked; a new session's
// file is linked under the session's name directly. Where files without a name or
// swaps are not supported, a named temporary file is written, or the new file is
// renamed over the old one. If anything fails before the swap (the disk fills, the
// context ends, the process dies) the old session is left as it was and the new file
// vanishes (a named temporary file is removed, or, after a crash, removed by Open or
// DeleteIdle). New files get mode 0660 minus umask; a replaced file's group is kept,
// and its mode less others' bits (see the package documentation), unless
// WithFileMode is given. Empty data gives ErrNoData. System errors that make the
// directory unusable for now wrap ErrUnavailable.
func (d *Directory) Save(ctx context.Context, id string, data []byte) error {
	if err := ValidID(id); err != nil {
		return opError("save", id, err)
	}
	switch {
	case len(data) == 0:
		return opError("save", id, ErrNoData)
	case int64(len(data)) > d.maxSize:
		return opError("save", id, ErrTooLarge)
	}
	if err := ctx.Err(); err != nil {
		return opError("save", id, err)
	}
	path := d.path(id)
	release, err := lockPath(ctx, path)
	if err != nil {
		return opError("save", id, err)
	}
	defer release()
	if err := d.save(ctx, path, id, data); err != nil {
		return opError("save", id, err)
	}
	return nil
}

func (d *Directory) save(ctx context.Context, path, id string, data []byte) error {
	lockDeadline := d.lockDeadline()
	if done, err := d.saveInPlace(ctx, path, data, lockDeadline); done {
		return err
	}
	err := d.saveVia(ctx, path, id, data, !d.noUnnamed.Load(), lockDeadline)
	if err == errNoUnnamed {
		// No O_TMPFILE here (or no way to link such a file): from now on write named
		// temporary files. Nothing was changed; start over.
		d.noUnnamed.Store(true)
		err = d.saveVia(ctx, path, id, data, false, lockDeadline)
	}
	return err
}

// saveVia saves data as the file at path, writing it into a file without a name if
// unnamed is true, else into a named temporary file.
func (d *Directory) saveVia(ctx context.Context, path, id string, data []byte, unnamed bool, lockDeadline time.Time) error {
	// Open the file to be replaced first, so that a name taken by something else is
	// refused before anything is written.
	old, st, err := openOld(path)
	if err != nil {
		return err
	}
	defer func() {
		if old >= 0 {
			unix.Close(old)
		}
	}()
	tmp, err := d.createTemp(id, unnamed)
	if err != nil {
		return err
	}
	named := false // the written file has the session's name
	defer func() {
		if !named && tmp.name != "" {
			unix.Unlink(tmp.name)
		}
		unix.Close(tmp.fd)
	}()
	if err := writeAll(tmp.fd, data); err != nil {
		return fileError("write", tmp.String(), err)
	}
	if old < 0 {
		if err := d.setAttrs(tmp, nil); err != nil {
			return err
		}
	}
	if d.sync {
		if err := unix.Fsync(tmp.fd); err != nil {
			return fileError("fsync", tmp.String(), err)
		}
	} else if old >= 0 && (d.writeOut || d.flushOnReplace && d.noExchange.Load()) {
		// WithWriteOut: the data goes to the disk before the file replaces the
		// session. A rename over a file on ext4 would start that write-out itself
		// (auto_da_alloc), inside rename(2), with the temporary name listed and the
		// lock held; start it now, before either.
		startWriteout(tmp.fd)
	}
	for {
		if old < 0 {
			if tmp.name != "" {
				break // rename creates the session file
			}
			// A new session: link gives the file the session's name at once, and
			// never replaces a file that someone created meanwhile.
			err := d.linkUnnamed(tmp.fd, path)
			if err == nil {
				named = true
				return d.syncDir()
			}
			if err != unix.EEXIST {
				return linkError(tmp.String(), path, err)
			}
			if old, st, err = d.reopenOld(path, lockDeadline); err != nil {
				return err
			}
			if old < 0 {
				// Gone again: the link is tried anew, with the attributes of
				// a new file.
				if err := d.setAttrs(tmp, nil); err != nil {
					return err
				}
			}
			continue
		}
		if err := d.setAttrs(tmp, &st); err != nil {
			return err
		}
		if err := d.lock(ctx, "save", old, unix.LOCK_EX, lockDeadline); err != nil {
			if err == unix.EBADF {
				// POSIX locks (NFS) on a file this process may only read.
				return fmt.Errorf("%w: this process (uid %d) may not open the session file %s for writing (owner uid %d, group %d, mode %04o), and an exclusive lock needs that on NFS: make session files group-writable (WithFileMode(0660) here, umask 002 for Python)",
					ErrPermission, d.euid, path, st.Uid, st.Gid, st.Mode&0o7777)
			}
			return fileError("lock", path, err)
		}
		_, err := stillAt(path, &st)
		if err == nil {
			break // still the file to replace, and locked
		}
		d.lockFile(old, unix.LOCK_UN)
		unix.Close(old)
		old = -1
		switch err {
		case ErrNotFound:
			// Deleted meanwhile: the session is saved anew.
			if err := d.setAttrs(tmp, nil); err != nil {
				return err
			}
			continue
		case errReplaced:
			// Replaced while we waited: lock the new file instead.
			if old, st, err = d.reopenOld(path, lockDeadline); err != nil {
				return err
			}
		default:
			return fileError("lstat", path, err)
		}
	}
	if old >= 0 && d.testHook != nil {
		d.testHook("save-locked")
	}
	// Only now, holding the lock, does an unnamed file get a (temporary) name: the
	// rename follows at once, so the name is listed for two system calls at most.
	if tmp.name == "" {
		if err := d.nameTemp(&tmp, id); err != nil {
			return err
		}
	}
	if err := d.replace(tmp.name, path, &old); err != nil {
		return err
	}
	named = true
	return d.syncDir()
}

// replace moves the file named tmp to path. If *old is a descriptor of the session
// file at path (locked by the caller), it swaps the two names with
// renameat2(RENAME_EXCHANGE), closes *old (releasing its lock) and unlinks tmp,
// which then names the replaced file. A rename(2) over the session file would cost
// more on ext4, which first writes the new file's data out (auto_da_alloc: an I/O
// per save). Where the kernel or the filesystem cannot swap names (NFS, kernels
// before 3.15), and where path vanished meanwhile, it closes *old first and renames.
//
// The replaced file is closed before its last name goes, never after: on NFS an
// open file that is renamed over or unlinked is kept as a ".nfsXXXX" file in the
// directory until it is closed, and closing it drops every lock the process holds
// on it anyway. Releasing the lock before the rename lets a peer waiting for it
// read or write the replaced file first, which orders it before this save.
func (d *Directory) replace(tmp, path string, old *int) error {
	closeOld := func() {
		if *old >= 0 {
			unix.Close(*old) // releases the lock
			*old = -1
		}
	}
	defer closeOld()
	if *old >= 0 && !d.noExchange.Load() {
		err := ignoringEINTR(func() error { return renameExchange(tmp, path) })
		switch err {
		case nil:
			if d.testHook != nil {
				d.testHook("exchanged")
			}
			closeOld()
			// The session is saved. Should the unlink fail, the replaced file
			// stays under its temporary name until Open or DeleteIdle removes it.
			_ = ignoringEINTR(func() error { return unix.Unlink(tmp) })
			return nil
		case unix.EINVAL, unix.ENOSYS, unix.EOPNOTSUPP:
			d.noExchange.Store(true) // no RENAME_EXCHANGE here
		case unix.ENOENT:
			// The session was deleted meanwhile (by an unlink that takes no
			// lock): the rename saves it anew.
		default:
			return &os.LinkError{Op: "renameat2 RENAME_EXCHANGE", Old: tmp, New: path, Err: err}
		}
	}
	closeOld()
	if err := ignoringEINTR(func() error { return unix.Rename(tmp, path) }); err != nil {
		return &os.LinkError{Op: "rename", Old: tmp, New: path, Err: err}
	}
	return nil
}

// reopenOld opens the file now at path after the one a save meant to replace was
// replaced or deleted, unless the lock deadline has passed.
func (d *Directory) reopenOld(path string, lockDeadline time.Time) (int, unix.Stat_t, error) {
	if !lockDeadline.IsZero() && time.Now().After(lockDeadline) {
		return -1, unix.Stat_t{}, ErrLockTimeout
	}
	return openOld(path)
}

// syncDir makes a save's new directory entry durable, with WithSync.
func (d *Directory) syncDir() error {
	if !d.sync {
		return nil
	}
	return syncDir(d.dir)
}

// openOld opens the session file a save will replace, or returns -1 if there is none.
func openOld(path string) (int, unix.Stat_t, error) {
	fd, st, err := openForLock(path)
	if err == unix.ENOENT {
		return -1, st, nil
	}
	if err != nil {
		return -1, st, fileError("open", path, err)
	}
	return fd, st, nil
}

// tempFile is the file a save writes before it becomes the session file.
type tempFile struct {
	fd   int
	dir  string // where it was created
	name string // its path while it has a temporary name; "" while it has none
}

// String names the file in errors.
func (f tempFile) String() string {
	if f.name != "" {
		return f.name
	}
	return f.dir + "/(unnamed)"
}

// tempDir is where saves create their files: the staging directory, if any.
func (d *Directory) tempDir() string {
	if d.staging != "" {
		return d.staging
	}
	return d.dir
}

// pidText is this process's id in temporary names (os.Getpid is a system call each
// time, and a Go process keeps its id).
var pidText = strconv.Itoa(os.Getpid())

// tempName returns a fresh temporary name for a save of id.
func (d *Directory) tempName(id string) string {
	name := tempPrefix + pidText + "-" + id + "-" + strconv.FormatUint(rand.Uint64(), 36)
	if dir := d.tempDir(); dir != "/" {
		return dir + "/" + name
	}
	return "/" + name
}

// createTemp creates the file a save of id writes: a file without a name if unnamed
// is true (errNoUnnamed where there are none), else a named temporary file, created
// with O_EXCL|O_NOFOLLOW so that it is a new file, never one planted beforehand.
func (d *Directory) createTemp(id string, unnamed bool) (tempFile, error) {
	// Minus the umask, by the kernel; setAttrs then makes the mode what it must be.
	perm := uint32(0o660)
	if d.perm != 0 {
		perm = uint32(d.perm)
	}
	f := tempFile{fd: -1, dir: d.tempDir()}
	if unnamed {
		fd, err := d.openUnnamed(f.dir, perm)
		f.fd = fd
		return f, err
	}
	for range 16 {
		name := d.tempName(id)
		var fd int
		err := ignoringEINTR(func() (err error) {
			fd, err = unix.Open(name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
			return err
		})
		if err == unix.EEXIST {
			continue
		}
		if err != nil {
			return f, &os.PathError{Op: "create", Path: name, Err: err}
		}
		f.fd, f.name = fd, name
		return f, nil
	}
	return f, errors.New("could not find an unused temporary file name")
}

// nameTemp gives an unnamed file a fresh temporary name in the temporary directory.
// link(2) never replaces a file, so the name is new, like O_EXCL's.
func (d *Directory) nameTemp(f *tempFile, id string) error {
	for range 16 {
		name := d.tempName(id)
		err := d.linkUnnamed(f.fd, name)
		if err == unix.EEXIST {
			continue
		}
		if err != nil {
			return linkError(f.String(), name, err)
		}
		f.name = name
		return nil
	}
	return errors.New("could not find an unused temporary file name")
}

// linkError describes a failed link of the file old to newpath; errNoUnnamed passes
// through, as the save starts over with named temporary files.
func linkError(old, newpath string, err error) error {
	if err == errNoUnnamed {
		return err
	}
	return &os.LinkError{Op: "link", Old: old, New: newpath, Err: err}
}

// openSession opens the session file at path for reading and returns its status.
// O_NOFOLLOW refuses a symbolic link and O_NONBLOCK keeps a FIFO planted under a
// session's name from blocking the open; anything but a regular file gives
// ErrNotRegular. Errors are bare errnos (unix.ENOENT for a missing file).
func openSession(path string) (int, unix.Stat_t, error) {
	return openFile(path, unix.O_RDONLY)
}

// openFile is openSession with the access mode given (O_RDONLY or O_RDWR).
func openFile(path string, access int) (int, unix.Stat_t, error) {
	var st unix.Stat_t
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Open(path, access|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
		return err
	})
	if err == unix.ELOOP {
		return -1, st, ErrNotRegular
	}
	if err != nil {
		return -1, st, err
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, st, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return -1, st, ErrNotRegular
	}
	return fd, st, nil
}

// openForLock opens the session file at path, like openSession, to take LOCK_EX on
// it: for reading and writing, as NFS's emulation of flock(2) with POSIX locks needs
// (an exclusive lock on a descriptor opened only for reading fails there with
// EBADF). Where the file may not be opened for writing (another user's file that
// this one may still replace, a read-only mount), it is opened for reading, which
// flock(2) accepts on local filesystems.
func openForLock(path string) (int, unix.Stat_t, error) {
	fd, st, err := openFile(path, unix.O_RDWR)
	switch err {
	case unix.EACCES, unix.EPERM, unix.EROFS, unix.ETXTBSY:
		fd, st, err = openFile(path, unix.O_RDONLY)
	case unix.EISDIR:
		err = ErrNotRegular
	}
	return fd, st, err
}

// stillAt checks, under the lock, that the file described by st (as opened) is still
// the one at path, and returns its current status. A file that was renamed over
// gives errReplaced; one that was deleted gives ErrNotFound.
func stillAt(path string, st *unix.Stat_t) (unix.Stat_t, error) {
	var now unix.Stat_t
	err := ignoringEINTR(func() error { return unix.Lstat(path, &now) })
	switch {
	case err == unix.ENOENT:
		return now, ErrNotFound
	case err != nil:
		return now, err
	case now.Dev != st.Dev || now.Ino != st.Ino:
		return now, errReplaced
	}
	return now, nil
}

// lockDeadline is when the lock timeout of an operation starting now expires (zero:
// never; the context alone decides).
func (d *Directory) lockDeadline() time.Time {
	if d.lockTimeout <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d.lockTimeout)
}

// lock takes a flock(2) lock (how is LOCK_SH or LOCK_EX) on fd for op ("load" or
// "save"), waiting for peers that hold a conflicting one until ctx ends or the
// deadline passes. The wait polls with LOCK_NB rather than blocking a thread in
// flock(2), which could not be abandoned. A wait, however it ends, is reported to the
// lock-wait hook.
func (d *Directory) lock(ctx context.Context, op string, fd, how int, deadline time.Time) error {
	err := d.lockFile(fd, how|unix.LOCK_NB)
	if err != unix.EWOULDBLOCK {
		return err
	}
	start := time.Now()
	if d.lockWaitHook != nil {
		defer func() { d.lockWaitHook(op, time.Since(start)) }()
	}
	if d.testHook != nil {
		d.testHook("lock-busy")
	}
	pause := lockPollFirst
	timer := time.NewTimer(0)
	<-timer.C
	defer timer.Stop()
	for {
		wait := pause
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return ErrLockTimeout
			}
			wait = min(wait, left)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		err := d.lockFile(fd, how|unix.LOCK_NB)
		if err != unix.EWOULDBLOCK {
			return err
		}
		pause = min(2*pause, lockPollMax)
	}
}

// flock is the lock Python's fcntl.flock takes: flock(2), whole file, owned by the
// open file description.
func flock(fd, how int) error {
	return ignoringEINTR(func() error { return unix.Flock(fd, how) })
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func readFull(fd int, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		var m int
		err := ignoringEINTR(func() (err error) {
			m, err = unix.Read(fd, buf[n:])
			return err
		})
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}

func writeAll(fd int, data []byte) error {
	for len(data) > 0 {
		var n int
		err := ignoringEINTR(func() (err error) {
			n, err = unix.Write(fd, data)
			return err
		})
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		data = data[n:]
	}
	return nil
}

func syncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fileError("open", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return fileError("fsync", dir, err)
	}
	return nil
}

// fileError turns a bare errno into an *os.PathError naming the file; the package's
// own sentinel errors and context errors pass through unchanged.
func fileError(op, path string, err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		if errno == unix.ENOENT {
			return ErrNotFound
		}
		return &os.PathError{Op: op, Path: path, Err: err}
	}
	return err
}

func ignoringEINTR(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}
