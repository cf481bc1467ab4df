package quixote

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testpeer"
	"github.com/qxbridge/qxbridge/store"
)

// memStore is an in-memory Store that counts its calls.
type memStore struct {
	mu     sync.Mutex
	files  map[string][]byte
	saves  int
	loads  int
	delete int
	hasErr error // returned by Has when set
}

func newMemStore() *memStore { return &memStore{files: map[string][]byte{}} }

func (m *memStore) Load(_ context.Context, id string) ([]byte, error) {
	if err := store.ValidID(id); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loads++
	b, ok := m.files[id]
	if !ok {
		return nil, fmt.Errorf("load %s: %w", id, store.ErrNotFound)
	}
	return bytes.Clone(b), nil
}

func (m *memStore) Save(_ context.Context, id string, data []byte) error {
	if err := store.ValidID(id); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.saves++
	m.files[id] = bytes.Clone(data)
	return nil
}

func (m *memStore) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.files[id]; !ok {
		return fmt.Errorf("delete %s: %w", id, store.ErrNotFound)
	}
	m.delete++
	delete(m.files, id)
	return nil
}

func (m *memStore) Has(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hasErr != nil {
		return false, m.hasErr
	}
	_, ok := m.files[id]
	return ok, nil
}

func (m *memStore) get(id string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.files[id]
	return bytes.Clone(b), ok
}

func (m *memStore) put(id string, b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[id] = bytes.Clone(b)
}

func (m *memStore) ids() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for id := range m.files {
		out = append(out, id)
	}
	return out
}

func (m *memStore) counts() (loads, saves, deletes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.loads, m.saves, m.delete
}

// logBuffer collects slog records for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Reset()
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// warnings returns the records whose level is at least WARN.
func (l *logBuffer) warnings() []string {
	var out []string
	for _, line := range bytes.Split([]byte(l.String()), []byte("\n")) {
		if bytes.Contains(line, []byte("level=WARN")) || bytes.Contains(line, []byte("level=ERROR")) {
			out = append(out, string(line))
		}
	}
	return out
}

func newLogger() (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// fixture returns the bytes of a session3 golden file.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(testpeer.Testdata("session3", name))
	require.NoError(t, err)
	return b
}

// fixtures lists the golden session files.
var fixtures = []string{
	"session3-login.pkl",
	"session3-counter-tokens.pkl",
	"dictsession-cart.pkl",
	"subclass-rich.pkl",
	"quixote-session.pkl",
}

// getStatus requests base+"/status" with the raw Cookie header value cookie and
// returns the session status the page shows (qxsite's and testApp's /status).
func getStatus(t testing.TB, c *http.Client, base, cookie string) map[string]any {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/status", nil)
	require.NoError(t, err)
	req.Header.Set("Cookie", cookie)
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode, "%s", body)
	var st map[string]any
	require.NoError(t, json.Unmarshal(body, &st), "%s", body)
	return st
}
