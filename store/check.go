package store

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// checkData is what Check saves: the pickle of None.
var checkData = []byte{opProto, 4, 'N', opStop}

// Check makes sure this process can use the session directory as Save, Load and
// Delete do: it creates a probe file (a temporary file's name, never taken for a
// session), replaces it, reads it back and deletes it, and checks that the file
// it made can be read and written by the directory's group when the directory is
// shared with other users (setgid, or of a group that is not this process's own).
// It returns nil, or an error that says what failed and gives what decides it:
// the directory's owner, group and mode, this process's user, groups and umask,
// and the probe file's mode and group. Run it at start-up and in health checks.
func (d *Directory) Check(ctx context.Context) error {
	var dst unix.Stat_t
	if err := unix.Stat(d.dir, &dst); err != nil {
		return d.checkError(nil, "%w", &os.PathError{Op: "stat", Path: d.dir, Err: err})
	}
	if err := unix.Faccessat(unix.AT_FDCWD, d.dir, unix.W_OK|unix.X_OK, unix.AT_EACCESS); err != nil {
		return d.checkError(&dst, "cannot create or remove files in the session directory: %w", err)
	}
	name := tempPrefix + strconv.Itoa(os.Getpid()) + "-check-" + strconv.FormatUint(rand.Uint64(), 36)
	path := d.dir + "/" + name
	defer unix.Unlink(path) // if a step failed with the file made
	release, err := lockPath(ctx, path)
	if err != nil {
		return d.checkError(&dst, "%w", err)
	}
	defer release()
	for _, step := range []string{"create", "replace"} {
		if err := d.save(ctx, path, "check", checkData); err != nil {
			return d.checkError(&dst, "%s a file: %w", step, err)
		}
	}
	var last fileVersion
	got, err := d.loadOnce(ctx, path, d.lockDeadline(), &last)
	if err != nil {
		return d.checkError(&dst, "read a file back: %w", err)
	}
	if !bytes.Equal(got, checkData) {
		return d.checkError(&dst, "read a file back: got %q, saved %q", got, checkData)
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return d.checkError(&dst, "%w", &os.PathError{Op: "lstat", Path: path, Err: err})
	}
	shared := sharedGroup(&dst)
	if shared && st.Mode&0o060 != 0o060 {
		return d.checkError(&dst, "the directory is shared with group %d, but the files this process writes (mode %04o, group %d) cannot be read and written by that group: set the file mode to 0660 (WithFileMode)",
			dst.Gid, st.Mode&0o7777, st.Gid)
	}
	if shared && st.Gid != dst.Gid {
		return d.checkError(&dst, "the directory is shared with group %d, but the files this process writes get group %d: make the directory setgid (chmod g+s)",
			dst.Gid, st.Gid)
	}
	if err := unix.Unlink(path); err != nil {
		return d.checkError(&dst, "delete a file: %w", &os.PathError{Op: "unlink", Path: path, Err: err})
	}
	return nil
}

// checkError is Check's error: what failed, then what decides it.
func (d *Directory) checkError(dst *unix.Stat_t, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	var b strings.Builder
	if dst != nil {
		fmt.Fprintf(&b, "directory owner uid %d, group %d, mode %04o; ", dst.Uid, dst.Gid, dst.Mode&0o7777)
	}
	groups, _ := unix.Getgroups()
	fmt.Fprintf(&b, "this process uid %d, gid %d, groups %v", os.Geteuid(), os.Getegid(), groups)
	if umask, ok := processUmask(); ok {
		fmt.Fprintf(&b, ", umask %04o", umask)
	}
	if d.perm != 0 {
		fmt.Fprintf(&b, ", file mode %04o", d.perm)
	}
	return fmt.Errorf("store: check session directory %s: %w (%s)", d.dir, err, b.String())
}

// processUmask reads this process's umask from /proc (Linux 4.7 and later); umask(2)
// cannot read it without setting it.
func processUmask() (uint32, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			return uint32(n), err == nil
		}
	}
	return 0, false
}
