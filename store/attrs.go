package store

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// setAttrs gives a save's new file f its permission bits, group and owner before it
// becomes the session file. old describes the file it replaces (nil for a new
// session).
//
// A new file gets 0660 minus the umask: nothing for others, whatever the umask.
// A replacement keeps the replaced file's group (fchown; a process may give its
// files any group it is a member of) and, run as root, its owner too; its mode is
// the replaced file's, without others' bits, and if the owner changes (this process
// is another user and not root), the group gets the owner's bits, so that the
// previous owner — a Python worker in the shared group — keeps its access.
// WithFileMode overrides the mode in every case. If the group cannot be kept and
// the replaced file belongs to another user, the save fails rather than leave a
// file that user may no longer be able to read.
func (d *Directory) setAttrs(f tempFile, old *unix.Stat_t) error {
	var st unix.Stat_t
	if err := unix.Fstat(f.fd, &st); err != nil {
		return fileError("fstat", f.String(), err)
	}
	want := uint32(st.Mode) & 0o777 // a new file: what the kernel made of 0660 and the umask
	if old != nil {
		uid, gid := -1, -1
		if old.Gid != st.Gid {
			gid = int(old.Gid)
		}
		if old.Uid != st.Uid && d.euid == 0 {
			uid = int(old.Uid)
		}
		if uid >= 0 || gid >= 0 {
			err := unix.Fchown(f.fd, uid, gid)
			switch {
			case err == nil:
				if uid >= 0 {
					st.Uid = old.Uid
				}
			case old.Uid != st.Uid:
				return fmt.Errorf("%w: the session file belongs to uid %d and group %d; this process (uid %d) cannot give its new file that group (it is not a member): %w",
					ErrPermission, old.Uid, old.Gid, d.euid, &os.PathError{Op: "fchown", Path: f.String(), Err: err})
			}
		}
		want = uint32(old.Mode) & 0o770
		if st.Uid != old.Uid {
			want |= want & 0o700 >> 3
		}
	}
	if d.perm != 0 {
		want = uint32(d.perm)
	}
	if uint32(st.Mode)&0o7777 != want {
		if err := unix.Fchmod(f.fd, want); err != nil {
			return fileError("chmod", f.String(), err)
		}
	}
	return nil
}
