package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// fixture returns the bytes of a session file written by the real session3.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(testpeer.Testdata("session3", name))
	require.NoError(t, err)
	return data
}

// fixtureNames lists the session3 fixtures.
func fixtureNames(t testing.TB) []string {
	t.Helper()
	names, err := filepath.Glob(testpeer.Testdata("session3", "*.pkl"))
	require.NoError(t, err)
	require.NotEmpty(t, names)
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	return names
}

func openTemp(t testing.TB, opts ...Option) *Directory {
	t.Helper()
	d, err := Open(t.TempDir(), opts...)
	require.NoError(t, err)
	return d
}

// entries lists the names in dir.
func entries(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// backdate sets the mtime of path (not following a link) to age ago.
func backdate(t testing.TB, path string, age time.Duration) {
	t.Helper()
	ts := unix.NsecToTimespec(time.Now().Add(-age).UnixNano())
	require.NoError(t, unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
}

func TestValidID(t *testing.T) {
	for _, id := range []string{"a", "Z", "0", "-", "_", "kXq3_Zr8-aQ", strings.Repeat("x", MaxIDLength)} {
		assert.NoError(t, ValidID(id), "%q", id)
	}
	for _, id := range []string{"", ".", "..", "../x", "a/b", "/etc/passwd", "a\x00b", "a.b", ".hidden",
		"a b", "é", "a\\b", "~", "a\n", strings.Repeat("x", MaxIDLength+1), tempPrefix + "abc-1"} {
		err := ValidID(id)
		assert.ErrorIs(t, err, ErrInvalidID, "%q", id)
	}
}

func TestOpen(t *testing.T) {
	base := t.TempDir()

	_, err := Open(filepath.Join(base, "missing"))
	assert.ErrorIs(t, err, fs.ErrNotExist, "a missing directory is an error without WithCreate")

	d, err := Open(filepath.Join(base, "made"), WithCreate())
	require.NoError(t, err)
	fi, err := os.Stat(d.Dir())
	require.NoError(t, err)
	assert.True(t, fi.IsDir())

	_, err = Open(filepath.Join(base, "no", "parent"), WithCreate())
	assert.Error(t, err, "like os.mkdir, create makes one level only")

	file := filepath.Join(base, "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	_, err = Open(file)
	assert.ErrorContains(t, err, "not a directory")
	_, err = Open(file, WithCreate())
	assert.ErrorContains(t, err, "not a directory")

	// Relative paths are made absolute, like os.path.abspath.
	t.Chdir(base)
	d, err = Open("made")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(base, "made"), d.Dir())
}

func TestSaveLoadDeleteHas(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t)
	for _, name := range fixtureNames(t) {
		data := fixture(t, name)
		id := "id_" + strings.TrimSuffix(strings.ReplaceAll(name, ".", "_"), "_pkl")
		ok, err := d.Has(ctx, id)
		require.NoError(t, err)
		assert.False(t, ok)
		_, err = d.Load(ctx, id)
		assert.ErrorIs(t, err, ErrNotFound)
		assert.ErrorIs(t, err, fs.ErrNotExist)

		require.NoError(t, d.Save(ctx, id, data))
		got, err := d.Load(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, data, got, name)
		onDisk, err := os.ReadFile(filepath.Join(d.Dir(), id))
		require.NoError(t, err)
		assert.Equal(t, data, onDisk, "the file holds exactly the bytes, named by the id")
		ok, err = d.Has(ctx, id)
		require.NoError(t, err)
		assert.True(t, ok)

		// Replace with other bytes, then delete.
		other := append(bytes.Clone(data[:len(data)-1]), 'N', '.')
		require.NoError(t, d.Save(ctx, id, other))
		got, err = d.Load(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, other, got)
		require.NoError(t, d.Delete(ctx, id))
		assert.ErrorIs(t, d.Delete(ctx, id), ErrNotFound)
		_, err = d.Load(ctx, id)
		assert.ErrorIs(t, err, ErrNotFound)
	}
	assert.Empty(t, entries(t, d.Dir()), "no temporary files are left behind")
}

func TestSaveRefusesEmptyAndLarge(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t, WithMaxSize(100))
	assert.ErrorIs(t, d.Save(ctx, "abc", nil), ErrNoData)
	assert.ErrorIs(t, d.Save(ctx, "abc", make([]byte, 101)), ErrTooLarge)
	require.NoError(t, os.WriteFile(filepath.Join(d.Dir(), "big"), make([]byte, 101), 0o644))
	_, err := d.Load(ctx, "big")
	assert.ErrorIs(t, err, ErrTooLarge)
	assert.Equal(t, []string{"big"}, entries(t, d.Dir()))
}

func TestIDs(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t)
	data := fixture(t, "session3-login.pkl")
	for _, id := range []string{"b", "a", "c-_9"} {
		require.NoError(t, d.Save(ctx, id, data))
	}
	// Foreign entries: a temporary file, a dotfile, a name with a dot, a directory and
	// a link named like a session.
	for _, name := range []string{tempPrefix + "a-123", ".hidden", "x.pkl"} {
		require.NoError(t, os.WriteFile(filepath.Join(d.Dir(), name), data, 0o644))
	}
	require.NoError(t, os.Mkdir(filepath.Join(d.Dir(), "dir"), 0o755))
	require.NoError(t, os.Symlink(filepath.Join(d.Dir(), "a"), filepath.Join(d.Dir(), "link")))
	ids, err := d.IDs(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "c-_9"}, ids)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = d.IDs(cctx)
	assert.ErrorIs(t, err, context.Canceled)
}

// TestFileMode: new files get 0666 minus umask like Python's open(path, 'wb'); a replaced
// file keeps its mode (Python truncates in place); WithFileMode is exact. Not parallel:
// it changes the process umask.
func TestFileMode(t *testing.T) {
	ctx := context.Background()
	old := syscall.Umask(0o027)
	defer syscall.Umask(old)
	d := openTemp(t)
	data := fixture(t, "session3-login.pkl")

	require.NoError(t, d.Save(ctx, "new", data))
	assert.Equal(t, os.FileMode(0o640), mode(t, filepath.Join(d.Dir(), "new")))

	// CPython under the same umask gives its new file the same mode.
	out, err := peer(t, "save", d.Dir(), "pynew", testpeer.Testdata("session3", "session3-login.pkl")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, mode(t, filepath.Join(d.Dir(), "pynew")), mode(t, filepath.Join(d.Dir(), "new")))

	require.NoError(t, os.Chmod(filepath.Join(d.Dir(), "new"), 0o600))
	require.NoError(t, d.Save(ctx, "new", data))
	assert.Equal(t, os.FileMode(0o600), mode(t, filepath.Join(d.Dir(), "new")), "a replaced file keeps its mode")

	exact := openTemp(t, WithFileMode(0o604))
	require.NoError(t, exact.Save(ctx, "x", data))
	assert.Equal(t, os.FileMode(0o604), mode(t, filepath.Join(exact.Dir(), "x")))
	require.NoError(t, exact.Save(ctx, "x", data))
	assert.Equal(t, os.FileMode(0o604), mode(t, filepath.Join(exact.Dir(), "x")))

	created, err := Open(filepath.Join(t.TempDir(), "sessions"), WithCreate())
	require.NoError(t, err)
	fi, err := os.Stat(created.Dir())
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o750), fi.Mode().Perm(), "mkdir mode 0777 minus umask, like os.mkdir")
}

func sha(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func mode(t testing.TB, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	require.NoError(t, err)
	return fi.Mode().Perm()
}

func TestWithSync(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t, WithSync())
	data := fixture(t, "quixote-session.pkl")
	require.NoError(t, d.Save(ctx, "s", data))
	require.NoError(t, d.Save(ctx, "s", data))
	got, err := d.Load(ctx, "s")
	require.NoError(t, err)
	assert.Equal(t, data, got)
	assert.Equal(t, []string{"s"}, entries(t, d.Dir()))
}

// TestPersistentEmptyFile: a zero-length file that stays (a crashed Python writer) is
// reported as ErrEmpty after the bounded wait, or the context's error if that ends
// first; it is never returned as a session.
func TestPersistentEmptyFile(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t, WithPartialWait(100*time.Millisecond))
	require.NoError(t, os.WriteFile(filepath.Join(d.Dir(), "empty"), nil, 0o644))
	_, err := d.Load(ctx, "empty")
	assert.ErrorIs(t, err, ErrEmpty)

	patient := openTemp(t, WithPartialWait(time.Hour))
	require.NoError(t, os.WriteFile(filepath.Join(patient.Dir(), "empty"), nil, 0o644))
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = patient.Load(cctx, "empty")
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	// A pickle cut short stays incomplete: ErrTruncated.
	cut := fixture(t, "session3-login.pkl")
	require.NoError(t, os.WriteFile(filepath.Join(d.Dir(), "cut"), cut[:len(cut)-7], 0o644))
	_, err = d.Load(ctx, "cut")
	assert.ErrorIs(t, err, ErrTruncated)

	// WithPartialWait(0) reports at once; WithCheck(nil) accepts any non-empty bytes.
	now := openTemp(t, WithPartialWait(0), WithCheck(nil))
	require.NoError(t, os.WriteFile(filepath.Join(now.Dir(), "cut"), cut[:len(cut)-7], 0o644))
	got, err := now.Load(ctx, "cut")
	require.NoError(t, err)
	assert.Equal(t, cut[:len(cut)-7], got)
	require.NoError(t, os.WriteFile(filepath.Join(now.Dir(), "empty"), nil, 0o644))
	_, err = now.Load(ctx, "empty")
	assert.ErrorIs(t, err, ErrEmpty)
}

func TestDeleteIdle(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t)
	data := fixture(t, "session3-login.pkl")
	path := func(n string) string { return filepath.Join(d.Dir(), n) }
	for _, id := range []string{"old1", "old2", "fresh", "locked"} {
		require.NoError(t, d.Save(ctx, id, data))
	}
	backdate(t, path("old1"), 2*time.Hour)
	backdate(t, path("old2"), 61*time.Minute)
	backdate(t, path("locked"), 2*time.Hour)
	// Zero-length files: a stale one (crashed writer) goes even though it is younger
	// than the idle limit; a fresh one (a writer at work) stays.
	require.NoError(t, os.WriteFile(path("emptyStale"), nil, 0o644))
	backdate(t, path("emptyStale"), 2*time.Minute)
	require.NoError(t, os.WriteFile(path("emptyFresh"), nil, 0o644))
	// Temporary files: a stale one is removed, a fresh one (a save at work) is not;
	// neither is counted.
	require.NoError(t, os.WriteFile(path(tempPrefix+"x-stale"), data, 0o644))
	backdate(t, path(tempPrefix+"x-stale"), 2*time.Minute)
	require.NoError(t, os.WriteFile(path(tempPrefix+"x-fresh"), data, 0o644))
	// Foreign entries are neither deleted nor counted, however old.
	require.NoError(t, os.WriteFile(path("notes.txt"), data, 0o644))
	backdate(t, path("notes.txt"), 2*time.Hour)
	require.NoError(t, os.Mkdir(path("subdir"), 0o755))
	backdate(t, path("subdir"), 2*time.Hour)
	outside := filepath.Join(t.TempDir(), "target")
	require.NoError(t, os.WriteFile(outside, data, 0o644))
	backdate(t, outside, 2*time.Hour)
	require.NoError(t, os.Symlink(outside, path("linkid")))
	backdate(t, path("linkid"), 2*time.Hour)

	// A session someone holds a lock on is in use: kept.
	release := outsideLock(t, path("locked"), "sh")

	deleted, remaining, err := d.DeleteIdle(time.Hour)
	require.NoError(t, err)
	release()
	assert.Equal(t, 3, deleted, "old1, old2, emptyStale")
	assert.Equal(t, 3, remaining, "fresh, locked, emptyFresh")
	assert.ElementsMatch(t, []string{"fresh", "locked", "emptyFresh", tempPrefix + "x-fresh", "notes.txt", "subdir", "linkid"},
		entries(t, d.Dir()))
	_, err = os.Stat(outside)
	assert.NoError(t, err, "the link's target is untouched")

	deleted, remaining, err = d.DeleteIdle(time.Hour)
	require.NoError(t, err)
	assert.Equal(t, 1, deleted, "locked, now released")
	assert.Equal(t, 2, remaining)
}

// TestDeleteIdleMatchesSession3: on a directory of session files only, DeleteIdle and
// session3's delete_old_sessions agree.
func TestDeleteIdleMatchesSession3(t *testing.T) {
	ctx := context.Background()
	data := fixture(t, "session3-login.pkl")
	ages := map[string]time.Duration{"a": 0, "b": 5 * time.Minute, "c": 31 * time.Minute, "d": 3 * time.Hour, "e": 29 * time.Minute}
	setup := func() *Directory {
		d := openTemp(t)
		for id, age := range ages {
			require.NoError(t, d.Save(ctx, id, data))
			backdate(t, filepath.Join(d.Dir(), id), age)
		}
		return d
	}
	goDir, pyDir := setup(), setup()
	deleted, remaining, err := goDir.DeleteIdle(30 * time.Minute)
	require.NoError(t, err)
	out, err := peer(t, "sweep", pyDir.Dir(), "30").Output()
	require.NoError(t, err)
	assert.Equal(t, "2 3", strings.TrimSpace(string(out)))
	assert.Equal(t, [2]int{2, 3}, [2]int{deleted, remaining})
	assert.Equal(t, entries(t, pyDir.Dir()), entries(t, goDir.Dir()))
}

// TestReplacedWhileWaiting: a Go load that waited for a lock on a file that was then
// replaced (renamed over) and written into reads the new file, never the orphan.
func TestReplacedWhileWaiting(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t)
	login, cart := fixture(t, "session3-login.pkl"), fixture(t, "dictsession-cart.pkl")
	require.NoError(t, d.Save(ctx, "s", login))

	holder := startPeer(t, "hold", d.Dir(), "s", "ex")
	holder.expect(t, "locked")
	waiting := make(chan struct{})
	var replaced atomic.Int32
	var once sync.Once
	d.testHook = func(event string) {
		switch event {
		case "lock-busy":
			once.Do(func() { close(waiting) })
		case "replaced":
			replaced.Add(1)
		}
	}
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		data, err := d.Load(ctx, "s")
		done <- result{data, err}
	}()
	<-waiting // the load has the old file open and waits for its lock
	// Replace the file behind the holder's back, then let the holder write into the
	// orphaned old file (as a Python writer that truncated it before the rename does).
	tmp := filepath.Join(d.Dir(), tempPrefix+"s-test")
	require.NoError(t, os.WriteFile(tmp, cart, 0o644))
	require.NoError(t, os.Rename(tmp, filepath.Join(d.Dir(), "s")))
	orphan := fixture(t, "quixote-session.pkl")
	holder.send(t, "write %x", orphan)
	holder.expect(t, "written")
	holder.send(t, "release")
	holder.expect(t, "released")
	r := <-done
	require.NoError(t, r.err)
	assert.Equal(t, cart, r.data, "the load reads the file now at the path, not the orphan")
	assert.Equal(t, int32(1), replaced.Load(), "the load started over once")
}

// TestSlowPythonWriter: a Go load that starts after a Python writer truncated the file
// but before it writes waits for the new session; it neither fails nor returns the
// empty file.
func TestSlowPythonWriter(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t)
	require.NoError(t, d.Save(ctx, "s", fixture(t, "session3-login.pkl")))
	w := startPeer(t, "slowsave", d.Dir(), "s", testpeer.Testdata("session3", "dictsession-cart.pkl"), "0.3")
	w.expect(t, "truncated")
	data, err := d.Load(ctx, "s")
	require.NoError(t, err)
	assert.Equal(t, w.next(t, 20*time.Second), "saved "+sha(data), "the load returns what the writer saved")
}

func TestLoadContextAndLockTimeout(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t, WithLockTimeout(100*time.Millisecond))
	require.NoError(t, d.Save(ctx, "s", fixture(t, "session3-login.pkl")))
	release := outsideLock(t, filepath.Join(d.Dir(), "s"), "ex")

	_, err := d.Load(ctx, "s")
	assert.ErrorIs(t, err, ErrLockTimeout)
	err = d.Save(ctx, "s", fixture(t, "quixote-session.pkl"))
	assert.ErrorIs(t, err, ErrLockTimeout)

	patient, err := Open(d.Dir(), WithLockTimeout(0))
	require.NoError(t, err)
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = patient.Load(cctx, "s")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	err = patient.Save(cctx, "s", fixture(t, "quixote-session.pkl"))
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	release()
	got, err := d.Load(ctx, "s")
	require.NoError(t, err)
	assert.Equal(t, fixture(t, "session3-login.pkl"), got, "failed saves left the session as it was")
	assert.Equal(t, []string{"s"}, entries(t, d.Dir()), "and removed their temporary files")
}

func TestLooksComplete(t *testing.T) {
	for _, name := range fixtureNames(t) {
		data := fixture(t, name)
		assert.True(t, LooksComplete(data), name)
		for n := 0; n < len(data); n++ {
			assert.False(t, LooksComplete(data[:n]), "%s cut to %d bytes", name, n)
		}
		assert.True(t, LooksComplete(append(bytes.Clone(data), data...)), "bytes after STOP are left to the unpickler")
		holed := append(make([]byte, 64), data[64:]...)
		assert.False(t, LooksComplete(holed), "a file starting with a hole")
	}
	assert.True(t, LooksComplete([]byte("not a pickle")))
	assert.True(t, LooksComplete([]byte("\x80\x02N.")), "protocol 2 has no frames")
	assert.True(t, LooksComplete([]byte("\x80\x04N.")), "protocol 4 need not frame")
	assert.False(t, LooksComplete([]byte("\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xffN.")), "a huge frame length")
	assert.False(t, LooksComplete(nil))
}

func TestErrorsNameOperationAndQuoteID(t *testing.T) {
	d := openTemp(t)
	_, err := d.Load(context.Background(), "../../etc/passwd\n")
	require.Error(t, err)
	assert.Equal(t, `store: load "../../etc/passwd\n": invalid session id: byte 0x2e at offset 0 is not in [A-Za-z0-9_-]`, err.Error())
	assert.True(t, errors.Is(err, ErrInvalidID))
}

// TestRemoveEmpty: an empty session file is removed once it has been empty for the
// partial wait and nobody holds it; a fresh, locked or non-empty one is kept.
func TestRemoveEmpty(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t, WithPartialWait(100*time.Millisecond))
	path := func(id string) string { return filepath.Join(d.Dir(), id) }
	for _, id := range []string{"stale", "fresh", "locked"} {
		require.NoError(t, os.WriteFile(path(id), nil, 0o600))
	}
	backdate(t, path("stale"), time.Second)
	backdate(t, path("locked"), time.Second)
	require.NoError(t, d.Save(ctx, "full", fixture(t, "session3-login.pkl")))
	backdate(t, path("full"), time.Hour)

	_, err := d.Load(ctx, "stale")
	require.ErrorIs(t, err, ErrEmpty)
	removed, err := d.RemoveEmpty(ctx, "stale")
	require.NoError(t, err)
	assert.True(t, removed)
	_, err = d.Load(ctx, "stale")
	assert.ErrorIs(t, err, ErrNotFound)

	require.NoError(t, os.WriteFile(path("fresh"), nil, 0o600)) // truncated again, now
	removed, err = d.RemoveEmpty(ctx, "fresh")
	require.NoError(t, err)
	assert.False(t, removed, "truncated just now: a writer may be at work")
	release := outsideLock(t, path("locked"), "ex")
	removed, err = d.RemoveEmpty(ctx, "locked")
	require.NoError(t, err)
	assert.False(t, removed, "a writer holds it")
	release()
	removed, err = d.RemoveEmpty(ctx, "full")
	require.NoError(t, err)
	assert.False(t, removed)
	_, err = d.RemoveEmpty(ctx, "missing")
	assert.ErrorIs(t, err, ErrNotFound)
	assert.ElementsMatch(t, []string{"fresh", "locked", "full"}, entries(t, d.Dir()))
}

// TestDirMode: WithDirMode creates the directory with exactly that mode whatever the
// umask, and with the setgid bit and the parent's group when the parent is setgid.
// Not parallel: it changes the process umask.
func TestDirMode(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	base := t.TempDir()
	d, err := Open(filepath.Join(base, "plain"), WithCreate(), WithDirMode(0o770))
	require.NoError(t, err)
	fi, err := os.Stat(d.Dir())
	require.NoError(t, err)
	assert.Equal(t, os.ModeDir|0o770, fi.Mode())

	shared := filepath.Join(base, "shared")
	require.NoError(t, os.Mkdir(shared, 0o770))
	require.NoError(t, os.Chmod(shared, 0o770|os.ModeSetgid))
	d, err = Open(filepath.Join(shared, "sessions"), WithCreate(), WithDirMode(0o770))
	require.NoError(t, err)
	fi, err = os.Stat(d.Dir())
	require.NoError(t, err)
	assert.Equal(t, os.ModeDir|os.ModeSetgid|0o770, fi.Mode())

	syscall.Umask(0o022)
	require.NoError(t, d.Save(context.Background(), "s", fixture(t, "session3-login.pkl")))
	assert.Equal(t, os.FileMode(0o640), mode(t, filepath.Join(d.Dir(), "s")), "others get nothing, whatever the umask")
}

// TestPartialWaitReadsLittle: a large file that stays incomplete — here sparse and
// all NUL, as a Python writer truncated under another leaves it — is not read again
// and again for the whole partial wait: with the default check only its first and
// last bytes are read, and with WithCheck it is read once per change.
func TestPartialWaitReadsLittle(t *testing.T) {
	ctx := context.Background()
	const size = 63 << 20
	d := openTemp(t, WithPartialWait(300*time.Millisecond))
	f, err := os.Create(filepath.Join(d.Dir(), "holes"))
	require.NoError(t, err)
	require.NoError(t, f.Truncate(size))
	require.NoError(t, f.Close())

	var attempts atomic.Int64
	d.testHook = func(event string) {
		if event == "truncated" {
			attempts.Add(1)
		}
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	_, err = d.Load(ctx, "holes")
	runtime.ReadMemStats(&ms1)
	require.ErrorIs(t, err, ErrTruncated)
	assert.Greater(t, attempts.Load(), int64(10), "the file was looked at again and again")
	assert.Less(t, ms1.TotalAlloc-ms0.TotalAlloc, uint64(1<<20), "never read whole")

	calls := 0
	checked := openTemp(t, WithPartialWait(300*time.Millisecond), WithCheck(func(data []byte) bool {
		calls++
		return LooksComplete(data)
	}))
	f, err = os.Create(filepath.Join(checked.Dir(), "holes"))
	require.NoError(t, err)
	require.NoError(t, f.Truncate(size))
	require.NoError(t, f.Close())
	_, err = checked.Load(ctx, "holes")
	require.ErrorIs(t, err, ErrTruncated)
	assert.Equal(t, 1, calls, "read and checked once: it never changed")
}
