package gateway

import (
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMultiHostOrdering: with the sessions in PostgreSQL, per-session ordering spans
// hosts through the database's advisory locks: concurrent increments of one session,
// Go and Python pages mixed, spread round-robin over two hosts, lose nothing.
func TestMultiHostOrdering(t *testing.T) {
	_, a, b, u := twoHosts(t)
	c := client(t)
	require.Equal(t, "ok", get(t, c, u+"/py/login?user=alice").Body)

	const workers, each = 8, 25
	var wg sync.WaitGroup
	statuses := make(chan int, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				path := "/counter"
				if (w+i)%3 == 0 {
					path = "/py/counter"
				}
				statuses <- get(t, c, u+path).Status
			}
		}()
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		require.Equal(t, http.StatusOK, s)
	}
	st := statusOf(t, get(t, c, u+"/py/status"))
	assert.Equal(t, float64(workers*each), st.Attrs["counter"], "no increment lost")
	waits := 0
	re := regexp.MustCompile(`(?m)^qxbridge_session_lock_waits_total\{op="lock"\} (\d+)$`)
	for _, h := range []host{a, b} {
		if m := re.FindStringSubmatch(scrape(t, h.gw.addrs["metrics"])); m != nil {
			n, _ := strconv.Atoi(m[1])
			waits += n
		}
	}
	assert.Positive(t, waits, "the hosts waited for each other's lock: the test exercised ordering across hosts")
}
