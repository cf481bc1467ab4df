package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/qxbridge/qxbridge/store"
)

// Ping reports whether the database answers, within the query timeout. An error
// wraps store.ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	qctx, cancel := s.timeout(ctx, s.queryTimeout)
	defer cancel()
	if err := s.retry(qctx, func() error { return s.pool.Ping(qctx) }); err != nil {
		return s.fail("ping", "", ctx, err)
	}
	return nil
}

// ModTime returns when session id was last saved (its modified column, the
// database's clock), which is what DeleteIdle goes by. A missing session gives
// store.ErrNotFound.
func (s *Store) ModTime(ctx context.Context, id string) (time.Time, error) {
	if err := store.ValidID(id); err != nil {
		return time.Time{}, opError("stat", id, err)
	}
	qctx, cancel := s.timeout(ctx, s.queryTimeout)
	defer cancel()
	var t time.Time
	err := s.retry(qctx, func() error { return s.pool.QueryRow(qctx, s.sqlModified, id).Scan(&t) })
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return time.Time{}, opError("stat", id, store.ErrNotFound)
	case err != nil:
		return time.Time{}, s.fail("stat", id, ctx, err)
	}
	return t, nil
}

// String names the database and table, without the password: "postgres
// USER@HOST:PORT/DATABASE table sessions".
func (s *Store) String() string {
	c := s.pool.Config().ConnConfig
	return fmt.Sprintf("postgres %s@%s:%d/%s table %s", c.User, c.Host, c.Port, c.Database, s.rawTable)
}
