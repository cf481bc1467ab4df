package quixote

import (
	"context"
	"errors"
	"time"

	"github.com/qxbridge/qxbridge/store"
)

// saveLag bounds how much later than its _access_time a session's save lands: the
// access time is refreshed at the start of a request (at most once a second) and
// the session saved at its end. A session saved less than IdleTimeout-saveLag ago
// was accessed less than IdleTimeout ago, whatever its pickle says.
const saveLag = time.Minute

// modTimer is a store that tells when a session was last saved, without reading
// it: store.Directory (the file's modification time) and pgstore.Store (its
// modified column) are.
type modTimer interface {
	ModTime(ctx context.Context, id string) (time.Time, error)
}

// Expire applies IdleTimeout and MaxLifetime to the stored session id as Handler
// does when a page loads it: a session past either limit is deleted from the Store,
// and Expire returns the limit it passed ("idle timeout" or "lifetime"). A session
// within both, a missing one, or one that holds no valid session of this id is left
// as it is and Expire returns "". With both limits 0 it does nothing.
//
// It is for requests that reach the session another way: a gateway calls it before
// forwarding a request to a Python page (in the session's ordering turn, so that no
// request of the session is in flight), which then finds no session, as a Go page
// would, and serves the user as logged out.
//
// With MaxLifetime 0, a store that tells when the session was last saved without
// reading it (ModTime, as store.Directory and pgstore.Store do) spares reading and
// decoding a session saved well within IdleTimeout: only one idle for nearly as
// long, or more, is read and judged by its _access_time. An error is returned when
// the session exists but cannot be read or deleted now (the store is unavailable,
// permissions); ctx bounds the read.
func (m *Manager) Expire(ctx context.Context, id string) (string, error) {
	if m.IdleTimeout <= 0 && m.MaxLifetime <= 0 {
		return "", nil
	}
	if m.MaxLifetime <= 0 {
		if mt, ok := m.Store.(modTimer); ok {
			saved, err := mt.ModTime(ctx, id)
			switch {
			case errors.Is(err, store.ErrNotFound):
				return "", nil
			case err == nil && m.clock().Sub(saved) <= m.IdleTimeout-saveLag:
				return "", nil
			}
			// Idle for nearly the timeout or more, or not known: read it.
		}
	}
	data, err := m.Store.Load(ctx, id)
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrEmpty), errors.Is(err, store.ErrTruncated),
		errors.Is(err, store.ErrTooLarge), errors.Is(err, store.ErrNotRegular), errors.Is(err, store.ErrInvalidID):
		return "", nil // nothing a page would load: nothing to expire
	default:
		return "", err
	}
	s, err := Decode(data, m.classes()...)
	if err != nil || s.ID() != id {
		return "", nil
	}
	why := m.over(s)
	if why == "" {
		return "", nil
	}
	return why, m.remove(context.WithoutCancel(ctx), id, why)
}

// over returns which limit the session has passed ("idle timeout" or "lifetime"),
// or "". A session without the time attribute (a class that has none) passes none.
// It is the one rule of both Handler and Expire.
func (m *Manager) over(s *Session) string {
	now := m.clock()
	if t, ok := s.timeOf(attrAccessTime); ok && m.IdleTimeout > 0 && now.Sub(t) > m.IdleTimeout {
		return "idle timeout"
	}
	if t, ok := s.timeOf(attrCreationTime); ok && m.MaxLifetime > 0 && now.Sub(t) > m.MaxLifetime {
		return "lifetime"
	}
	return ""
}

// remove deletes session id, past the limit why, and logs it. A session already
// gone is no error.
func (m *Manager) remove(ctx context.Context, id, why string) error {
	if err := m.Store.Delete(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		m.logger().Error("quixote: cannot delete a session past its "+why, "id", id, "error", err)
		return err
	}
	m.logger().Info("quixote: session past its "+why+"; removed", "id", id)
	return nil
}
