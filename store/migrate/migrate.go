// Package migrate copies sessions from one store to another — a session directory
// to PostgreSQL when a deployment grows past one host, or back — idempotently and
// resumably.
//
//	from, _ := store.Open("/var/lib/app/sessions")
//	to, _ := pgstore.Open(ctx, "postgres://app@db/app")
//	counts, err := migrate.Copy(ctx, from, to, migrate.Options{})
//
// Copy lists the source's sessions and, for each one, saves its bytes (the pickle,
// unchanged) into the destination unless the destination already holds the same
// bytes. Running it again copies nothing that is already there, so a copy that was
// interrupted (a database restart, a cancelled context) is finished by running it
// again; sessions changed at the source since are copied anew.
package migrate

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/qxbridge/qxbridge/store"
)

// Source is a store to copy from: *store.Directory and *pgstore.Store are.
type Source interface {
	IDs(ctx context.Context) ([]string, error)
	Load(ctx context.Context, id string) ([]byte, error)
}

// Destination is a store to copy into: *store.Directory and *pgstore.Store are.
type Destination interface {
	Load(ctx context.Context, id string) ([]byte, error)
	Save(ctx context.Context, id string, data []byte) error
}

// Options configure Copy.
type Options struct {
	// KeepExisting leaves a session that the destination holds with other bytes as
	// it is (counted as Kept) instead of replacing it with the source's: for a copy
	// made while the destination already serves requests.
	KeepExisting bool
	// Progress, if set, is called after each session with the counts so far.
	Progress func(Counts)
}

// Counts says what Copy did with each session of the source.
type Counts struct {
	Listed    int // sessions the source listed
	Copied    int // saved into the destination
	Unchanged int // the destination held the same bytes already
	Kept      int // the destination held other bytes, kept (Options.KeepExisting)
	Vanished  int // deleted from the source between the listing and the load
	Failed    int // could not be read from the source (see the returned error)
}

func (c Counts) String() string {
	return fmt.Sprintf("%d listed: %d copied, %d unchanged, %d kept, %d vanished, %d failed",
		c.Listed, c.Copied, c.Unchanged, c.Kept, c.Vanished, c.Failed)
}

// maxReported bounds how many unreadable sessions the returned error names.
const maxReported = 10

// Copy copies every session of from into to (see the package documentation) and
// returns what it did. A session that cannot be read from the source (an empty or
// cut-short file, one too large) is skipped and counted as Failed; the returned
// error then names the first ones. Any failure of the destination, or of listing
// the source, stops the copy at once with the counts so far: run it again to go on.
func Copy(ctx context.Context, from Source, to Destination, opts Options) (Counts, error) {
	var c Counts
	ids, err := from.IDs(ctx)
	if err != nil {
		return c, fmt.Errorf("migrate: list the source's sessions: %w", err)
	}
	c.Listed = len(ids)
	var failed []error
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return c, fmt.Errorf("migrate: %w (%v)", err, c)
		}
		data, err := from.Load(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			c.Vanished++
			continue
		case isOutage(err):
			return c, fmt.Errorf("migrate: %w (%v)", err, c)
		case err != nil:
			c.Failed++
			if len(failed) < maxReported {
				failed = append(failed, err)
			}
			continue
		}
		have, err := to.Load(ctx, id)
		switch {
		case err == nil && bytes.Equal(have, data):
			c.Unchanged++
		case err == nil && opts.KeepExisting:
			c.Kept++
		case err == nil || errors.Is(err, store.ErrNotFound) || !isOutage(err):
			// Missing, different, or unreadable at the destination (an empty
			// file, say): the source's bytes replace it.
			if err := to.Save(ctx, id, data); err != nil {
				return c, fmt.Errorf("migrate: %w (%v)", err, c)
			}
			c.Copied++
		default:
			return c, fmt.Errorf("migrate: %w (%v)", err, c)
		}
		if opts.Progress != nil {
			opts.Progress(c)
		}
	}
	if len(failed) > 0 {
		return c, fmt.Errorf("migrate: %d sessions could not be read from the source and were not copied: %w",
			c.Failed, errors.Join(failed...))
	}
	return c, nil
}

// isOutage reports an error that says the store cannot answer now, rather than
// anything about the session.
func isOutage(err error) bool {
	return errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrLockTimeout) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
