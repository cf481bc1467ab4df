package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/qxbridge/qxbridge/internal/pytext"
	"github.com/qxbridge/qxbridge/quixote"
	"github.com/qxbridge/qxbridge/store"
)

// adminLocker returns the lock the administration commands take a session's turn
// with: the store's own when it has one (a database's advisory locks), else the lock
// directory the gateways of this host use.
func adminLocker(st quixote.Store, sessionsDir, lockDir string) (SessionLocker, error) {
	if l, ok := st.(SessionLocker); ok {
		return l, nil
	}
	return OpenLockDir(lockDir, sessionsDir)
}

// inTurn runs f holding session id's turn among the gateways, waiting for a request
// in flight to finish (at most DefaultOrderWait).
func inTurn(ctx context.Context, l SessionLocker, id string, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, DefaultOrderWait)
	defer cancel()
	unlock, err := l.Lock(ctx, id)
	if err != nil {
		return fmt.Errorf("session %s: waiting for its requests in flight: %w", id, err)
	}
	defer unlock()
	return f()
}

// deleteUser deletes every session whose user is name (as Python's str() shows it),
// each in its turn: the user is logged out on every device, Go and Python alike.
func deleteUser(ctx context.Context, st quixote.IterableStore, l SessionLocker, name string, stdout io.Writer) error {
	ids, err := st.IDs(ctx)
	if err != nil {
		return err
	}
	deleted, failed := 0, 0
	var firstErr error
	for _, id := range ids {
		err := inTurn(ctx, l, id, func() error {
			data, err := st.Load(ctx, id)
			if err != nil {
				return err
			}
			s, err := quixote.Decode(data)
			if err != nil || s.User() == nil || pytext.Str(s.User()) != name {
				return errSkip // not a session of name's (or not a session at all)
			}
			if err := st.Delete(ctx, id); err != nil {
				return err
			}
			deleted++
			fmt.Fprintf(stdout, "deleted %s\n", id)
			return nil
		})
		switch {
		case err == nil, errors.Is(err, errSkip), errors.Is(err, store.ErrNotFound):
		default:
			failed++
			if firstErr == nil {
				firstErr = sessionErr(id, err)
			}
		}
	}
	fmt.Fprintf(stdout, "deleted %d sessions of user %s\n", deleted, name)
	if failed > 0 {
		return fmt.Errorf("%d sessions could not be checked or deleted; the first: %w", failed, firstErr)
	}
	return nil
}

var errSkip = errors.New("skipped")
