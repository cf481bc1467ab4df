package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testquixote"
)

type answer struct {
	code int
	body string
	err  error
}

// fetchAsync sends a GET of session id in the background.
func fetchAsync(ctx context.Context, u, id string) <-chan answer {
	ch := make(chan answer, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			ch <- answer{err: err}
			return
		}
		req.Header.Set("Cookie", `QX_session="`+id+`"`)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			ch <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		ch <- answer{resp.StatusCode, string(b), err}
	}()
	return ch
}

// TestOrderWaitsForPythonWorker: a Python request that the gateway stops serving
// before the worker is done with it — its client left, or the response did not start
// within -backend-timeout and was answered 504 — keeps its session's turn until the
// worker has finished (and saved the session): the next request of the session waits
// for it, and no increment is lost. (Without that, the next request was served at
// once and the worker then saved its stale copy over it.)
func TestOrderWaitsForPythonWorker(t *testing.T) {
	s := startOrderSite(t, 1, nil, "-http", "127.0.0.1:0", "-backend-timeout", "3s")
	g := s.gws[0]
	id := s.login(t, "hana")
	counter := func() int64 {
		n, _ := readSession(t, s.sessions, id).GetInt("counter")
		return n
	}

	// nextWaits sends the session's next request once the gateway has stopped serving
	// the held one, checks that it waits for the worker, lets the worker finish, and
	// returns the next request's answer.
	nextWaits := func(t *testing.T, h testquixote.Hold, next string) answer {
		t.Helper()
		done := fetchAsync(context.Background(), next, id)
		eventually(t, func() bool { return g.orderer.waiting() == 1 || len(done) > 0 })
		require.Zero(t, len(done), "the next request was served while the worker still ran the previous one")
		assert.False(t, h.IsDone())
		h.Open(t)
		return <-done
	}

	// A client leaves: on the HTTP listener (net/http notices the closed connection),
	// and behind nginx (scgi.Server notices nginx closing the SCGI connection).
	for _, front := range []struct{ name, url string }{{"client leaves HTTP", g.url()}, {"client leaves nginx", s.url}} {
		t.Run(front.name, func(t *testing.T) {
			before := counter()
			h := testquixote.NewHold(t)
			ctx, cancel := context.WithCancel(context.Background())
			left := fetchAsync(ctx, front.url+"/py/slowcounter?"+h.Query(), id)
			eventually(t, func() bool { return h.IsStarted() })
			cancel()
			require.ErrorIs(t, (<-left).err, context.Canceled)
			// The gateway notices the closed connection at once, but asynchronously:
			// give it a moment, or the next request might only be queued behind a
			// request the gateway had not yet seen go (the test would then prove
			// less, not fail).
			time.Sleep(200 * time.Millisecond)
			a := nextWaits(t, h, front.url+"/counter")
			require.NoError(t, a.err)
			assert.Equal(t, http.StatusOK, a.code)
			assert.Contains(t, a.body, fmt.Sprintf("<p>Counter: %d</p>", before+2), "the Go page saw the worker's increment")
			assert.Equal(t, before+2, counter(), "no increment lost")
		})
	}

	t.Run("504", func(t *testing.T) {
		before := counter()
		h := testquixote.NewHold(t)
		// The client gets its 504 as soon as the backend timeout passes, while the
		// worker still runs the page.
		a := <-fetchAsync(context.Background(), s.url+"/py/slowcounter?"+h.Query(), id)
		require.NoError(t, a.err)
		assert.Equal(t, http.StatusGatewayTimeout, a.code, a.body)
		a = nextWaits(t, h, s.url+"/py/counter")
		require.NoError(t, a.err)
		assert.Equal(t, http.StatusOK, a.code)
		assert.Equal(t, fmt.Sprint(before+2), a.body, "the worker's increment was saved before the next request loaded the session")
		assert.Equal(t, before+2, counter(), "no increment lost")
		assert.Contains(t, g.log.String(), "status=504")
	})

	m := scrapeGateway(t, g)
	assert.Regexp(t, `qxbridge_backend_abandoned_total\{backend="[^"]+",route="/py/"\} 0`, m)
	assert.NotContains(t, g.log.String(), "may still be running")
	assert.False(t, strings.Contains(s.py.Output.String(), "Traceback"), s.py.Output.String())
}
