//go:build !linux

package store

// inMemoryFS reports whether dir is on a filesystem that keeps files only in memory;
// outside Linux it is not told apart.
func inMemoryFS(dir string) bool { return false }
