package scgi

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Default settings, used where a Proxy field is zero.
const (
	DefaultDialTimeout           = 5 * time.Second
	DefaultResponseHeaderTimeout = 60 * time.Second
	DefaultQueueTimeout          = 5 * time.Second
	DefaultFailTimeout           = 10 * time.Second
	DefaultDrainTimeout          = 60 * time.Second
	DefaultDrainBytes            = 256 << 20
)

// Proxy is an http.Handler that forwards requests to a pool of SCGI backends (python-scgi
// workers running a Quixote application, typically) and copies their CGI responses back,
// in the manner of httputil.ReverseProxy. Create one with NewProxy, set any fields before
// its first request, and do not change them afterwards.
type Proxy struct {
	// ScriptName is the path prefix the proxied application is mounted at ("" or "/" for
	// the root). The worker gets SCRIPT_NAME = ScriptName and PATH_INFO = the request
	// path after it; a request whose path is not under ScriptName is answered 404. Mount
	// the Proxy without http.StripPrefix: the split happens here, on the full path.
	// When empty, the mount point the SCGI front end declared is kept (see
	// FrontScriptName: its SCRIPT_NAME when the path lies under it, except Apache's
	// whole-path form), and otherwise SCRIPT_NAME is "" and PATH_INFO the whole path.
	ScriptName string

	// DialTimeout bounds connecting to a backend (default DefaultDialTimeout).
	DialTimeout time.Duration

	// ResponseHeaderTimeout bounds the wait for the start of a backend's response after
	// the request has been sent, and each write of the request to a backend that stops
	// reading (default DefaultResponseHeaderTimeout). It does not bound a response body,
	// which may stream for as long as the backend keeps it going. Expiry answers 504
	// at once, and the worker, which may still be running the request, is then
	// waited for as when the client goes away (see DrainTimeout).
	ResponseHeaderTimeout time.Duration

	// DrainTimeout and DrainBytes bound the wait for a worker that may still be
	// running a request the proxy no longer serves: the client went away, or the
	// response did not start within ResponseHeaderTimeout (answered 504). The proxy
	// then writes nothing more to the client but goes on reading the backend's
	// response, discarding it, until the backend closes the connection, and only then
	// returns from ServeHTTP and frees the connection slot, so that whatever follows
	// the handler (a session's turn, see the gateway's per-session ordering) follows
	// the worker's own writes too. DrainTimeout counts from the moment the proxy
	// stopped serving the client (default DefaultDrainTimeout); DrainBytes caps what
	// is read (default DefaultDrainBytes). Past either bound the proxy gives up:
	// the connection is closed, the request is logged at error level and counted in
	// BackendStats.Abandoned, and the worker may then still finish the request after
	// ServeHTTP returned. A negative DrainTimeout closes the connection at once, for
	// backends whose late writes need no ordering. Server.Shutdown waits for such a
	// drain like for any request in flight.
	DrainTimeout time.Duration
	DrainBytes   int64

	// MaxConnsPerBackend caps the connections open to each backend (0: no cap). Set it
	// to the worker's number of children so that requests wait here, where the wait is
	// bounded, rather than in the worker's listen queue.
	MaxConnsPerBackend int

	// WarmConns is how many connections to each backend are dialled ahead of need
	// while requests keep coming (0, the default: none). A request takes one if one
	// waits, else dials as usual, and a replacement is dialled in the background. In
	// front of python-scgi this takes the worker's accept and its hand-over of the
	// connection to a child off the request's path (see BENCHMARKS.md), at a price:
	//
	//   - a connection waiting here holds a python-scgi child waiting on it, so keep
	//     WarmConns, times the number of proxies using the worker, below its number
	//     of children; with MaxConnsPerBackend set, connections dialled ahead count
	//     toward it and are at most MaxConnsPerBackend-1;
	//   - one is dialled ahead only once two requests came less than WarmMaxAge
	//     apart, and one not used within WarmMaxAge is closed, as are those waiting at
	//     Close and those of a backend that rests after failures. python-scgi's child
	//     takes a connection closed before its request for a broken one: it exits
	//     (logging "short netstring read") and the worker forks another when needed.
	//
	// A connection whose peer has closed while it waited is seen before use and
	// discarded; a request whose header could not be written at all on one is sent
	// on a fresh connection, and no request is ever sent twice once any of it was
	// written.
	WarmConns int

	// WarmMaxAge bounds how long a connection dialled ahead waits for a request
	// (default DefaultWarmMaxAge). After python-scgi reloads on SIGHUP, the child
	// holding such a connection still runs the old code for the one request it gets
	// on it: WarmMaxAge bounds how long after a reload that can happen.
	WarmMaxAge time.Duration

	// QueueTimeout bounds the wait for a connection slot when every backend is at
	// MaxConnsPerBackend (default DefaultQueueTimeout); expiry answers 503.
	QueueTimeout time.Duration

	// MaxFails failures in a row (a refused or timed-out dial, or a connection closed or
	// reset before any response) rest a backend for FailTimeout: it gets no requests
	// until then, unless it is the only one. Zero means 1 (as nginx's max_fails);
	// negative, never rest.
	MaxFails int

	// FailTimeout is how long a failing backend rests (default DefaultFailTimeout).
	FailTimeout time.Duration

	// MaxSpoolBytes bounds a request body of unknown length (a chunked upload), which is
	// spooled to learn the CONTENT_LENGTH that SCGI requires: larger bodies are answered
	// 413. Zero means DefaultMaxSpoolBytes; negative turns spooling off and answers 411.
	MaxSpoolBytes int64

	// SpoolDir is the directory for spooled bodies beyond 256 KiB (default os.TempDir()).
	SpoolDir string

	// BufferBodyBytes: a request body of known length up to this size is read
	// completely, in memory and then in SpoolDir, before a backend is dialled (as nginx
	// buffers request bodies), so that a client sending slowly costs a goroutine and
	// never a worker. A larger body is streamed to the backend as it arrives. Zero
	// means DefaultBufferBodyBytes; negative, stream every body.
	BufferBodyBytes int64

	// BodyLimits bound how slowly a client may send a request body, buffered or
	// streamed (see BodyLimits for the defaults); a body that breaks them is answered
	// 408 if the response has not started, and the client's connection is cut. For a
	// request that a Server received, the Server's BodyLimits apply instead.
	BodyLimits BodyLimits

	// Affinity, when set, returns a key for a request (a session id, say): the
	// requests of one key go to the same backend while it takes requests, chosen by
	// rendezvous hashing on the key and the backends' addresses, so every proxy with
	// the same backends chooses alike. A backend that rests after failures, or is
	// at MaxConnsPerBackend, is passed over for the next in the key's ranking; when it
	// is back, the key's requests return to it. Requests without a key ("") are
	// balanced by least connections.
	Affinity func(*http.Request) string

	// ErrorLog logs failed requests, like Server.ErrorLog (default: slog.Default()).
	ErrorLog *slog.Logger

	// ErrorHandler answers a request that failed before any response was sent. The
	// default logs err and answers StatusForError(err) with its status text.
	ErrorHandler func(http.ResponseWriter, *http.Request, error)

	pool    pool
	bufPool sync.Pool // *headerBuf
}

// NewProxy returns a Proxy for the given backends: "host:port" for TCP, "unix:/path" or
// "/path" for a UNIX socket.
func NewProxy(backends ...string) (*Proxy, error) {
	if len(backends) == 0 {
		return nil, errors.New("scgi: NewProxy needs at least one backend")
	}
	p := &Proxy{}
	for _, s := range backends {
		b, err := parseBackend(s)
		if err != nil {
			return nil, err
		}
		b.idx = len(p.pool.backends)
		p.pool.backends = append(p.pool.backends, b)
	}
	return p, nil
}

// Stats returns a snapshot of each backend's state, in the order given to NewProxy.
func (p *Proxy) Stats() []BackendStats { return p.pool.stats() }

// StatusForError returns the status the default ErrorHandler answers for err:
// 408 for ErrBodyTooSlow, 503 for ErrNoBackend, 504 for ErrResponseHeaderTimeout, 411 for ErrLengthRequired,
// 413 for ErrUploadTooLarge, 400 for a request that cannot be expressed in SCGI or whose
// body could not be read, 404 for a path outside ScriptName, and 502 otherwise (the
// backend refused the connection, hung up, or answered something that is not CGI).
func StatusForError(err error) int {
	var ce errClientBody
	switch {
	case errors.Is(err, ErrBodyTooSlow):
		return http.StatusRequestTimeout
	case errors.Is(err, ErrNoBackend):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrResponseHeaderTimeout):
		return http.StatusGatewayTimeout
	case errors.Is(err, ErrLengthRequired):
		return http.StatusLengthRequired
	case errors.Is(err, ErrUploadTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errBadRequestEnv), errors.As(err, &ce):
		return http.StatusBadRequest
	case errors.Is(err, errNotMounted):
		return http.StatusNotFound
	}
	return http.StatusBadGateway
}

func (p *Proxy) logger() *slog.Logger {
	if p.ErrorLog == nil {
		return slog.Default()
	}
	return p.ErrorLog
}

// logWarn logs a failed request with its method and path.
func (p *Proxy) logWarn(r *http.Request, msg string, args ...any) {
	p.logger().Warn(msg, append([]any{"method", r.Method, "path", r.URL.Path}, args...)...)
}

func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, err error) {
	if p.ErrorHandler != nil {
		p.ErrorHandler(w, r, err)
		return
	}
	code := StatusForError(err)
	if !errors.Is(err, context.Canceled) {
		p.logWarn(r, "scgi proxy: request failed", "err", err)
	}
	http.Error(w, http.StatusText(code), code)
}

func orDefault[T ~int64](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// idempotent reports methods that may be sent again (RFC 9110 section 9.2.2).
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace,
		http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

type beforeSendKey struct{}

// WithBeforeSend returns a copy of ctx with which a Proxy calls f once it has a
// connection to a backend for the request and before it sends the request: work that
// must be done before the backend sees the request (reading state the backend may
// change) overlaps with connecting to it. f is not called when no backend could be
// reached.
func WithBeforeSend(ctx context.Context, f func()) context.Context {
	return context.WithValue(ctx, beforeSendKey{}, f)
}

// ServeHTTP forwards r to a backend and copies the response to w.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	limits := &p.BodyLimits
	if RequestEnv(r) != nil {
		limits = nil // the Server that received it enforces its own BodyLimits
	}
	buffer := orDefault(p.BufferBodyBytes, DefaultBufferBodyBytes)
	body, n, cleanup, err := requestBody(w, r, limits, buffer, orDefault(p.MaxSpoolBytes, DefaultMaxSpoolBytes), p.SpoolDir)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	defer cleanup()

	hb, _ := p.bufPool.Get().(*headerBuf)
	if hb == nil {
		hb = new(headerBuf)
	}
	defer func() {
		if cap(hb.b) <= 64<<10 { // keep no huge buffer alive for ordinary requests
			p.bufPool.Put(hb)
		}
	}()
	if err := buildEnv(hb, r, n, p.ScriptName, RequestEnv(r)); err != nil {
		p.fail(w, r, err)
		return
	}
	header, err := hb.finish()
	if err != nil {
		p.fail(w, r, err)
		return
	}

	ctx := r.Context()
	maxFails := p.MaxFails
	if maxFails == 0 {
		maxFails = 1
	}
	failTimeout := orDefault(p.FailTimeout, DefaultFailTimeout)
	timeout := orDefault(p.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)

	b, conn, warm, err := p.connect(ctx, r, maxFails, failTimeout)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	if f, ok := ctx.Value(beforeSendKey{}).(func()); ok {
		f()
	}
	drain := orDefault(p.DrainTimeout, DefaultDrainTimeout)
	x := newExchange(conn, timeout, drain)
	// A client that goes away stops the proxy serving it, not the worker running its
	// request: abort only starts the drain time.
	stop := context.AfterFunc(ctx, x.abort)
	defer p.refill(b)
	// finish ends the exchange and returns the backend's slot, recording whether the
	// backend failed. Unless the response was copied whole, it first waits, within the
	// drain limits, for the backend to finish a request it may still be running. It
	// runs before any error answer is written (but the 504 of a timeout, which must
	// not wait for the worker), so that the next request (and Stats) already see the
	// outcome.
	finished, whole := false, false
	var br *bufio.Reader // the response reader, once the response head was read
	finish := func(failed bool) {
		if finished {
			return
		}
		finished = true
		stop()
		abandoned := false
		if !whole && drain >= 0 && x.mayRun() {
			var rest io.Reader = conn
			if br != nil {
				rest = br
			}
			if err := x.drainRest(rest, orDefault(p.DrainBytes, DefaultDrainBytes)); err != nil {
				abandoned = true
				p.logger().Error("scgi proxy: the backend may still be running a request it was left to finish",
					"method", r.Method, "path", r.URL.Path, "backend", b.addr, "err", err)
			}
		}
		conn.Close()
		x.wait()
		if br != nil {
			br.Reset(nil)
			backendReaderPool.Put(br)
		}
		p.pool.release(b, failed, maxFails, failTimeout)
		if abandoned {
			p.pool.abandoned(b)
		}
	}
	defer finish(false)
	if n > 0 && r.ContentLength > 0 {
		// The body keeps streaming to the backend after the response starts.
		http.NewResponseController(w).EnableFullDuplex()
	}

	resp, err := x.send(header, body, n)
	if warm && errors.Is(err, errNothingSent) {
		// A connection dialled ahead that the backend dropped as the header went out:
		// none of the request reached it, so it goes on a fresh connection.
		stop()
		conn.Close()
		if conn, err = dialBackend(ctx, b.network, b.address, orDefault(p.DialTimeout, DefaultDialTimeout)); err != nil {
			finished = true
			p.pool.release(b, true, maxFails, failTimeout)
			p.fail(w, r, fmt.Errorf("backend %s: %w", b.addr, err))
			return
		}
		x = newExchange(conn, timeout, drain)
		stop = context.AfterFunc(ctx, x.abort)
		resp, err = x.send(header, body, n)
	}
	if err != nil {
		// net/http cancels the request's context when reading the client fails, so a
		// client-side body error is reported as such, not as a cancellation.
		if ce := (errClientBody{}); ctx.Err() != nil && !errors.As(err, &ce) {
			err = ctx.Err()
		}
		err = fmt.Errorf("backend %s: %w", b.addr, err)
		if errors.Is(err, ErrResponseHeaderTimeout) {
			// The worker may be running the request still: the client gets its 504
			// now, and the slot (and whatever the handler's caller holds) waits for
			// the worker in finish.
			x.abort()
			p.answerNow(w, r, err)
			finish(false)
			return
		}
		finish(errors.Is(err, errBackendHungUp))
		p.fail(w, r, err)
		return
	}
	br = resp.br
	if ctx.Err() != nil {
		return // the client went away while the worker ran: finish waits for the worker
	}

	h := w.Header()
	for k, vv := range resp.header {
		if !hopByHop(k) {
			h[k] = append(h[k], vv...)
		}
	}
	if _, ok := resp.header["Content-Type"]; !ok {
		h["Content-Type"] = nil // pass the response as it is: no sniffed type
	}
	w.WriteHeader(resp.status)
	if r.Method == http.MethodHead || resp.status == http.StatusNoContent || resp.status == http.StatusNotModified {
		whole = true
		return
	}
	if err := copyResponse(ctx, w, resp); err != nil {
		var we writeError
		if errors.As(err, &we) || ctx.Err() != nil {
			return // the client went away: finish waits for the worker
		}
		// The worker broke off after the status line went out: the client must not
		// take the truncated body for a whole one. Abort its connection.
		p.logWarn(r, "scgi proxy: response cut off", "backend", b.addr, "err", err)
		panic(http.ErrAbortHandler)
	}
	whole = true
}

// answerNow answers a request that failed while the backend may still be running it,
// with the ErrorHandler's answer sent at once and complete (with its
// Content-Length), so that the client has it while the proxy waits for the worker.
func (p *Proxy) answerNow(w http.ResponseWriter, r *http.Request, err error) {
	a := &bufferedAnswer{header: w.Header()}
	p.fail(a, r, err)
	if a.code == 0 && a.body.Len() == 0 {
		return // the ErrorHandler chose not to answer
	}
	w.Header().Set("Content-Length", strconv.Itoa(a.body.Len()))
	w.WriteHeader(cmp.Or(a.code, http.StatusOK))
	w.Write(a.body.Bytes())
	http.NewResponseController(w).Flush()
}

// bufferedAnswer keeps what an ErrorHandler writes, to send it with its length.
type bufferedAnswer struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (a *bufferedAnswer) Header() http.Header { return a.header }
func (a *bufferedAnswer) WriteHeader(code int) {
	if a.code == 0 && code >= 200 {
		a.code = code
	}
}
func (a *bufferedAnswer) Write(p []byte) (int, error) {
	a.WriteHeader(http.StatusOK)
	return a.body.Write(p)
}

// connect reserves a backend and takes a connection dialled ahead to it (warm) or
// dials it. Only a failed dial is retried (nothing was sent), on another backend, and
// only for an idempotent method.
func (p *Proxy) connect(ctx context.Context, r *http.Request, maxFails int, failTimeout time.Duration) (b *backend, conn net.Conn, warm bool, err error) {
	tried := make([]bool, len(p.pool.backends))
	var lastErr error
	key := ""
	if p.Affinity != nil {
		key = p.Affinity(r)
	}
	for {
		b, wc, err := p.pool.acquire(ctx, key, tried, p.MaxConnsPerBackend, orDefault(p.QueueTimeout, DefaultQueueTimeout))
		if err != nil {
			if lastErr != nil && errors.Is(err, ErrNoBackend) {
				err = lastErr // a dial failed: report that (502), not the lack of others
			}
			return nil, nil, false, err
		}
		if err := ctx.Err(); err != nil { // the client is gone: make no connection at all
			if wc != nil {
				wc.timer.Stop()
				wc.conn.Close()
			}
			p.pool.release(b, false, maxFails, failTimeout)
			return nil, nil, false, err
		}
		if p.WarmConns > 0 || wc != nil {
			p.started(b, time.Now())
			if conn := p.takeWarm(ctx, b, wc); conn != nil {
				return b, conn, true, nil
			}
			if err := ctx.Err(); err != nil {
				p.pool.release(b, false, maxFails, failTimeout)
				return nil, nil, false, err
			}
		}
		conn, err := dialBackend(ctx, b.network, b.address, orDefault(p.DialTimeout, DefaultDialTimeout))
		if err == nil {
			return b, conn, false, nil
		}
		if ctx.Err() != nil {
			p.pool.release(b, false, maxFails, failTimeout)
			return nil, nil, false, ctx.Err()
		}
		p.pool.release(b, true, maxFails, failTimeout)
		lastErr = fmt.Errorf("backend %s: %w", b.addr, err)
		tried[b.idx] = true
		if !idempotent(r.Method) {
			return nil, nil, false, lastErr
		}
		p.logWarn(r, "scgi proxy: dial failed; trying another backend", "err", lastErr)
	}
}

// hopByHop lists response headers that concern the backend connection only.
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade",
		"Trailer", "Te":
		return true
	}
	return false
}

// writeError marks a failure to write to the client.
type writeError struct{ err error }

func (e writeError) Error() string { return e.err.Error() }

// copyResponse streams the body to w, flushing whenever no more backend data is already
// buffered: a worker that streams gets its chunks to the client as they come, while a
// response that arrives in one piece costs one flush.
func copyResponse(ctx context.Context, w http.ResponseWriter, resp *backendResponse) error {
	rc := http.NewResponseController(w)
	buf := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(buf)
	for {
		n, err := resp.body.Read(*buf)
		if n > 0 {
			if cerr := ctx.Err(); cerr != nil {
				return cerr // the client went away: the rest is drained, not written
			}
			if _, werr := w.Write((*buf)[:n]); werr != nil {
				return writeError{werr}
			}
			if resp.br.Buffered() == 0 {
				if ferr := rc.Flush(); ferr != nil && !errors.Is(ferr, http.ErrNotSupported) {
					return writeError{ferr}
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
