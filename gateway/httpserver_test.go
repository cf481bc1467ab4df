package gateway

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/qxbridge/qxbridge/internal/testhttp"
)

// TestHTTPServerShutdownServesAcceptedConnection: a connection accepted as Shutdown
// closes the listener is answered (http.Server.Shutdown alone closes it unanswered).
func TestHTTPServerShutdownServesAcceptedConnection(t *testing.T) {
	h := newHTTPServer(&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "served")
	}), ReadHeaderTimeout: 10 * time.Second})
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := testhttp.NewClosingListener(inner)
	served := make(chan error, 1)
	go func() { served <- h.Serve(l) }()

	c, err := net.Dial("tcp", inner.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	<-l.Accepted
	shutdown := make(chan error, 1)
	go func() { shutdown <- h.Shutdown(context.Background()) }()
	<-l.Closed
	// The request arrives after Shutdown began.
	_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "served", string(body))
	assert.NoError(t, <-shutdown)
	assert.ErrorIs(t, <-served, http.ErrServerClosed)
	assert.ErrorIs(t, h.Serve(inner), http.ErrServerClosed, "Serve after Shutdown")
}

// TestHTTPServerShutdownTimeout: a connection that never sends its request holds
// Shutdown until ctx ends, and Close then cuts it off.
func TestHTTPServerShutdownTimeout(t *testing.T) {
	h := newHTTPServer(&http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: time.Minute})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- h.Serve(l) }()
	c, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.Eventually(t, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.pending) == 1
	}, 10*time.Second, time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, h.Shutdown(ctx), context.DeadlineExceeded)
	assert.ErrorIs(t, <-served, http.ErrServerClosed)
	require.NoError(t, h.Close())
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	n, err := c.Read(make([]byte, 1))
	assert.Zero(t, n)
	assert.Error(t, err, "Close closed the connection")
}
