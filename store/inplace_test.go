package store

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/qxbridge/qxbridge/pickle"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The in-place crash payloads: whole pickles of one page or less, of different
// lengths, so that the shorter one leaves a tail of the longer.
var (
	inPlaceOld = bytesPickle(3000, 'o')
	inPlaceNew = bytesPickle(1000, 'n')
)

// openInPlace opens a temporary directory with WithInPlace (and opts), skipping the
// test where the temporary directory's filesystem does not overwrite in place.
func openInPlace(t testing.TB, opts ...Option) *Directory {
	t.Helper()
	d := openTemp(t, append(opts, WithInPlace())...)
	if !overwritesInPlace(d.Dir()) {
		t.Skipf("%s is not on ext2/3/4, tmpfs or xfs", d.Dir())
	}
	require.Equal(t, !nfsLocks && !d.sync && !d.writeOut, d.overwrite,
		"in place except with the NFS build's POSIX locks, WithSync and WithWriteOut")
	if nfsLocks {
		t.Skip("never in place with POSIX locks (nfslocks)")
	}
	return d
}

func inode(t testing.TB, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	require.NoError(t, unix.Lstat(path, &st))
	return st.Ino
}

// withTail is what an in-place save of data leaves over a file that held old.
func withTail(data, old []byte) []byte {
	if len(data) >= len(old) {
		return data
	}
	return append(bytes.Clone(data), old[len(data):]...)
}

// TestInPlaceSave: a save over a session file of a page or less keeps its inode; a
// shorter session leaves the old bytes after its STOP, which Go's Load returns,
// pickle.Unmarshal and session3's load_session ignore; a longer one is written
// whole. The modification time advances, so DeleteIdle and delete_old_sessions
// see the session as fresh.
func TestInPlaceSave(t *testing.T) {
	ctx := context.Background()
	d := openInPlace(t)
	path := filepath.Join(d.Dir(), "s")
	cart, login, rich := fixture(t, "dictsession-cart.pkl"), fixture(t, "session3-login.pkl"), fixture(t, "subclass-rich.pkl")
	require.Less(t, len(login), len(cart))
	require.Greater(t, len(rich), len(cart))

	require.NoError(t, d.Save(ctx, "s", cart)) // new: created by the swap's path
	ino := inode(t, path)
	backdate(t, path, 2*time.Hour)

	require.NoError(t, d.Save(ctx, "s", login))
	assert.Equal(t, ino, inode(t, path), "written in place")
	onDisk, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, withTail(login, cart), onDisk, "the new session, then the rest of the old")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), fi.ModTime(), time.Minute, "the write sets the modification time")
	deleted, remaining, err := d.DeleteIdle(time.Hour)
	require.NoError(t, err)
	assert.Equal(t, [2]int{0, 1}, [2]int{deleted, remaining})

	got, err := d.Load(ctx, "s")
	require.NoError(t, err)
	assert.Equal(t, onDisk, got, "Load returns the file, tail and all")
	want, err := pickle.Unmarshal(login)
	require.NoError(t, err)
	gotValue, err := pickle.Unmarshal(got)
	require.NoError(t, err, "pickle.Unmarshal stops at the first STOP")
	assert.True(t, pickle.Equal(want, gotValue), "the tail changes nothing")

	// CPython's session3 loads the new session, as it loads the exact bytes.
	exact := openTemp(t)
	require.NoError(t, exact.Save(ctx, "s", login))
	pyTail, err := peer(t, "load", d.Dir(), "s").Output()
	require.NoError(t, err)
	pyExact, err := peer(t, "load", exact.Dir(), "s").Output()
	require.NoError(t, err)
	assert.NotEqual(t, "None\n", string(pyTail))
	assert.Equal(t, string(pyExact), string(pyTail))

	require.NoError(t, d.Save(ctx, "s", rich))
	assert.Equal(t, ino, inode(t, path))
	onDisk, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, rich, onDisk, "a longer session replaces every byte")
	ids, err := d.IDs(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"s"}, ids)
	assert.Equal(t, []string{"s"}, entries(t, d.Dir()))

	// Idle again, it is swept as any session.
	backdate(t, path, 2*time.Hour)
	deleted, remaining, err = d.DeleteIdle(time.Hour)
	require.NoError(t, err)
	assert.Equal(t, [2]int{1, 0}, [2]int{deleted, remaining})
	assert.Empty(t, entries(t, d.Dir()))
}

// TestInPlaceFallsBackToSwap: wherever an overwrite cannot give its guarantees,
// Save swaps a new file in (a new inode) as without the option.
func TestInPlaceFallsBackToSwap(t *testing.T) {
	ctx := context.Background()
	small, big := fixture(t, "session3-login.pkl"), bytesPickle(pageSize+100, 'b')
	cases := []struct {
		name    string
		opts    []Option
		prepare func(t *testing.T, path string) // the file before the save
		data    []byte
	}{
		{name: "larger than a page", data: big},
		{name: "file larger than a page", prepare: func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, big, 0o600))
		}, data: small},
		{name: "empty file (a Python writer truncated it)", prepare: func(t *testing.T, path string) {
			require.NoError(t, os.Truncate(path, 0))
		}, data: small},
		{name: "readable by others", prepare: func(t *testing.T, path string) {
			require.NoError(t, os.Chmod(path, 0o644))
		}, data: small},
		{name: "not the WithFileMode mode", opts: []Option{WithFileMode(0o660)}, prepare: func(t *testing.T, path string) {
			require.NoError(t, os.Chmod(path, 0o600))
		}, data: small},
		{name: "WithSync", opts: []Option{WithSync()}, data: small},
		{name: "WithWriteOut", opts: []Option{WithWriteOut()}, data: small},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := openInPlace(t, c.opts...)
			path := filepath.Join(d.Dir(), "s")
			require.NoError(t, d.Save(ctx, "s", fixture(t, "dictsession-cart.pkl")))
			if c.prepare != nil {
				c.prepare(t, path)
			}
			ino := inode(t, path)
			require.NoError(t, d.Save(ctx, "s", c.data))
			assert.NotEqual(t, ino, inode(t, path), "swapped, not written in place")
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, c.data, got)
			assert.Zero(t, mode(t, path)&0o007, "no access for others")
			assert.Equal(t, []string{"s"}, entries(t, d.Dir()))
			if len(c.data) <= pageSize && c.opts == nil {
				// The file the swap made is written in place next time.
				ino = inode(t, path)
				require.NoError(t, d.Save(ctx, "s", c.data))
				assert.Equal(t, ino, inode(t, path))
			}
		})
	}

	t.Run("new session", func(t *testing.T) {
		d := openInPlace(t)
		require.NoError(t, d.Save(ctx, "n", small))
		got, err := d.Load(ctx, "n")
		require.NoError(t, err)
		assert.Equal(t, small, got)
	})
	t.Run("filesystems", func(t *testing.T) {
		assert.False(t, overwritesInPlace("/proc"), "procfs")
		if _, err := os.Stat("/dev/shm"); err == nil {
			assert.True(t, overwritesInPlace("/dev/shm"), "tmpfs")
		}
		d := &Directory{inPlace: true}
		assert.False(t, inPlaceAllowed(d, false), "a copy-on-write filesystem, or NFS")
		assert.Equal(t, !nfsLocks, inPlaceAllowed(d, true))
		d.sync = true
		assert.False(t, inPlaceAllowed(d, true))
		d.sync, d.writeOut = false, true
		assert.False(t, inPlaceAllowed(d, true))
		assert.False(t, inPlaceAllowed(&Directory{}, true), "without the option")
	})
}

// TestInPlaceTruncatedUnderLock: a Python writer's truncating open is not held off by
// the lock; a file truncated after the checks, before the write, is left to the swap.
func TestInPlaceTruncatedUnderLock(t *testing.T) {
	ctx := context.Background()
	d := openInPlace(t)
	path := filepath.Join(d.Dir(), "s")
	require.NoError(t, d.Save(ctx, "s", fixture(t, "dictsession-cart.pkl")))
	ino := inode(t, path)
	var once sync.Once
	d.testHook = func(event string) {
		if event == "save-locked" {
			once.Do(func() { require.NoError(t, os.Truncate(path, 0)) })
		}
	}
	login := fixture(t, "session3-login.pkl")
	require.NoError(t, d.Save(ctx, "s", login))
	d.testHook = nil
	assert.NotEqual(t, ino, inode(t, path), "swapped")
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, login, got)
}

// TestInPlaceNotWritable: a session file this process may not open for writing
// (Python's, as another user, group-readable only) is replaced by the swap.
func TestInPlaceNotWritable(t *testing.T) {
	if nfsLocks {
		t.Skip("never in place with POSIX locks (nfslocks), and LOCK_EX needs a writable file there")
	}
	requireTwoUsers(t)
	defer syscall.Umask(syscall.Umask(0o022))
	base, err := os.MkdirTemp("", "qxbridge-inplace-users-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(base) })
	require.NoError(t, os.Chmod(base, 0o755))
	bin := filepath.Join(base, "store.test")
	copyFile(t, os.Args[0], bin)
	dir := filepath.Join(base, "sessions")
	require.NoError(t, os.Mkdir(dir, 0o770))
	require.NoError(t, os.Chown(dir, 0, sharedGID))
	require.NoError(t, os.Chmod(dir, 0o770))
	if !overwritesInPlace(dir) {
		t.Skipf("%s is not on ext2/3/4, tmpfs or xfs", dir)
	}
	path := filepath.Join(dir, "s")
	require.NoError(t, os.WriteFile(path, fixture(t, "dictsession-cart.pkl"), 0o640))
	require.NoError(t, os.Chown(path, pythonUID, sharedGID))
	ino := inode(t, path)

	src := filepath.Join(base, "login.pkl")
	require.NoError(t, os.WriteFile(src, fixture(t, "session3-login.pkl"), 0o644))
	cmd := child(t, "user", dir, "s", userOpEnv+"=saveinplace "+src)
	cmd.Path, cmd.Args[0] = bin, bin
	asUser(cmd, goUID)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Equal(t, "ok", strings.TrimSpace(string(out)))
	assert.NotEqual(t, ino, inode(t, path), "swapped")
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, fixture(t, "session3-login.pkl"), got)
}

// TestKillDuringInPlaceSave: a Go process saving in place, killed with SIGKILL at a
// random moment again and again, leaves the file (always the same inode) holding
// the old session or the new one (with the old one's tail), which Go and CPython
// load.
func TestKillDuringInPlaceSave(t *testing.T) {
	ctx := context.Background()
	d := openInPlace(t)
	path := filepath.Join(d.Dir(), "victim")
	require.NoError(t, d.Save(ctx, "victim", inPlaceOld))
	ino := inode(t, path)
	newOverOld := withTail(inPlaceNew, inPlaceOld)
	deadline := time.Now().Add(2 * time.Second)
	kills, sawNew, sawOld := 0, 0, 0
	for kills < 10 || time.Now().Before(deadline) {
		cmd := startSaveLoop(t, d.Dir(), "victim", inPlaceEnv+"=1")
		time.Sleep(time.Duration(rand.IntN(5_000)) * time.Microsecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		require.Error(t, cmd.Wait(), "the child only ends when killed")
		kills++

		got, err := d.Load(ctx, "victim")
		require.NoError(t, err, "after kill %d", kills)
		switch {
		case bytes.Equal(got, inPlaceOld):
			sawOld++
		case bytes.Equal(got, newOverOld):
			sawNew++
		default:
			require.Failf(t, "neither the old nor the new session", "after kill %d: %d bytes", kills, len(got))
		}
		require.Equal(t, ino, inode(t, path), "every save was in place")
		require.Equal(t, []string{"victim"}, entries(t, d.Dir()))
	}
	t.Logf("%d kills: old session left %d times, new %d times", kills, sawOld, sawNew)
	out, err := peer(t, "load", d.Dir(), "victim").Output()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(out), "builtins.bytes "), "%s", out)
}

// TestDiskFullDuringInPlaceSave: an in-place write cut short (a file size limit
// stands in for a full disk) fails, and the old bytes are put back.
func TestDiskFullDuringInPlaceSave(t *testing.T) {
	ctx := context.Background()
	old := fixture(t, "session3-counter-tokens.pkl")
	require.Greater(t, len(inPlaceNew), len(old)+100)
	// The write is cut short inside the old session's bytes, and past their end
	// (then the file must be cut back to the old length, so that it ends with the
	// old session's STOP again).
	for _, limit := range []int{100, len(old) + 100} {
		t.Run(strconv.Itoa(limit), func(t *testing.T) {
			d := openInPlace(t, WithPartialWait(100*time.Millisecond))
			require.NoError(t, d.Save(ctx, "s", old))
			ino := inode(t, filepath.Join(d.Dir(), "s"))
			saveOnFullDisk(t, d, old, inPlaceEnv+"=1", fsizeEnv+"="+strconv.Itoa(limit))
			assert.Equal(t, ino, inode(t, filepath.Join(d.Dir(), "s")), "it was a write in place")
		})
	}
}

// TestInPlaceNotThroughHardLinks: a session file with a second name (a snapshot made
// with hard links, or another session's name) is replaced, never written in place,
// so the other name keeps what it held; with one name again, saves go in place.
func TestInPlaceNotThroughHardLinks(t *testing.T) {
	ctx := context.Background()
	d := openInPlace(t)
	require.True(t, d.InPlace())
	path := filepath.Join(d.Dir(), "s")
	first, second := fixture(t, "session3-login.pkl"), fixture(t, "session3-counter-tokens.pkl")
	require.NoError(t, d.Save(ctx, "s", first))
	snapshot := filepath.Join(d.Dir(), "t") // another session's name for the same file
	require.NoError(t, os.Link(path, snapshot))
	ino := inode(t, path)
	require.NoError(t, d.Save(ctx, "s", second))
	assert.NotEqual(t, ino, inode(t, path), "swapped, not written in place")
	got, err := os.ReadFile(snapshot)
	require.NoError(t, err)
	assert.Equal(t, first, got, "the other name still holds what it held")
	got, err = d.Load(ctx, "s")
	require.NoError(t, err)
	assert.Equal(t, second, got)
	ino = inode(t, path)
	require.NoError(t, d.Save(ctx, "s", first))
	assert.Equal(t, ino, inode(t, path), "one name: in place")
}

// TestInPlaceWithCPythonPeers: Go saves one session in place in a loop (falling
// back to the swap whenever the file is larger than a page or was truncated) while
// a real session3 writer saves it too (truncate, lock, dump, unlock, then flush in
// close; sessions of a page or less), CPython readers follow
// load_session's steps, and Go loads it: no CPython reader meets an unloadable or
// torn file (one that does not start with a whole saved session), Go's loads return
// only such files, and the final file loads in both.
func TestInPlaceWithCPythonPeers(t *testing.T) {
	ctx := context.Background()
	d := openInPlace(t)
	paths, payloads := allFixtures(t)
	payloads = append(payloads, bytesPickle(3000, 'm'))
	expectDir := t.TempDir()
	writeExpected(t, expectDir, payloads)
	require.NoError(t, d.Save(ctx, "shared", payloads[0]))

	// Both sides save sessions of a page or less. session3's writer truncates the
	// file without a lock and writes its bytes after it unlocks, so when the file
	// holds a session larger than a page, whoever saved it, session3's own
	// load_session can meet a frame cut short and raise "pickle data was
	// truncated": with no Go process at all, a session3 writer alternating 200- and
	// 6000-byte sessions made two load_session loops raise 9 times in 10 s. Saves
	// larger than a page go by the swap (TestInPlaceFallsBackToSwap).
	t.Setenv("QXBRIDGE_STORE_PAGE_WRITES", "1")
	writer := startPeer(t, append([]string{"write", d.Dir(), "shared", soak, "0.001", expectDir}, paths...)...)
	writer.expect(t, "ready")
	var expected [][]byte
	for name := range readExpected(t, expectDir) {
		expected = append(expected, []byte(name))
	}
	whole := func(data []byte) bool {
		for _, e := range expected {
			if bytes.HasPrefix(data, e) {
				return true
			}
		}
		return false
	}
	t.Setenv("QXBRIDGE_STORE_TAILS", "1")
	var readers []*runningPeer
	for range 2 {
		readers = append(readers, startPeer(t, "read", d.Dir(), "shared", soak, expectDir))
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var loads atomic.Int64
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				data, err := d.Load(ctx, "shared")
				if !assert.NoError(t, err) || !assert.True(t, whole(data), "Go loaded %d bytes that do not start with a saved session", len(data)) {
					return
				}
				loads.Add(1)
			}
		}()
	}
	writer.send(t, "start")
	results := make(chan string, len(readers)+1)
	for _, p := range append(readers, writer) {
		go func() { // not p.next: a failure must not stop this goroutine unreported
			select {
			case line, ok := <-p.lines:
				if !ok {
					p.cmd.Wait() // for its standard error
					line = "exited early: " + p.stderr.String()
				}
				results <- line
			case <-time.After(30 * time.Second):
				results <- "said nothing within 30 s"
			}
		}()
	}
	saves, inPlace := 0, 0
	var reports []string
	for len(reports) < len(readers)+1 {
		select {
		case line := <-results:
			reports = append(reports, line)
			continue
		default:
		}
		before := inode(t, filepath.Join(d.Dir(), "shared"))
		require.NoError(t, d.Save(ctx, "shared", payloads[saves%len(payloads)]))
		if inode(t, filepath.Join(d.Dir(), "shared")) == before {
			inPlace++
		}
		saves++
		time.Sleep(200 * time.Microsecond)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("Go saves: %d (%d in place, by the inode), Go loads: %d; CPython: %s", saves, inPlace, loads.Load(), strings.Join(reports, " "))
	assert.Positive(t, inPlace)
	for _, line := range reports {
		var c map[string]int
		require.NoError(t, json.Unmarshal([]byte(line), &c), line)
		if _, ok := c["saves"]; ok {
			assert.Positive(t, c["saves"], line)
			continue
		}
		assert.Positive(t, c["loads"], line)
		for _, bad := range []string{"torn", "unpicklable", "missing"} {
			assert.Zero(t, c[bad], "%s in %s", bad, line)
		}
	}
	got, err := d.Load(ctx, "shared")
	require.NoError(t, err)
	assert.True(t, whole(got))
	out, err := peer(t, "load", d.Dir(), "shared").Output()
	require.NoError(t, err)
	assert.NotEqual(t, "None\n", string(out))
	assert.Equal(t, []string{"shared"}, entries(t, d.Dir()))
}

// requireTwoUsers fails (under CI) or skips a test that switches users with setpriv
// unless it runs as root and setpriv is installed.
func requireTwoUsers(t *testing.T) {
	t.Helper()
	testpeer.Root(t, "switching users with setpriv")
	if _, err := exec.LookPath("setpriv"); err != nil {
		testpeer.Missing(t, "setpriv (util-linux)")
	}
}

// TestLockInteropInPlace: proof 3 with saves in place. A CPython load waits while a
// Go save holds LOCK_EX on the session file, then reads the new session whole.
func TestLockInteropInPlace(t *testing.T) {
	assert.Empty(t, lockInterop(t, openInPlace(t), 300*time.Millisecond))
}
