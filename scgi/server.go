package scgi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/qxbridge/qxbridge/ratelog"
)

// ErrServerClosed is returned by Server.Serve after a call to Shutdown or Close.
var ErrServerClosed = errors.New("scgi: Server closed")

// Default limits of a Server whose fields are zero.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultStallTimeout      = 60 * time.Second
)

// lingerTimeout bounds how long a connection is kept open after its response, to read
// and discard what the front end still sends (an unread body, or the rest of a
// rejected request). Closing a socket with unread input makes the kernel send a reset,
// which can destroy the response before the front end has read it.
const (
	lingerTimeout  = 2 * time.Second
	maxLingerBytes = 256 << 10
)

// Serve accepts SCGI connections on l and serves each request with handler (or
// http.DefaultServeMux if handler is nil), using a Server with default limits. It
// returns when l.Accept fails, as net/http/fcgi.Serve does.
func Serve(l net.Listener, handler http.Handler) error {
	return (&Server{Handler: handler}).Serve(l)
}

// A Server serves SCGI requests, one per connection as the protocol has it, each on
// its own goroutine.
//
// Every duration field has a default that is used when the field is zero; a negative
// value means no limit. The read and write limits are enforced with connection
// deadlines, so a slow or silent client is cut off and its goroutine ends.
type Server struct {
	// Handler serves the requests; nil means http.DefaultServeMux.
	Handler http.Handler

	// ReadHeaderTimeout is how long a client has, from connecting, to send the whole
	// header netstring. Default DefaultReadHeaderTimeout (10 s): a front end writes
	// the header in one go right after connecting.
	ReadHeaderTimeout time.Duration

	// ReadTimeout is how long a client has, from connecting, to send the whole
	// request, body included, as in net/http. Default: no limit, because a front end
	// that streams uploads (scgi_request_buffering off) can take as long as the
	// browser does; StallTimeout still cuts off a client that stops sending.
	ReadTimeout time.Duration

	// WriteTimeout is how long the handler and the response may take from the end
	// of the header, as in net/http. Default: no limit, so that streamed responses
	// work; StallTimeout still cuts off a client that stops reading. Handlers can move
	// both deadlines with http.ResponseController.
	WriteTimeout time.Duration

	// StallTimeout is the longest any single read of the request or write of the
	// response may wait for the client to make progress. Default
	// DefaultStallTimeout (60 s). Unlike ReadTimeout and WriteTimeout it bounds no
	// total time, only silence.
	StallTimeout time.Duration

	// HandlerTimeout, if positive, is a deadline put on each request's context. A
	// handler that honours its context stops then; the server does not interrupt one
	// that does not. For a "503 Service Unavailable" answer on timeout, wrap the
	// handler in http.TimeoutHandler instead. Default: no limit.
	HandlerTimeout time.Duration

	// BodyLimits bound how slowly a request body may arrive: a minimum average rate
	// after a grace period, and a total deadline (see BodyLimits for the defaults).
	// A body that breaks them fails the handler's read with an error wrapping
	// ErrBodyTooSlow, and the connection is closed after the response. They apply on
	// top of ReadTimeout and StallTimeout.
	BodyLimits BodyLimits

	// FrontEndHalfCloses says that the front end may shut down its sending side of
	// the connection while it still waits for the response (lighttpd does with its
	// "tcp-fin-propagate" option when the browser half-closes; older lighttpd
	// releases did after every request to a local backend). nginx, Apache's
	// mod_proxy_scgi and current lighttpd by default do not, so by default the
	// server watches each connection, once the request has been read whole, for the
	// front end closing it: the client went away (nginx closes the connection to the
	// backend when the browser leaves), and the request's context is canceled, as
	// net/http does. With FrontEndHalfCloses the end of the input means nothing and
	// a departed client is noticed only when the response is written.
	FrontEndHalfCloses bool

	// MaxHeaderBytes limits the length of the header netstring. Default
	// DefaultMaxHeaderBytes (1 MiB). Memory for the header grows with the bytes that
	// arrive, not with the length the client announces.
	MaxHeaderBytes int

	// ErrorLog receives malformed requests (Warn), handler panics and accept errors
	// (Error), and clients that went away (Debug). Nil means slog.Default().
	ErrorLog *slog.Logger

	mu        sync.Mutex
	listeners map[*net.Listener]struct{}
	conns     map[*conn]struct{}
	// accepting counts the Serve loops still running. A connection a loop accepted
	// just before Shutdown closed its listener is served, not dropped: the client
	// connected while the server was up (with a socket that outlives the process,
	// as systemd's does, it has no other server to go to).
	accepting int
	closing   bool          // Shutdown or Close was called
	closed    bool          // Close was called: connections accepted from now on are cut off
	idleSent  bool          // idle is closed
	idle      chan struct{} // closed when closing, with no Serve loop and no connection left
}

func limit(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// deadlineAfter returns t+d, or the zero time (no deadline) when d is 0.
func deadlineAfter(t time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return t.Add(d)
}

func (s *Server) handler() http.Handler {
	if s.Handler == nil {
		return http.DefaultServeMux
	}
	return s.Handler
}

func (s *Server) logger() *slog.Logger {
	if s.ErrorLog == nil {
		return slog.Default()
	}
	return s.ErrorLog
}

// Serve accepts connections on l and serves them until l fails or the server is shut
// down. It always closes l. After Shutdown or Close it returns ErrServerClosed.
func (s *Server) Serve(l net.Listener) error {
	if !s.trackListener(&l, true) {
		l.Close()
		return ErrServerClosed
	}
	defer s.trackListener(&l, false)
	defer l.Close()

	var delay time.Duration // backoff after transient accept errors, as net/http does
	for {
		rw, err := l.Accept()
		if err != nil {
			if s.shuttingDown() {
				return ErrServerClosed
			}
			if transientAcceptError(err) {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.logger().Error("scgi: accept failed; retrying", "err", err, "delay", delay)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := &conn{srv: s, rwc: rw, stall: limit(s.StallTimeout, DefaultStallTimeout)}
		if !s.trackConn(c, true) {
			rw.Close()
			return ErrServerClosed
		}
		go c.serve()
	}
}

// transientAcceptError reports errors after which accepting can go on: a connection
// that died in the backlog, or a shortage of descriptors or buffers.
func transientAcceptError(err error) bool {
	for _, errno := range []syscall.Errno{syscall.ECONNABORTED, syscall.ECONNRESET,
		syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.EINTR,
		syscall.EAGAIN, syscall.EPROTO} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Shutdown stops the server gracefully: it closes the listeners, so no new
// connection is accepted, then waits until every Serve call has returned and every
// accepted request has been answered, or ctx is done, whichever comes first
// (returning ctx's error in the second case). A connection that Accept returned
// while the listener was closing is served too. Requests still running when ctx
// ends are left alone; call Close to cut them off.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.startClosingLocked()
	err := s.closeListenersLocked()
	idle := s.idle
	s.mu.Unlock()
	select {
	case <-idle:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes the listeners and every connection at once, and cancels the context
// of every running request. It returns the error of closing a listener, if any.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.startClosingLocked()
	err := s.closeListenersLocked()
	for c := range s.conns {
		c.rwc.Close()
		c.cancel()
	}
	s.mu.Unlock()
	return err
}

func (s *Server) initLocked() {
	if s.listeners == nil {
		s.listeners = make(map[*net.Listener]struct{})
		s.conns = make(map[*conn]struct{})
		s.idle = make(chan struct{})
	}
}

func (s *Server) startClosingLocked() {
	s.initLocked()
	s.closing = true
	s.checkIdleLocked()
}

// checkIdleLocked closes idle once the server is closing and nothing is left: no
// Serve loop that could still hand over a connection, and no connection.
func (s *Server) checkIdleLocked() {
	if s.closing && !s.idleSent && s.accepting == 0 && len(s.conns) == 0 {
		s.idleSent = true
		close(s.idle)
	}
}

func (s *Server) closeListenersLocked() error {
	var err error
	for l := range s.listeners {
		if cerr := (*l).Close(); cerr != nil && err == nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
		delete(s.listeners, l)
	}
	return err
}

func (s *Server) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) trackListener(l *net.Listener, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initLocked()
	if add {
		if s.closing {
			return false
		}
		s.listeners[l] = struct{}{}
		s.accepting++
	} else {
		delete(s.listeners, l)
		s.accepting--
		s.checkIdleLocked()
	}
	return true
}

func (s *Server) trackConn(c *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		// While its Serve loop runs, idle is not closed yet: Shutdown waits for
		// the connection.
		if s.closed {
			return false
		}
		s.conns[c] = struct{}{}
		return true
	}
	delete(s.conns, c)
	s.checkIdleLocked()
	return true
}

// conn is one SCGI connection. It is the io.Reader under the request's bufio.Reader
// and arms the socket deadline before reads and writes: the earlier of the absolute
// limit (ReadHeaderTimeout, ReadTimeout, WriteTimeout, or what the handler set
// through http.ResponseController) and now + StallTimeout.
//
// Setting a deadline takes runtime locks and timer work, which shows at tens of
// thousands of connections a second, so a deadline is only set again when it
// would move: a stall deadline that is less than stallSlack of StallTimeout old
// is left as it is (the client then gets between 15/16 and all of StallTimeout).
type conn struct {
	srv   *Server
	rwc   net.Conn
	stall time.Duration

	mu          sync.Mutex
	readLimit   time.Time
	bodyLimit   time.Time // set by the body's BodyLimits for the read in progress
	writeLimit  time.Time
	armedRead   time.Time // deadline currently set on rwc
	armedWrite  time.Time
	cancelCtx   context.CancelFunc
	ctxCanceled bool
	watch       chan struct{} // while the departure watch runs; closed when it ends
	watchOver   bool          // the handler returned: no watch starts any more
	watchEnded  bool          // the watch's read returned
	watchCloses bool          // the watch closes the connection when its read returns
	watchTimer  *time.Timer   // starts the watch after watchDelay
}

// watchDelay is how long a handler runs before the departure watch starts. Most
// requests are answered sooner and cost no watching goroutine, no extra read and no
// deadline changes; a front end that closed the connection earlier is noticed when the
// watch starts, at once, since its read then finds the end of the input.
const watchDelay = 5 * time.Millisecond

const stallSlack = 16

// nextDeadline returns the deadline an operation should have now, and whether it
// differs enough from the armed one to be set.
func (c *conn) nextDeadline(limit, armed time.Time) (time.Time, bool) {
	if c.stall <= 0 {
		return limit, !limit.Equal(armed)
	}
	d := time.Now().Add(c.stall)
	if !limit.IsZero() && limit.Before(d) {
		return limit, !limit.Equal(armed)
	}
	if !armed.IsZero() && armed.Before(d) && d.Sub(armed) < c.stall/stallSlack {
		return armed, false // still fresh: the stall limit is within the slack
	}
	return d, true
}

// setReadLimit changes the absolute read limit; the next read arms it.
func (c *conn) setReadLimit(t time.Time) {
	c.mu.Lock()
	c.readLimit = t
	c.mu.Unlock()
}

// setWriteLimit changes the absolute write limit; the next write arms it.
func (c *conn) setWriteLimit(t time.Time) {
	c.mu.Lock()
	c.writeLimit = t
	c.mu.Unlock()
}

// setBodyLimit sets the deadline the body limits put on the next read.
func (c *conn) setBodyLimit(t time.Time) {
	c.mu.Lock()
	c.bodyLimit = t
	c.mu.Unlock()
}

// armRead sets the read deadline for a read about to start.
func (c *conn) armRead() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watch != nil && !c.watchOver {
		// The request was read whole, and the departure watch reads with no
		// deadline: nothing else reads until the handler returns.
		return nil
	}
	limit := c.readLimit
	if !c.bodyLimit.IsZero() && (limit.IsZero() || c.bodyLimit.Before(limit)) {
		limit = c.bodyLimit
	}
	d, set := c.nextDeadline(limit, c.armedRead)
	if !set {
		return nil
	}
	c.armedRead = d
	return c.rwc.SetReadDeadline(d)
}

func (c *conn) armWrite() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, set := c.nextDeadline(c.writeLimit, c.armedWrite)
	if !set {
		return nil
	}
	c.armedWrite = d
	return c.rwc.SetWriteDeadline(d)
}

// cancel cancels the request's context, if it has one yet.
func (c *conn) cancel() {
	c.mu.Lock()
	cancel := c.cancelCtx
	c.ctxCanceled = true
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// aLongTimeAgo is a deadline in the past, which makes a blocked read return at once.
var aLongTimeAgo = time.Unix(1, 0)

// watchDeparture arranges the background read that notices the front end closing the
// connection while the handler runs (from watchDelay on). It is called once the request has arrived
// whole: before the handler for a request without a body or whose body is all in
// br already (pending bytes of it: a form a front end that buffers bodies, as nginx
// does by default, sent with the header), else when the handler has read the body to
// its end. From then on an SCGI front end sends nothing more (one request per
// connection, no pipelining), so an end of input or an error means it closed the
// connection, because its client went away: the request's context is canceled, for
// the handler and what it waits for (per-session ordering, a backend) to give up.
// Input that does arrive is not the protocol's, and only ends the watch.
func (c *conn) watchDeparture(br *bufio.Reader, pending int64) {
	if c.srv.FrontEndHalfCloses || int64(br.Buffered()) != pending {
		return // more than the request arrived: not watched
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watch != nil || c.watchOver || c.watchTimer != nil {
		return
	}
	c.watchTimer = time.AfterFunc(watchDelay, c.watchRead)
}

// watchRead is the departure watch, started by watchTimer unless the handler has
// returned by then.
func (c *conn) watchRead() {
	c.mu.Lock()
	if c.watch != nil || c.watchOver {
		c.mu.Unlock()
		return
	}
	if err := c.rwc.SetReadDeadline(time.Time{}); err != nil {
		c.mu.Unlock()
		return
	}
	c.armedRead = time.Time{}
	done := make(chan struct{})
	c.watch = done
	c.mu.Unlock()

	var b [1]byte
	n, err := c.rwc.Read(b[:])
	c.mu.Lock()
	over, closes := c.watchOver, c.watchCloses
	c.watchEnded = true
	c.mu.Unlock()
	close(done)
	if closes {
		c.closeNow()
		return
	}
	if n > 0 || over || errors.Is(err, os.ErrDeadlineExceeded) {
		return
	}
	c.srv.logger().Debug("scgi: the front end closed the connection while the handler ran; canceling the request",
		"remote", c.rwc.RemoteAddr().String(), "err", err)
	c.cancel()
}

// endWatch keeps a departure watch from starting, and makes one that runs take what
// it reads from now on for no departure. It does not wait for the watch: a read of the
// server's own must call stopWatch first.
func (c *conn) endWatch() {
	c.mu.Lock()
	c.watchOver = true
	if c.watchTimer != nil {
		c.watchTimer.Stop()
	}
	c.mu.Unlock()
}

// stopWatch ends the departure watch, if one runs, before the server reads from the
// connection again (to linger or drain), and keeps one from starting.
func (c *conn) stopWatch() {
	c.mu.Lock()
	c.watchOver = true
	if c.watchTimer != nil {
		c.watchTimer.Stop()
	}
	done := c.watch
	if done != nil {
		_ = c.rwc.SetReadDeadline(aLongTimeAgo)
		c.armedRead = aLongTimeAgo // the next read arms its own deadline
	}
	c.mu.Unlock()
	if done != nil {
		<-done
	}
}

func (c *conn) Read(p []byte) (int, error) {
	if err := c.armRead(); err != nil {
		return 0, err
	}
	return c.rwc.Read(p)
}

// close closes the connection once the request is over. While the departure watch
// still reads, closing would wait for that read to return (net.Conn's Close waits for
// the operations in progress), and the request's goroutine would sleep for one more
// hand-over between goroutines: the watch's read is made to return at once instead,
// and the watch closes the connection itself.
func (c *conn) close() {
	c.mu.Lock()
	c.watchOver = true
	if c.watch != nil && !c.watchEnded {
		c.watchCloses = true
		_ = c.rwc.SetReadDeadline(aLongTimeAgo)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.closeNow()
}

// closeNow closes the connection and lets Shutdown know.
func (c *conn) closeNow() {
	c.rwc.Close()
	c.srv.trackConn(c, false)
}

// write sends bufs to the client in one system call where the connection allows it
// (net.Buffers uses writev on TCP and UNIX sockets). A failed write means the client
// is gone, so the request's context is canceled for the handler to notice.
func (c *conn) write(bufs ...[]byte) error {
	err := c.armWrite()
	if err == nil {
		if len(bufs) == 1 {
			_, err = c.rwc.Write(bufs[0])
		} else {
			nb := net.Buffers(bufs)
			_, err = nb.WriteTo(c.rwc)
		}
	}
	if err != nil {
		c.cancel()
	}
	return err
}

func (c *conn) closeWrite() {
	if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// linger closes the connection after the client has had time to read the response:
// it ends the response with a FIN and discards input for a bounded time first.
func (c *conn) linger() {
	c.stopWatch()
	c.closeWrite()
	_ = c.rwc.SetReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.CopyN(io.Discard, c.rwc, maxLingerBytes)
}

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// serve runs one request from the header to the close of the connection.
func (c *conn) serve() {
	s := c.srv
	defer c.close()
	log := s.logger()

	start := time.Now()
	c.setReadLimit(deadlineAfter(start, limit(s.ReadHeaderTimeout, DefaultReadHeaderTimeout)))
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(c)
	defer func() {
		br.Reset(nil)
		readerPool.Put(br)
	}()

	env, length, err := readEnv(br, s.MaxHeaderBytes)
	if err != nil {
		c.rejectHeader(err)
		return
	}

	// The context derives from no server-wide cancelable context: registering
	// every request with one shared parent would serialize them on its lock.
	// Close cancels each connection's context itself.
	var parent context.Context
	var cancel context.CancelFunc
	if s.HandlerTimeout > 0 {
		parent, cancel = context.WithTimeout(context.Background(), s.HandlerTimeout)
	} else {
		parent, cancel = context.WithCancel(context.Background())
	}
	defer cancel()
	ctx := &requestContext{Context: parent, env: env, localAddr: c.rwc.LocalAddr()}
	c.mu.Lock()
	c.cancelCtx = cancel
	if c.ctxCanceled { // Close came first
		cancel()
	}
	c.mu.Unlock()

	req, err := newRequest(env, length)
	if err != nil {
		c.reject(http.StatusBadRequest, err, env.Get("REMOTE_ADDR"))
		return
	}
	req = req.WithContext(ctx)
	if req.RemoteAddr == "" {
		req.RemoteAddr = c.rwc.RemoteAddr().String()
	}
	c.setReadLimit(deadlineAfter(start, limit(s.ReadTimeout, 0)))
	c.setWriteLimit(deadlineAfter(time.Now(), limit(s.WriteTimeout, 0)))
	var b *body
	if length > 0 {
		b = &body{r: br, remaining: length, c: c, rate: s.BodyLimits.start(time.Now()),
			onEnd: func() { c.watchDeparture(br, 0) }}
		req.Body = b
		// Runs before br goes back to the pool: a goroutine the handler left
		// reading the body gets an error, not another connection's bytes.
		defer b.detach()
	}

	w := newResponse(c, req)
	defer w.release()
	if int64(br.Buffered()) == length {
		// The body, if any, needs no more reads from the connection.
		c.watchDeparture(br, length)
	}
	if !c.runHandler(w, req) {
		return // the connection is cut off: the response is incomplete or aborted
	}
	if err := w.finish(); err != nil {
		level := slog.LevelDebug // the client went away
		if errors.Is(err, errShortResponse) {
			level = slog.LevelWarn
		}
		log.Log(context.Background(), level, "scgi: response not completed", "remote", req.RemoteAddr, "uri", req.RequestURI, "err", err)
		return
	}
	if b != nil && b.unread() > 0 {
		// The handler did not read the whole body. Send the end of the response,
		// then read the rest so that closing does not reset the connection under
		// a response the front end has not read yet.
		c.stopWatch()
		c.closeWrite()
		c.setReadLimit(time.Now().Add(lingerTimeout))
		_ = b.drain()
	}
}

// requestContext is a request's context: cancelable, and carrying the SCGI
// environment and http.LocalAddrContextKey without a chain of context.WithValue.
type requestContext struct {
	context.Context
	env       Env
	localAddr net.Addr
}

func (c *requestContext) Value(key any) any {
	switch key {
	case envContextKey{}:
		return c.env
	case http.LocalAddrContextKey:
		return c.localAddr
	}
	return c.Context.Value(key)
}

// runHandler calls the handler and reports whether it returned normally. A panic is
// logged with its stack (except http.ErrAbortHandler, which is the handler's way of
// asking for a silent abort) and answered with 500 if nothing was sent yet.
func (c *conn) runHandler(w *response, req *http.Request) (ok bool) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			return
		}
		buf := make([]byte, 64<<10)
		buf = buf[:runtime.Stack(buf, false)]
		c.srv.logger().Error("scgi: panic serving request", "remote", req.RemoteAddr,
			"uri", req.RequestURI, "panic", fmt.Sprint(v), "stack", string(buf))
		if !w.headerSent {
			if c.write([]byte(errorResponse(http.StatusInternalServerError))) == nil {
				c.linger()
			}
		}
	}()
	defer c.endWatch() // the response is the handler's: a departure no longer cancels it
	c.srv.handler().ServeHTTP(w, req)
	return true
}

// rejectHeader handles a header that could not be read. Framing errors are answered
// with 400 (431 for an oversized header); a client that sent nothing, went away or
// timed out gets no answer.
func (c *conn) rejectHeader(err error) {
	switch {
	case errors.Is(err, ErrHeaderTooLarge):
		c.reject(http.StatusRequestHeaderFieldsTooLarge, err, "")
	case errors.Is(err, ErrMalformed):
		c.reject(http.StatusBadRequest, err, "")
	case err == io.EOF:
		// Connected and closed without a request (a port probe): nothing to say.
	default:
		c.srv.logger().Info("scgi: request header not received", ratelog.Key, "scgi_header", "remote", c.rwc.RemoteAddr().String(), "err", err)
	}
}

func (c *conn) reject(code int, err error, remote string) {
	if remote == "" {
		remote = c.rwc.RemoteAddr().String()
	}
	c.srv.logger().Warn("scgi: bad request", ratelog.Key, "scgi", "remote", remote, "status", code, "err", err)
	if c.write([]byte(errorResponse(code))) == nil {
		c.linger()
	}
}

// errorResponse is a complete CGI response for a status the server answers itself.
func errorResponse(code int) string {
	text := fmt.Sprintf("%d %s\n", code, http.StatusText(code))
	return fmt.Sprintf("Status: %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s",
		code, http.StatusText(code), len(text), text)
}
