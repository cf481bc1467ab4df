package scgi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestProxyBeforeSend: the function WithBeforeSend gives runs once, with a connection
// to the backend open and the request not yet sent; it does not run when no backend
// can be reached.
func TestProxyBeforeSend(t *testing.T) {
	var received atomic.Bool
	addr := serveSCGI(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		received.Store(true)
		_, _ = io.WriteString(w, "ok")
	}))
	p, _ := newTestProxy(t, addr)
	calls := 0
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	req = req.WithContext(WithBeforeSend(req.Context(), func() {
		calls++
		assert.False(t, received.Load(), "the backend has not seen the request yet")
	}))
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	assert.Equal(t, "ok", rec.Body.String())
	assert.Equal(t, 1, calls)
	assert.True(t, received.Load())

	dead, _ := newTestProxy(t, deadAddr(t))
	calls = 0
	rec = httptest.NewRecorder()
	dead.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusBadGateway, rec.Code)
	assert.Zero(t, calls)
}
