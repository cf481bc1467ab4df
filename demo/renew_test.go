package demo

import (
	"strings"
	"testing"

	"github.com/qxbridge/qxbridge/internal/testhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLoginRenewsID: logging in again with a session moves it to a fresh id (session
// fixation): a new cookie, one file under the new id, none under the old one.
func TestLoginRenewsID(t *testing.T) {
	d := newDemoSite(t)
	r := d.req(t, "POST", "/login", "name=first", "")
	require.Equal(t, 200, r.Status)
	first := setCookie(r)
	old := strings.Split(first, `"`)[1]
	r = d.req(t, "POST", "/login", "name=second", first)
	require.Equal(t, 200, r.Status)
	renewed := strings.Split(setCookie(r), `"`)[1]
	assert.NotEqual(t, old, renewed)
	assert.Equal(t, []string{renewed}, testhttp.SessionFiles(t, d.dir))
	assert.Equal(t, "second", testhttp.ReadSession(t, d.dir, renewed).User())
}
