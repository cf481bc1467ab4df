//go:build nfslocks

package store

// Built with the nfslocks tag (go test -tags nfslocks ./store/), the package behaves
// as on an NFS mount, so that its tests prove it correct there: locks are POSIX
// record locks over the whole file (what the Linux NFS client turns flock(2) into:
// owned by the process, dropped when any of its descriptors of the file is closed,
// LOCK_EX refused with EBADF on a descriptor opened only for reading), and there are
// neither files without a name (O_TMPFILE) nor renameat2(RENAME_EXCHANGE). The
// tests' Python peers take the same locks (fcntl.lockf in place of fcntl.flock).
const nfsLocks = true

// lockFileDefault takes a whole-file POSIX record lock, as NFS does for flock(2).
func lockFileDefault(fd, how int) error { return posixLock(fd, how) }
