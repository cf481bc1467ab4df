package store

import (
	"os"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// flushesOnReplace reports whether dir is on ext4 (or ext2/3, which share its magic
// number and its driver), whose rename(2) over an existing file first starts writing
// out the data of the file renamed (the auto_da_alloc heuristic, on by default).
func flushesOnReplace(dir string) bool {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return false
	}
	return fs.Type == unix.EXT4_SUPER_MAGIC
}

// overwritesInPlace reports whether dir is on a filesystem that writes over a file's
// allocated blocks where they are, without allocating (ext2/3/4, tmpfs, xfs), as
// WithInPlace needs; copy-on-write filesystems (btrfs, zfs) allocate new blocks on
// every write, and NFS has its own caching. It is asked once per Directory.
func overwritesInPlace(dir string) bool {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return false
	}
	switch int64(fs.Type) {
	case unix.EXT4_SUPER_MAGIC, unix.TMPFS_MAGIC, unix.XFS_SUPER_MAGIC:
		return true
	}
	return false
}

// startWriteout starts writing out the file's data without waiting for it, as ext4's
// rename would; failures are left for the rename to meet.
func startWriteout(fd int) {
	_ = unix.SyncFileRange(fd, 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}

// openUnnamed creates a file without a name in dir (open(2) O_TMPFILE, Linux 3.11 and
// later; ext4, xfs, btrfs, tmpfs...). It is freed when its descriptor is closed unless
// it has been given a name with linkUnnamed. A kernel or filesystem without O_TMPFILE
// gives errNoUnnamed: EISDIR from kernels that do not know the flag (they see
// O_DIRECTORY|O_WRONLY), EOPNOTSUPP from filesystems that do not implement it, EINVAL
// from some that reject the combination.
func openUnnamed(dir string, perm uint32) (int, error) {
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, perm)
		return err
	})
	switch err {
	case nil:
		return fd, nil
	case unix.EOPNOTSUPP, unix.EISDIR, unix.EINVAL:
		return -1, errNoUnnamed
	}
	return -1, &os.PathError{Op: "open O_TMPFILE", Path: dir, Err: err}
}

// linkUnnamed gives the file fd opened by openUnnamed the name newpath; like link(2)
// it never replaces an existing file (unix.EEXIST). linkat(2) with AT_EMPTY_PATH
// links the descriptor itself, but only for a process with CAP_DAC_READ_SEARCH on
// most kernels; otherwise the file is linked through its /proc/self/fd entry with
// AT_SYMLINK_FOLLOW, as open(2) describes. byProc remembers which works. Without
// either (no capability, no /proc) it gives errNoUnnamed.
func linkUnnamed(fd int, newpath string, byProc *atomic.Bool) error {
	if !byProc.Load() {
		err := ignoringEINTR(func() error { return unix.Linkat(fd, "", unix.AT_FDCWD, newpath, unix.AT_EMPTY_PATH) })
		if err != unix.ENOENT && err != unix.EPERM {
			return err
		}
		// Not permitted (ENOENT is what most kernels answer then), or newpath's
		// directory is gone: the /proc way tells the two apart.
	}
	err := ignoringEINTR(func() error {
		return unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, newpath, unix.AT_SYMLINK_FOLLOW)
	})
	if err == nil {
		byProc.Store(true)
		return nil
	}
	if err == unix.ENOENT {
		var st unix.Stat_t
		if unix.Stat("/proc/self/fd", &st) != nil {
			return errNoUnnamed
		}
	}
	return err
}

// renameExchange swaps the names oldpath and newpath at once (renameat2(2)
// RENAME_EXCHANGE, Linux 3.15 and later; not on NFS).
func renameExchange(oldpath, newpath string) error {
	return unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_EXCHANGE)
}

// onNFS reports whether dir is on NFS.
func onNFS(dir string) bool {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return false
	}
	return fs.Type == unix.NFS_SUPER_MAGIC
}
