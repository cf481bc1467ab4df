package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/qxbridge/qxbridge/internal/pytext"
	"github.com/qxbridge/qxbridge/quixote"
	"github.com/qxbridge/qxbridge/store"
)

// adminLocker returns the lock the administration commands take a session's turn
// with: the store's own when it has one (a database's advisory locks), else the lock
// directory the gateways of this host use. That directory is never created here: a
// directory the running gateways do not use would order nothing, so a missing one is
// refused with what to pass instead (defaulted: no lock directory was configured).
func adminLocker(st quixote.Store, sessionsDir, lockDir string, defaulted bool) (SessionLocker, error) {
	if l, ok := st.(SessionLocker); ok {
		return l, nil
	}
	d, err := openLockDir(lockDir, sessionsDir, false)
	switch {
	case err == nil:
		return d, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	case defaulted:
		return nil, fmt.Errorf("no lock directory given, and the default %s does not exist: pass the running gateways' lock directory with -order-lock-dir DIR (dist/gateway.toml uses /run/qxbridge/locks), or their configuration with -config FILE", lockDir)
	}
	return nil, fmt.Errorf("lock directory %s does not exist: set and delete take a session's turn in the running gateways' lock directory and never create one; pass the one the gateways use (-order-lock-dir DIR, or -config FILE), or start a gateway first", lockDir)
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

// deleteUser deletes every session whose user is name (env.userName's name for it,
// Config.UserName), each in its turn: the user is logged out on every device, Go and
// Python alike. A session it cannot compare (its file does not decode, or its user is
// set but has no name by the rule) is reported and makes it fail: it may be one of
// the user's.
func deleteUser(ctx context.Context, env sessionsEnv, st quixote.IterableStore, l SessionLocker, name string, stdout io.Writer) error {
	ids, err := st.IDs(ctx)
	if err != nil {
		return err
	}
	deleted, failed, unknown := 0, 0, 0
	var firstErr error
	for _, id := range ids {
		err := inTurn(ctx, l, id, func() error {
			data, err := st.Load(ctx, id)
			if err != nil {
				return err
			}
			s, err := quixote.Decode(data, env.classes...)
			if err != nil {
				return fmt.Errorf("%w: %w", errUncompared, err)
			}
			switch user := env.userName(s); {
			case user == "" && quixote.Truthy(s.User()):
				return fmt.Errorf("%w: its user %s has no name (see Config.UserName)", errUncompared, pytext.Repr(s.User()))
			case user != name:
				return errSkip
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
		case errors.Is(err, errUncompared):
			unknown++
			fmt.Fprintf(stdout, "could not compare %s: %v\n", id, err)
		default:
			failed++
			if firstErr == nil {
				firstErr = sessionErr(id, err)
			}
		}
	}
	fmt.Fprintf(stdout, "deleted %d sessions of user %s\n", deleted, name)
	if unknown > 0 {
		fmt.Fprintf(stdout, "%d sessions could not be compared\n", unknown)
	}
	switch {
	case failed > 0:
		return fmt.Errorf("%d sessions could not be checked or deleted (and %d could not be compared); the first: %w", failed, unknown, firstErr)
	case unknown > 0:
		return fmt.Errorf("%d sessions could not be compared with user %s: the user may still be logged in there", unknown, name)
	}
	return nil
}

var (
	errSkip       = errors.New("skipped")
	errUncompared = errors.New("cannot tell whose session it is")
)
