package store

import (
	"io"

	"golang.org/x/sys/unix"
)

// posixLock takes or releases (how as for flock(2)) a POSIX record lock over the
// whole file: what the Linux NFS client makes of flock(2). Such a lock belongs to
// the process, and closing any of its descriptors of the file drops it. On local
// filesystems it does not see flock(2) locks, so Python's fcntl.flock.
func posixLock(fd, how int) error {
	lk := unix.Flock_t{Whence: io.SeekStart}
	switch how &^ unix.LOCK_NB {
	case unix.LOCK_SH:
		lk.Type = unix.F_RDLCK
	case unix.LOCK_EX:
		lk.Type = unix.F_WRLCK
	default:
		lk.Type = unix.F_UNLCK
	}
	cmd := unix.F_SETLKW
	if how&unix.LOCK_NB != 0 {
		cmd = unix.F_SETLK
	}
	err := ignoringEINTR(func() error { return unix.FcntlFlock(uintptr(fd), cmd, &lk) })
	if err == unix.EAGAIN || err == unix.EACCES {
		return unix.EWOULDBLOCK
	}
	return err
}
