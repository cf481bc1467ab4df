package store

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestPOSIXLocksCloseDropsLocks shows the rule the store has to live with on NFS, as
// the nfslocks build emulates it: a POSIX lock belongs to the process, and closing
// any descriptor of the file — not the one locked through — drops it.
func TestPOSIXLocksCloseDropsLocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	require.NoError(t, os.WriteFile(path, []byte("x"), 0o600))
	locked, err := unix.Open(path, unix.O_RDWR, 0)
	require.NoError(t, err)
	defer unix.Close(locked)
	require.NoError(t, posixLock(locked, unix.LOCK_EX))
	assert.True(t, lockedOutside(t, path, "posix"))
	other, err := unix.Open(path, unix.O_RDONLY, 0)
	require.NoError(t, err)
	require.NoError(t, unix.Close(other))
	assert.False(t, lockedOutside(t, path, "posix"), "closing another descriptor dropped the lock")

	// And an exclusive lock needs a descriptor open for writing.
	ro, err := unix.Open(path, unix.O_RDONLY, 0)
	require.NoError(t, err)
	defer unix.Close(ro)
	assert.Equal(t, unix.EBADF, posixLock(ro, unix.LOCK_EX))
}

// TestPOSIXLocksKeptAcrossOperations: with POSIX locks (NFS), a Load holding its
// lock keeps it while other operations of the same process (loads, saves, the
// sweep) work on the same session: they wait for their turn instead of opening and
// closing the file under it.
func TestPOSIXLocksKeptAcrossOperations(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t)
	d.lockFile = posixLock
	d.noUnnamed.Store(true)
	d.noExchange.Store(true)
	data := fixture(t, "session3-login.pkl")
	require.NoError(t, d.Save(ctx, "s", data))
	path := filepath.Join(d.Dir(), "s")

	parked, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	d.testHook = func(event string) {
		if event == "load-locked" {
			once.Do(func() { close(parked); <-release })
		}
	}
	first := make(chan error, 1)
	go func() {
		_, err := d.Load(ctx, "s")
		first <- err
	}()
	<-parked
	require.True(t, lockedOutside(t, path, "posix"), "the parked load holds its lock")

	var wg sync.WaitGroup
	results := make(chan error, 3)
	wg.Add(2)
	go func() {
		defer wg.Done()
		got, err := d.Load(ctx, "s")
		if err == nil && string(got) != string(data) {
			err = assert.AnError
		}
		results <- err
	}()
	go func() { defer wg.Done(); results <- d.Save(ctx, "s", data) }()
	deleted, remaining, err := d.DeleteIdle(-time.Hour) // everything counts as idle
	require.NoError(t, err)
	assert.Equal(t, [2]int{0, 1}, [2]int{deleted, remaining}, "the sweep keeps a session in use by this process")
	time.Sleep(50 * time.Millisecond) // the other operations are waiting for their turn
	assert.True(t, lockedOutside(t, path, "posix"), "no descriptor of the file was closed under the parked load")
	close(release)
	require.NoError(t, <-first)
	wg.Wait()
	close(results)
	for err := range results {
		assert.NoError(t, err)
	}
	assert.Equal(t, []string{"s"}, entries(t, d.Dir()))
}

// TestNFSSillyRenamedFiles: the ".nfsXXXX" files an NFS client leaves for files
// renamed over or unlinked while open are never taken for sessions: not listed, not
// loadable, neither swept nor counted by DeleteIdle.
func TestNFSSillyRenamedFiles(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t)
	data := fixture(t, "session3-login.pkl")
	require.NoError(t, d.Save(ctx, "s", data))
	silly := []string{".nfs000000000012a3b400000001", ".nfs8f3a2c0100000002"}
	for _, name := range silly {
		path := filepath.Join(d.Dir(), name)
		require.NoError(t, os.WriteFile(path, data, 0o600))
		backdate(t, path, 48*time.Hour)
	}
	backdate(t, filepath.Join(d.Dir(), "s"), 48*time.Hour)
	ids, err := d.IDs(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"s"}, ids)
	for _, name := range silly {
		_, err := d.Load(ctx, name)
		assert.ErrorIs(t, err, ErrInvalidID)
		ok, err := d.Has(ctx, name)
		assert.ErrorIs(t, err, ErrInvalidID)
		assert.False(t, ok)
	}
	deleted, remaining, err := d.DeleteIdle(time.Hour)
	require.NoError(t, err)
	assert.Equal(t, [2]int{1, 0}, [2]int{deleted, remaining}, "only the session is swept and counted")
	assert.ElementsMatch(t, silly, entries(t, d.Dir()))
}
