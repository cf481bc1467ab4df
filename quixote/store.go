package quixote

import (
	"context"
	"time"
)

// IterableStore is a Store that also lists its sessions and deletes idle ones: what
// an idle sweep and administration tools need besides the Manager. *store.Directory
// (session3's DirectorySessionStore) and *pgstore.Store (a PostgreSQL table shared
// with Python) are IterableStores.
type IterableStore interface {
	Store
	// IDs returns the ids of all sessions, sorted.
	IDs(ctx context.Context) ([]string, error)
	// DeleteIdle deletes the sessions not saved for olderThan, as session3's
	// delete_old_sessions, and returns how many it deleted and how many remain.
	DeleteIdle(olderThan time.Duration) (deleted, remaining int, err error)
}
