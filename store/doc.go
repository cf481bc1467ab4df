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
// POSIX record locks (fcntl F_SETLK, lockf) would not do: on a local filesystem the two
// kinds do not see each other (NFS is another matter: see below). Lock waits poll with LOCK_NB, so they end with the context or after
// the lock timeout (WithLockTimeout) instead of hanging a request on a stuck peer;
// WithLockWaitHook reports each wait, for a metric of contention.
//
// New files get mode 0660 minus umask: unlike Python's open(path, 'wb'), never any
// access for others, whose reading a session file would hijack the session. A
// replaced file's group is kept (and its owner, when Go runs as root), and its mode
// too, less others' bits; when Go, as another user, becomes the owner, the group gets
// the previous owner's bits, so that a Python worker in a shared group keeps reading
// and writing the sessions Go saved. If Go cannot give its file the replaced file's
// group (it is not a member) and that file belongs to another user, the save fails
// with ErrPermission instead of locking that user out. WithFileMode sets an exact mode
// instead. For two users (Python as www-data, Go as its own user): a common group, a
// setgid session directory of that group (WithCreate with WithDirMode does it), and
// WithFileMode(0660) so that sessions Go creates are writable by Python whatever its
// umask. In a directory with the sticky bit, Go cannot replace another user's file.
// Check tries it all — create, replace, read, delete — and says what is wrong (the
// owners, groups, modes and umask involved) when something is.
//
// # How Go saves and loads
//
// session3 saves by open(path, 'wb') — which truncates the file — then LOCK_EX, dump,
// unlock, close; the bytes reach the file in close(), after the unlock, unless they are
// larger than Python's write buffer. It loads with open, LOCK_SH, and a retry every
// 100 ms while the file is empty or unpickling hits its end.
//
// Save never writes into a file that has a session's name (unless WithInPlace says
// so: see "Saving in place"). It opens the session file
// it will replace (O_NOFOLLOW; read-write where permitted, as NFS needs for LOCK_EX) and writes the data into a new file without a name
// (open(2) O_TMPFILE on the directory: Linux 3.11 and later, on ext4, xfs, btrfs,
// tmpfs...), which no listing shows and which vanishes if the process dies (WithSync:
// then fsync). It takes LOCK_EX on the old file and checks that it is still the file
// at the path (else it locks the new one). Only then does it give the new file a
// temporary name, ".qxbridge-tmp-<id>-<random>" — never a valid id, so never taken
// for a session by IDs or Load — with linkat(2) (AT_EMPTY_PATH where permitted, else
// through /proc/self/fd), swaps it with the session file at once with
// renameat2(RENAME_EXCHANGE), closes the replaced file (which releases the lock) and
// unlinks it under the temporary name it now has (WithSync: then fsyncs the
// directory). Where names cannot be swapped (NFS, Linux before 3.15) it closes the
// replaced file and renames the new one over the path. A new session needs no temporary name: linkat gives the
// file the session's name directly, and never replaces a file that someone created
// meanwhile (that one is then locked and replaced as above). Where there are no files
// without a name (another kernel or filesystem, or neither the capability for
// AT_EMPTY_PATH nor /proc), Save writes a named temporary file, created with
// O_EXCL|O_NOFOLLOW, and renames it in the same way; it finds out once per Directory.
// If anything fails before the swap, the new file vanishes or is removed and the old
// session is untouched.
//
// Why a swap: on ext4 a rename over an existing file first writes the new file's data
// out (auto_da_alloc), and so does the close of a file that was truncated to zero —
// session3's save. That costs a disk write per save, and saves queue behind the disk.
// A swap does not write anything out, and the replaced file, unlinked before its
// dirty data is ever written, costs no write at all. The replaced file is closed
// before its name is removed (never after: on NFS, a file unlinked or renamed over
// while open stays in the directory as ".nfsXXXX" until it is closed).
//
// Why not write into the session file in place, under LOCK_EX, which would cost no
// new inode at all? Because session3's writer truncates the file before it locks it
// (and flushes its bytes after it unlocks), and its reader retries only on an empty
// file or EOFError: a truncation in the middle of an in-place write leaves a file
// starting with NUL bytes, on which pickle.load raises UnpicklingError ("invalid
// load key"), and a write cut short — the process killed between two pages of it, or
// a power loss between two sectors — leaves a file that raises "pickle data was
// truncated" or, worse, loads as a session mixing the old and the new values. A new
// file that replaces the old one whole has none of these failures. WithInPlace
// writes in place anyway, for sessions of one page or less, in a way that avoids the
// first two failures but not the third (see "Saving in place" below).
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
// ErrEmpty or ErrTruncated. A large file (over 64 KiB) that stays incomplete is not
// read again and again: with the default check only the bytes LooksComplete decides
// on (the first eleven and the last) are read until they pass, and with WithCheck it
// is read again only once it has changed. A smaller one is read whole each time.
//
// # Interleavings
//
// The interleavings below are those of the default save; WithInPlace's are under
// "Saving in place".
//
// Python reader, Go save. The reader opens either the old file (before the swap) or
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
// had come just before Go's. If the writer opens the path after the swap, it
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
// writer would be, and it lets DeleteIdle delete safely (below). The lock is held
// until the new file has the session's name (with a swap) or released just before
// the rename (without one): a peer that takes it then finds the replaced file, reads
// it whole or writes into it, and is ordered before the save.
//
// Go save, Go save. Each writes its own file; swaps and renames are atomic; the last
// one wins. Of two saves creating one new session, one links its file under the name and
// the other finds it there, locks it and replaces it.
//
// Delete, from either side. Like session3's delete_session it unlinks without a lock.
// A load that has the file open reads it whole; one that was waiting for the lock
// reports ErrNotFound. A save that was waiting finds nothing to swap with and renames
// its file into place: the session is saved again. A Python writer that truncated the file before the unlink
// writes into a file without a name (the same happens with session3 alone).
//
// DeleteIdle. It takes LOCK_EX with LOCK_NB (a file someone holds is in use and kept),
// then checks again that the file at the path is the one it locked and is still idle,
// and unlinks it while it holds the lock (with the nfslocks build it closes it first,
// for NFS). A Go save cannot replace or write the file while DeleteIdle holds it, and
// after the unlink it creates the session anew. A Python
// writer's truncation makes the file look fresh; only a writer that truncates in the
// instant between the check and the unlink loses its save, as it would to
// delete_old_sessions. RemoveEmpty removes an abandoned empty file the same way.
//
// A Go process killed mid-save leaves the old session or the new one, whole: the
// swap (or rename) is the one instant the session changes. Its file without a name
// vanishes with it. Killed in the few system calls between naming that file and
// unlinking the replaced one — or at any point of a save with named temporary files
// — it leaves a temporary file (the new data before the swap, the old after it).
// Open removes those of processes that no longer exist (on this host: on NFS it
// cannot tell) and any older than a minute; DeleteIdle removes temporary files older
// than a minute, in the session directory and in the staging directory; session3's delete_old_sessions deletes those in the
// session directory once they are older than its limit (counting them until then as
// remaining sessions). With WithStagingDir no temporary file is ever in the session
// directory. A full disk fails the write: the new file vanishes and the error
// (ErrUnavailable) is returned.
//
// A power loss (or kernel crash) is another matter, because the kernel writes data
// and directory changes to the disk at different times. What it can do, on ext4
// with its default options (data=ordered, delayed allocation, journal committed every
// 5 s, dirty data written within 30 s):
//
//   - Default (swap, no write-out): a session saved within about the last 30 seconds
//     can come back old, new, or as an empty file: the swap reached the journal, the
//     new data did not reach the disk. Never torn or mixed: the data of a file is
//     written only once, to blocks no session ever used. Load reports an empty file
//     as ErrEmpty (session3 would loop on it); remove it with RemoveEmpty.
//   - WithWriteOut: the new data is sent to the disk before the swap, and ext4
//     commits the swap only after the data: each session comes back old or new. It
//     costs a disk write per save, as session3's save and rename(2) over a file do.
//   - WithSync: each save is on the disk when Save returns.
//   - Without RENAME_EXCHANGE (rename over the file): on ext4, old or new (the rename
//     writes the data out first); elsewhere as the filesystem orders a rename after
//     the data it replaces.
//
// session3's own save, for comparison, truncates the file and writes it afterwards:
// a power loss after the truncation reached the journal and before the data reached
// the disk leaves an empty file, on which its load_session loops forever.
//
// A Python writer that dies between truncating and writing leaves an empty file, on
// which session3's load_session loops forever. Load reports it as ErrEmpty after the
// partial wait; RemoveEmpty then removes it (if it is still empty, has been for the
// partial wait and nobody holds it locked), and DeleteIdle removes empty session
// files older than a minute. A full disk does the same to session3's writer.
//
// Two Python writers saving one session at once can leave, between themselves, a file
// starting with a hole of NUL bytes (one truncated under the other's write; Load
// waits it out) or a shorter session followed by the tail of a longer one (returned
// as it is: Python's unpickler stops at the first STOP too).
//
// session3's reader is not safe against its own writer for sessions larger than a
// page: the writer's last write(2) comes after it unlocks, the file grows a page at
// a time under a reader holding LOCK_SH, and load_session then meets a frame cut
// short and raises UnpicklingError ("pickle data was truncated"), which it does not
// retry. Seen with one session3 writer saving sessions of up to 150 KB, a
// millisecond apart, and two session3 readers, no Go process: in 5 of 6 readers'
// 2-second runs. Go's Load retries such a file.
//
// # Saving in place
//
// WithInPlace gives up one guarantee, old-or-new across a power loss, for speed:
// the swap creates an inode and frees one per save, which on ext4 costs most of the
// save (the freeing above all, on a filesystem mounted with discard), and an
// overwrite costs neither. Save then writes the new bytes over the session file
// itself — one pwrite(2) at offset 0, under LOCK_EX, never a truncation — when all of
// these hold, and swaps as without the option otherwise: the filesystem writes over
// a file's blocks where they are (ext2/3/4, tmpfs, xfs; not btrfs or zfs, which copy
// on write, nor NFS; Open looks once), neither WithSync nor WithWriteOut is given
// and the store is not built for NFS (nfslocks); the session file exists, this
// process may open it for writing, and it is a regular file, not empty, with no
// access for others (or exactly WithFileMode's mode), and one name only (no hard
// link: an overwrite would change every name); it and the new session each
// fit in one memory page (os.Getpagesize), and the file's allocated blocks (its
// st_blocks) hold the new bytes. The file's checks are made again under the lock. The
// file keeps its inode, owner, group and mode; the write sets its modification time,
// which DeleteIdle and delete_old_sessions go by. A new session, or one larger than
// a page, is saved by the swap, and so is the next save of a file the swap left
// larger than a page.
//
// Why one page, at offset 0, and why never a truncation:
//
//   - The kernel's buffered write (generic_perform_write, mm/filemap.c) copies the
//     data into the page cache one page (folio) at a time, and checks for a fatal
//     signal only before each page, never in the middle of one. A write of at most a
//     page at offset 0 goes into one page: a SIGKILL stops it before it starts, or
//     after it is done. Should the copy from the process's memory come up short
//     (the kernel faults the source in first; the copy fails only if that page is
//     taken away again in between, under memory pressure), the kernel goes on with
//     the rest itself, and a kill in that very instant would leave the first part
//     new and the rest old: Save copies the data into one page-aligned page of
//     memory first, so that only that one page is ever involved.
//   - Readers are locked out while it writes: Go's Load and session3's load_session
//     take LOCK_SH, so they read the old session or the new one, whole. A write
//     and a truncation of one file are serialised by the kernel (the inode's lock),
//     so a Python writer's truncating open cannot cut the write into a hole of NUL
//     bytes either.
//   - The file is never shortened: a new session shorter than the old leaves the
//     old one's last bytes after its STOP opcode. pickle.load, session3's
//     load_session and pickle.Unmarshal stop at the first STOP and never read them,
//     and LooksComplete passes such a file (it ends with the old session's STOP).
//     Load returns the file as it is, tail included: a WithCheck function must
//     accept bytes after the pickle.
//   - A full disk cannot fail the write: it writes into blocks the file already has.
//     Should it fail anyway, or be cut short (past a file size limit,
//     RLIMIT_FSIZE), the bytes it had replaced are written back, the file is cut
//     back to its old length, and the error is returned (ErrUnavailable for
//     ENOSPC, EFBIG or EIO): never success. A process killed between the failed
//     write and that repair leaves a file that starts with new bytes, which does
//     not load.
//
// session3's writer beside it (it truncates the file before it locks it, and writes
// after it unlocks). Under the lock, Go checks the file's size and reads the bytes
// it is about to replace, then writes. A truncation before that read makes Go find
// the file empty and swap, as by default: the Python save goes into the replaced
// file and is lost, as if it had come first. A truncation after Go's write leaves
// an empty file, which both readers wait out, until the writer gets the lock and
// writes. A truncation in the instant between the read and the write (two
// consecutive system calls) makes Go write its bytes into the empty file; the
// writer then writes its own over them once Go unlocks, with no lock held while its
// close() flushes them: a reader that reads in the microsecond of that flush can
// see the two mixed — what two session3 writers of one session do to each other
// too. TestInPlaceWithCPythonPeers runs a session3 writer, session3 readers and
// Go's in-place saves and loads on one session together; the readers met no torn
// or unloadable file.
//
// A power loss, without a sync: the kernel writes the page out within about 30
// seconds, and a disk writes a page as several sectors, not as one. A session saved
// in place shortly before a power loss can come back as the old version, the new
// one, or a mix of the two versions of this same session, torn at a sector
// boundary or, for a save that made the file longer, cut at its old length, which
// may fail to load or, in the worst case, load as a session mixing old and new
// values. Never another session's bytes: the blocks stay this file's, and a file
// with more than one name (a hard link) is never written in place. A session
// created shortly before (by the swap, as every new session is) and then saved in
// place can also come back empty, as by default. By default (the
// swap) a session comes back old, new or, on ext4, empty, never mixed; WithWriteOut
// and WithSync, which turn WithInPlace off, give old or new.
//
// # NFS
//
// On NFS, Linux emulates flock(2) with POSIX record locks over the whole file, which
// the server arbitrates between hosts. The store is written for those semantics
// whatever the filesystem (it cannot always tell): LOCK_EX is taken on descriptors
// opened for writing (NFS refuses it, EBADF, on a read-only one); within one process
// the operations on one session file take turns, because POSIX locks belong to the
// process (two descriptors of one process never conflict) and closing any
// descriptor of a file drops every lock the process holds on it; a replaced file is
// closed before its name is removed (an open file renamed over or unlinked becomes a
// ".nfsXXXX" file in the directory until it is closed). There is no O_TMPFILE and no
// RENAME_EXCHANGE on NFS: saves write named temporary files and rename them over the
// session file, so run with WithStagingDir (a directory on the same export) if a
// Python cron job sweeps the directory. With two users, session files must be
// writable by the group (WithFileMode(0660) for Go, umask 002 for Python): a save
// that cannot open the file it replaces for writing cannot lock it, and fails with
// ErrPermission. Loads that meet a stale file handle (ESTALE:
// the file was replaced on the server after this host opened it) start over.
// ".nfsXXXX" names (made by a client for files in use) are never valid ids: IDs,
// Load and DeleteIdle ignore them, and the client removes them itself. The tests run
// in this mode with -tags nfslocks (whole-file POSIX locks for Go and for the Python
// peers, no O_TMPFILE, no RENAME_EXCHANGE).
//
// What NFS guarantees, and what it does not. Locks work across hosts only with a
// lock manager (NFSv4, or lockd/statd with NFSv3; not with the nolock or
// local_lock=all mount options, which make locks local to each host). Mount with
// lookupcache=positive (or none) and a short attribute cache (actimeo=1, or noac):
// with the default caches a host can keep opening a session file that another host
// has replaced, for up to the attribute cache time (3 to 60 s), see a new session as
// missing (a cached negative lookup), or read a stale size. A rename is atomic on
// the server, and a file is read whole by a host that opened it before it was
// replaced only with NFSv4 (which keeps open files alive on the server); with NFSv3
// such a read can fail with ESTALE, and session3's load_session then treats the
// session as missing for that request. Close-to-open consistency makes a session
// saved on one host whole for any host that opens it afterwards. Power loss of the
// server: NFS writes reach the server's disk at close (or commit), so a saved
// session survives a server crash only with WithSync or a server exported sync.
//
// # Python's sweep
//
// session3's delete_old_sessions lists the directory, then stats each name, without
// catching errors: a name that disappears in between — a session deleted, or a
// temporary file renamed over a session — makes the whole sweep raise
// FileNotFoundError (and a daily cron job that runs it fail). Without a staging
// directory a Go save's temporary name is listed only from linkat to the unlink
// after the swap (named temporary files, the fallback, are listed for the whole
// save); a sweep that lists the directory in that window and stats the name after it
// still raises. Measured, when saves renamed over the session file, with two CPython
// processes sweeping a directory of 10 to 30 sessions back to back (delete_old_sessions
// deleting nothing, and a bare listdir+stat loop) while Go saved in a loop, 2 s each,
// three runs, on 2 vCPUs under heavy load (load average about 11)
// (TestPythonSweepWithoutStagingDir): on ext4, 0.95–1.3% of sweeps raised with named
// temporary files and 0.06–0.22% with files without a name; on tmpfs, where Go saved
// about 70 times as often, 65–76% and 8–17% (the window is a few microseconds, but
// lasts milliseconds when the saving thread is descheduled between the two system
// calls, as it often is under such load). With a staging directory no
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
