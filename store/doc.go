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
// the lock timeout (WithLockTimeout) instead of hanging a request on a stuck peer.
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
// Save never writes into a file that has a session's name. It writes the data into a
// new temporary file in the same directory, named ".qxbridge-tmp-<id>-<random>" — never
// a valid id, so never listed or loaded as a session — created with O_EXCL|O_NOFOLLOW
// (WithSync: then fsync). It opens the session file it will replace (O_NOFOLLOW),
// takes LOCK_EX on it, checks that it is still the file at the path (else it locks the
// new one), renames the temporary file over the path (WithSync: then fsyncs the
// directory) and unlocks. If anything fails before the rename, the temporary file is
// removed and the old session is untouched. On a disk filesystem the replaced file
// is closed in the background: its last close waits for the kernel to finish writing
// data nobody will read again (session3's writer waits for the same in its
// truncation).
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
// Go save, Go save. Each writes its own temporary file; renames are atomic; the last
// rename wins.
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
// A Go process killed mid-save leaves the old session whole, plus at worst a
// temporary file. DeleteIdle removes temporary files older than a minute;
// session3's delete_old_sessions deletes them once they are older than its limit
// (counting them until then as remaining sessions). A full disk fails the write: the
// temporary file is removed and the error returned. Without WithSync a save survives
// the death of any process but relies on the filesystem's ordering of a rename after
// the data (ext4's auto_da_alloc) across a power loss.
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
// session3's delete_old_sessions lists the directory, then stats each name; a name
// that disappears in between — a session deleted, or a Go save's temporary file
// renamed — makes it raise FileNotFoundError. Go's temporary files exist only for the
// duration of a save, but prefer DeleteIdle for sweeping a shared directory.
//
// # Differences from session3 that Python cannot see
//
// Session ids are checked (ValidID) before any filesystem call. Links are never
// followed; directories, FIFOs and devices under a session's name are refused
// (ErrNotRegular). Save refuses empty data (ErrNoData), which would make session3's
// readers loop, and both Save and Load refuse sessions over WithMaxSize. Has reports
// whether the file exists without loading it. IDs lists the sessions (session3 never
// implemented iter_sessions for directories). DeleteIdle touches only regular files
// named by valid ids and its own stale temporary files; foreign files are left alone
// and not counted.
package store
