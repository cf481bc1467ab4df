package migrate_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/qxbridge/qxbridge/internal/testpg"
	"github.com/qxbridge/qxbridge/store"
	"github.com/qxbridge/qxbridge/store/migrate"
	"github.com/qxbridge/qxbridge/store/pgstore"
)

// sessionDir returns a session directory holding the session3 fixtures (real
// session3 files), each under an id of its own, and the files' bytes by id.
func sessionDir(t *testing.T) (*store.Directory, map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	names, err := filepath.Glob(testpeer.Testdata("session3", "*.pkl"))
	require.NoError(t, err)
	require.NotEmpty(t, names)
	want := map[string][]byte{}
	for i, name := range names {
		data, err := os.ReadFile(name)
		require.NoError(t, err)
		id := "sess" + string(rune('A'+i))
		require.NoError(t, os.WriteFile(filepath.Join(dir, id), data, 0o600))
		want[id] = data
	}
	d, err := store.Open(dir)
	require.NoError(t, err)
	return d, want
}

func TestCopyToPostgresAndBack(t *testing.T) {
	ctx := context.Background()
	srv := testpg.Start(t)
	from, want := sessionDir(t)
	to, err := pgstore.Open(ctx, srv.DSN)
	require.NoError(t, err)
	defer to.Close()

	// Interrupted after two sessions (as by a restart), then run again: the second
	// run copies the rest and nothing twice.
	cctx, cancel := context.WithCancel(ctx)
	c, err := migrate.Copy(cctx, from, to, migrate.Options{Progress: func(c migrate.Counts) {
		if c.Copied == 2 {
			cancel()
		}
	}})
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 2, c.Copied)
	c, err = migrate.Copy(ctx, from, to, migrate.Options{})
	require.NoError(t, err)
	assert.Equal(t, migrate.Counts{Listed: len(want), Copied: len(want) - 2, Unchanged: 2}, c)
	c, err = migrate.Copy(ctx, from, to, migrate.Options{})
	require.NoError(t, err)
	assert.Equal(t, migrate.Counts{Listed: len(want), Unchanged: len(want)}, c, "a second run copies nothing")
	for id, data := range want {
		got, err := to.Load(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, data, got, id)
	}

	// A session changed at the source is copied again; with KeepExisting one the
	// destination changed is kept.
	require.NoError(t, from.Save(ctx, "sessA", []byte("changed at the source")))
	require.NoError(t, to.Save(ctx, "sessB", []byte("changed at the destination")))
	c, err = migrate.Copy(ctx, from, to, migrate.Options{KeepExisting: true})
	require.NoError(t, err)
	assert.Equal(t, migrate.Counts{Listed: len(want), Kept: 2, Unchanged: len(want) - 2}, c)
	c, err = migrate.Copy(ctx, from, to, migrate.Options{})
	require.NoError(t, err)
	assert.Equal(t, migrate.Counts{Listed: len(want), Copied: 2, Unchanged: len(want) - 2}, c)
	want["sessA"] = []byte("changed at the source")

	// And back into a new directory: the files are the bytes session3 wrote.
	back, err := store.Open(t.TempDir())
	require.NoError(t, err)
	c, err = migrate.Copy(ctx, to, back, migrate.Options{})
	require.NoError(t, err)
	assert.Equal(t, migrate.Counts{Listed: len(want), Copied: len(want)}, c)
	for id, data := range want {
		got, err := os.ReadFile(filepath.Join(back.Dir(), id))
		require.NoError(t, err)
		assert.Equal(t, data, got, id)
	}
}

func TestCopySkipsUnreadableAndStopsOnOutage(t *testing.T) {
	ctx := context.Background()
	srv := testpg.Start(t)
	from, want := sessionDir(t)
	// The remains of a crashed session3 writer: an empty file.
	require.NoError(t, os.WriteFile(filepath.Join(from.Dir(), "crashed"), nil, 0o600))
	from, err := store.Open(from.Dir(), store.WithPartialWait(0))
	require.NoError(t, err)
	to, err := pgstore.Open(ctx, srv.DSN)
	require.NoError(t, err)
	defer to.Close()

	c, err := migrate.Copy(ctx, from, to, migrate.Options{})
	require.ErrorIs(t, err, store.ErrEmpty)
	assert.Equal(t, migrate.Counts{Listed: len(want) + 1, Copied: len(want), Failed: 1}, c)
	has, err := to.Has(ctx, "crashed")
	require.NoError(t, err)
	assert.False(t, has)

	srv.Stop(t)
	c, err = migrate.Copy(ctx, from, to, migrate.Options{})
	require.ErrorIs(t, err, store.ErrUnavailable)
	assert.Zero(t, c.Copied+c.Unchanged)
	srv.Start(t)
	c, err = migrate.Copy(ctx, from, to, migrate.Options{})
	require.ErrorIs(t, err, store.ErrEmpty)
	assert.Equal(t, migrate.Counts{Listed: len(want) + 1, Unchanged: len(want), Failed: 1}, c)
}
