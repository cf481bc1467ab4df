package gateway

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/qxbridge/qxbridge/internal/testquixote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWarmConnsThroughGateway: with -backend-warm-conns the gateway's requests to the
// real Quixote worker go out on connections dialled ahead, and shutting the gateway
// down closes the one still waiting (the python-scgi child that held it exits, as
// documented).
func TestWarmConnsThroughGateway(t *testing.T) {
	w := startQuixote(t)
	g := startGateway(t, "-http", "127.0.0.1:0", "-sessions", t.TempDir(), "-mount", "/py/="+quixoteTarget(w),
		"-backend-warm-conns", "1")
	p := g.table.Load().lookup("/py/hello").proxy
	require.NotNil(t, p)
	assert.Equal(t, 1, p.WarmConns)
	for i := range 6 {
		if i > 1 {
			require.Eventually(t, func() bool { return p.Stats()[0].Warm == 1 }, 10*time.Second, time.Millisecond)
		}
		resp, err := http.Get(g.url() + "/py/hello")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "hello from python\n", string(body))
	}
	assert.Equal(t, uint64(4), p.Stats()[0].WarmUsed, "every request after the second took a warm connection")
	require.Eventually(t, func() bool { return p.Stats()[0].Warm == 1 }, 10*time.Second, time.Millisecond)
	m := scrapeGateway(t, g)
	assert.Regexp(t, `qxbridge_backend_warm_connections\{backend="[^"]+",route="/py/"\} 1\n`, m)
	assert.Regexp(t, `qxbridge_backend_warm_connections_used_total\{backend="[^"]+",route="/py/"\} 4\n`, m)

	assert.Equal(t, 0, g.stop())
	assert.Equal(t, 0, p.Stats()[0].Warm, "closed at shutdown")
	assert.Eventually(t, func() bool { return strings.Contains(w.Output.String(), testquixote.NoRequestTraceback) },
		10*time.Second, 5*time.Millisecond)
}
