//go:build !linux

package store

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// openUnnamed: files without a name (O_TMPFILE) exist only on Linux; elsewhere saves
// write named temporary files.
func openUnnamed(dir string, perm uint32) (int, error) { return -1, errNoUnnamed }

func linkUnnamed(fd int, newpath string, byProc *atomic.Bool) error { return errNoUnnamed }

func flushesOnReplace(dir string) bool { return false }

func startWriteout(fd int) {}

func overwritesInPlace(dir string) bool { return false }

func renameExchange(oldpath, newpath string) error { return unix.ENOSYS }

func onNFS(dir string) bool { return false }
