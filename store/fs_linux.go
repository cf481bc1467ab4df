package store

import "golang.org/x/sys/unix"

// inMemoryFS reports whether dir is on a filesystem that keeps files only in memory,
// where freeing a file never waits for the disk.
func inMemoryFS(dir string) bool {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return false
	}
	return fs.Type == unix.TMPFS_MAGIC || fs.Type == unix.RAMFS_MAGIC
}
