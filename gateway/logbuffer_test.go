package gateway

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingBuffer is a bytes.Buffer safe for the log buffer's timer goroutine, counting
// the writes it receives.
type countingBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (s *countingBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.b.Write(p)
}

func (s *countingBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *countingBuffer) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// TestLogBuffer: request records are batched and written by the timer; any other
// record flushes them and itself at once, in order; Close loses nothing; a full
// buffer is written by the record that fills it.
func TestLogBuffer(t *testing.T) {
	out := &countingBuffer{}
	logs := newLogBuffer(out)
	log := slog.New(flushingHandler{newLogger(Config{LogFormat: "text"}, logs).Handler(), logs})

	for i := range 3 {
		log.Info("request", "n", i)
	}
	assert.Eventually(t, func() bool { return strings.Count(out.String(), "msg=request") == 3 },
		10*time.Second, time.Millisecond, "the timer writes the batch")

	log.Info("request", "n", 3)
	log.Warn("something", "n", 4)
	text := out.String()
	assert.Contains(t, text, "msg=request n=3", "a warning flushes the records before it")
	assert.Less(t, strings.Index(text, "n=3"), strings.Index(text, "msg=something n=4"), "in order")
	log.Info("listening", "n", 5)
	assert.Contains(t, out.String(), "msg=listening n=5", "only request records wait")

	// Many records from many goroutines: each whole, none lost, each goroutine's in
	// its order.
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				log.Info("request", "g", g, "i", i)
			}
		}()
	}
	wg.Wait()
	require.NoError(t, logs.Close())
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, lines, 6+8*500)
	next := make([]int, 8)
	for _, l := range lines[6:] {
		var g, i int
		_, err := fmt.Sscanf(l[strings.Index(l, " g="):], " g=%d i=%d", &g, &i)
		require.NoError(t, err, l)
		assert.Equal(t, next[g], i, l)
		next[g]++
	}
	assert.Less(t, out.Writes(), 6+8*500, "written in batches")

	// After Close, records go straight through.
	log.Info("request", "n", "late")
	assert.Contains(t, out.String(), "n=late")
}

// TestLogBufferFull: a record that fills the buffer is written at once.
func TestLogBufferFull(t *testing.T) {
	out := &countingBuffer{}
	logs := newLogBuffer(out)
	logs.delay = time.Hour
	defer logs.Close()
	big := bytes.Repeat([]byte("x"), logBufferMax/2)
	_, err := logs.Write(big)
	require.NoError(t, err)
	assert.Empty(t, out.String())
	_, err = logs.Write(big)
	require.NoError(t, err)
	assert.Equal(t, 2*len(big), len(out.String()))
	assert.Equal(t, 1, out.Writes())
}

// TestRunFlushesLogAtExit: the request records still buffered when Run returns are
// written.
func TestRunFlushesLogAtExit(t *testing.T) {
	g := startGateway(t, "-http", "127.0.0.1:0", "-sessions", t.TempDir())
	r := get(t, client(t), g.url()+"/", "X-Request-ID", "flushed-at-exit")
	require.Equal(t, 200, r.Status)
	require.Equal(t, 0, g.stop())
	assert.Contains(t, g.log.String(), "request_id=flushed-at-exit")
}
