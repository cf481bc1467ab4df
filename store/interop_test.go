package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// soak is how long each concurrency test runs its peers.
const soak = "2.5"

// bytesPickle returns a protocol-4 pickle of a bytes object of n bytes of fill, as
// CPython writes one over 64 KiB: PROTO, then BINBYTES outside any frame, then a
// frame holding MEMOIZE and STOP.
func bytesPickle(n int, fill byte) []byte {
	p := []byte{0x80, 4, 'B', 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(p[3:], uint32(n))
	p = append(p, make([]byte, n)...)
	for i := 7; i < len(p); i++ {
		p[i] = fill
	}
	return append(p, 0x95, 2, 0, 0, 0, 0, 0, 0, 0, 0x94, '.')
}

// writeExpected stores each payload as a file of dir, for a peer to read back.
func writeExpected(t testing.TB, dir string, payloads [][]byte) {
	t.Helper()
	for i, p := range payloads {
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("go%d", i)), p, 0o644))
	}
}

// readExpected reads every file of dir into a set.
func readExpected(t testing.TB, dir string) map[string]bool {
	t.Helper()
	set := map[string]bool{}
	for _, name := range entries(t, dir) {
		data, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		set[string(data)] = true
	}
	return set
}

func allFixtures(t testing.TB) (paths []string, payloads [][]byte) {
	for _, name := range fixtureNames(t) {
		paths = append(paths, testpeer.Testdata("session3", name))
		payloads = append(payloads, fixture(t, name))
	}
	return paths, payloads
}

// TestGoWriterCPythonReaders (proof 1): a Go writer saves in a loop while CPython
// readers follow session3's load steps; the readers never see an empty, cut-short,
// torn or unloadable file.
func TestGoWriterCPythonReaders(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t)
	_, payloads := allFixtures(t)
	payloads = append(payloads, bytesPickle(6000, 'm'), bytesPickle(200_000, 'L'))
	expectDir := t.TempDir()
	writeExpected(t, expectDir, payloads)
	require.NoError(t, d.Save(ctx, "shared", payloads[0]))

	var readers []*runningPeer
	for range 3 {
		readers = append(readers, startPeer(t, "read", d.Dir(), "shared", soak, expectDir))
	}
	results := make(chan string, len(readers))
	for _, r := range readers {
		go func() { results <- r.next(t, 30*time.Second) }()
	}
	saves := 0
	var reports []string
	for len(reports) < len(readers) {
		select {
		case line := <-results:
			reports = append(reports, line)
			continue
		default:
		}
		require.NoError(t, d.Save(ctx, "shared", payloads[saves%len(payloads)]))
		saves++
	}
	t.Logf("Go saves: %d; CPython readers: %s", saves, strings.Join(reports, " "))
	for _, line := range reports {
		var c map[string]int
		require.NoError(t, json.Unmarshal([]byte(line), &c), line)
		assert.Positive(t, c["loads"], line)
		assert.Positive(t, c["store_loads"], line)
		for _, bad := range []string{"empty", "eof", "torn", "unpicklable", "missing"} {
			assert.Zero(t, c[bad], "%s in %s", bad, line)
		}
	}
	assert.Greater(t, saves, len(payloads))
	assert.Equal(t, []string{"shared"}, entries(t, d.Dir()), "no temporary files left")
}

// TestCPythonWritersGoLoads (proof 2): CPython writers save in a loop with session3's
// truncate-then-lock steps while Go loads; Go returns only whole sessions that were
// saved, and no error.
//
// One writer pauses a millisecond between saves, as a worker does between requests.
// The other saves back to back: its file is whole only for the microseconds between
// one save's last write and the next save's truncation, so loads of that session may
// need many attempts; they get a longer partial wait.
func TestCPythonWritersGoLoads(t *testing.T) {
	ctx := context.Background()
	paced := openTemp(t)
	tight, err := Open(paced.Dir(), WithPartialWait(30*time.Second))
	require.NoError(t, err)
	var partial, replaced atomic.Int64
	hook := func(event string) {
		switch event {
		case "empty", "truncated":
			partial.Add(1)
		case "replaced":
			replaced.Add(1)
		}
	}
	paced.testHook, tight.testHook = hook, hook
	paths, payloads := allFixtures(t)
	// One writer per session: two session3 writers on one session tear its file
	// between themselves, whoever reads it.
	ids := []string{"paced", "tight"}
	dirs := map[string]*Directory{"paced": paced, "tight": tight}
	pauses := map[string]string{"paced": "0.001", "tight": "0"}
	expected := map[string]map[string]bool{}
	var writers []*runningPeer
	for _, id := range ids {
		require.NoError(t, paced.Save(ctx, id, payloads[0]))
		expectDir := t.TempDir()
		w := startPeer(t, append([]string{"write", paced.Dir(), id, soak, pauses[id], expectDir}, paths...)...)
		w.expect(t, "ready")
		expected[id] = readExpected(t, expectDir)
		expected[id][string(payloads[0])] = true
		writers = append(writers, w)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]map[string]int{"paced": {}, "tight": {}}
	slowest := map[string]time.Duration{}
	for g := range 4 {
		id := ids[g%len(ids)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				start := time.Now()
				data, err := dirs[id].Load(ctx, id)
				took := time.Since(start)
				if !assert.NoError(t, err) {
					return
				}
				if !assert.True(t, expected[id][string(data)], "Go loaded %d bytes that no writer saved", len(data)) {
					return
				}
				mu.Lock()
				seen[id][sha(data)]++
				slowest[id] = max(slowest[id], took)
				mu.Unlock()
			}
		}()
	}
	// The writers' soak starts now, with the loads running: a writer that started
	// saving on its own start-up could be done before a slow second start-up ended,
	// leaving the loads one file to see.
	for _, w := range writers {
		w.send(t, "start")
	}
	var reports []string
	for _, w := range writers {
		reports = append(reports, w.next(t, 30*time.Second))
	}
	stop.Store(true)
	wg.Wait()
	for _, id := range ids {
		n := 0
		for _, c := range seen[id] {
			n += c
		}
		t.Logf("%s: Go loads %d (%d distinct sessions), slowest %v", id, n, len(seen[id]), slowest[id])
		assert.Greater(t, len(seen[id]), len(payloads)/2, "loads saw many of the writer's sessions")
	}
	t.Logf("retries after meeting a file a writer had truncated: %d; CPython writers (paced, tight): %s",
		partial.Load(), strings.Join(reports, " "))
	assert.Positive(t, partial.Load(), "loads met files a writer had truncated, and waited them out")
	assert.Zero(t, replaced.Load(), "Python writers never replace the file")
}

// lockInterop runs proof 3 against d and returns what went wrong: a Go load must wait
// while a CPython process holds LOCK_EX, a CPython save must block while a Go load
// holds its read lock, and a CPython load must block while a Go save holds its lock.
//
// held is how long each side watches the other not get past its lock.
func lockInterop(t *testing.T, d *Directory, held time.Duration) (violations []string) {
	ctx := context.Background()
	login, cart := fixture(t, "session3-login.pkl"), fixture(t, "dictsession-cart.pkl")

	// CPython holds LOCK_EX; a Go load must wait for it.
	require.NoError(t, d.Save(ctx, "a", login))
	holder := startPeer(t, "hold", d.Dir(), "a", "ex")
	holder.expect(t, "locked")
	loaded := make(chan error, 1)
	go func() {
		_, err := d.Load(ctx, "a")
		loaded <- err
	}()
	select {
	case err := <-loaded:
		require.NoError(t, err)
		violations = append(violations, "a Go load returned while CPython held LOCK_EX")
		loaded = nil
	case <-time.After(held):
	}
	holder.send(t, "release")
	holder.expect(t, "released")
	if loaded != nil {
		select {
		case err := <-loaded:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			require.FailNow(t, "Go load still waiting after CPython released its lock")
		}
	}

	// A Go load holds its read lock; a CPython save must block until it is released.
	require.NoError(t, d.Save(ctx, "b", login))
	release := make(chan struct{})
	locked := make(chan struct{})
	var once sync.Once
	d.testHook = func(event string) {
		if event == "load-locked" {
			once.Do(func() { close(locked); <-release })
		}
	}
	loadedData := make(chan []byte, 1)
	go func() {
		data, err := d.Load(ctx, "b")
		assert.NoError(t, err)
		loadedData <- data
	}()
	select {
	case <-locked:
	case <-time.After(20 * time.Second):
		require.FailNow(t, "Go load never took its lock")
	}
	w := startPeer(t, "save", d.Dir(), "b", testpeer.Testdata("session3", "dictsession-cart.pkl"))
	w.expect(t, "saving")
	saved, quiet := w.quiet(held)
	if !quiet {
		violations = append(violations, fmt.Sprintf("a CPython save finished (%q) while a Go load held its lock", saved))
	}
	close(release)
	if quiet {
		saved = w.next(t, 10*time.Second)
	}
	// The save truncated the file under the Go load's lock (session3 truncates before
	// locking); the load saw that and waited for the new session.
	var data []byte
	select {
	case data = <-loadedData:
	case <-time.After(20 * time.Second):
		require.FailNow(t, "Go load did not finish")
	}
	assert.Equal(t, saved, "saved "+sha(data))
	d.testHook = nil

	// A Go save holds its lock on the file it replaces; a CPython load must wait, then
	// reads that file whole (the session as it was before the save).
	require.NoError(t, d.Save(ctx, "c", login))
	release2 := make(chan struct{})
	locked2 := make(chan struct{})
	var once2 sync.Once
	d.testHook = func(event string) {
		if event == "save-locked" {
			once2.Do(func() { close(locked2); <-release2 })
		}
	}
	savedErr := make(chan error, 1)
	go func() { savedErr <- d.Save(ctx, "c", cart) }()
	select {
	case <-locked2:
	case err := <-savedErr:
		return append(violations, fmt.Sprintf("a Go save could not take its lock: %v", err))
	case <-time.After(20 * time.Second):
		require.FailNow(t, "Go save never took its lock")
	}
	r := startPeer(t, "load", d.Dir(), "c")
	line, quiet := r.quiet(held)
	if !quiet {
		violations = append(violations, fmt.Sprintf("a CPython load returned (%q) while a Go save held its lock", line))
	}
	close(release2)
	select {
	case err := <-savedErr:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		require.FailNow(t, "Go save did not finish")
	}
	d.testHook = nil
	if quiet {
		line = r.next(t, 10*time.Second)
	}
	assert.Contains(t, []string{"session3.Session.Session " + sha(login), "session3.DictSession.DictSession " + sha(cart)}, line)
	return violations
}

// TestLockInterop (proof 3) with flock(2): no violations.
func TestLockInterop(t *testing.T) {
	assert.Empty(t, lockInterop(t, openTemp(t), 300*time.Millisecond))
}

// TestLockInteropPOSIXLocksFail shows that proof 3 catches a store using POSIX
// record locks (fcntl F_SETLK), which Python's fcntl.flock does not see on Linux.
func TestLockInteropPOSIXLocksFail(t *testing.T) {
	if nfsLocks {
		t.Skip("built with nfslocks: the Python peers take POSIX locks too")
	}
	d := openTemp(t)
	d.lockFile = posixLock
	// A long watch: the violations end it early, and a slow CPython start must not
	// hide them.
	v := lockInterop(t, d, 5*time.Second)
	t.Logf("violations with POSIX record locks: %q", v)
	require.GreaterOrEqual(t, len(v), 2)
	assert.Equal(t, "a Go load returned while CPython held LOCK_EX", v[0])
	assert.Contains(t, v[1], "a CPython save finished")
}

// TestHostileIDsAndSymlinks (proof 5): ids that are not session ids are refused before
// any filesystem call, and a session name taken by a link, a directory or a FIFO is
// refused without touching anything outside the directory.
func TestHostileIDsAndSymlinks(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	d, err := Open(filepath.Join(base, "sessions"), WithCreate())
	require.NoError(t, err)
	data := fixture(t, "session3-login.pkl")
	secret := filepath.Join(base, "secret")
	require.NoError(t, os.WriteFile(secret, []byte("outside the store"), 0o600))
	snapshot := func() map[string]string {
		files := map[string]string{}
		require.NoError(t, filepath.Walk(base, func(p string, fi os.FileInfo, err error) error {
			require.NoError(t, err)
			files[p] = fmt.Sprintf("%v %d %v", fi.Mode(), fi.Size(), fi.ModTime())
			return nil
		}))
		return files
	}
	before := snapshot()
	for _, id := range []string{"", ".", "..", "../secret", "../../etc/passwd", "/etc/passwd", "a/b", "sessions/../secret",
		"a\x00b", "\x00", ".hidden", tempPrefix + "x-1", "a.b", "a b", "é", "a\nb", strings.Repeat("A", MaxIDLength+1)} {
		_, err := d.Load(ctx, id)
		assert.ErrorIs(t, err, ErrInvalidID, "load %q", id)
		assert.ErrorIs(t, d.Save(ctx, id, data), ErrInvalidID, "save %q", id)
		assert.ErrorIs(t, d.Delete(ctx, id), ErrInvalidID, "delete %q", id)
		_, err = d.Has(ctx, id)
		assert.ErrorIs(t, err, ErrInvalidID, "has %q", id)
	}
	assert.Equal(t, before, snapshot(), "hostile ids touched nothing")

	// Names of sessions taken by a link to a file outside, a link to a directory, a
	// dangling link, a directory and a FIFO.
	dir := d.Dir()
	require.NoError(t, os.Symlink(secret, filepath.Join(dir, "linked")))
	require.NoError(t, os.Symlink(base, filepath.Join(dir, "linkdir")))
	require.NoError(t, os.Symlink(filepath.Join(base, "nothing"), filepath.Join(dir, "dangling")))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "adir"), 0o755))
	require.NoError(t, unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	before = snapshot()
	for _, id := range []string{"linked", "linkdir", "dangling", "adir", "fifo"} {
		_, err := d.Load(ctx, id)
		assert.ErrorIs(t, err, ErrNotRegular, "load %s", id)
		assert.ErrorIs(t, d.Save(ctx, id, data), ErrNotRegular, "save %s", id)
		assert.ErrorIs(t, d.Delete(ctx, id), ErrNotRegular, "delete %s", id)
		ok, err := d.Has(ctx, id)
		assert.ErrorIs(t, err, ErrNotRegular, "has %s", id)
		assert.False(t, ok)
	}
	assert.Equal(t, before, snapshot(), "refused without writing, creating or removing anything")
	ids, err := d.IDs(ctx)
	require.NoError(t, err)
	assert.Empty(t, ids)
	for _, name := range []string{"linked", "linkdir", "dangling", "adir", "fifo"} {
		backdate(t, filepath.Join(dir, name), 24*time.Hour)
	}
	before = snapshot()
	deleted, remaining, err := d.DeleteIdle(time.Minute)
	require.NoError(t, err)
	assert.Equal(t, [2]int{0, 0}, [2]int{deleted, remaining})
	assert.Equal(t, before, snapshot(), "nothing was followed, written, or removed")
	got, err := os.ReadFile(secret)
	require.NoError(t, err)
	assert.Equal(t, "outside the store", string(got))
}

// TestPythonWriterBehindGoSave: a CPython save that truncates the file while a Go save
// holds its lock waits, then writes into the file the Go save has replaced. Its bytes
// are lost, as if it had saved just before Go; the session file is Go's, whole, for
// both sides.
func TestPythonWriterBehindGoSave(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t)
	login, cart := fixture(t, "session3-login.pkl"), fixture(t, "dictsession-cart.pkl")
	require.NoError(t, d.Save(ctx, "s", login))
	locked, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	d.testHook = func(event string) {
		if event == "save-locked" {
			once.Do(func() { close(locked); <-release })
		}
	}
	saved := make(chan error, 1)
	go func() { saved <- d.Save(ctx, "s", cart) }()
	<-locked
	w := startPeer(t, "slowsave", d.Dir(), "s", testpeer.Testdata("session3", "quixote-session.pkl"), "0")
	w.expect(t, "truncated") // the old file is empty now, and the writer waits for LOCK_EX
	if line, quiet := w.quiet(300 * time.Millisecond); !quiet {
		t.Fatalf("the CPython save went past the Go save's lock: %q", line)
	}
	close(release)
	require.NoError(t, <-saved)
	assert.True(t, strings.HasPrefix(w.next(t, 10*time.Second), "saved "))
	d.testHook = nil

	got, err := d.Load(ctx, "s")
	require.NoError(t, err)
	assert.Equal(t, cart, got)
	out, err := peer(t, "load", d.Dir(), "s").Output()
	require.NoError(t, err)
	assert.Equal(t, "session3.DictSession.DictSession "+sha(cart), strings.TrimSpace(string(out)))
}
