package store

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// WithInPlace makes Save overwrite a small session's existing file where it can,
// instead of swapping a new file in: one pwrite(2) of the new bytes at offset 0,
// under LOCK_EX, with no new inode, no rename and no truncation. On ext4 that costs
// a fraction of the swap, most of whose time goes into freeing the replaced inode.
//
// Save overwrites only when the session file exists, this process may open it for
// writing, and the new session and the current file each fit in one memory page
// (os.Getpagesize: 4 KiB on most machines), on a filesystem that overwrites a file's
// allocated blocks without allocating new ones (ext2/3/4, tmpfs, xfs: not btrfs or
// zfs, which copy on write, nor NFS), and not with WithSync or WithWriteOut, whose
// crash guarantees an overwrite cannot give. Otherwise it saves as without the
// option. A new session shorter than the file leaves the rest of the old bytes after
// its STOP opcode, where Python's unpickler and pickle.Unmarshal never read: Load
// returns them too, and a WithCheck function sees them.
//
// Readers, Go's and session3's, see the old session or the new one, whole, and a
// process killed at any instant leaves one of the two, with two exceptions the
// package documentation ("Saving in place") describes: a session3 writer that
// truncates the file in the instant between Go's read of the old bytes and its
// write, and a power loss, after which the file can mix the two versions.
//
// Whether a Directory saves in place is fixed at Open; InPlace reports it.
func WithInPlace() Option { return func(d *Directory) { d.inPlace = true } }

// pageSize bounds what Save writes in place: a write of at most one page at offset
// 0 goes into a single page-cache page, all or nothing (see the package
// documentation).
var pageSize = os.Getpagesize()

// pageBufs hold two pages of memory each, page-aligned: the first for the bytes of
// an in-place write, so that the kernel faults in a single page before it copies
// from it; the second for the bytes the write replaces.
var pageBufs = sync.Pool{New: func() any {
	b := make([]byte, 3*pageSize)
	off := -int(uintptr(unsafe.Pointer(&b[0]))) & (pageSize - 1)
	b = b[off : off+2*pageSize : off+2*pageSize]
	return &b
}}

// inPlaceAllowed reports whether the options allow saving in place on a filesystem
// that overwrites files in place (see overwritesInPlace) or not.
func inPlaceAllowed(d *Directory, overwrites bool) bool {
	return d.inPlace && overwrites && !d.sync && !d.writeOut && !nfsLocks
}

// canOverwrite reports whether n bytes can be written over the session file whose
// status is st: a regular file with one name (an overwrite would change every
// name of a file with more: a snapshot made with hard links, another session), not empty (a Python writer truncated it: its save
// comes after ours anyway, and the swap keeps out of its way), no larger than a
// page, with the blocks for n bytes already allocated (so that the write allocates
// nothing and cannot meet a full disk), and with the mode a replacement would get
// (the swap takes others' bits away, or gives the exact WithFileMode).
func (d *Directory) canOverwrite(st *unix.Stat_t, n int) bool {
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG, st.Nlink != 1, st.Size <= 0, st.Size > int64(pageSize),
		n > pageSize, int64(n) > st.Blocks*512:
		return false
	case d.perm != 0:
		return uint32(st.Mode)&0o7777 == uint32(d.perm)
	}
	return st.Mode&0o007 == 0
}

// saveInPlace writes data over the session file at path if it can (see
// WithInPlace), and reports whether it did. false with a nil error means the swap
// must save: the file is missing, may not be written, is too large, or was replaced
// or changed while it waited for the lock. Its descriptor is closed, and so its lock
// released, before it returns: the swap locks the file through a descriptor of its
// own, and two flock(2) locks of one process on one file through two open file
// descriptions conflict.
func (d *Directory) saveInPlace(ctx context.Context, path string, data []byte, lockDeadline time.Time) (bool, error) {
	if !d.overwrite || len(data) > pageSize || d.noExchange.Load() {
		return false, nil
	}
	fd, st, err := openFile(path, unix.O_RDWR)
	if err != nil || !d.canOverwrite(&st, len(data)) {
		if err == nil {
			unix.Close(fd)
		}
		return false, nil
	}
	defer unix.Close(fd) // releases the lock
	if err := d.lock(ctx, "save", fd, unix.LOCK_EX, lockDeadline); err != nil {
		return true, fileError("lock", path, err)
	}
	now, err := stillAt(path, &st)
	if err != nil || !d.canOverwrite(&now, len(data)) {
		return false, nil
	}
	if d.testHook != nil {
		d.testHook("save-locked")
	}
	bp := pageBufs.Get().(*[]byte)
	defer pageBufs.Put(bp)
	buf, old := (*bp)[:len(data)], (*bp)[pageSize:pageSize+len(data)]
	copy(buf, data)
	// The bytes this write covers, to put back should it fail part way (a file
	// size limit, RLIMIT_FSIZE, cuts a write short without an error).
	nOld, err := pread(fd, old, 0)
	if err != nil {
		return true, fileError("read", path, err)
	}
	if int64(nOld) < min(int64(len(data)), now.Size) {
		// Truncated since the check: a Python writer waits for the lock, and its
		// bytes would follow ours into the file without a lock. The swap keeps out
		// of its way, as without the option.
		return false, nil
	}
	old = old[:nOld]
	n, err := pwriteAll(fd, buf)
	if err == nil {
		return true, nil
	}
	if n > 0 {
		// Put the old bytes back over the part written, and cut off what the write
		// added past the old file's end: the file must end with the old session's
		// STOP again, as LooksComplete expects.
		if restore := old[:min(n, len(old))]; len(restore) > 0 {
			if _, rerr := pwriteAll(fd, restore); rerr != nil {
				return true, fmt.Errorf("%w (and the old bytes could not be put back: the file holds %d bytes of the new session over the old one)",
					fileError("write", path, err), n)
			}
		}
		if int64(n) > now.Size {
			if terr := ignoringEINTR(func() error { return unix.Ftruncate(fd, now.Size) }); terr != nil {
				return true, fmt.Errorf("%w (and the file could not be cut back to the old session's %d bytes: %v)",
					fileError("write", path, err), now.Size, terr)
			}
		}
	}
	return true, fileError("write", path, err)
}

// pwriteAll writes buf at offset 0 of fd and returns how many bytes were written.
// A write cut short is continued, so that a short count ends with the error that
// cut it (EFBIG past a file size limit, ENOSPC, EIO).
func pwriteAll(fd int, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		var m int
		err := ignoringEINTR(func() (err error) {
			m, err = unix.Pwrite(fd, buf[n:], int64(n))
			return err
		})
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, io.ErrShortWrite
		}
		n += m
	}
	return n, nil
}

func pread(fd int, buf []byte, off int64) (n int, err error) {
	err = ignoringEINTR(func() error {
		n, err = unix.Pread(fd, buf, off)
		return err
	})
	return n, err
}

// InPlace reports whether Save writes small sessions over their files (WithInPlace
// was given and the directory's filesystem and options allow it; see WithInPlace).
// A program that asked for WithInPlace can log it when it is false.
func (d *Directory) InPlace() bool { return d.overwrite }
