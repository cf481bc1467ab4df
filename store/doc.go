// Package store keeps sessions in a directory shared, file for file and lock for lock,
// with session3's DirectorySessionStore, so that Go and Python processes can serve the
// same sessions side by side.
//
//	d, err := store.Open("/var/lib/app/sessions")
//	data, err := d.Load(ctx, id)   // the pickle bytes; errors.Is(err, store.ErrNotFound)
//	err = d.Save(ctx, id, data)
//
// The package stores bytes; encoding sessions is the caller's business.
//
// # What Python sees
//
// As with session3, each session is one file directly in the directory, named by the
// session id, holding the whole pickle and nothing else. Reads take flock(2) LOCK_SH
// and writes LOCK_EX on the session file itself — the locks Python's fcntl.flock takes.
// POSIX record locks (fcntl F_SETLK, lockf) would not do: on Linux the two kinds do not
// see each other. Lock waits poll with LOCK_NB, so they end with the context or after
// the lock timeout (WithLockTimeout) instead of hanging a request on a stuck peer;
// WithLockWaitHook reports each wait, for a metric of contention.
//
// New files get mode 0666 minus umask, as Python's open(path, 'wb') gives them, and a
// replaced file's permission bits are kept, as Python's truncate-and-rewrite keeps
// them (WithFileMode sets an exact mode instead). Ownership is not kept: a file Go
// replaces belongs to the Go process's user. Run both sides as one user, or give them
// a common group with a umask of 002 (and a setgid directory). In a directory with the
// sticky bit, Go cannot replace another user's session file.
//
// # How Go saves and loads
//
// session3 saves by open(path, 'wb') — which truncates the file — then LOCK_EX, dump,
// unlock, close; the bytes reach the file in close(), after the unlock, unless they are
// larger than Python's write buffer. It loads with open, LOCK_SH, and a retry every
// 100 ms while the file is empty or unpickling hits its end.
//
// Save never writes into a file that has a session's name. It opens the session file
// it will replace (O_NOFOLLOW) and writes the data into a new file without a name
// (open(2) O_TMPFILE on the directory: Linux 3.11 and later, on ext4, xfs, btrfs,
// tmpfs...), which no listing shows and which vanishes if the process dies (WithSync:
// then fsync). It takes LOCK_EX on the old file and checks that it is still the file
// at the path (else it locks the new one). Only then does it give the new file a
// temporary name, ".qxbridge-tmp-<id>-<random>" — never a valid id, so never taken
// for a session by IDs or Load — with linkat(2) (AT_EMPTY_PATH where permitted, else
// through /proc/self/fd), renames it over the path at once (WithSync: then fsyncs the
// directory) and unlocks. A new session needs no temporary name: linkat gives the
// file the session's name directly, and never replaces a file that someone created
// meanwhile (that one is then locked and replaced as above). Where there are no files
// without a name (another kernel or filesystem, or neither the capability for
// AT_EMPTY_PATH nor /proc), Save writes a named temporary file, created with
// O_EXCL|O_NOFOLLOW, and renames it in the same way; it finds out once per Directory.
// If anything fails before the rename, the new file vanishes or is removed and the old
// session is untouched. On ext4, whose rename over a file starts writing the new data
// out (auto_da_alloc), Save starts that write-out before it locks, so that the lock
// and the temporary name are not held during it. On a disk filesystem the replaced
// file is closed in the background: its last close waits for the kernel to finish
// writing data nobody will read again (session3's writer waits for the same in its
// truncation).
//
// With WithStagingDir, the new file is made, and named if it must be, in a directory
// outside the session directory on the same filesystem, and renamed from there to
// the session's path: the session directory never lists anything but sessions.
//
// Load opens the session file with O_NOFOLLOW|O_NONBLOCK (a link or a FIFO planted
// under a session's name is refused, never followed or waited on) and checks that it
// is a regular file. An empty file is not locked: it is left alone for a moment and
// tried again. Otherwise Load takes LOCK_SH and checks that the locked file is still
// the one at the path (same device and inode); if a save replaced it meanwhile, Load
// starts over on the new file. It then reads as many bytes as the file holds; a short
// read, or bytes that do not look complete (LooksComplete, or WithCheck), mean a Python
// writer is at work, and Load tries again. Retries come every 50 µs to 1 ms for up to
// the partial wait (WithPartialWait, 2 s), after which the file is reported as
// ErrEmpty or ErrTruncated.
//
// # Interleavings
//
// Python reader, Go save. The reader opens either the old file (before the rename) or
// the new one (after). Both are whole and neither changes while it reads: Go never
// writes into a named file, and the new file is complete before it gets the name. A
// reader that opened the old file and waits for LOCK_SH while the save holds LOCK_EX
// reads the old session once the save is done: whole, as if the load had come just
// before the save. A Python reader never sees an empty or partial file from Go.
//
// Python writer, Go save. If the writer truncated the old file and holds LOCK_EX, the
// save waits for it to finish, then replaces the file: Go's save comes last and wins.
// If the writer truncated the old file but the save got LOCK_EX first, the writer's
// bytes go into the old file after it has lost its name: that save is lost, as if it
// had come just before Go's. If the writer opens the path after the rename, it
// truncates and rewrites Go's file: a Python save after Go's. The file at the path is
// never torn: Python writes only inside one file, Go only swaps whole files.
//
// Go load, Python writer. Between the writer's truncation and the flush in its
// close(), the file is empty; a session larger than Python's buffer can be seen
// without its last frame; and the writer can truncate the file under a Go load's
// shared lock (its open takes no lock), cutting the load's read short. Load takes none
// of these for a session and retries. It does not lock empty files because a writer
// that has truncated the file waits in flock for every shared lock to go: readers
// that poll an empty file with LOCK_SH can keep it waiting indefinitely. Against a
// writer that saves one session back to back without pause the file is whole only
// for microseconds at a time, and a load may need many attempts.
//
// Go load, Go save (or a file swapped by anyone). A load that opened the old file and
// waited for its lock finds the path naming another file and starts over: a Go load
// never returns a file that had been replaced before it was locked — so never the
// bytes a Python writer put into a file that had already lost its name.
//
// Go save, Python reader or other lock holder. The save waits for shared locks on the
// file it replaces. Readers would not need this (they read their own file), but it
// orders the save after any process that holds the session locked, as session3's own
// writer would be, and it lets DeleteIdle delete safely (below).
//
// Go save, Go save. Each writes its own file; renames are atomic; the last rename
// wins. Of two saves creating one new session, one links its file under the name and
// the other finds it there, locks it and replaces it.
//
// Delete, from either side. Like session3's delete_session it unlinks without a lock.
// A load that has the file open reads it whole; one that was waiting for the lock
// reports ErrNotFound. A save that was waiting renames its file into place: the
// session is saved again. A Python writer that truncated the file before the unlink
// writes into a file without a name (the same happens with session3 alone).
//
// DeleteIdle. It takes LOCK_EX with LOCK_NB (a file someone holds is in use and kept),
// then checks again that the file at the path is the one it locked and is still idle,
// and unlinks it. A Go save cannot rename over the file while DeleteIdle holds it, and
// after the unlink it creates the session anew. A Python writer's truncation makes
// the file look fresh; only a writer that truncates in the instant between the check
// and the unlink loses its save, as it would to delete_old_sessions.
//
// A Go process killed mid-save leaves the old session whole; its file without a name
// vanishes with it. Killed in the two system calls between naming that file and the
// rename — or at any point of a save with named temporary files — it leaves a
// temporary file. DeleteIdle removes temporary files older than a minute, in the
// session directory and in the staging directory; session3's delete_old_sessions
// deletes those in the session directory once they are older than its limit
// (counting them until then as remaining sessions). A full disk fails the write: the
// new file vanishes and the error is returned. Without WithSync a save survives the
// death of any process but relies on the filesystem's ordering of a rename after the
// data (ext4's auto_da_alloc) across a power loss.
//
// A Python writer that dies between truncating and writing leaves an empty file, on
// which session3's load_session loops forever. Load reports it as ErrEmpty after the
// partial wait, and DeleteIdle removes empty session files older than a minute.
//
// Two Python writers saving one session at once can leave, between themselves, a file
// starting with a hole of NUL bytes (one truncated under the other's write; Load
// waits it out) or a shorter session followed by the tail of a longer one (returned
// as it is: Python's unpickler stops at the first STOP too).
//
// # Python's sweep
//
// session3's delete_old_sessions lists the directory, then stats each name, without
// catching errors: a name that disappears in between — a session deleted, or a
// temporary file renamed over a session — makes the whole sweep raise
// FileNotFoundError (and a daily cron job that runs it fail). Without a staging
// directory a Go save's temporary name is listed only between linkat and rename
// (named temporary files, the fallback, are listed for the whole save); a sweep that
// lists the directory in that window and stats the name after it still raises. Measured with
// two CPython processes sweeping a directory of 10 to 30 sessions back to back
// (delete_old_sessions deleting nothing, and a bare listdir+stat loop) while Go saved
// in a loop, 2 s each, three runs, on a 2-vCPU machine at a load average of about 11
// (TestPythonSweepWithoutStagingDir): on ext4, 0.95–1.3% of sweeps raised with named
// temporary files and 0.06–0.22% with files without a name; on tmpfs, where Go saved
// about 70 times as often, 65–76% and 8–17% (the window is a few microseconds, but
// lasts milliseconds when the saving thread is descheduled between the two system
// calls, as it often was on this busy machine). With a staging directory no
// sweep raised (TestPythonSweepWithStagingDir).
//
// So: sweep a shared directory with DeleteIdle (which the gateway's -max-idle runs),
// which skips names that vanish; if a Python cron job runs delete_old_sessions, give
// the store a staging directory (WithStagingDir) on the same filesystem.
//
// # Differences from session3 that Python cannot see
//
// Session ids are checked (ValidID) before any filesystem call. Links are never
// followed; directories, FIFOs and devices under a session's name are refused
// (ErrNotRegular). Save refuses empty data (ErrNoData), which would make session3's
// readers loop, and both Save and Load refuse sessions over WithMaxSize. Has reports
// whether the file exists without loading it. IDs lists the sessions (session3 never
// implemented iter_sessions for directories). DeleteIdle touches only regular files
// named by valid ids and its own stale temporary files (in the staging directory
// too); foreign files are left alone and not counted.
package store
