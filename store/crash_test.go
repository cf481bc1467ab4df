package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// childEnv names the environment variable that makes the test binary act as a child
// process for the crash tests instead of running tests; namedEnv makes the child save
// through named temporary files, as where there is no O_TMPFILE.
const (
	childEnv   = "QXBRIDGE_STORE_TEST_CHILD"
	namedEnv   = "QXBRIDGE_STORE_TEST_NAMED"
	noSyncEnv  = "QXBRIDGE_STORE_TEST_NOSYNC"
	inPlaceEnv = "QXBRIDGE_STORE_TEST_INPLACE" // WithInPlace, with sessions of a page or less
	fsizeEnv   = "QXBRIDGE_STORE_TEST_FSIZE"   // the "diskfull" child's file size limit, in bytes
)

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(runChild(role, os.Args[len(os.Args)-2:]))
	}
	os.Exit(m.Run())
}

// The crash payloads: large enough that a save takes a while, different in content
// and length, both whole pickles.
var (
	crashOld = bytesPickle(3<<20, 'o')
	crashNew = bytesPickle(5<<20, 'n')
)

// runChild is the child's main: "saveloop DIR ID" saves crashNew and crashOld in turn
// until killed; "diskfull DIR ID" saves under a file size limit too small for the
// session.
func runChild(role string, args []string) int {
	dir, id := args[0], args[1]
	switch role {
	case "user":
		return userOp(dir, id)
	case "hold":
		return holdLock(dir, id)
	case "trylock":
		return tryLock(dir, id)
	}
	// WithSync: each save then spends most of its time with its temporary file
	// written but not yet swapped in, where a kill does the most harm. Without it
	// (noSyncEnv), the swap and the unlink after it take a larger share.
	var opts []Option
	inPlace := os.Getenv(inPlaceEnv) != ""
	switch {
	case inPlace:
		opts = append(opts, WithInPlace())
	case os.Getenv(noSyncEnv) == "":
		opts = append(opts, WithSync())
	}
	oldData, newData := crashOld, crashNew
	if inPlace {
		oldData, newData = inPlaceOld, inPlaceNew
	}
	d, err := Open(dir, opts...)
	if err != nil {
		fmt.Println("open:", err)
		return 1
	}
	if os.Getenv(namedEnv) != "" {
		d.noUnnamed.Store(true)
	}
	ctx := context.Background()
	switch role {
	case "save":
		fmt.Println("saved:", d.Save(ctx, id, newData))
		return 0
	case "saveloop":
		fmt.Println("saving")
		for i := 0; ; i++ {
			payload := newData
			if i%2 == 1 {
				payload = oldData
			}
			if err := d.Save(ctx, id, payload); err != nil {
				fmt.Println("save:", err)
				return 1
			}
		}
	case "diskfull":
		// Writes past 1 MiB fail with EFBIG (Go ignores SIGXFSZ), as they would with
		// ENOSPC on a full disk. In place, the limit is 100 bytes: a write over the
		// session's first bytes is cut short there, and the next one fails.
		limit := uint64(1 << 20)
		if inPlace {
			limit = 100
		}
		if n, err := strconv.ParseUint(os.Getenv(fsizeEnv), 10, 64); err == nil {
			limit = n
		}
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: limit, Max: limit}); err != nil {
			fmt.Println("setrlimit:", err)
			return 1
		}
		err := d.Save(ctx, id, newData)
		fmt.Println("save:", err)
		fmt.Println("unavailable:", errors.Is(err, ErrUnavailable))
		return 0
	case "emfile":
		// No descriptor left to open the session file with.
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: 0, Max: 1 << 10}); err != nil {
			fmt.Println("setrlimit:", err)
			return 1
		}
		_, err := d.Load(ctx, id)
		fmt.Printf("load: %v\nunavailable: %v notfound: %v emfile: %v\n", err,
			errors.Is(err, ErrUnavailable), errors.Is(err, ErrNotFound), errors.Is(err, unix.EMFILE))
		err = d.Save(ctx, id, crashNew)
		fmt.Printf("save: %v\nunavailable: %v notfound: %v emfile: %v\n", err,
			errors.Is(err, ErrUnavailable), errors.Is(err, ErrNotFound), errors.Is(err, unix.EMFILE))
		return 0
	}
	return 2
}

func child(t *testing.T, role, dir, id string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$", dir, id)
	cmd.Env = append(append(os.Environ(), childEnv+"="+role), env...)
	return cmd
}

// startSaveLoop starts a child saving id in dir in a loop ("saveloop") and returns
// once it has begun.
func startSaveLoop(t *testing.T, dir, id string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := child(t, "saveloop", dir, id, env...)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "saving\n", line)
	return cmd
}

// holdsUnnamed reports whether process pid has a file without a name open in dir: a
// save's file, not linked yet.
func holdsUnnamed(pid int, dir string) bool {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, _ := os.ReadDir(fdDir)
	for _, fd := range fds {
		target, _ := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if strings.HasPrefix(target, dir+"/#") && strings.HasSuffix(target, " (deleted)") {
			return true
		}
	}
	return false
}

// TestKillDuringSave (proof 4): a Go process killed with SIGKILL at a random moment of
// saving, again and again, always leaves a session file that loads whole, old or new
// (in Go and in CPython). Every other kill hits a process saving through named
// temporary files (as where there is no O_TMPFILE): the temporary files it leaves
// are never listed or loaded, and DeleteIdle removes them once they are stale. A
// process saving through files without a name leaves one only when killed between
// naming its file and unlinking the one it swapped out. Half the kills hit saves
// with WithSync, half without.
func TestKillDuringSave(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t)
	require.NoError(t, d.Save(ctx, "victim", crashOld))
	deadline := time.Now().Add(2500 * time.Millisecond)
	kills, leftovers, unnamedKills, unnamedLeftovers := 0, 0, 0, 0
	for kills < 10 || time.Now().Before(deadline) {
		named := kills%2 == 1
		var env []string
		if named {
			env = append(env, namedEnv+"=1")
		}
		if kills%4 >= 2 {
			env = append(env, noSyncEnv+"=1")
		}
		cmd := startSaveLoop(t, d.Dir(), "victim", env...)
		time.Sleep(time.Duration(rand.IntN(40_000)) * time.Microsecond)
		if !named && holdsUnnamed(cmd.Process.Pid, d.Dir()) {
			unnamedKills++ // most likely killed with the file still unnamed
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		err := cmd.Wait()
		require.Error(t, err, "the child only ends when killed")
		assert.Contains(t, err.Error(), "killed")
		kills++

		got, err := d.Load(ctx, "victim")
		require.NoError(t, err, "after kill %d", kills)
		if !assert.True(t, string(got) == string(crashOld) || string(got) == string(crashNew),
			"after kill %d the session is neither the old nor the new one (%d bytes)", kills, len(got)) {
			break
		}
		for _, name := range entries(t, d.Dir()) {
			if name != "victim" {
				require.True(t, strings.HasPrefix(name, tempPrefix), "unexpected file %q", name)
				if named {
					leftovers++
				} else {
					unnamedLeftovers++ // killed between link and rename
				}
				require.NoError(t, os.Remove(filepath.Join(d.Dir(), name)))
			}
		}
	}
	t.Logf("%d kills: of the %d with named temporary files, %d left one (killed mid-save); of the others, %d had an unnamed file open just before the kill and %d left a temporary file",
		kills, kills/2, leftovers, unnamedKills, unnamedLeftovers)
	assert.Positive(t, leftovers, "some kills landed in the middle of a save with a named temporary file")
	if !nfsLocks { // no files without a name on NFS
		assert.Positive(t, unnamedKills, "some kills landed in the middle of a save with an unnamed file")
	}

	// CPython loads the survivor too.
	out, err := peer(t, "load", d.Dir(), "victim").Output()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(out), "builtins.bytes "), "%s", out)

	// A leftover temporary file: never listed, never loadable as a session, swept
	// once stale.
	require.NoError(t, d.Save(ctx, "victim", crashNew))
	orphan := filepath.Join(d.Dir(), tempPrefix+"victim-leftover")
	require.NoError(t, os.WriteFile(orphan, crashNew[:1000], 0o644))
	ids, err := d.IDs(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"victim"}, ids)
	_, err = d.Load(ctx, filepath.Base(orphan))
	assert.ErrorIs(t, err, ErrInvalidID)
	_, _, err = d.DeleteIdle(time.Hour)
	require.NoError(t, err)
	assert.FileExists(t, orphan, "a fresh temporary file may belong to a save at work")
	backdate(t, orphan, 2*staleAge)
	deleted, remaining, err := d.DeleteIdle(time.Hour)
	require.NoError(t, err)
	assert.Equal(t, [2]int{0, 1}, [2]int{deleted, remaining}, "temporary files are not counted as sessions")
	assert.NoFileExists(t, orphan)
}

// saveOnFullDisk runs a "diskfull" child, which saves the session "s" in d past a
// file size limit (env sets its options), and checks that the save failed as
// ErrUnavailable and left old as the session and nothing else in the directory.
func saveOnFullDisk(t *testing.T, d *Directory, old []byte, env ...string) {
	t.Helper()
	out, err := child(t, "diskfull", d.Dir(), "s", env...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "save: store: save \"s\": write ", env)
	assert.Contains(t, string(out), "file too large", env)
	assert.Contains(t, string(out), "unavailable: true", env)
	got, err := d.Load(context.Background(), "s")
	require.NoError(t, err)
	assert.Equal(t, old, got, env)
	assert.Equal(t, []string{"s"}, entries(t, d.Dir()), env)
}

// TestDiskFullDuringSave: a save that cannot be written (the file size limit stands in
// for a full disk) fails, leaves the old session whole and leaves no file behind, with
// a file without a name and with a named temporary file.
func TestDiskFullDuringSave(t *testing.T) {
	ctx := context.Background()
	for _, env := range [][]string{nil, {namedEnv + "=1"}} {
		d := openTemp(t)
		old := fixture(t, "session3-counter-tokens.pkl")
		require.NoError(t, d.Save(ctx, "s", old))
		saveOnFullDisk(t, d, old, env...)
	}
}

// holdLock is the child's main for "hold PATH sh|ex": it takes the lock the store
// takes (flock, or POSIX locks when built with nfslocks), says "locked", and holds
// it until its standard input ends.
func holdLock(path, how string) int {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Println("open:", err)
		return 1
	}
	lock := unix.LOCK_SH
	if how == "ex" {
		lock = unix.LOCK_EX
	}
	if err := lockFileDefault(fd, lock); err != nil {
		fmt.Println("lock:", err)
		return 1
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// outsideLock makes another process hold a lock (how is "sh" or "ex") on the file
// at path until release is called. Another process, not this one: POSIX locks
// (-tags nfslocks) of one process never conflict with each other.
func outsideLock(t *testing.T, path, how string) (release func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", path, how)
	cmd.Env = append(os.Environ(), childEnv+"=hold")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "locked\n", line)
	done := false
	release = func() {
		if !done {
			done = true
			stdin.Close()
			require.NoError(t, cmd.Wait())
		}
	}
	t.Cleanup(release)
	return release
}

// tryLock is the child's main for "trylock PATH posix|flock": it tries to take
// LOCK_EX at once and says "free" or "busy".
func tryLock(path, kind string) int {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Println("open:", err)
		return 1
	}
	lock := flock
	if kind == "posix" {
		lock = posixLock
	}
	switch err := lock(fd, unix.LOCK_EX|unix.LOCK_NB); err {
	case nil:
		fmt.Println("free")
	case unix.EWOULDBLOCK:
		fmt.Println("busy")
	default:
		fmt.Println("lock:", err)
	}
	return 0
}

// lockedOutside reports whether another process finds the file at path locked with
// locks of the kind given ("posix" or "flock").
func lockedOutside(t *testing.T, path, kind string) bool {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", path, kind)
	cmd.Env = append(os.Environ(), childEnv+"=trylock")
	out, err := cmd.Output()
	require.NoError(t, err)
	switch string(out) {
	case "busy\n":
		return true
	case "free\n":
		return false
	}
	require.FailNow(t, "trylock", "%s", out)
	return false
}

// TestOutOfDescriptors: a process out of file descriptors gets ErrUnavailable (and
// EMFILE) from Load and Save, never ErrNotFound: a missing session and a session
// that cannot be read right now must not look alike.
func TestOutOfDescriptors(t *testing.T) {
	d := openTemp(t)
	require.NoError(t, d.Save(context.Background(), "s", crashOld))
	out, err := child(t, "emfile", d.Dir(), "s").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, 2, strings.Count(string(out), "unavailable: true notfound: false emfile: true"), "%s", out)
	assert.Contains(t, string(out), "too many open files")
}

// TestOpenRemovesStaleTemps: Open removes the temporary files that killed saves left
// (those of processes that no longer exist, and any older than a minute) and keeps
// those a live process may still be writing.
func TestOpenRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	staging := t.TempDir()
	gone := exec.Command("true")
	require.NoError(t, gone.Run())
	deadPID := gone.Process.Pid
	write := func(dir, name string, age time.Duration) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, crashOld[:100], 0o600))
		backdate(t, path, age)
		return path
	}
	dead := write(dir, fmt.Sprintf("%s%d-s-abc", tempPrefix, deadPID), 2*time.Second)
	deadStaged := write(staging, fmt.Sprintf("%s%d-s-def", tempPrefix, deadPID), 2*time.Second)
	old := write(dir, tempPrefix+"s-old", 2*staleAge)
	live := write(dir, fmt.Sprintf("%s%d-s-ghi", tempPrefix, os.Getppid()), 2*time.Second)
	justMade := write(dir, fmt.Sprintf("%s%d-s-jkl", tempPrefix, deadPID), 0)
	session := write(dir, "s", time.Hour)

	_, err := Open(dir, WithStagingDir(staging))
	require.NoError(t, err)
	for _, path := range []string{dead, deadStaged, old} {
		assert.NoFileExists(t, path)
	}
	for _, path := range []string{live, justMade, session} {
		assert.FileExists(t, path)
	}
}

// TestDeleteIdleKeepsASaveThatWaited: a save in another process that waits for the
// lock of a file DeleteIdle is deleting finds the file gone once it has the lock and
// saves the session anew; it never saves into the file just before the unlink and
// reports as done a save that is then lost.
func TestDeleteIdleKeepsASaveThatWaited(t *testing.T) {
	if nfsLocks {
		t.Skip("with POSIX locks (nfslocks) DeleteIdle closes the file before the unlink, as NFS needs")
	}
	for _, inPlace := range []bool{false, true} {
		t.Run(fmt.Sprintf("in place %v", inPlace), func(t *testing.T) {
			ctx := context.Background()
			d := openTemp(t)
			old, want, env := crashOld, crashNew, []string{noSyncEnv + "=1"}
			if inPlace {
				old, want, env = inPlaceOld, inPlaceNew, []string{inPlaceEnv + "=1"}
			}
			require.NoError(t, d.Save(ctx, "s", old))
			past := time.Now().Add(-time.Hour)
			require.NoError(t, os.Chtimes(filepath.Join(d.Dir(), "s"), past, past))
			var cmd *exec.Cmd
			var out bytes.Buffer
			d.testHook = func(event string) {
				if event != "idle-unlinking" {
					return
				}
				cmd = child(t, "save", d.Dir(), "s", env...)
				cmd.Stdout, cmd.Stderr = &out, &out
				require.NoError(t, cmd.Start())
				// Time for the child to reach the lock, and to finish its save were
				// the lock not held here.
				time.Sleep(300 * time.Millisecond)
			}
			deleted, _, err := d.DeleteIdle(time.Minute)
			require.NoError(t, err)
			assert.Equal(t, 1, deleted)
			require.NotNil(t, cmd, "DeleteIdle reached the unlink")
			require.NoError(t, cmd.Wait(), out.String())
			assert.Contains(t, out.String(), "saved: <nil>")
			got, err := d.Load(ctx, "s")
			require.NoError(t, err, "a save reported as done is not lost")
			assert.Equal(t, want, got)
		})
	}
}
