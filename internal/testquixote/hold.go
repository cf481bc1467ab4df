package testquixote

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Hold pauses a qxsite page for a test (the pages /sleep and /slowcounter take its
// fields; see hold() in testdata/py/sites/qxsite/root.py): the page creates the file
// Started when it runs, waits until the file Gate exists (at most 30 s), and creates
// the file Done just before it answers. A test thus acts while a worker is inside a
// page, and learns whether the page had finished at some moment, without timing.
type Hold struct{ Started, Gate, Done string }

// NewHold returns a Hold whose files lie in a fresh t.TempDir(). If the page started
// and the test did not let it go, the test's cleanup does, and waits for the page to
// finish.
func NewHold(t testing.TB) Hold {
	t.Helper()
	dir := t.TempDir()
	h := Hold{filepath.Join(dir, "started"), filepath.Join(dir, "gate"), filepath.Join(dir, "done")}
	t.Cleanup(func() {
		if h.IsStarted() && !h.IsDone() {
			h.Open(t)
			for deadline := time.Now().Add(10 * time.Second); !h.IsDone() && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
		}
	})
	return h
}

// Query returns the query string that pauses a page with h.
func (h Hold) Query() string {
	return url.Values{"started": {h.Started}, "gate": {h.Gate}, "done": {h.Done}}.Encode()
}

// Open lets the page go on.
func (h Hold) Open(t testing.TB) {
	t.Helper()
	if err := os.WriteFile(h.Gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// IsStarted reports whether the page has started; IsDone, whether it has finished.
func (h Hold) IsStarted() bool { return exists(h.Started) }
func (h Hold) IsDone() bool    { return exists(h.Done) }

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
