package quixote

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/store"
)

// downStore is a store whose database is down: loads fail with store.ErrUnavailable.
type downStore struct{ *memStore }

func (downStore) Load(context.Context, string) ([]byte, error) {
	return nil, fmt.Errorf("pgstore: load: %w: connection refused", store.ErrUnavailable)
}

// A store that cannot answer gets a 503, not a fresh session that would log the
// user out and, once saved, replace theirs.
func TestManagerStoreUnavailable(t *testing.T) {
	e := newTestEnv(t, nil)
	id := newCookieID(t, e.get("/login?user=alice", ""))
	e.m.Store = downStore{e.st}
	r := e.get("/status", `QX_session="`+id+`"`)
	assert.Equal(t, 503, r.status)
	assert.Empty(t, r.cookies)
	require.Equal(t, "alice", e.session(id).User())
}
