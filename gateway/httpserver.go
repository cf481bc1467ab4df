package gateway

import (
	"context"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// httpServer is an http.Server whose Shutdown also answers the connections accepted
// just as the listener closed.
//
// http.Server.Shutdown closes a connection without an answer when its request is
// read after Shutdown began, leaving the client to retry. Behind a socket that
// outlives the process (systemd's socket activation) the client has connected to
// a server that was up and has no reason to retry: nginx answers 502. So Shutdown
// here stops accepting first, waits until every accepted connection's first
// request has reached the handler (or the connection closed: ReadHeaderTimeout
// bounds that), and only then shuts the http.Server down, which lets those
// requests finish.
type httpServer struct {
	srv *http.Server

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	accepting sync.WaitGroup // Serve calls running
	closing   bool
	pending   map[net.Conn]struct{} // accepted, first request not yet at the handler
	drained   chan struct{}         // closed when closing and pending is empty
}

// pendingConn is the per-connection context value that lets the first request
// take its connection off the pending set, with one lock per connection.
type pendingConn struct {
	c      net.Conn
	served atomic.Bool
}

type pendingConnKey struct{}

func newHTTPServer(srv *http.Server) *httpServer {
	h := &httpServer{srv: srv, listeners: map[net.Listener]struct{}{}, pending: map[net.Conn]struct{}{}}
	next := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := r.Context().Value(pendingConnKey{}).(*pendingConn)
		if ok && !p.served.Load() && p.served.CompareAndSwap(false, true) {
			h.done(p.c)
		}
		if ok && ambiguousFraming(p.c) {
			w.Header().Set("Connection", "close") // RFC 9112 §6.3; see framing.go
		}
		next.ServeHTTP(w, r)
	})
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		h.mu.Lock()
		h.pending[c] = struct{}{}
		h.mu.Unlock()
		return context.WithValue(ctx, pendingConnKey{}, &pendingConn{c: c})
	}
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateClosed || st == http.StateHijacked {
			h.done(c)
		}
	}
	return h
}

func (h *httpServer) done(c net.Conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.pending, c)
	if h.drained != nil && len(h.pending) == 0 {
		close(h.drained)
		h.drained = nil
	}
}

// Serve is http.Server.Serve; it returns http.ErrServerClosed after Shutdown or Close.
func (h *httpServer) Serve(l net.Listener) error {
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		l.Close()
		return http.ErrServerClosed
	}
	h.listeners[l] = struct{}{}
	h.accepting.Add(1)
	h.mu.Unlock()
	err := h.srv.Serve(framingListener{l})
	h.mu.Lock()
	delete(h.listeners, l)
	if h.closing {
		err = http.ErrServerClosed // Shutdown closed l
	}
	h.mu.Unlock()
	h.accepting.Done()
	return err
}

// Shutdown closes the listeners, waits for the connections already accepted to
// deliver their first request, then calls http.Server.Shutdown.
func (h *httpServer) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closing = true
	for l := range h.listeners {
		l.Close()
	}
	h.mu.Unlock()
	h.accepting.Wait() // from here on, every accepted connection is in pending

	h.mu.Lock()
	var drained chan struct{}
	if len(h.pending) > 0 {
		if h.drained == nil {
			h.drained = make(chan struct{})
		}
		drained = h.drained
	}
	h.mu.Unlock()
	if drained != nil {
		select {
		case <-drained:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return h.srv.Shutdown(ctx)
}

// Close is http.Server.Close.
func (h *httpServer) Close() error {
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()
	return h.srv.Close()
}

// httpErrorLog is the ErrorLog of the gateway's HTTP servers. net/http writes there
// what clients do wrong (TLS and header errors: debug level, a client can write
// them at will) and the accept errors it retries, such as running out of file
// descriptors (EMFILE, ENFILE), which an operator must see: error level.
func httpErrorLog(log *slog.Logger) *stdlog.Logger {
	return stdlog.New(httpErrorWriter{log}, "", 0)
}

type httpErrorWriter struct{ log *slog.Logger }

func (w httpErrorWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	level := slog.LevelDebug
	if strings.HasPrefix(msg, "http: Accept error") {
		level = slog.LevelError
	}
	w.log.Log(context.Background(), level, msg)
	return len(p), nil
}
