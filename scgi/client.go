package scgi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrBadBackendResponse reports a response from the backend that is not a valid CGI
// response (or that ended before its header did). The proxy answers 502.
var ErrBadBackendResponse = errors.New("scgi: invalid response from backend")

// ErrResponseHeaderTimeout reports a backend that did not start its response within
// Proxy.ResponseHeaderTimeout. The proxy answers 504.
var ErrResponseHeaderTimeout = errors.New("scgi: timeout awaiting response headers from backend")

// errBackendHungUp marks a backend that closed or reset the connection before it sent a
// single byte of response: the worker died or refused the request. It counts against
// the backend's health.
var errBackendHungUp = errors.New("scgi: backend closed the connection without a response")

// errClientBody marks a failure to read the client's request body: the client's fault,
// not the backend's.
type errClientBody struct{ err error }

func (e errClientBody) Error() string { return "scgi: reading request body: " + e.err.Error() }
func (e errClientBody) Unwrap() error { return e.err }

// maxResponseHeaderBytes bounds the CGI header block a backend may send.
const maxResponseHeaderBytes = 1 << 20

// readBufSize is the size of the buffered reader on a backend connection; it is also the
// longest single response header line accepted.
const readBufSize = 32 << 10

var backendReaderPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }}

// backendResponse is the head of a CGI response and a reader for its body.
type backendResponse struct {
	status int
	header http.Header
	body   io.Reader // the body with any chunking inside the SCGI stream decoded
	br     *bufio.Reader
}

// readCGIResponse reads a CGI response head (RFC 3875 section 6): header lines, a blank
// line. The status comes from a "Status:" header (its reason phrase is optional), or is
// 302 for a Location without Status, or 200. A first line "HTTP/1.x NNN reason" (an
// NPH-style response) is accepted as well. Bare LF line ends are accepted.
func readCGIResponse(br *bufio.Reader) (*backendResponse, error) {
	resp := &backendResponse{header: make(http.Header), br: br}
	total := 0
	statusSeen := false
	for first := true; ; first = false {
		line, err := br.ReadSlice('\n')
		total += len(line)
		if err != nil {
			switch {
			case errors.Is(err, bufio.ErrBufferFull):
				return nil, fmt.Errorf("%w: header line longer than %d bytes", ErrBadBackendResponse, readBufSize)
			case first && len(line) == 0 && (err == io.EOF || isReset(err)):
				return nil, errBackendHungUp
			case err == io.EOF:
				return nil, fmt.Errorf("%w: connection closed inside the response header", ErrBadBackendResponse)
			}
			return nil, err
		}
		if total > maxResponseHeaderBytes {
			return nil, fmt.Errorf("%w: response header larger than %d bytes", ErrBadBackendResponse, maxResponseHeaderBytes)
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(line) == 0 {
			break
		}
		if first && bytes.HasPrefix(line, []byte("HTTP/1.")) {
			_, rest, _ := bytes.Cut(line, []byte(" "))
			code, ok := parseStatus(rest)
			if !ok {
				return nil, fmt.Errorf("%w: bad status line %q", ErrBadBackendResponse, line)
			}
			resp.status, statusSeen = code, true
			continue
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !validFieldName(name) {
			return nil, fmt.Errorf("%w: bad header line %q", ErrBadBackendResponse, truncate(line))
		}
		value = bytes.TrimSpace(value)
		if !validFieldValue(value) {
			return nil, fmt.Errorf("%w: bad value in header %q", ErrBadBackendResponse, name)
		}
		key := textproto.CanonicalMIMEHeaderKey(string(name))
		if key == "Status" {
			code, ok := parseStatus(value)
			if !ok || statusSeen {
				return nil, fmt.Errorf("%w: bad or repeated Status %q", ErrBadBackendResponse, value)
			}
			resp.status, statusSeen = code, true
			continue
		}
		resp.header[key] = append(resp.header[key], string(value))
	}
	if !statusSeen {
		resp.status = http.StatusOK
		if resp.header.Get("Location") != "" {
			resp.status = http.StatusFound
		}
	}
	return resp, resp.setBody()
}

// setBody chooses how the body is delimited: chunking inside the SCGI stream (decoded
// here, so the client never sees it twice), a Content-Length (a shorter body is an error),
// or the end of the connection.
func (resp *backendResponse) setBody() error {
	h := resp.header
	if te, ok := h["Transfer-Encoding"]; ok {
		if len(te) != 1 || !strings.EqualFold(strings.TrimSpace(te[0]), "chunked") {
			return fmt.Errorf("%w: unsupported Transfer-Encoding %q", ErrBadBackendResponse, te)
		}
		delete(h, "Transfer-Encoding")
		delete(h, "Content-Length") // RFC 9112 section 6.3: chunking wins
		resp.body = httputil.NewChunkedReader(resp.br)
		return nil
	}
	if cl, ok := h["Content-Length"]; ok {
		n, err := strconv.ParseInt(strings.TrimSpace(cl[0]), 10, 64)
		if len(cl) != 1 || err != nil || n < 0 {
			return fmt.Errorf("%w: bad Content-Length %q", ErrBadBackendResponse, cl)
		}
		resp.body = &exactReader{r: resp.br, n: n}
		return nil
	}
	resp.body = resp.br
	return nil
}

// exactReader reads exactly n bytes; an earlier end of input is io.ErrUnexpectedEOF.
type exactReader struct {
	r io.Reader
	n int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.n {
		p = p[:e.n]
	}
	n, err := e.r.Read(p)
	e.n -= int64(n)
	if err == io.EOF && e.n > 0 {
		err = io.ErrUnexpectedEOF
	}
	if e.n == 0 && err == nil {
		err = io.EOF
	}
	return n, err
}

// parseStatus reads "NNN" or "NNN reason" with NNN a final status code (200-599).
func parseStatus(b []byte) (int, bool) {
	if len(b) < 3 || (len(b) > 3 && b[3] != ' ') {
		return 0, false
	}
	code := 0
	for _, c := range b[:3] {
		if c < '0' || c > '9' {
			return 0, false
		}
		code = code*10 + int(c-'0')
	}
	return code, code >= 200 && code <= 599
}

func validFieldName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func validFieldValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// isReset reports a connection reset or broken pipe: the peer went away abruptly.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// dialBackend connects to a backend within timeout (and ctx). TCP keep-alive is off:
// an SCGI connection carries one request, and the probes' setup costs four system
// calls per request.
//
// The dial is not canceled with the request: a connect that the server's kernel has
// already accepted, then closed by the cancellation, is an empty connection to
// python-scgi, which kills the child that gets it. The request is sent anyway.
func dialBackend(ctx context.Context, network, address string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: -1}
	return d.DialContext(context.WithoutCancel(ctx), network, address)
}

// exchange is one SCGI request/response on a backend connection.
//
// The header netstring goes out in one write. The body (exactly n bytes from body) is
// written from a second goroutine while the response is awaited, so that a worker which
// answers before reading the whole body (to refuse it, say) does not deadlock against a
// proxy still writing. The response-header timeout runs from the end of the body (as
// http.Transport's does); each write of the request must make progress within the same
// timeout, so a worker that stops reading cannot hold the proxy.
//
// Once the proxy stops serving the client (abort: the client went away, or the response
// did not start in time), the backend may still be running the request, and it has
// drain more to finish it: every read and write on the connection then ends by that
// time (at once when drain is negative), and deadlines set later cannot extend it.
//
// wait must be called once the response is done and the connection closed: it waits for
// the body writer, which reads the request body (a handler must not after returning).
type exchange struct {
	conn    net.Conn
	timeout time.Duration
	drain   time.Duration

	mu          sync.Mutex
	headerSent  bool // the header netstring went out (or failed to)
	headerWhole bool // ... and all of it: the backend may run the request
	headerRead  bool
	aborted     bool      // abort was called: no deadline may be moved again
	drainBy     time.Time // when aborted: the end of every read and write
	bodyErr     error
	done        chan struct{}
}

// abort stops the wait for the backend at the end of the drain time: every pending and
// future read and write on the connection ends by then. The first call sets that time;
// later calls change nothing.
//
// Until the header netstring is written, abort only takes note: a python-scgi child
// dies of a connection that ends before its header does, so a connection, once made,
// always carries a whole header (send applies the abort right after it).
func (x *exchange) abort() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.aborted {
		return
	}
	x.aborted = true
	x.drainBy = time.Unix(1, 0)
	if x.drain >= 0 {
		x.drainBy = time.Now().Add(x.drain)
	}
	if x.headerSent {
		x.conn.SetDeadline(x.drainBy)
	}
}

// mayRun reports whether the backend may be running the request: it got the whole
// header, and the connection was not cut because the client's body failed.
func (x *exchange) mayRun() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	var ce errClientBody
	return x.headerWhole && !errors.As(x.bodyErr, &ce)
}

// drainRest reads what the backend still sends on r (the connection, or a reader
// buffering it) and discards it, until the backend closes the connection: then the
// worker is done with the request. It aborts the exchange first, so the wait ends at
// the drain time (counted from the first abort), and it reads at most maxBytes. It
// returns nil when the backend ended the connection, or why the wait was cut short.
func (x *exchange) drainRest(r io.Reader, maxBytes int64) error {
	x.abort()
	n, err := io.Copy(io.Discard, io.LimitReader(r, maxBytes+1))
	var ne net.Error
	switch {
	case n > maxBytes:
		return fmt.Errorf("%w: still sending after %d bytes", errDrainCut, maxBytes)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: not done %v after the proxy stopped serving the client", errDrainCut, x.drain)
	}
	return nil // the end of the connection, or a reset: either way the worker let go
}

// errDrainCut reports a backend that was not done with a request within the drain
// limits: the proxy gave up waiting while the worker may still be running it.
var errDrainCut = errors.New("scgi: gave up waiting for the backend to finish the request")

// setWriteDeadline moves the write deadline unless the exchange is aborted.
func (x *exchange) setWriteDeadline(t time.Time) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.aborted {
		x.conn.SetWriteDeadline(t)
	}
}

func newExchange(conn net.Conn, timeout, drain time.Duration) *exchange {
	return &exchange{conn: conn, timeout: timeout, drain: drain}
}

// send writes the header netstring, starts the body writer, and reads the response head.
func (x *exchange) send(header []byte, body io.Reader, n int64) (*backendResponse, error) {
	x.conn.SetWriteDeadline(time.Now().Add(x.timeout))
	written, err := x.conn.Write(header)
	x.mu.Lock()
	x.headerSent, x.headerWhole = true, err == nil
	if x.aborted {
		x.conn.SetDeadline(x.drainBy)
	}
	x.mu.Unlock()
	if err != nil {
		if isReset(err) && written == 0 {
			return nil, fmt.Errorf("%w (%w): %v", errBackendHungUp, errNothingSent, err)
		}
		if isReset(err) {
			return nil, fmt.Errorf("%w: %v", errBackendHungUp, err)
		}
		return nil, x.timeoutErr(err)
	}
	if n > 0 {
		x.done = make(chan struct{})
		go x.writeBody(body, n)
	} else {
		x.bodyWritten(nil)
	}
	br := backendReaderPool.Get().(*bufio.Reader)
	br.Reset(x.conn)
	resp, err := readCGIResponse(br)
	x.mu.Lock()
	x.headerRead = true
	bodyErr, aborted := x.bodyErr, x.aborted
	if !x.aborted {
		x.conn.SetReadDeadline(time.Time{}) // the body may stream for as long as it takes
	}
	x.mu.Unlock()
	if err != nil && aborted && x.done != nil {
		// The request was canceled, which net/http also does when reading the client's
		// body fails: wait for the body writer (the abort stops its writes) to learn
		// whether the client's body was at fault. That is a matter of microseconds;
		// the bound only matters for a cancellation from elsewhere (a handler
		// timeout) while the client is still sending, which must not wait for it.
		select {
		case <-x.done:
		case <-time.After(time.Second):
		}
		x.mu.Lock()
		bodyErr = x.bodyErr
		x.mu.Unlock()
	}
	if err != nil {
		br.Reset(nil)
		backendReaderPool.Put(br)
		if ce := (errClientBody{}); errors.As(bodyErr, &ce) {
			return nil, bodyErr
		}
		return nil, x.timeoutErr(err)
	}
	return resp, nil
}

func (x *exchange) timeoutErr(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w (%v)", ErrResponseHeaderTimeout, x.timeout)
	}
	return err
}

func (x *exchange) writeBody(body io.Reader, n int64) {
	defer close(x.done)
	w := progressWriter{x}
	buf := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(buf)
	written, err := io.CopyBuffer(w, readerOnly{&clientBody{r: io.LimitReader(body, n)}}, *buf)
	if err == nil && written < n {
		err = errClientBody{io.ErrUnexpectedEOF}
	}
	if err != nil {
		var ce errClientBody
		if errors.As(err, &ce) {
			// Never let the worker take a short body for a whole one: cut the
			// connection (the response, if any, is of no use). The error is recorded
			// first, so that the response reader, failing on the closed connection,
			// reports the client's fault and not the backend's.
			x.mu.Lock()
			x.bodyErr = err
			x.mu.Unlock()
			x.conn.Close()
		}
	}
	x.bodyWritten(err)
}

// bodyWritten starts the response-header timeout once the request is fully sent (or
// could not be sent: a worker may still answer, for example to refuse the body).
func (x *exchange) bodyWritten(err error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.bodyErr = err
	if !x.headerRead && !x.aborted {
		x.conn.SetReadDeadline(time.Now().Add(x.timeout))
	}
}

// wait waits for the body writer to stop using the request body.
func (x *exchange) wait() {
	if x.done != nil {
		<-x.done
	}
}

// clientBody tags errors reading the request body as the client's.
type clientBody struct{ r io.Reader }

func (c *clientBody) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		err = errClientBody{err}
	}
	return n, err
}

// readerOnly hides any WriterTo/ReaderFrom so io.CopyBuffer uses our buffer and writer.
type readerOnly struct{ io.Reader }

// progressWriter gives each write its own deadline: the peer must keep reading.
type progressWriter struct{ x *exchange }

func (w progressWriter) Write(p []byte) (int, error) {
	w.x.setWriteDeadline(time.Now().Add(w.x.timeout))
	return w.x.conn.Write(p)
}

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
