package gateway

import (
	"errors"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/scgi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestModifyProxy: a program's ModifyProxy sees each Python pool the gateway makes,
// with the gateway's own settings already in place, and what it sets is what the
// pool runs with; an error from it refuses the configuration at Open and at Reload,
// and the running configuration stays.
func TestModifyProxy(t *testing.T) {
	g := New()
	g.Config.SessionsDir = t.TempDir()
	g.Config.Routes = []Route{{Prefix: "/py/", Target: "scgi://127.0.0.1:1", Mount: true}}
	g.Config.BackendMaxConns = 3
	var seen []string
	g.ModifyProxy = func(route Route, p *scgi.Proxy) error {
		seen = append(seen, route.Prefix)
		assert.Equal(t, 3, p.MaxConnsPerBackend, "the configuration's settings come first")
		assert.NotNil(t, p.ErrorHandler)
		p.DrainTimeout = 5 * time.Second
		p.DialTimeout = time.Second
		return nil
	}
	require.NoError(t, g.Open())
	defer g.Close()
	p := g.table.Load().lookup("/py/x").proxy
	require.NotNil(t, p)
	assert.Equal(t, 5*time.Second, p.DrainTimeout)
	assert.Equal(t, time.Second, p.DialTimeout)
	assert.Equal(t, []string{"/py/"}, seen)

	// A reload that keeps the pool's settings reuses it: no second call.
	require.NoError(t, g.Reload(g.Config))
	assert.Equal(t, []string{"/py/"}, seen)

	refuse := errors.New("no pools on port 2")
	g.ModifyProxy = func(route Route, p *scgi.Proxy) error {
		if p.Stats()[0].Addr == "127.0.0.1:2" {
			return refuse
		}
		return nil
	}
	cfg := g.Config
	cfg.Routes = []Route{{Prefix: "/py/", Target: "scgi://127.0.0.1:2", Mount: true}}
	err := g.Reload(cfg)
	require.ErrorIs(t, err, refuse)
	assert.Same(t, p, g.table.Load().lookup("/py/x").proxy, "the running configuration stays")

	g2 := New()
	g2.Config = cfg
	g2.Config.SessionsDir = t.TempDir()
	g2.ModifyProxy = g.ModifyProxy
	require.ErrorIs(t, g2.Open(), refuse)
}
