package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// FuzzStoreValidID: ValidID accepts exactly the ids of the pattern; an accepted id names
// a file directly inside the directory (round trip), and a refused one reaches no
// filesystem call.
func FuzzStoreValidID(f *testing.F) {
	f.Add("kXq3_Zr8-aQ")
	f.Add("../x")
	d, err := Open(f.TempDir())
	require.NoError(f, err)
	ctx := context.Background()
	data := []byte("\x80\x04N.")
	f.Fuzz(func(t *testing.T, id string) {
		err := ValidID(id)
		if idPattern.MatchString(id) != (err == nil) {
			t.Fatalf("ValidID(%q) = %v, pattern says %v", id, err, idPattern.MatchString(id))
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidID) {
				t.Fatalf("ValidID(%q) = %v, not ErrInvalidID", id, err)
			}
			if err := d.Save(ctx, id, data); !errors.Is(err, ErrInvalidID) {
				t.Fatalf("Save(%q) = %v", id, err)
			}
			if _, err := d.Load(ctx, id); !errors.Is(err, ErrInvalidID) {
				t.Fatalf("Load(%q) = %v", id, err)
			}
			return
		}
		if filepath.Dir(filepath.Join(d.Dir(), id)) != d.Dir() {
			t.Fatalf("id %q leaves the directory", id)
		}
		if err := d.Save(ctx, id, data); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(d.Dir(), id)); err != nil {
			t.Fatalf("Save(%q) did not write the file named by the id: %v", id, err)
		}
		if got, err := d.Load(ctx, id); err != nil || string(got) != string(data) {
			t.Fatalf("Load(%q) = %q, %v", id, got, err)
		}
		if err := d.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
		if names, _ := os.ReadDir(d.Dir()); len(names) != 0 {
			t.Fatalf("entries left after the round trip of %q: %v", id, names)
		}
	})
}

// FuzzStoreLoad: whatever a session file holds, Load returns exactly those bytes when
// they look complete and otherwise reports ErrEmpty or ErrTruncated; it never panics,
// never returns other bytes.
func FuzzStoreLoad(f *testing.F) {
	f.Add([]byte("\x80\x04\x95\x02\x00\x00\x00\x00\x00\x00\x00N."))
	f.Add([]byte{})
	d, err := Open(f.TempDir(), WithPartialWait(0), WithMaxSize(1<<20))
	require.NoError(f, err)
	path := filepath.Join(d.Dir(), "s")
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, content []byte) {
		if len(content) > 1<<20 {
			return
		}
		// A new file each time: truncating one makes ext4 write it out first.
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := d.Load(ctx, "s")
		switch {
		case len(content) == 0:
			if !errors.Is(err, ErrEmpty) {
				t.Fatalf("empty file: %v", err)
			}
		case LooksComplete(content):
			if err != nil || string(got) != string(content) {
				t.Fatalf("Load = %d bytes, %v; want the %d bytes of the file", len(got), err, len(content))
			}
			if content[0] == opProto && content[len(content)-1] != opStop {
				t.Fatalf("a pickle without STOP passed as complete")
			}
		default:
			if !errors.Is(err, ErrTruncated) || got != nil {
				t.Fatalf("incomplete file: %d bytes, %v", len(got), err)
			}
		}
	})
}
