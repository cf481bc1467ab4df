//go:build !nfslocks

package store

// nfsLocks is false: locks are flock(2), as Python's fcntl.flock takes them. Built
// with the nfslocks tag, the package uses NFS's semantics instead (see
// locks_nfs.go).
const nfsLocks = false

// lockFileDefault is the lock every Directory takes.
func lockFileDefault(fd, how int) error { return flock(fd, how) }
