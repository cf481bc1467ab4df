package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// openFDs counts the process's open file descriptors.
func openFDs(t testing.TB) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(fds)
}

// saveRoundTrips saves new and replaced sessions in d and checks what each side reads.
func saveRoundTrips(t *testing.T, d *Directory) {
	t.Helper()
	ctx := context.Background()
	login, cart := fixture(t, "session3-login.pkl"), fixture(t, "dictsession-cart.pkl")
	require.NoError(t, d.Save(ctx, "fresh", login))
	require.NoError(t, d.Save(ctx, "fresh", cart))
	require.NoError(t, d.Save(ctx, "other", login))
	got, err := d.Load(ctx, "fresh")
	require.NoError(t, err)
	assert.Equal(t, cart, got)
	out, err := peer(t, "load", d.Dir(), "other").Output()
	require.NoError(t, err)
	assert.Equal(t, "session3.Session.Session "+sha(login)+"\n", string(out))
	assert.ElementsMatch(t, []string{"fresh", "other"}, entries(t, d.Dir()), "nothing but the sessions")
}

// TestSaveWays: every way Save can give its file a name works the same: a file without
// a name linked with AT_EMPTY_PATH (where permitted) or through /proc/self/fd, and a
// named temporary file; each swapped with the session file (RENAME_EXCHANGE) or
// renamed over it.
func TestSaveWays(t *testing.T) {
	for _, exchange := range []bool{true, false} {
		t.Run(fmt.Sprintf("exchange=%v", exchange), func(t *testing.T) {
			open := func(t *testing.T) *Directory {
				d := openTemp(t)
				if !exchange {
					d.noExchange.Store(true)
				}
				return d
			}
			t.Run("unnamed", func(t *testing.T) {
				d := open(t)
				saveRoundTrips(t, d)
				assert.Equal(t, nfsLocks, d.noUnnamed.Load(), "O_TMPFILE works on this filesystem (unless built with nfslocks)")
				assert.Equal(t, nfsLocks || !exchange, d.noExchange.Load(), "RENAME_EXCHANGE works on this filesystem (unless built with nfslocks)")
				t.Logf("linked through /proc/self/fd: %v", d.linkByProc.Load())
			})
			t.Run("proc", func(t *testing.T) {
				d := open(t)
				d.linkByProc.Store(true)
				saveRoundTrips(t, d)
				assert.Equal(t, nfsLocks, d.noUnnamed.Load())
			})
			t.Run("named", func(t *testing.T) {
				d := open(t)
				d.noUnnamed.Store(true)
				saveRoundTrips(t, d)
			})
		})
	}
}

// TestSaveFallsBackToNamedTemps: where files without a name cannot be made (no
// O_TMPFILE) or cannot be linked (no /proc, no capability), Save starts over with a
// named temporary file, and goes on so; the lock it held on the old file is released.
func TestSaveFallsBackToNamedTemps(t *testing.T) {
	if nfsLocks {
		t.Skip("built with nfslocks: no files without a name, as on NFS")
	}
	ctx := context.Background()
	login, cart := fixture(t, "session3-login.pkl"), fixture(t, "dictsession-cart.pkl")

	noTmpfile := openTemp(t)
	opens := 0
	noTmpfile.openUnnamed = func(string, uint32) (int, error) { opens++; return -1, errNoUnnamed }
	require.NoError(t, noTmpfile.Save(ctx, "s", login))
	require.NoError(t, noTmpfile.Save(ctx, "s", cart))
	assert.True(t, noTmpfile.noUnnamed.Load())
	assert.Equal(t, 1, opens, "tried once, then never again")
	got, err := noTmpfile.Load(ctx, "s")
	require.NoError(t, err)
	assert.Equal(t, cart, got)
	assert.Equal(t, []string{"s"}, entries(t, noTmpfile.Dir()))

	noLink := openTemp(t)
	require.NoError(t, noLink.Save(ctx, "s", login))
	oldFile, err := os.Open(filepath.Join(noLink.Dir(), "s")) // the file the save replaces
	require.NoError(t, err)
	defer oldFile.Close()
	before := openFDs(t)
	links := 0
	noLink.linkUnnamed = func(int, string) error { links++; return errNoUnnamed }
	require.NoError(t, noLink.Save(ctx, "s", cart), "fails at the link, holding the lock, and starts over")
	require.NoError(t, noLink.Save(ctx, "t", login), "a new session")
	assert.Equal(t, 1, links)
	got, err = noLink.Load(ctx, "s")
	require.NoError(t, err)
	assert.Equal(t, cart, got)
	assert.ElementsMatch(t, []string{"s", "t"}, entries(t, noLink.Dir()))
	assert.Equal(t, before, openFDs(t), "no descriptor left behind")
	assert.NoError(t, unix.Flock(int(oldFile.Fd()), unix.LOCK_EX|unix.LOCK_NB), "no lock left on the replaced file")
}

// TestSaveLeaksNoDescriptors: saves that succeed and saves that fail (lock timeout,
// a name taken by a directory, a write refused) leave no descriptor open, whichever
// way they write.
func TestSaveLeaksNoDescriptors(t *testing.T) {
	ctx := context.Background()
	data := fixture(t, "session3-login.pkl")
	for _, named := range []bool{false, true} {
		d := openTemp(t, WithLockTimeout(20*time.Millisecond), WithStagingDir(t.TempDir()))
		d.noUnnamed.Store(named)
		require.NoError(t, d.Save(ctx, "locked", data))
		require.NoError(t, os.Mkdir(filepath.Join(d.Dir(), "adir"), 0o755))
		release := outsideLock(t, filepath.Join(d.Dir(), "locked"), "sh")
		before := openFDs(t)
		for i := range 50 {
			require.NoError(t, d.Save(ctx, "s", data))
			require.NoError(t, d.Save(ctx, "n"+string(rune('a'+i%26)), data))
		}
		assert.ErrorIs(t, d.Save(ctx, "locked", data), ErrLockTimeout)
		assert.ErrorIs(t, d.Save(ctx, "adir", data), ErrNotRegular)
		assert.ErrorIs(t, d.Save(ctx, "s", make([]byte, DefaultMaxSize+1)), ErrTooLarge)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		assert.ErrorIs(t, d.Save(cctx, "s", data), context.Canceled)
		assert.Equal(t, before, openFDs(t), "named temporary files: %v", named)
		release()
	}
}

// TestFileModeUnnamed: files without a name get Python's modes too, also from a
// staging directory. Not parallel: it changes the process umask.
func TestFileModeUnnamed(t *testing.T) {
	if nfsLocks {
		t.Skip("built with nfslocks: no files without a name, as on NFS")
	}
	ctx := context.Background()
	old := syscall.Umask(0o027)
	defer syscall.Umask(old)
	data := fixture(t, "session3-login.pkl")
	for _, d := range []*Directory{openTemp(t), openTemp(t, WithStagingDir(t.TempDir()))} {
		require.NoError(t, d.Save(ctx, "new", data))
		assert.Equal(t, os.FileMode(0o640), mode(t, filepath.Join(d.Dir(), "new")))
		require.NoError(t, os.Chmod(filepath.Join(d.Dir(), "new"), 0o600))
		require.NoError(t, d.Save(ctx, "new", data))
		assert.Equal(t, os.FileMode(0o600), mode(t, filepath.Join(d.Dir(), "new")), "a replaced file keeps its mode")
		assert.False(t, d.noUnnamed.Load())
	}
}

func TestStagingDir(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	sessions, staging := filepath.Join(base, "sessions"), filepath.Join(base, "staging")
	require.NoError(t, os.Mkdir(staging, 0o755))
	d, err := Open(sessions, WithCreate(), WithStagingDir(staging))
	require.NoError(t, err)
	saveRoundTrips(t, d)
	assert.Empty(t, entries(t, staging))

	// Named temporary files are written in the staging directory too.
	d.noUnnamed.Store(true)
	var during []string
	d.testHook = func(event string) {
		if event == "save-locked" {
			during = entries(t, staging)
		}
	}
	require.NoError(t, d.Save(ctx, "fresh", fixture(t, "session3-login.pkl")))
	require.Len(t, during, 1)
	assert.Regexp(t, `^\.qxbridge-tmp-[0-9]+-fresh-[0-9a-z]+$`, during[0])
	assert.Empty(t, entries(t, staging))

	// A relative path is made absolute.
	t.Chdir(base)
	rel, err := Open("sessions", WithStagingDir("staging"))
	require.NoError(t, err)
	require.NoError(t, rel.Save(ctx, "rel", fixture(t, "session3-login.pkl")))
	assert.FileExists(t, filepath.Join(sessions, "rel"))
}

// TestStagingDirRefused: Open refuses a staging directory that saves could not use, or
// that Python's sweep would find, with a message that says why.
func TestStagingDirRefused(t *testing.T) {
	base := t.TempDir()
	sessions := filepath.Join(base, "sessions")
	require.NoError(t, os.Mkdir(sessions, 0o755))
	require.NoError(t, os.Mkdir(filepath.Join(sessions, "inside"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(base, "file"), nil, 0o644))
	require.NoError(t, os.Symlink(sessions, filepath.Join(base, "link")))
	for _, tc := range []struct{ staging, msg string }{
		{filepath.Join(base, "missing"), "no such file or directory"},
		{filepath.Join(base, "file"), "not a directory"},
		{sessions, "must be outside the session directory"},
		{filepath.Join(sessions, "inside"), "must be outside the session directory"},
		{filepath.Join(base, "link"), "must be outside the session directory"},
		{"/dev/shm", "not on the same filesystem as the session directory"},
	} {
		if tc.staging == "/dev/shm" && sameDevice(t, base, "/dev/shm") {
			continue // the test's temporary directory is itself on /dev/shm
		}
		_, err := Open(sessions, WithStagingDir(tc.staging))
		require.Error(t, err, tc.staging)
		assert.Contains(t, err.Error(), "store: staging directory "+tc.staging, tc.staging)
		assert.Contains(t, err.Error(), tc.msg, tc.staging)
	}
}

func sameDevice(t *testing.T, a, b string) bool {
	var sa, sb unix.Stat_t
	require.NoError(t, unix.Stat(a, &sa))
	require.NoError(t, unix.Stat(b, &sb))
	return sa.Dev == sb.Dev
}

// TestDeleteIdleStaging: DeleteIdle removes the stale temporary files a crashed save
// left in the staging directory, and nothing else there.
func TestDeleteIdleStaging(t *testing.T) {
	staging := t.TempDir()
	d := openTemp(t, WithStagingDir(staging))
	for _, name := range []string{tempPrefix + "a-stale", tempPrefix + "a-fresh", "other"} {
		require.NoError(t, os.WriteFile(filepath.Join(staging, name), []byte("x"), 0o644))
	}
	backdate(t, filepath.Join(staging, tempPrefix+"a-stale"), 2*staleAge)
	backdate(t, filepath.Join(staging, "other"), 2*staleAge)
	deleted, remaining, err := d.DeleteIdle(time.Hour)
	require.NoError(t, err)
	assert.Equal(t, [2]int{0, 0}, [2]int{deleted, remaining})
	assert.ElementsMatch(t, []string{tempPrefix + "a-fresh", "other"}, entries(t, staging))
}

// TestLockWaitHook: a Go load that meets a CPython process holding LOCK_EX reports one
// wait, as long as the lock was held after it began waiting; a Go save that meets a
// CPython reader's LOCK_SH reports a "save" wait; a wait that times out is reported
// too; operations that take their lock at once report nothing.
func TestLockWaitHook(t *testing.T) {
	ctx := context.Background()
	type wait struct {
		op     string
		waited time.Duration
	}
	var mu sync.Mutex
	var waits []wait
	taken := func() []wait {
		mu.Lock()
		defer mu.Unlock()
		w := waits
		waits = nil
		return w
	}
	d := openTemp(t, WithLockTimeout(time.Minute), WithLockWaitHook(func(op string, waited time.Duration) {
		mu.Lock()
		waits = append(waits, wait{op, waited})
		mu.Unlock()
	}))
	login := fixture(t, "session3-login.pkl")
	require.NoError(t, d.Save(ctx, "s", login))
	_, err := d.Load(ctx, "s")
	require.NoError(t, err)
	assert.Empty(t, taken(), "no wait, no call")

	const held = 100 * time.Millisecond
	for _, tc := range []struct{ op, mode string }{{"load", "ex"}, {"save", "sh"}} {
		holder := startPeer(t, "hold", d.Dir(), "s", tc.mode)
		holder.expect(t, "locked")
		busy := make(chan struct{})
		var once sync.Once
		d.testHook = func(event string) {
			if event == "lock-busy" {
				once.Do(func() { close(busy) })
			}
		}
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			if tc.op == "load" {
				_, err := d.Load(ctx, "s")
				done <- err
			} else {
				done <- d.Save(ctx, "s", login)
			}
		}()
		<-busy
		time.Sleep(held)
		holder.send(t, "release")
		holder.expect(t, "released")
		require.NoError(t, <-done)
		took := time.Since(start)
		d.testHook = nil
		w := taken()
		require.Len(t, w, 1, tc.op)
		assert.Equal(t, tc.op, w[0].op)
		assert.GreaterOrEqual(t, w[0].waited, held, "the wait lasted at least while the lock was held after it began")
		assert.LessOrEqual(t, w[0].waited, took)
	}

	// A wait that ends with the lock timeout is reported too.
	short, err := Open(d.Dir(), WithLockTimeout(50*time.Millisecond), WithLockWaitHook(func(op string, waited time.Duration) {
		mu.Lock()
		waits = append(waits, wait{op, waited})
		mu.Unlock()
	}))
	require.NoError(t, err)
	holder := startPeer(t, "hold", d.Dir(), "s", "ex")
	holder.expect(t, "locked")
	start := time.Now()
	_, err = short.Load(ctx, "s")
	took := time.Since(start)
	assert.ErrorIs(t, err, ErrLockTimeout)
	w := taken()
	require.Len(t, w, 1)
	assert.Equal(t, "load", w[0].op)
	// The timeout counts from the start of the Load, the wait from the first
	// refusal of the lock, a little later.
	assert.Positive(t, w[0].waited)
	assert.LessOrEqual(t, w[0].waited, took)
	holder.send(t, "release")
	holder.expect(t, "released")

	// DeleteIdle never waits: a held file is kept, and nothing is reported.
	_, _, err = short.DeleteIdle(0)
	require.NoError(t, err)
	assert.Empty(t, taken())
}
