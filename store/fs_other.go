//go:build !linux

package store

import "sync/atomic"

// inMemoryFS reports whether dir is on a filesystem that keeps files only in memory;
// outside Linux it is not told apart.
func inMemoryFS(dir string) bool { return false }

// openUnnamed: files without a name (O_TMPFILE) exist only on Linux; elsewhere saves
// write named temporary files.
func openUnnamed(dir string, perm uint32) (int, error) { return -1, errNoUnnamed }

func linkUnnamed(fd int, newpath string, byProc *atomic.Bool) error { return errNoUnnamed }

func flushesOnReplace(dir string) bool { return false }

func startWriteout(fd int) {}
