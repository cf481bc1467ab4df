package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// Ping reports whether the session directory can be used: it exists and is a
// directory. An error wraps ErrUnavailable.
func (d *Directory) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fi, err := os.Stat(d.dir)
	switch {
	case err != nil:
		return fmt.Errorf("store: %w (%w)", err, ErrUnavailable)
	case !fi.IsDir():
		return fmt.Errorf("store: %s: not a directory (%w)", d.dir, ErrUnavailable)
	}
	return nil
}

// ModTime returns when session id was last saved: its file's modification time,
// which is what DeleteIdle and session3's delete_old_sessions go by. A missing
// session gives ErrNotFound.
func (d *Directory) ModTime(ctx context.Context, id string) (time.Time, error) {
	if err := ValidID(id); err != nil {
		return time.Time{}, opError("stat", id, err)
	}
	if err := ctx.Err(); err != nil {
		return time.Time{}, opError("stat", id, err)
	}
	fi, err := os.Stat(d.path(id))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return time.Time{}, opError("stat", id, ErrNotFound)
	case err != nil:
		return time.Time{}, opError("stat", id, err)
	}
	return fi.ModTime(), nil
}
