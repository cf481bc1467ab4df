package quixote

import (
	"context"
	"errors"
	"sync"
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
// Most sessions are judged without being read. A session's creation time never
// changes, so Expire remembers it for the ids it has read (a bounded number), and a
// store that tells when the session was last saved without reading it (ModTime, as
// store.Directory and pgstore.Store do) shows it was accessed well within
// IdleTimeout: only a session idle for nearly as long or more, past its lifetime,
// or not seen before, is read, decoded and judged by its _access_time and
// _creation_time. An error is returned when the session exists but cannot be read
// or deleted now (the store is unavailable, permissions); ctx bounds the read.
func (m *Manager) Expire(ctx context.Context, id string) (string, error) {
	if m.IdleTimeout <= 0 && m.MaxLifetime <= 0 {
		return "", nil
	}
	if within, err := m.plainlyWithin(ctx, id); err == nil && within {
		return "", nil
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
		if m.MaxLifetime > 0 {
			created, ok := s.timeOf(attrCreationTime)
			m.created.put(id, created, ok)
		}
		return "", nil
	}
	m.created.forget(id)
	return why, m.remove(context.WithoutCancel(ctx), id, why)
}

// plainlyWithin reports whether session id is within both limits (or absent), as far
// as can be told without reading it: its remembered creation time is within
// MaxLifetime, and it was saved well within IdleTimeout. false means it must be
// read to be judged.
func (m *Manager) plainlyWithin(ctx context.Context, id string) (bool, error) {
	now := m.clock()
	if m.MaxLifetime > 0 {
		created, has, known := m.created.get(id)
		if !known || (has && now.Sub(created) > m.MaxLifetime) {
			return false, nil
		}
	}
	if m.IdleTimeout <= 0 {
		return true, nil
	}
	mt, ok := m.Store.(modTimer)
	if !ok {
		return false, nil
	}
	saved, err := mt.ModTime(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		m.created.forget(id)
		return true, nil
	case err != nil:
		return false, err
	}
	return now.Sub(saved) <= m.IdleTimeout-saveLag, nil
}

// maxCreationTimes bounds the creation times a Manager remembers for Expire: about
// 100 bytes each.
const maxCreationTimes = 1 << 16

// creationTimes remembers the creation time of the sessions Expire has read, by id:
// it never changes for an id, so a session's lifetime can be judged without
// reading it again. When full it starts afresh.
type creationTimes struct {
	mu sync.Mutex
	m  map[string]creationTime
}

type creationTime struct {
	t   time.Time
	has bool // false: the session has no _creation_time, and no lifetime
}

func (c *creationTimes) get(id string) (t time.Time, has, known bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, known := c.m[id]
	return e.t, e.has, known
}

func (c *creationTimes) put(id string, t time.Time, has bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCreationTimes {
		c.m = map[string]creationTime{}
	}
	c.m[id] = creationTime{t, has}
}

func (c *creationTimes) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
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
